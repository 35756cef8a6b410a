"""An ephemeral run's teardown goes through the guarded apply path: retried with the attempt and
error in the run's state, replanned when its plan is stale, failed (final state, message flushed)
when it cannot succeed.

Real dev server, fake activities under the real names (as tests/workflows/test_workflows.py).
"""

from __future__ import annotations

import pytest
from temporalio import activity
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError

from tests.workflows.test_workflows import FakeTerraform, request, running, start
from workflows.models import (
    ApplyInput,
    ApplyResult,
    NotifyInput,
    NotifyResult,
    RunState,
    RunStatus,
    SlackMessageRef,
)


class FailingTeardown(FakeTerraform):
    """The destroy apply fails `failures` times with `error` (stale or not, retryable or not);
    the notify activity records every state that reached "Slack"."""

    def __init__(self, failures: int, error: ApplicationError) -> None:
        super().__init__()
        self.failures = failures
        self.error = error
        self.notified: list[RunStatus] = []
        self.teardown_attempts: list[int] = []

    def destroy_plan(self, plan_id: str) -> bool:
        return any(p.plan_id == plan_id and p.destroy for p in self.plans)

    def activities(self) -> list:
        plan, policy, apply, *others = super().activities()

        @activity.defn(name="terraform_apply")
        async def failing_teardown(step: ApplyInput) -> ApplyResult:
            if self.destroy_plan(step.plan_id) and self.failures > 0:
                self.failures -= 1
                self.teardown_attempts.append(step.attempt)
                raise self.error
            return await apply(step)

        @activity.defn(name="notify_run_message")
        async def notify(input: NotifyInput) -> NotifyResult:
            self.notified.append(input.status)
            return NotifyResult()

        return [plan, policy, failing_teardown, notify, *others]


def ephemeral():
    return request(
        scenario="ephemeral",
        tf_directory="local_namespace",
        ttl_seconds=1,
        slack=SlackMessageRef(channel="C0INFRA", ts="1.000001"),
    )


async def test_a_teardown_apply_is_retried_visibly_then_destroys(client: Client) -> None:
    fake = FailingTeardown(2, ApplicationError("API outage", type="SimulatedApiFailure"))
    async with running(client, fake) as tq:
        handle = await start(client, tq, ephemeral())
        result = await handle.result()
    assert result.state == RunState.DESTROYED
    assert result.reason == "ephemeral: destroyed after its TTL"
    assert [p.destroy for p in fake.plans] == [False, True]
    # The retries were numbered and shown in the message while the teardown was retried.
    retrying = [s for s in fake.notified if s.state == RunState.DESTROYING and s.error]
    assert retrying and retrying[-1].error.startswith("retrying, attempt ")
    assert "API outage" in retrying[-1].error
    final = fake.notified[-1]
    assert final.state == RunState.DESTROYED and final.error is None
    assert fake.teardown_attempts == [1, 2]
    assert final.last_error and "API outage" in final.last_error


async def test_a_stale_teardown_plan_is_planned_again(client: Client) -> None:
    stale = ApplicationError("saved plan is stale", type="StalePlan", non_retryable=True)
    fake = FailingTeardown(1, stale)
    async with running(client, fake) as tq:
        handle = await start(client, tq, ephemeral())
        result = await handle.result()
    assert result.state == RunState.DESTROYED
    assert [p.destroy for p in fake.plans] == [False, True, True]
    # The second destroy plan is the one applied.
    assert fake.applies[-1].plan_id == fake.plans[-1].plan_id
    assert fake.notified[-1].state == RunState.DESTROYED


async def test_a_teardown_that_cannot_succeed_fails_the_run_and_says_so(client: Client) -> None:
    broken = ApplicationError("provider refused", type="TerraformConfigError", non_retryable=True)
    fake = FailingTeardown(1, broken)
    async with running(client, fake) as tq:
        handle = await start(client, tq, ephemeral())
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        status = await handle.query("get_state", result_type=RunStatus)
    assert status.state == RunState.FAILED
    assert status.error and "apply failed" in status.error and "provider refused" in status.error
    assert fake.teardown_attempts == [1]
    # The message was flushed before the run ended: Slack shows the failure, not "destroying".
    final = fake.notified[-1]
    assert final.state == RunState.FAILED and final.error == status.error
