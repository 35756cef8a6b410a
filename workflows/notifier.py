"""Keeps a run's Slack message current: one notification at a time, the newest state wins."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows import metrics
    from workflows.contracts import NOTIFY_ACTIVITY
    from workflows.models import NotifyInput, NotifyResult, RunStatus, SlackMessageRef

NOTIFY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=5,
)
FLUSH_TIMEOUT = timedelta(minutes=2)


class RunNotifier:
    """`changed()` after every state change; `flush()` before the run ends or continues."""

    def __init__(self, status: Callable[[], RunStatus], enabled: bool) -> None:
        self._status = status
        self._enabled = enabled
        self._version = 0
        self._notified = 0
        self._task: asyncio.Task | None = None
        # The run message posted again by notify after the first one was gone (None: the first).
        self.moved_to: SlackMessageRef | None = None

    def changed(self) -> None:
        self._version += 1

    def start(self) -> None:
        if self._enabled and self._task is None:
            self._task = asyncio.create_task(self._loop())

    async def flush(self) -> None:
        if self._task is None:
            return
        try:
            await workflow.wait_condition(
                lambda: self._notified >= self._version, timeout=FLUSH_TIMEOUT
            )
        except TimeoutError:
            # Slack is away; the run's outcome does not wait for its message.
            workflow.logger.warning("run message not current after %s; going on", FLUSH_TIMEOUT)

    async def _loop(self) -> None:
        while True:
            await workflow.wait_condition(lambda: self._version > self._notified)
            version = self._version
            status = self._status()
            if self.moved_to is not None:
                status = status.model_copy(update={"slack": self.moved_to})
            try:
                # Optional: histories recorded before notify returned a result hold null here.
                result = await workflow.execute_activity(
                    NOTIFY_ACTIVITY,
                    NotifyInput(status=status),
                    start_to_close_timeout=timedelta(seconds=30),
                    retry_policy=NOTIFY_RETRY,
                    result_type=NotifyResult | None,
                )
                if result is not None and result.reposted is not None:
                    self.moved_to = result.reposted
            except ActivityError as exc:
                # A Slack outage never fails a run: a later state change catches up.
                workflow.logger.warning("notification failed: %s", exc.cause or exc)
                cause = exc.cause
                error = cause.type if isinstance(cause, ApplicationError) else None
                metrics.count(
                    metrics.NOTIFICATION_FAILURES,
                    error_type=error or type(cause or exc).__name__,
                )
            self._notified = version
