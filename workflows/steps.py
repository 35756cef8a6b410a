"""The terraform steps of a run as activity calls: plan with its policy report, and apply."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from workflows.contracts import APPLY_ACTIVITY, EVALUATE_POLICY_ACTIVITY, PLAN_ACTIVITY
    from workflows.models import (
        ApplyInput,
        ApplyResult,
        DeprovisionRequest,
        Faults,
        PlanInput,
        PlanResult,
        PolicyInput,
        PolicyReport,
        ProvisionRequest,
        RunState,
        TerraformStepInput,
    )

PLAN_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=30,
    non_retryable_error_types=["TerraformConfigError", "UnknownWorkspace"],
)
APPLY_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=500),
    backoff_coefficient=1.5,
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=8,
    non_retryable_error_types=["StalePlan", "TerraformConfigError"],
)
POLICY_RETRY = RetryPolicy(maximum_attempts=3)
CLAIM_RETRY = RetryPolicy(
    maximum_interval=timedelta(seconds=10), non_retryable_error_types=["WorkspaceRefused"]
)


@dataclass(frozen=True)
class CheckedPlan:
    """A saved plan and the policy report over it: what a decision is about."""

    plan: PlanResult
    policy: PolicyReport


def step_input(
    request: ProvisionRequest | DeprovisionRequest, tf_directory: str | None
) -> TerraformStepInput:
    return TerraformStepInput(
        workspace=request.workspace,
        stack=request.stack,
        tf_directory=tf_directory,
        variables=request.variables,
        env_passthrough=request.env_passthrough,
        scenario=request.scenario,
        faults=request.faults if isinstance(request, ProvisionRequest) else Faults(),
        pace_seconds=request.pace_seconds,
    )


class TerraformSteps:
    """Runs the steps, moving the run's state through `set_state` as each begins."""

    def __init__(
        self,
        request: ProvisionRequest | DeprovisionRequest,
        set_state: Callable[[RunState], None],
        pace: Callable[[], Awaitable[None]],
    ) -> None:
        self._request = request
        self._set_state = set_state
        self._pace = pace
        self._plans = 0

    async def plan(self, tf_directory: str | None, *, destroy: bool) -> PlanResult:
        self._set_state(RunState.PLANNING)
        await self._pace()
        plan_id = f"{workflow.info().run_id}-{self._plans}"
        self._plans += 1
        step = step_input(self._request, tf_directory)
        return await workflow.execute_activity(
            PLAN_ACTIVITY,
            PlanInput(**dict(step), destroy=destroy, plan_id=plan_id),
            result_type=PlanResult,
            start_to_close_timeout=timedelta(minutes=15),
            heartbeat_timeout=None,
            retry_policy=PLAN_RETRY,
        )

    async def check(self, plan: PlanResult, *, destroy: bool = False) -> PolicyReport:
        self._set_state(RunState.CHECKING_POLICY)
        await self._pace()
        return await workflow.execute_local_activity(
            EVALUATE_POLICY_ACTIVITY,
            PolicyInput(plan_document=plan.plan_document, destroy=destroy),
            result_type=PolicyReport,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=POLICY_RETRY,
        )

    async def apply(self, plan: PlanResult, applying: RunState) -> ApplyResult:
        self._set_state(applying)
        await self._pace()
        step = step_input(self._request, plan.tf_directory)
        return await workflow.execute_activity(
            APPLY_ACTIVITY,
            ApplyInput(**dict(step), plan_path=plan.plan_path, plan_sha256=plan.plan_sha256),
            result_type=ApplyResult,
            start_to_close_timeout=timedelta(minutes=60),
            heartbeat_timeout=timedelta(seconds=30),
            retry_policy=APPLY_RETRY,
        )
