"""The workflow retries plan and apply itself, so every attempt and its error show in the run's
state; retryable errors go on at a capped interval until the approval timeout, not 30 attempts.

Real dev server, fake activities under the real names (as tests/workflows/test_workflows.py).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from temporalio import activity
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError

from tests.workflows.test_workflows import FakeTerraform, request, running, start
from workflows.models import (
    ApplyInput,
    ApplyResult,
    PlanInput,
    PlanResult,
    PlanSummary,
    RunState,
    RunStatus,
)
from workflows.steps import APPLY_RETRY, PLAN_RETRY

CLEAR_HINT = "clear it with `provision fault clear recoverable-failure`"


class FaultyPlans(FakeTerraform):
    """Plans fail (retryable) while `switch_on`, as the recoverable-failure scenario's do."""

    def __init__(self) -> None:
        super().__init__()
        self.switch_on = True
        self.plan_attempts: list[int] = []

    def activities(self) -> list:
        plan, policy, apply, *others = super().activities()

        @activity.defn(name="terraform_plan")
        async def faulty_plan(step: PlanInput) -> PlanResult:
            self.plan_attempts.append(step.attempt)
            if self.switch_on:
                raise ApplicationError(
                    f"simulated bug: the fault switch is on; {CLEAR_HINT} and the next retry "
                    "succeeds",
                    type="InjectedFault",
                )
            return await plan(step)

        return [faulty_plan, policy, apply, *others]


async def state(handle) -> RunStatus:
    return await handle.query("get_state", result_type=RunStatus)


async def wait_for(predicate, handle, timeout: float = 30.0) -> RunStatus:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last = None
    while loop.time() < deadline:
        try:
            last = await state(handle)
        except Exception:  # noqa: BLE001 - the first workflow task may not have run yet
            last = None
        if last is not None and predicate(last):
            return last
        await asyncio.sleep(0.05)
    raise AssertionError(f"condition not met; last state: {last}")


def test_retry_interval_is_capped() -> None:
    assert PLAN_RETRY.delay(1) == timedelta(seconds=1)
    assert PLAN_RETRY.delay(2) == timedelta(seconds=2)
    assert PLAN_RETRY.delay(50) == timedelta(seconds=10)
    assert APPLY_RETRY.delay(100) == timedelta(seconds=10)


async def test_plan_retries_show_attempt_and_error_then_clear(client: Client) -> None:
    fake = FaultyPlans()
    async with running(client, fake) as tq:
        handle = await start(client, tq, request(scenario="happy-path"))
        retrying = await wait_for(lambda s: s.attempt >= 3, handle)
        assert retrying.state == RunState.PLANNING
        assert retrying.last_error and CLEAR_HINT in retrying.last_error
        assert retrying.error and retrying.error.startswith(f"retrying, attempt {retrying.attempt}")
        assert CLEAR_HINT in retrying.error
        # `provision status` and `--wait` print the reason.
        assert retrying.reason == retrying.error
        fake.switch_on = False
        result = await handle.result()
        final = await state(handle)
    assert result.state == RunState.APPLIED
    assert final.error is None, "a recovered run shows no error"
    assert "retrying" not in final.reason
    assert final.last_error and CLEAR_HINT in final.last_error
    assert fake.plan_attempts[:3] == [1, 2, 3]
    assert fake.plan_attempts == list(range(1, len(fake.plan_attempts) + 1))


async def test_retryable_errors_stop_at_the_approval_timeout(client: Client) -> None:
    fake = FaultyPlans()
    async with running(client, fake) as tq:
        # Attempts start at 0, 1, 3 and 7 s; the next would start at 15 s, after the deadline.
        handle = await start(client, tq, request(scenario="happy-path", approval_timeout_seconds=8))
        with pytest.raises(WorkflowFailureError):
            await asyncio.wait_for(handle.result(), 60)
        final = await state(handle)
    assert final.state == RunState.FAILED
    assert fake.plan_attempts == [1, 2, 3, 4]
    assert final.error and "planning failed" in final.error and CLEAR_HINT in final.error


class InterruptedApply(FakeTerraform):
    """The first apply changed the state and its outcome is unknown; the replan finds the change
    complete (no changes)."""

    def activities(self) -> list:
        plan, policy, apply, *others = super().activities()

        @activity.defn(name="terraform_plan")
        async def replan_finds_nothing(step: PlanInput) -> PlanResult:
            result = await plan(step)
            if len(self.plans) > 1:
                result.summary = PlanSummary()
            return result

        @activity.defn(name="terraform_apply")
        async def interrupted(step: ApplyInput) -> ApplyResult:
            self.applies.append(step)
            raise ApplicationError("outcome unknown", type="PartlyApplied", non_retryable=True)

        return [replan_finds_nothing, policy, interrupted, *others]


async def test_a_run_whose_apply_changed_the_state_is_never_no_changes(client: Client) -> None:
    fake = InterruptedApply()
    async with running(client, fake) as tq:
        handle = await start(client, tq, request(scenario="happy-path"))
        result = await handle.result()
    assert len(fake.plans) == 2 and len(fake.applies) == 1
    assert result.state == RunState.APPLIED, result
    assert "interrupted apply" in result.reason
