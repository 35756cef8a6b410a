"""A durable timer whose deadline can move while it waits (samples-python's updatable timer)."""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow


class TtlTimer:
    """Waits until `deadline`; `extend` moves it, `cancel` ends the wait early."""

    def __init__(self, deadline: datetime) -> None:
        self.deadline = deadline
        self.cancelled = False

    def extend(self, seconds: int, *, latest: datetime) -> None:
        # Bounded by the caller's latest deadline, so no sequence of extensions overflows.
        self.deadline = min(self.deadline + timedelta(seconds=seconds), latest)

    def cancel(self) -> None:
        self.cancelled = True

    async def wait(self) -> None:
        while not self.cancelled:
            remaining = (self.deadline - workflow.now()).total_seconds()
            if remaining <= 0:
                return
            deadline = self.deadline
            try:
                await workflow.wait_condition(
                    lambda deadline=deadline: self.cancelled or self.deadline != deadline,
                    timeout=timedelta(seconds=remaining),
                )
            except TimeoutError:
                return
