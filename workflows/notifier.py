"""Keeps a run's Slack message current: one notification at a time, the newest state wins, and a
state that did not reach Slack is tried again until it lands (see RunNotifier)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError

with workflow.unsafe.imports_passed_through():
    from workflows import metrics
    from workflows.contracts import NOTIFY_ACTIVITY
    from workflows.models import NotifyInput, NotifyResult, RunStatus, SlackMessageRef

# Runs started before CONVERGE_PATCH: five attempts per state change, then the state is dropped
# and only a later state change catches up; the end of the run waits FLUSH_TIMEOUT for Slack.
NOTIFY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=5,
)
FLUSH_TIMEOUT = timedelta(minutes=2)

# The message converges: a state that failed to reach Slack is retried until it lands, for as
# long as the run lives and FLUSH_GRACE after its final state.
CONVERGE_PATCH = "notify-converges"
# One round of notification is one activity call that the server retries every ≤ 10 s until the
# round's deadline; the next round sends the newest state. Retries inside a round add nothing to
# the history, so rounds double in length after each failed one (10 s, 20 s, … 5 min): a new
# state goes out soon in a short outage, and a day-long one costs about six events per 5 min.
NOTIFY_ROUND_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=0,
)
FIRST_ROUND = timedelta(seconds=10)
LONGEST_ROUND = timedelta(minutes=5)
# How long a run that has reached its final state waits for that state to reach Slack.
FLUSH_GRACE = timedelta(minutes=10)
# Before continuing as new: the next run takes over the message, so the handover waits less.
HANDOVER_TIMEOUT = FLUSH_TIMEOUT


def round_length(failed_rounds: int) -> timedelta:
    """How long the next round retries, after `failed_rounds` rounds in a row did not land."""
    # The exponent is capped first, so a week-long outage never overflows a timedelta.
    return min(FIRST_ROUND * 2 ** min(failed_rounds, 16), LONGEST_ROUND)


class RunNotifier:
    """`changed()` after every state change; `flush()` before the run ends or continues."""

    def __init__(self, status: Callable[[], RunStatus], enabled: bool) -> None:
        self._status = status
        self._enabled = enabled
        self._version = 0
        self._notified = 0
        self._task: asyncio.Task | None = None
        self._converges = False
        self._failed_rounds = 0
        # The run message posted again by notify after the first one was gone (None: the first).
        self.moved_to: SlackMessageRef | None = None

    def changed(self) -> None:
        self._version += 1

    def start(self) -> None:
        if self._enabled and self._task is None:
            self._converges = workflow.patched(CONVERGE_PATCH)
            self._task = asyncio.create_task(self._loop())

    async def flush(self, *, final: bool = True) -> None:
        """Wait (bounded) until Slack shows the newest state; `final=False` before continuing
        as new, when the next run keeps the message current."""
        if self._task is None:
            return
        timeout = FLUSH_TIMEOUT
        if self._converges:
            timeout = FLUSH_GRACE if final else HANDOVER_TIMEOUT
        try:
            await workflow.wait_condition(lambda: self._notified >= self._version, timeout=timeout)
        except TimeoutError:
            # Slack is away; the run's outcome does not wait for its message.
            workflow.logger.warning("run message not current after %s; going on", timeout)

    async def _loop(self) -> None:
        while True:
            await workflow.wait_condition(lambda: self._version > self._notified)
            version = self._version
            if await self._notify() or not self._converges:
                self._notified = version
                self._failed_rounds = 0
            else:
                # The state did not land: the next, longer round sends the newest one.
                self._failed_rounds += 1

    async def _notify(self) -> bool:
        """One round: True when the state landed or no retry can make it land."""
        status = self._status()
        if self.moved_to is not None:
            status = status.model_copy(update={"slack": self.moved_to})
        if self._converges:
            options: dict = dict(
                retry_policy=NOTIFY_ROUND_RETRY,
                schedule_to_close_timeout=round_length(self._failed_rounds),
            )
        else:
            options = dict(retry_policy=NOTIFY_RETRY)
        try:
            # Optional: histories recorded before notify returned a result hold null here.
            result = await workflow.execute_activity(
                NOTIFY_ACTIVITY,
                NotifyInput(status=status),
                start_to_close_timeout=timedelta(seconds=30),
                result_type=NotifyResult | None,
                **options,
            )
        except ActivityError as exc:
            # A Slack outage never fails a run.
            cause = exc.cause
            given_up = isinstance(cause, CancelledError) or (
                isinstance(cause, ApplicationError) and cause.non_retryable
            )
            workflow.logger.warning(
                "notification failed (%s): %s",
                "not retryable" if given_up else "retrying the newest state",
                cause or exc,
            )
            error = cause.type if isinstance(cause, ApplicationError) else None
            metrics.count(
                metrics.NOTIFICATION_FAILURES,
                error_type=error or type(cause or exc).__name__,
            )
            return given_up
        if result is not None and result.reposted is not None:
            self.moved_to = result.reposted
        return True
