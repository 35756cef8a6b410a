"""Socket Mode server side: WebSocket connections, envelopes, acks, redelivery, disconnects."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from .errors import AckTimeout
from .events import EventBus

log = logging.getLogger(__name__)

# Seconds Slack says a connection lives before it asks for a refresh; sent in hello's debug_info.
_APPROXIMATE_CONNECTION_TIME = 18060


@dataclass
class Envelope:
    id: str
    type: str
    payload: dict[str, Any]
    accepts_response_payload: bool
    created_at: float = field(default_factory=time.monotonic)
    retry_attempt: int = 0
    retry_reason: str = ""
    # (connection id, monotonic time) per delivery attempt
    deliveries: list[tuple[int, float]] = field(default_factory=list)
    acked_at: float | None = None
    ack_payload: dict[str, Any] | None = None
    duplicate_acks: int = 0
    abandoned: bool = False
    ack: asyncio.Future[dict[str, Any] | None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    @property
    def done(self) -> bool:
        return self.ack.done() or self.abandoned

    @property
    def latency(self) -> float | None:
        """Seconds from the user's action to the ack, including any wait for a connection."""
        return None if self.acked_at is None else self.acked_at - self.created_at

    def to_wire(self) -> dict[str, Any]:
        return {
            "envelope_id": self.id,
            "type": self.type,
            "payload": self.payload,
            "accepts_response_payload": self.accepts_response_payload,
            "retry_attempt": self.retry_attempt,
            "retry_reason": self.retry_reason,
        }

    def summary(self) -> dict[str, Any]:
        return {
            "envelope_id": self.id,
            "type": self.type,
            "retry_attempt": self.retry_attempt,
            "deliveries": len(self.deliveries),
            "latency": self.latency,
        }


@dataclass
class Connection:
    id: int
    ws: web.WebSocketResponse
    opened_at: float = field(default_factory=time.monotonic)
    closed_at: float | None = None
    # Told to reconnect: gets no new envelopes, but its acks still count.
    draining: bool = False
    inflight: set[str] = field(default_factory=set)
    send_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def is_open(self) -> bool:
        return self.closed_at is None and not self.ws.closed


class SocketModeHub:
    """Delivers envelopes to the app over whichever connection is live and collects acks.

    Slack itself drops slash commands and interactions when no connection is open. Here an
    envelope waits for the next connection instead, and one whose connection dies before the
    ack is redelivered (retry_attempt + 1, retry_reason "connection_failed") after
    `redelivery_delay`, unless the ack arrives over another connection first. That makes
    "reconnect without losing a command" testable while keeping duplicates visible to the app.
    """

    def __init__(
        self,
        *,
        bus: EventBus,
        app_id: str,
        redelivery_delay: float = 1.0,
        disconnect_grace: float = 10.0,
        heartbeat: float | None = None,
    ) -> None:
        self._bus = bus
        self._app_id = app_id
        self.redelivery_delay = redelivery_delay
        self.disconnect_grace = disconnect_grace
        self._heartbeat = heartbeat
        self._tickets: set[str] = set()
        self._connections: dict[int, Connection] = {}
        self._next_connection_id = 1
        self._pending: list[Envelope] = []
        self.envelopes: dict[str, Envelope] = {}
        self.unknown_acks: list[dict[str, Any]] = []
        self.connections_opened = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closing = False

    # -- connections --------------------------------------------------------------------------

    def issue_url(self, ws_base: str) -> str:
        ticket = secrets.token_urlsafe(16)
        self._tickets.add(ticket)
        return f"{ws_base}socket?ticket={ticket}&app_id={self._app_id}"

    @property
    def open_connections(self) -> list[Connection]:
        return [c for c in self._connections.values() if c.is_open]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        if self._closing or ticket not in self._tickets:
            # Slack refuses a reused or made-up ticket before the upgrade.
            raise web.HTTPUnauthorized(text="invalid ticket")
        self._tickets.discard(ticket)
        # autoping answers the SDK's "sdk-ping-pong:<time>" pings with a pong carrying the same
        # bytes, which is how SocketModeClient decides the connection is alive.
        ws = web.WebSocketResponse(autoping=True, heartbeat=self._heartbeat)
        await ws.prepare(request)
        connection = Connection(self._next_connection_id, ws)
        self._next_connection_id += 1
        self._connections[connection.id] = connection
        self.connections_opened += 1
        try:
            await self._send(connection, self._hello())
            self._bus.emit(
                "connection.opened", connection=connection.id, open=len(self.open_connections)
            )
            self._flush_pending()
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    self._on_text(connection, message.data)
                elif message.type == WSMsgType.ERROR:
                    log.warning(
                        "socket mode connection %s error: %s", connection.id, ws.exception()
                    )
        finally:
            self._on_closed(connection)
        return ws

    def _hello(self) -> dict[str, Any]:
        return {
            "type": "hello",
            "num_connections": len(self.open_connections),
            "debug_info": {
                "host": "localslack",
                "build_number": 1,
                "approximate_connection_time": _APPROXIMATE_CONNECTION_TIME,
            },
            "connection_info": {"app_id": self._app_id},
        }

    async def _send(self, connection: Connection, body: dict[str, Any]) -> None:
        async with connection.send_lock:
            await connection.ws.send_str(json.dumps(body))

    def _on_closed(self, connection: Connection) -> None:
        if connection.closed_at is not None:
            return
        connection.closed_at = time.monotonic()
        self._bus.emit(
            "connection.closed", connection=connection.id, open=len(self.open_connections)
        )
        for envelope_id in connection.inflight:
            envelope = self.envelopes[envelope_id]
            if not envelope.done:
                self._spawn(self._redeliver_later(envelope, connection.id))
        connection.inflight.clear()

    async def disconnect_all(self, reason: str = "refresh_requested") -> int:
        """Ask every connection to reconnect, as Slack does before recycling a host."""
        targets = [c for c in self.open_connections if not c.draining]
        for connection in targets:
            connection.draining = True
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self._send(
                    connection,
                    {
                        "type": "disconnect",
                        "reason": reason,
                        "debug_info": {"host": "localslack"},
                    },
                )
            self._spawn(self._close_after(connection, self.disconnect_grace))
        self._bus.touch()
        return len(targets)

    async def drop_all(self) -> int:
        """Close every connection without warning, like a network failure would."""
        targets = self.open_connections
        for connection in targets:
            connection.draining = True
            await connection.ws.close(code=WSCloseCode.GOING_AWAY, message=b"dropped")
            self._on_closed(connection)
        return len(targets)

    async def _close_after(self, connection: Connection, delay: float) -> None:
        await asyncio.sleep(delay)
        if connection.is_open:
            await connection.ws.close(code=WSCloseCode.GOING_AWAY, message=b"refresh")

    # -- envelopes ----------------------------------------------------------------------------

    def send(
        self, envelope_type: str, payload: dict[str, Any], *, accepts_response_payload: bool
    ) -> Envelope:
        envelope = Envelope(str(uuid.uuid4()), envelope_type, payload, accepts_response_payload)
        self.envelopes[envelope.id] = envelope
        self._dispatch(envelope)
        return envelope

    async def wait_ack(self, envelope: Envelope, timeout: float) -> dict[str, Any] | None:
        try:
            async with asyncio.timeout(timeout):
                return await asyncio.shield(envelope.ack)
        except TimeoutError:
            envelope.abandoned = True
            if envelope in self._pending:
                self._pending.remove(envelope)
            self._bus.emit("envelope.timed_out", **envelope.summary())
            raise AckTimeout(envelope.id, envelope.type, timeout) from None

    def _pick_connection(self) -> Connection | None:
        live = [c for c in self.open_connections if not c.draining]
        return max(live, key=lambda c: c.opened_at, default=None)

    def _dispatch(self, envelope: Envelope) -> None:
        connection = self._pick_connection()
        if connection is None:
            self._pending.append(envelope)
            return
        connection.inflight.add(envelope.id)
        envelope.deliveries.append((connection.id, time.monotonic()))
        self._spawn(self._write(connection, envelope))

    async def _write(self, connection: Connection, envelope: Envelope) -> None:
        try:
            await self._send(connection, envelope.to_wire())
        except (ConnectionError, RuntimeError) as exc:
            # The socket died under us; its close handler (or this) puts the envelope back.
            log.info(
                "envelope %s not written to connection %s: %s", envelope.id, connection.id, exc
            )
            connection.draining = True
            if envelope.id in connection.inflight and not envelope.done:
                connection.inflight.discard(envelope.id)
                envelope.deliveries.pop()
                self._dispatch(envelope)
            return
        self._bus.emit("envelope.sent", connection=connection.id, **envelope.summary())

    def _flush_pending(self) -> None:
        pending, self._pending = self._pending, []
        for envelope in pending:
            if not envelope.done:
                self._dispatch(envelope)

    async def _redeliver_later(self, envelope: Envelope, connection_id: int) -> None:
        if self.redelivery_delay:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.redelivery_delay):
                    await asyncio.shield(envelope.ack)
        if envelope.done:
            return
        log.info("redelivering envelope %s lost with connection %s", envelope.id, connection_id)
        envelope.retry_attempt += 1
        envelope.retry_reason = "connection_failed"
        self._dispatch(envelope)

    def _on_text(self, connection: Connection, data: str) -> None:
        try:
            body = json.loads(data)
        except json.JSONDecodeError:
            log.warning("connection %s sent non-JSON text: %r", connection.id, data[:200])
            return
        envelope_id = body.get("envelope_id") if isinstance(body, dict) else None
        envelope = self.envelopes.get(envelope_id or "")
        if envelope is None:
            log.warning("ack for unknown envelope %r", envelope_id)
            self.unknown_acks.append(body)
            return
        for other in self._connections.values():
            other.inflight.discard(envelope.id)
        if envelope.ack.done():
            envelope.duplicate_acks += 1
            self._bus.touch()
            return
        if envelope.abandoned:
            log.info(
                "late ack for envelope %s ignored (the user already saw a timeout)", envelope.id
            )
            return
        payload = body.get("payload")
        envelope.acked_at = time.monotonic()
        envelope.ack_payload = payload if isinstance(payload, dict) else None
        envelope.ack.set_result(envelope.ack_payload)
        self._bus.emit("envelope.acked", connection=connection.id, **envelope.summary())

    # -- lifecycle ----------------------------------------------------------------------------

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        self._closing = True
        for task in list(self._tasks):
            task.cancel()
        for connection in self.open_connections:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await connection.ws.close(code=WSCloseCode.GOING_AWAY, message=b"server stop")
        for envelope in self.envelopes.values():
            if not envelope.ack.done():
                envelope.ack.cancel()
