"""The terraform steps of a run as activity calls: plan with its policy report, and apply.

Plan and apply heartbeat every few seconds, so a dead worker's attempt times out within
HEARTBEAT_TIMEOUT. The workflow itself retries them (each activity call is one attempt), so the
run's state always says which attempt is running and why the last one failed; retryable errors
are retried at a capped interval until the run's approval timeout.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError
from temporalio.exceptions import TimeoutError as ActivityTimeout

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

HEARTBEAT_TIMEOUT = timedelta(seconds=10)


@dataclass(frozen=True)
class StepRetry:
    """How the workflow retries a terraform step: exponential, capped, until a deadline."""

    initial: timedelta
    backoff: float
    maximum: timedelta
    non_retryable: tuple[str, ...]

    def delay(self, failed_attempt: int) -> timedelta:
        seconds = self.initial.total_seconds()
        # Multiplied step by step, so a run retrying for a day never overflows a timedelta.
        for _ in range(failed_attempt - 1):
            seconds *= self.backoff
            if seconds >= self.maximum.total_seconds():
                return self.maximum
        return min(timedelta(seconds=seconds), self.maximum)

    def retryable(self, exc: ActivityError) -> bool:
        cause = exc.cause
        if isinstance(cause, ApplicationError):
            return not cause.non_retryable and cause.type not in self.non_retryable
        return not isinstance(cause, CancelledError)


PLAN_RETRY = StepRetry(
    initial=timedelta(seconds=1),
    backoff=2.0,
    maximum=timedelta(seconds=10),
    non_retryable=("TerraformConfigError", "UnknownWorkspace"),
)
APPLY_RETRY = StepRetry(
    initial=timedelta(milliseconds=500),
    backoff=1.5,
    maximum=timedelta(seconds=10),
    non_retryable=("StalePlan", "TerraformConfigError"),
)
# One attempt per activity call: the workflow makes the retries (see StepRetry).
ONE_ATTEMPT = RetryPolicy(maximum_attempts=1)
POLICY_RETRY = RetryPolicy(maximum_attempts=3)
CLAIM_RETRY = RetryPolicy(
    maximum_interval=timedelta(seconds=10), non_retryable_error_types=["WorkspaceRefused"]
)


T = TypeVar("T")


def describe_failure(exc: ActivityError) -> str:
    cause = exc.cause
    if isinstance(cause, ActivityTimeout):
        return f"the attempt timed out ({cause.type.name.lower()}): its worker was lost or stuck"
    return str(cause or exc)


@dataclass(frozen=True)
class Attempt:
    """Which attempt of the current step runs, and why the previous one failed."""

    number: int
    last_error: str | None


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
        on_attempt: Callable[[Attempt], None] = lambda attempt: None,
    ) -> None:
        self._request = request
        self._set_state = set_state
        self._pace = pace
        self._on_attempt = on_attempt
        self._plans = 0

    async def _attempts(self, retry: StepRetry, call: Callable[[int], Awaitable[T]]) -> T:
        """Call until it succeeds, a non-retryable error, or the approval timeout has passed."""
        deadline = workflow.now() + timedelta(seconds=self._request.approval_timeout_seconds)
        attempt = 1
        while True:
            try:
                return await call(attempt)
            except ActivityError as exc:
                delay = retry.delay(attempt)
                if not retry.retryable(exc) or workflow.now() + delay > deadline:
                    raise
                attempt += 1
                error = describe_failure(exc)
                workflow.logger.warning("retrying, attempt %s: %s", attempt, error)
                self._on_attempt(Attempt(attempt, error))
                await workflow.sleep(delay)

    async def plan(self, tf_directory: str | None, *, destroy: bool) -> PlanResult:
        self._set_state(RunState.PLANNING)
        await self._pace()
        plan_id = f"{workflow.info().run_id}-{self._plans}"
        self._plans += 1
        step = step_input(self._request, tf_directory)

        def attempt(number: int) -> Awaitable[PlanResult]:
            return workflow.execute_activity(
                PLAN_ACTIVITY,
                PlanInput(**(dict(step) | {"attempt": number}), destroy=destroy, plan_id=plan_id),
                result_type=PlanResult,
                start_to_close_timeout=timedelta(minutes=15),
                heartbeat_timeout=HEARTBEAT_TIMEOUT,
                retry_policy=ONE_ATTEMPT,
            )

        return await self._attempts(PLAN_RETRY, attempt)

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

        def attempt(number: int) -> Awaitable[ApplyResult]:
            return workflow.execute_activity(
                APPLY_ACTIVITY,
                ApplyInput(
                    **(dict(step) | {"attempt": number}),
                    plan_path=plan.plan_path,
                    plan_sha256=plan.plan_sha256,
                    plan_id=plan.plan_id,
                ),
                result_type=ApplyResult,
                start_to_close_timeout=timedelta(minutes=60),
                heartbeat_timeout=HEARTBEAT_TIMEOUT,
                retry_policy=ONE_ATTEMPT,
            )

        return await self._attempts(APPLY_RETRY, attempt)
