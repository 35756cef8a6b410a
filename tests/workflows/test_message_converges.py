"""The run message converges: a state that did not reach Slack is tried again (the newest one)
until it lands, and the run waits a grace period for its final state; an error no retry can fix
is not retried. With the real LocalSlack and worker: tests/e2e/test_converge.py.

Real dev server, fake activities under the real names (as tests/workflows/test_workflows.py).
"""

from __future__ import annotations

import asyncio

from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from tests.support.processes import wait_until
from tests.workflows.test_workflows import FakeTerraform, request, running, start, wait_state
from workflows.models import NotifyInput, NotifyResult, RunState, RunStatus, SlackMessageRef
from workflows.notifier import FIRST_ROUND, FLUSH_GRACE, LONGEST_ROUND, round_length


class FlakySlack(FakeTerraform):
    """The notify activity fails with `error` while `down`; `shown` is what Slack last showed."""

    def __init__(self, error: ApplicationError) -> None:
        super().__init__()
        self.down = True
        self.error = error
        self.shown: RunStatus | None = None
        self.calls: list[tuple[RunState, int]] = []

    def activities(self) -> list:
        @activity.defn(name="notify_run_message")
        async def notify(input: NotifyInput) -> NotifyResult:
            self.calls.append((input.status.state, activity.info().attempt))
            if self.down:
                raise self.error
            self.shown = input.status
            return NotifyResult()

        return [*super().activities(), notify]


def with_message(**overrides):
    return request(
        scenario="happy-path",
        tf_directory="local_namespace",
        slack=SlackMessageRef(channel="C0INFRA", ts="1.000001"),
        **overrides,
    )


async def test_the_final_state_reaches_slack_after_an_outage(client: Client) -> None:
    outage = ApplicationError("Slack chat.update failed: http 503", type="SlackApiError")
    fake = FlakySlack(outage)
    async with running(client, fake) as tq:
        handle = await start(client, tq, with_message())
        # Slack is down across the whole run: the run is done, its message is not yet.
        await wait_state(handle, RunState.APPLIED)

        async def retried() -> bool:
            # Beyond the five attempts a notification once had before it was dropped.
            return [state for state, _ in fake.calls].count(RunState.APPLIED) > 5

        await wait_until(retried, timeout=90, what="the final state retried")
        assert fake.shown is None
        fake.down = False
        # Within the grace period, and only the newest state: no stale state lands after it.
        result = await asyncio.wait_for(handle.result(), timeout=60)
    assert result.state == RunState.APPLIED
    assert fake.shown is not None and fake.shown.state == RunState.APPLIED
    assert fake.calls[-1][0] == RunState.APPLIED


async def test_an_error_no_retry_can_fix_is_not_retried(client: Client) -> None:
    gone = ApplicationError(
        "Slack chat.update failed: channel_not_found", type="SlackApiError", non_retryable=True
    )
    fake = FlakySlack(gone)
    async with running(client, fake) as tq:
        handle = await start(client, tq, with_message())
        # Far sooner than the grace period: the run does not wait for a message that cannot land.
        result = await asyncio.wait_for(handle.result(), timeout=FLUSH_GRACE.total_seconds() / 10)
    assert result.state == RunState.APPLIED
    assert fake.shown is None
    # One attempt per state tried, no state tried twice in a row.
    assert {attempt for _, attempt in fake.calls} == {1}
    states = [state for state, _ in fake.calls]
    assert all(a != b for a, b in zip(states, states[1:], strict=False))


def test_rounds_grow_to_a_cap() -> None:
    assert round_length(0) == FIRST_ROUND
    assert round_length(1) == 2 * FIRST_ROUND
    assert round_length(10_000) == LONGEST_ROUND
    # A final state set during the longest round is still tried for a whole round in the grace.
    assert 2 * LONGEST_ROUND <= FLUSH_GRACE
