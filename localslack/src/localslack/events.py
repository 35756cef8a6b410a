"""In-process pub/sub of workspace state changes, and waiting on conditions over that state."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Event:
    """One state change. `data` holds JSON-ready values so it can go straight to a browser."""

    seq: int
    kind: str
    data: dict[str, Any]
    at: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "kind": self.kind, "at": self.at, "data": self.data}


class Subscription:
    """An async iterator of events; close it (or use `async with`) to stop receiving."""

    def __init__(self, bus: EventBus, kinds: frozenset[str] | None) -> None:
        self._bus = bus
        self._kinds = kinds
        # Unbounded on purpose: a slow reader must never block or drop state changes.
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self.closed = False

    def _offer(self, event: Event) -> None:
        if not self.closed and (self._kinds is None or event.kind in self._kinds):
            self._queue.put_nowait(event)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._bus._subscribers.discard(self)
            self._queue.put_nowait(None)

    async def get(self, timeout: float | None = None) -> Event:
        """The next event; raises StopAsyncIteration once closed, TimeoutError on timeout."""
        async with asyncio.timeout(timeout):
            event = await self._queue.get()
        if event is None:
            raise StopAsyncIteration
        return event

    def __aiter__(self) -> AsyncIterator[Event]:
        return self

    async def __anext__(self) -> Event:
        return await self.get()

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


class EventBus:
    """Publishes every change to subscribers and wakes everyone blocked in `wait_for`."""

    def __init__(self) -> None:
        self._seq = 0
        self._subscribers: set[Subscription] = set()
        self._changed = asyncio.Event()
        self.history: list[Event] = []

    def emit(self, kind: str, **data: Any) -> Event:
        self._seq += 1
        event = Event(self._seq, kind, data)
        self.history.append(event)
        for subscriber in list(self._subscribers):
            subscriber._offer(event)
        self.touch()
        return event

    def touch(self) -> None:
        """Wake waiters without publishing (for changes not worth an event)."""
        # Swap in a fresh Event so waiters that re-check and find nothing block on the next one.
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def subscribe(
        self, kinds: Iterable[str] | None = None, *, replay: bool = False
    ) -> Subscription:
        subscription = Subscription(self, frozenset(kinds) if kinds is not None else None)
        if replay:
            for event in self.history:
                subscription._offer(event)
        self._subscribers.add(subscription)
        return subscription

    def close(self) -> None:
        for subscriber in list(self._subscribers):
            subscriber.close()

    async def wait_for(self, check: Callable[[], T], timeout: float, what: str = "") -> T:
        """Return check()'s first truthy result; LookupError from check counts as not yet."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    try:
                        result = check()
                    except LookupError:
                        result = None
                    if result:
                        return result
                    # No await between the check and taking the event, so no change can slip by.
                    await self._changed.wait()
        except TimeoutError:
            raise TimeoutError(f"condition not met within {timeout}s {what}".rstrip()) from None
