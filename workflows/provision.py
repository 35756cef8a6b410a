"""ProvisionInfraWorkflow and DeprovisionInfraWorkflow: plan → policy → decision → apply.

Deterministic code only: terraform, policy evaluation and Slack live in activities.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import NoReturn

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows import metrics
    from workflows.models import (
        APPLY_ACTIVITY,
        EVALUATE_POLICY_ACTIVITY,
        NOTIFY_ACTIVITY,
        OPERATOR,
        PLAN_ACTIVITY,
        ApplyDecision,
        ApplyInput,
        ApplyResult,
        DecisionOutcome,
        DecisionRecord,
        DeprovisionRequest,
        ExtendTtl,
        Faults,
        NotifyInput,
        PlanInput,
        PlanResult,
        PolicyInput,
        PolicyReport,
        ProvisionRequest,
        ProvisionResult,
        RunState,
        RunStatus,
        no_decision_awaited,
    )
    from workflows.search_attributes import PROVISION_STATUS, SCENARIO, TF_DIRECTORY


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
NOTIFY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=5,
)
# Stale plans are replanned automatically, but not forever.
MAX_AUTOMATIC_REPLANS = 3


class _Replan(Exception):
    """Raised inside the run to start over with a fresh plan."""


def _count(name: str, **attributes: str) -> None:
    # The workflow's meter drops values during replay, so each run counts once; it adds no
    # command to history, so recorded histories replay unchanged.
    workflow.metric_meter().create_counter(name, metrics.DESCRIPTIONS[name]).add(1, attributes)


class _TerraformRun:
    """State, handlers and steps shared by both workflow types."""

    workflow_type = ""

    def _setup(self, request: ProvisionRequest | DeprovisionRequest) -> None:
        self._request = request
        self._state = RunState.PENDING
        self._plan: PlanResult | None = None
        self._policy: PolicyReport | None = None
        self._decisions: list[DecisionRecord] = []
        self._awaiting = False
        self._replan_requested = False
        self._reason = ""
        self._error: str | None = None
        self._outputs: dict = {}
        self._expires_at = None
        self._ttl_deadline = None
        self._destroy_now = False
        self._tf_directory = request.tf_directory
        self._notify_version = 0
        self._notified_version = 0
        self._notifier: asyncio.Task | None = None
        self._plan_ids: list[str] = []

    # Queries: the original demo's four, plus the whole structured state. ------------------

    @workflow.query(name="get_current_status")
    def get_current_status(self) -> str:
        return self._state.value

    @workflow.query(name="get_progress")
    def get_progress(self) -> int:
        return self._state.progress

    @workflow.query(name="get_plan")
    def get_plan(self) -> str:
        return self._plan.plan_text if self._plan else ""

    @workflow.query(name="get_reason")
    def get_reason(self) -> str:
        return self._reason

    @workflow.query(name="get_state")
    def get_state(self) -> RunStatus:
        return self._status()

    # Decisions ---------------------------------------------------------------------------

    def _approvals(self) -> list[DecisionRecord]:
        return [d for d in self._decisions if d.is_approved]

    def _decision_error(self, decision: ApplyDecision) -> str | None:
        """Why this decision cannot be taken now, or None. Shared by validator and signal."""
        actor = decision.actor()
        if not self._awaiting:
            return no_decision_awaited(self._decisions, self._state)
        if any(d.actor.id == actor.id and d.actor.kind == actor.kind for d in self._decisions):
            return f"{actor.display} has already decided on this plan"
        requester = self._request.requester
        if (
            decision.is_approved
            and actor.kind == "slack"
            and requester.kind == "slack"
            and actor.id == requester.id
            and not self._request.allow_self_approval
        ):
            return "four eyes: the requester cannot approve their own change"
        return None

    def _record(self, decision: ApplyDecision, via: str) -> DecisionOutcome:
        reason = decision.reason.strip() or ("" if decision.is_approved else "no reason given")
        self._decisions.append(
            DecisionRecord(
                is_approved=decision.is_approved,
                reason=reason,
                actor=decision.actor(),
                at=workflow.now(),
                via=via,
            )
        )
        approvals = len(self._approvals())
        required = self._request.required_approvals
        if not decision.is_approved:
            message = f"denied by {decision.actor().display}"
        elif approvals >= required:
            message = f"approved by {decision.actor().display}"
        else:
            message = f"approval {approvals} of {required} recorded"
        self._reason = reason
        self._bump()
        return DecisionOutcome(
            accepted=True,
            state=self._state,
            approvals=approvals,
            required_approvals=required,
            message=message,
        )

    @workflow.update(name="update_apply_decision")
    def update_apply_decision(self, decision: ApplyDecision) -> DecisionOutcome:
        return self._record(decision, "update")

    @update_apply_decision.validator
    def validate_apply_decision(self, decision: ApplyDecision) -> None:
        if decision.is_approved and not decision.reason.strip():
            raise ValueError("a reason is required to approve")
        if len(decision.reason) > 2000:
            raise ValueError("the reason is longer than 2000 characters")
        problem = self._decision_error(decision)
        if problem:
            raise ValueError(problem)

    @workflow.signal(name="signal_apply_decision")
    def signal_apply_decision(self, decision: ApplyDecision) -> None:
        # Signals cannot be refused, so an invalid one is logged and dropped.
        problem = self._decision_error(decision)
        if problem:
            workflow.logger.warning("ignored signal_apply_decision: %s", problem)
            return
        self._record(decision, "signal")

    @workflow.signal(name="request_continue_as_new")
    def request_continue_as_new(self) -> None:
        if self._state in (RunState.APPLYING, RunState.DESTROYING) or self._state.is_final:
            workflow.logger.warning("replan ignored: the run is %s", self._state.value)
            return
        self._replan_requested = True

    # Shared steps ------------------------------------------------------------------------

    def _status(self) -> RunStatus:
        info = workflow.info()
        return RunStatus(
            workflow_type=self.workflow_type,
            workflow_id=info.workflow_id,
            run_id=info.run_id,
            scenario=self._request.scenario,
            workspace=self._request.workspace,
            tf_directory=self._tf_directory,
            state=self._state,
            progress=self._state.progress,
            requester=self._request.requester,
            approval_channel=self._request.approval_channel,
            required_approvals=self._request.required_approvals,
            plan_summary=self._plan.summary if self._plan else None,
            plan_text=self._plan.plan_text if self._plan else "",
            policy=self._policy,
            decisions=list(self._decisions),
            outputs=dict(self._outputs),
            reason=self._reason,
            error=self._error,
            expires_at=self._expires_at,
            ttl_deadline=self._ttl_deadline,
            replan_count=self._request.replan_count,
            ui_url=self._request.ui_url,
            slack=self._request.slack,
            updated_at=workflow.now(),
        )

    def _bump(self) -> None:
        self._notify_version += 1

    def _set_state(self, state: RunState) -> None:
        self._state = state
        pairs = [
            PROVISION_STATUS.value_set(state.value),
            SCENARIO.value_set(self._request.scenario),
        ]
        if self._tf_directory:
            pairs.append(TF_DIRECTORY.value_set(self._tf_directory))
        workflow.upsert_search_attributes(pairs)
        workflow.logger.info("workspace %s: %s", self._request.workspace, state.value)
        self._bump()
        if state == RunState.INITIALIZING and self._request.replan_count == 0:
            _count(metrics.RUNS_STARTED, scenario=self._request.scenario)
        elif state.is_final:
            _count(metrics.RUNS_FINISHED, scenario=self._request.scenario, outcome=state.value)

    def _observe_approval_wait(self, since: datetime, outcome: str) -> None:
        waited = (workflow.now() - since).total_seconds()
        workflow.metric_meter().create_histogram_float(
            metrics.APPROVAL_WAIT, metrics.DESCRIPTIONS[metrics.APPROVAL_WAIT], "s"
        ).record(waited, {"scenario": self._request.scenario, "outcome": outcome})

    async def _notifier_loop(self) -> None:
        """Keeps the Slack message current: one notification at a time, newest state wins."""
        while True:
            await workflow.wait_condition(lambda: self._notify_version > self._notified_version)
            version = self._notify_version
            try:
                await workflow.execute_activity(
                    NOTIFY_ACTIVITY,
                    NotifyInput(status=self._status()),
                    start_to_close_timeout=timedelta(seconds=30),
                    retry_policy=NOTIFY_RETRY,
                )
            except ActivityError as exc:
                # A Slack outage never fails a run: a later state change catches up.
                workflow.logger.warning("notification failed: %s", exc.cause or exc)
                cause = exc.cause
                error = cause.type if isinstance(cause, ApplicationError) else None
                _count(
                    metrics.NOTIFICATION_FAILURES,
                    error_type=error or type(cause or exc).__name__,
                )
            self._notified_version = version

    def _start_notifier(self) -> None:
        if self._request.slack is not None and self._notifier is None:
            self._notifier = asyncio.create_task(self._notifier_loop())

    async def _flush_notifications(self) -> None:
        if self._notifier is None:
            return
        await workflow.wait_condition(
            lambda: self._notified_version >= self._notify_version, timeout=timedelta(minutes=2)
        )

    async def _pace(self) -> None:
        if self._request.pace_seconds > 0:
            await workflow.sleep(timedelta(seconds=self._request.pace_seconds))

    def _step_input(self) -> dict:
        request = self._request
        return {
            "workspace": request.workspace,
            "tf_directory": self._tf_directory,
            "variables": request.variables,
            "env_passthrough": request.env_passthrough,
            "scenario": request.scenario,
            "faults": getattr(request, "faults", None) or Faults(),
            "pace_seconds": request.pace_seconds,
        }

    async def _plan_step(self, destroy: bool) -> PlanResult:
        self._set_state(RunState.PLANNING)
        await self._pace()
        plan_id = f"{workflow.info().run_id}-{len(self._plan_ids)}"
        self._plan_ids.append(plan_id)
        try:
            plan = await workflow.execute_activity(
                PLAN_ACTIVITY,
                PlanInput(**self._step_input(), destroy=destroy, plan_id=plan_id),
                result_type=PlanResult,
                start_to_close_timeout=timedelta(minutes=15),
                heartbeat_timeout=None,
                retry_policy=PLAN_RETRY,
            )
        except ActivityError as exc:
            await self._fail("planning failed", exc)
            raise
        self._plan = plan
        self._tf_directory = plan.tf_directory
        self._set_state(RunState.CHECKING_POLICY)
        await self._pace()
        try:
            self._policy = await workflow.execute_local_activity(
                EVALUATE_POLICY_ACTIVITY,
                PolicyInput(plan_document=plan.plan_document),
                result_type=PolicyReport,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=POLICY_RETRY,
            )
        except ActivityError as exc:
            await self._fail("policy evaluation failed", exc)
            raise
        return plan

    async def _fail(self, what: str, exc: BaseException) -> None:
        cause = exc.cause if isinstance(exc, ActivityError) and exc.cause else exc
        self._error = f"{what}: {cause}"
        self._reason = self._error
        self._set_state(RunState.FAILED)
        await self._flush_notifications()

    async def _await_decision(self) -> RunState | None:
        """Wait for enough approvals, a denial, a replan or the timeout.

        Returns the final state (rejected / expired) or None to go on and apply.
        """
        timeout = timedelta(seconds=self._request.approval_timeout_seconds)
        waiting_since = workflow.now()
        self._expires_at = waiting_since + timeout
        self._awaiting = True
        self._set_state(RunState.AWAITING_APPROVAL)
        required = self._request.required_approvals
        try:
            await workflow.wait_condition(
                lambda: (
                    self._replan_requested
                    or any(not d.is_approved for d in self._decisions)
                    or len(self._approvals()) >= required
                ),
                timeout=timeout,
            )
        except TimeoutError:
            self._awaiting = False
            self._observe_approval_wait(waiting_since, "expired")
            self._reason = f"no decision within {timeout}: nothing was applied"
            return RunState.EXPIRED
        self._awaiting = False
        if self._replan_requested:
            self._observe_approval_wait(waiting_since, "replanned")
            raise _Replan("replan requested")
        if any(not d.is_approved for d in self._decisions):
            self._observe_approval_wait(waiting_since, "rejected")
            return RunState.REJECTED
        self._observe_approval_wait(waiting_since, "approved")
        self._set_state(RunState.APPROVED)
        return None

    async def _apply_step(self, plan: PlanResult, applying: RunState) -> ApplyResult:
        self._set_state(applying)
        await self._pace()
        return await workflow.execute_activity(
            APPLY_ACTIVITY,
            ApplyInput(
                **self._step_input(), plan_path=plan.plan_path, plan_sha256=plan.plan_sha256
            ),
            result_type=ApplyResult,
            start_to_close_timeout=timedelta(minutes=60),
            heartbeat_timeout=timedelta(seconds=30),
            retry_policy=APPLY_RETRY,
        )

    async def _plan_decide_apply(self, *, destroy: bool, applying: RunState) -> RunState:
        """The core loop; returns the final state. Stale plans are replanned in place."""
        automatic_replans = 0
        while True:
            plan = await self._plan_step(destroy)
            policy = self._policy or PolicyReport()
            if policy.verdict == "blocked":
                rules = ", ".join(sorted({f.rule for f in policy.hard_failures}))
                self._reason = f"blocked by hard-mandatory policy: {rules}"
                return RunState.POLICY_FAILED
            if not plan.summary.has_changes:
                self._reason = "no changes: the infrastructure already matches the configuration"
                return RunState.NO_CHANGES
            if self._replan_requested:
                raise _Replan("replan requested")
            if policy.verdict == "needs_approval":
                final = await self._await_decision()
                if final is not None:
                    return final
            try:
                result = await self._apply_step(plan, applying)
            except ActivityError as exc:
                cause = exc.cause
                if (
                    isinstance(cause, ApplicationError)
                    and cause.type == "StalePlan"
                    and automatic_replans < MAX_AUTOMATIC_REPLANS
                ):
                    automatic_replans += 1
                    workflow.logger.warning("stale plan, replanning: %s", cause)
                    # Approvals were for the old plan: void them.
                    self._decisions = []
                    self._set_state(RunState.REPLANNING)
                    continue
                await self._fail("apply failed", exc)
                raise
            self._outputs = result.outputs
            return RunState.DESTROYED if destroy else RunState.APPLIED

    def _result(self) -> ProvisionResult:
        info = workflow.info()
        return ProvisionResult(
            workflow_id=info.workflow_id,
            run_id=info.run_id,
            workspace=self._request.workspace,
            scenario=self._request.scenario,
            state=self._state,
            reason=self._reason,
            outputs=self._outputs,
        )

    async def _finish(self, state: RunState) -> ProvisionResult:
        self._set_state(state)
        await self._flush_notifications()
        await workflow.wait_condition(workflow.all_handlers_finished)
        if state == RunState.POLICY_FAILED:
            raise ApplicationError(self._reason, type="PolicyViolation", non_retryable=True)
        return self._result()

    async def _start(
        self, request: ProvisionRequest | DeprovisionRequest, *, destroy: bool, applying: RunState
    ) -> RunState:
        """Plan, decide and apply; a replan continues as new from here."""
        self._start_notifier()
        self._set_state(RunState.INITIALIZING)
        try:
            return await self._plan_decide_apply(destroy=destroy, applying=applying)
        except _Replan:
            await self._continue_as_new(request)

    async def _continue_as_new(self, request: ProvisionRequest | DeprovisionRequest) -> NoReturn:
        self._set_state(RunState.REPLANNING)
        self._reason = "replan requested: a fresh plan replaces this one"
        await self._flush_notifications()
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(
            request.model_copy(update={"replan_count": request.replan_count + 1})
        )


@workflow.defn(name="ProvisionInfraWorkflow")
class ProvisionInfraWorkflow(_TerraformRun):
    workflow_type = "ProvisionInfraWorkflow"

    @workflow.init
    def __init__(self, request: ProvisionRequest) -> None:
        self._setup(request)

    @workflow.signal(name="destroy_now")
    def destroy_now(self) -> None:
        self._destroy_now = True

    @workflow.signal(name="extend_ttl")
    def extend_ttl(self, extension: ExtendTtl) -> None:
        if self._ttl_deadline is None:
            workflow.logger.warning("extend_ttl ignored: the run is not waiting out a TTL")
            return
        self._ttl_deadline = self._ttl_deadline + timedelta(seconds=extension.seconds)
        self._bump()

    @workflow.run
    async def run(self, request: ProvisionRequest) -> ProvisionResult:
        final = await self._start(request, destroy=False, applying=RunState.APPLYING)
        if final == RunState.APPLIED and request.ttl_seconds:
            final = await self._ephemeral(request.ttl_seconds)
        return await self._finish(final)

    async def _ephemeral(self, ttl_seconds: int) -> RunState:
        """Wait out the TTL on a durable timer (extendable), then destroy what was applied."""
        self._ttl_deadline = workflow.now() + timedelta(seconds=ttl_seconds)
        self._set_state(RunState.EPHEMERAL_WAIT)
        while not self._destroy_now:
            remaining = (self._ttl_deadline - workflow.now()).total_seconds()
            if remaining <= 0:
                break
            deadline = self._ttl_deadline
            try:
                await workflow.wait_condition(
                    lambda deadline=deadline: self._destroy_now or self._ttl_deadline != deadline,
                    timeout=timedelta(seconds=remaining),
                )
            except TimeoutError:
                break
        self._set_state(RunState.DESTROYING)
        plan = await self._plan_step(destroy=True)
        # The teardown of an ephemeral run was approved with the run itself.
        result = await self._apply_step(plan, RunState.DESTROYING)
        self._outputs = result.outputs
        self._reason = "ephemeral: destroyed after its TTL"
        return RunState.DESTROYED


@workflow.defn(name="DeprovisionInfraWorkflow")
class DeprovisionInfraWorkflow(_TerraformRun):
    workflow_type = "DeprovisionInfraWorkflow"

    @workflow.init
    def __init__(self, request: DeprovisionRequest) -> None:
        self._setup(request)

    @workflow.run
    async def run(self, request: DeprovisionRequest) -> ProvisionResult:
        return await self._finish(
            await self._start(request, destroy=True, applying=RunState.DESTROYING)
        )


__all__ = ["ProvisionInfraWorkflow", "DeprovisionInfraWorkflow", "OPERATOR"]
