"""ProvisionInfraWorkflow and DeprovisionInfraWorkflow: plan → policy → decision → apply.

Deterministic code only: terraform, policy evaluation and Slack live in activities. The units a
run is made of live beside this module: the decision ledger (workflows/decisions.py), the
notifier (workflows/notifier.py), the TTL timer (workflows/ttl.py) and the terraform steps
(workflows/steps.py).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import NoReturn

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows import contracts, metrics, steps
    from workflows.attestation import verified
    from workflows.decisions import ApprovalRules, DecisionLedger
    from workflows.models import (
        OPERATOR,
        Actor,
        ApplyDecision,
        ApprovalChannel,
        ClaimInput,
        DecisionOutcome,
        DeprovisionRequest,
        ExtendTtl,
        PlanResult,
        PolicyReport,
        ProvisionRequest,
        ProvisionResult,
        RunState,
        RunStatus,
        WorkspaceRecord,
    )
    from workflows.notifier import RunNotifier
    from workflows.steps import Attempt, CheckedPlan, TerraformSteps
    from workflows.ttl import TtlTimer

# Stale plans are replanned automatically, but not forever.
MAX_AUTOMATIC_REPLANS = 3
# No TTL, however extended, reaches past this: the timer's deadline stays representable.
MAX_TTL = timedelta(days=365)
CLAIM_PATCH = "workspace-claim"
# Chat identities are recorded only when the front door signed them; signals on an update
# run need a reason.
ATTESTED_DECISIONS_PATCH = "attested-decisions"
# An ephemeral run's teardown goes through the same plan/policy/apply loop as every other apply.
GUARDED_TEARDOWN_PATCH = "guarded-teardown"


class _Replan(Exception):
    """Raised inside the run to start over with a fresh plan."""


class _TerraformRun:
    """State, handlers and the run body shared by both workflow types."""

    workflow_type = ""

    def _setup(self, request: ProvisionRequest | DeprovisionRequest) -> None:
        self._request = request
        self._state = RunState.PENDING
        self._checked: CheckedPlan | None = None
        self._rules = ApprovalRules(
            required_approvals=request.required_approvals,
            allow_self_approval=request.allow_self_approval,
            requester=request.requester,
            approvers=frozenset(request.approvers) if request.approvers is not None else None,
            stack=request.stack,
        )
        self._ledger = DecisionLedger(self._rules)
        self._replan_requested = False
        self._attested = False
        self._reason = ""
        self._error: str | None = None
        self._outputs: dict = {}
        self._expires_at: datetime | None = None
        self._ttl: TtlTimer | None = None
        self._tf_directory = request.tf_directory
        self._notifier = RunNotifier(self._status, enabled=request.slack is not None)
        self._attempt = 1
        self._last_error: str | None = None
        self._retrying = False
        self._reason_before_retry = ""
        self._partly_applied = False
        self._tearing_down = False
        self._steps = TerraformSteps(request, self._set_state, self._pace, self._on_attempt)

    # Queries: the original demo's four, plus the whole structured state. ------------------

    @workflow.query(name=contracts.QUERY_STATUS)
    def get_current_status(self) -> str:
        return self._state.value

    @workflow.query(name=contracts.QUERY_PROGRESS)
    def get_progress(self) -> int:
        return self._state.progress

    @workflow.query(name=contracts.QUERY_PLAN)
    def get_plan(self) -> str:
        return self._checked.plan.plan_text if self._checked else ""

    @workflow.query(name=contracts.QUERY_REASON)
    def get_reason(self) -> str:
        return self._reason

    @workflow.query(name=contracts.QUERY_STATE)
    def get_state(self) -> RunStatus:
        return self._status()

    # Decisions ---------------------------------------------------------------------------

    def _actor(self, decision: ApplyDecision) -> Actor:
        """Who decided, as far as this workflow can tell: a chat identity only when the front
        door that started the run signed it for this run; otherwise an operator (someone with
        Temporal access), whatever identity the decision claims."""
        actor = decision.actor()
        if actor.kind != "slack" or not self._attested:
            return actor
        info = workflow.info()
        if verified(self._request.front_door_key, info.workflow_id, info.run_id, decision):
            return actor
        return Actor(
            id=OPERATOR.id, name=f"{OPERATOR.name}, claiming {actor.display}", kind="operator"
        )

    def _record(self, decision: ApplyDecision, via: str, actor: Actor) -> DecisionOutcome:
        outcome = self._ledger.record(decision, via, workflow.now(), self._state, actor)
        self._reason = self._ledger.last_reason
        self._notifier.changed()
        return outcome

    @workflow.update(name=contracts.UPDATE_APPLY_DECISION)
    def update_apply_decision(self, decision: ApplyDecision) -> DecisionOutcome:
        return self._record(decision, "update", self._actor(decision))

    @update_apply_decision.validator
    def validate_apply_decision(self, decision: ApplyDecision) -> None:
        problem = self._ledger.update_refusal(decision, self._state, self._actor(decision))
        if problem:
            raise ValueError(problem)

    @workflow.signal(name=contracts.SIGNAL_APPLY_DECISION)
    def signal_apply_decision(self, decision: ApplyDecision) -> None:
        # Signals cannot be refused, so an invalid one is logged and dropped.
        actor = self._actor(decision)
        problem = self._ledger.refusal(decision, self._state, actor)
        if (
            not problem
            and self._attested
            and self._request.approval_channel == ApprovalChannel.UPDATE
            and not decision.reason.strip()
        ):
            # The update path's reason rule cannot be skipped by signalling instead.
            problem = "this run takes decisions with a reason (update_apply_decision)"
        if problem:
            workflow.logger.warning("ignored signal_apply_decision: %s", problem)
            return
        self._record(decision, "signal", actor)

    @workflow.signal(name=contracts.SIGNAL_REPLAN)
    def request_continue_as_new(self) -> None:
        if self._state in (RunState.APPLYING, RunState.DESTROYING) or self._state.is_final:
            workflow.logger.warning("replan ignored: the run is %s", self._state.value)
            return
        if self._tearing_down:
            workflow.logger.warning("replan ignored: the run is tearing down after its TTL")
            return
        self._replan_requested = True

    # State --------------------------------------------------------------------------------

    def _status(self) -> RunStatus:
        info = workflow.info()
        plan = self._checked.plan if self._checked else None
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
            plan_summary=plan.summary if plan else None,
            plan_text=plan.plan_text if plan else "",
            policy=self._checked.policy if self._checked else None,
            decisions=list(self._ledger.decisions),
            outputs=dict(self._outputs),
            reason=self._reason,
            error=self._error,
            attempt=self._attempt,
            last_error=self._last_error,
            expires_at=self._expires_at,
            ttl_deadline=self._ttl.deadline if self._ttl else None,
            replan_count=self._request.replan_count,
            ui_url=self._request.ui_url,
            slack=self._notifier.moved_to or self._request.slack,
            updated_at=workflow.now(),
            stack=self._request.stack,
            owners=list(self._request.owners),
            approvers=list(self._rules.approvers) if self._rules.approvers is not None else None,
            allow_self_approval=self._request.allow_self_approval,
            plan_only=self._plan_only,
            inputs=dict(getattr(self._request, "inputs", {}) or {}),
            source_revision=plan.source_revision if plan else None,
        )

    def _on_attempt(self, attempt: Attempt) -> None:
        """A terraform step failed and is retried: the run's state and message say so."""
        if not self._retrying:
            self._reason_before_retry = self._reason
        self._attempt = attempt.number
        self._last_error = attempt.last_error
        self._retrying = True
        self._error = f"retrying, attempt {attempt.number}: {attempt.last_error}"
        # `provision status` and `--wait` print the reason: while retrying, that is the retry.
        self._reason = self._error
        self._notifier.changed()

    def _retried_step_succeeded(self) -> None:
        if self._retrying:
            # The last error stays in `last_error`.
            self._retrying = False
            self._error = None
            self._reason = self._reason_before_retry

    def _set_state(self, state: RunState) -> None:
        self._state = state
        self._retried_step_succeeded()
        if state in (RunState.PLANNING, RunState.APPLYING, RunState.DESTROYING):
            self._attempt = 1
        pairs = [
            contracts.PROVISION_STATUS.value_set(state.value),
            contracts.SCENARIO.value_set(self._request.scenario),
        ]
        if self._tf_directory:
            pairs.append(contracts.TF_DIRECTORY.value_set(self._tf_directory))
        workflow.upsert_search_attributes(pairs)
        workflow.logger.info("workspace %s: %s", self._request.workspace, state.value)
        self._notifier.changed()
        if state == RunState.INITIALIZING and self._request.replan_count == 0:
            metrics.count(metrics.RUNS_STARTED, scenario=self._request.scenario)
        elif state.is_final:
            metrics.count(
                metrics.RUNS_FINISHED, scenario=self._request.scenario, outcome=state.value
            )

    async def _pace(self) -> None:
        if self._request.pace_seconds > 0:
            await workflow.sleep(timedelta(seconds=self._request.pace_seconds))

    async def _fail(self, what: str, exc: BaseException) -> None:
        cause = exc.cause if isinstance(exc, ActivityError) and exc.cause else exc
        self._retrying = False
        self._error = f"{what}: {cause}"
        self._reason = self._error
        self._set_state(RunState.FAILED)
        await self._notifier.flush()

    # Steps ---------------------------------------------------------------------------------

    @property
    def _plan_only(self) -> bool:
        return isinstance(self._request, ProvisionRequest) and self._request.plan_only

    async def _claim(self, *, destroy: bool) -> bool:
        """May this run touch its workspace? The first run of a workspace makes it its owners'.
        Returns False (the run failed with the reason) when refused."""
        if not workflow.patched(CLAIM_PATCH):
            return True
        request = self._request
        try:
            await workflow.execute_activity(
                contracts.CLAIM_WORKSPACE_ACTIVITY,
                ClaimInput(
                    workspace=request.workspace,
                    stack=request.stack,
                    requester=request.requester,
                    owners=request.owners,
                    destroy=destroy,
                    approvers=request.approvers,
                    destroyers=request.destroyers,
                ),
                result_type=WorkspaceRecord,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=steps.CLAIM_RETRY,
            )
        except ActivityError as exc:
            await self._fail("refused", exc)
            return False
        return True

    def _needs_human(self, checked: CheckedPlan) -> bool:
        """Policy asks for a human, or the request does: `plan` only, or no auto-apply."""
        if checked.policy.verdict == "needs_approval":
            return True
        request = self._request
        if not isinstance(request, ProvisionRequest):
            return False
        if request.plan_only:
            # `run` would have applied this plan without anyone: its requester may Apply it.
            self._ledger.rules = replace(
                self._rules, required_approvals=1, requester_may_apply=request.auto_apply
            )
            self._reason = "plan only: nothing is applied until someone chooses Apply"
            return True
        if not request.auto_apply:
            self._reason = f"stack {request.stack} does not auto-apply: a human decides"
            return True
        return False

    async def _plan_and_check(self, *, destroy: bool) -> CheckedPlan:
        try:
            plan: PlanResult = await self._steps.plan(self._tf_directory, destroy=destroy)
        except ActivityError as exc:
            await self._fail("planning failed", exc)
            raise
        self._checked = CheckedPlan(plan, PolicyReport())
        self._tf_directory = plan.tf_directory
        try:
            policy = await self._steps.check(plan, destroy=destroy)
        except ActivityError as exc:
            await self._fail("policy evaluation failed", exc)
            raise
        self._checked = CheckedPlan(plan, policy)
        return self._checked

    async def _await_decision(self) -> RunState | None:
        """Wait for enough approvals, a denial, a replan or the timeout.

        Returns the final state (rejected / expired) or None to go on and apply.
        """
        timeout = timedelta(seconds=self._request.approval_timeout_seconds)
        waiting_since = workflow.now()
        self._expires_at = waiting_since + timeout
        self._ledger.awaiting = True
        self._set_state(RunState.AWAITING_APPROVAL)
        try:
            await workflow.wait_condition(
                lambda: self._replan_requested or self._ledger.settled, timeout=timeout
            )
        except TimeoutError:
            outcome = "expired"
            self._reason = f"no decision within {timeout}: nothing was applied"
        else:
            outcome = (
                "replanned"
                if self._replan_requested
                else "rejected"
                if self._ledger.denied
                else "approved"
            )
        finally:
            self._ledger.awaiting = False
        metrics.observe_seconds(
            metrics.APPROVAL_WAIT,
            (workflow.now() - waiting_since).total_seconds(),
            scenario=self._request.scenario,
            outcome=outcome,
        )
        if outcome == "replanned":
            raise _Replan("replan requested")
        if outcome == "expired":
            return RunState.EXPIRED
        if outcome == "rejected":
            return RunState.REJECTED
        self._set_state(RunState.APPROVED)
        return None

    async def _guarded_apply(self, checked: CheckedPlan, applying: RunState) -> CheckedPlan | None:
        """Apply a checked plan. Returns None when applied, or the fresh plan that replaced a
        stale one; an apply failure fails the run."""
        try:
            result = await self._steps.apply(checked.plan, applying)
        except ActivityError as exc:
            cause = exc.cause
            kind = cause.type if isinstance(cause, ApplicationError) else None
            if kind not in ("StalePlan", "PartlyApplied"):
                await self._fail("apply failed", exc)
                raise
            # An apply that changed the state makes this run one that applied, whatever follows.
            self._partly_applied = self._partly_applied or kind == "PartlyApplied"
            raise _StalePlan(str(cause)) from None
        self._outputs = result.outputs
        return None

    async def _plan_decide_apply(
        self, *, destroy: bool, applying: RunState, decided: bool = False
    ) -> RunState:
        """The core loop; returns the final state. Stale plans are replanned in place.

        `decided`: the change was already decided (an ephemeral run's teardown was approved with
        the run), so no human is asked and no replan is taken; a hard-mandatory rule still stops.
        """
        automatic_replans = 0
        while True:
            checked = await self._plan_and_check(destroy=destroy)
            if checked.policy.verdict == "blocked":
                rules = ", ".join(sorted({f.rule for f in checked.policy.hard_failures}))
                self._reason = f"blocked by hard-mandatory policy: {rules}"
                return RunState.POLICY_FAILED
            if not checked.plan.summary.has_changes:
                if self._partly_applied:
                    self._reason = "applied: an interrupted apply finished the change"
                    return RunState.DESTROYED if destroy else RunState.APPLIED
                self._reason = "no changes: the infrastructure already matches the configuration"
                return RunState.NO_CHANGES
            if self._replan_requested and not decided:
                raise _Replan("replan requested")
            self._ledger.rules = self._rules
            if not decided and self._needs_human(checked):
                final = await self._await_decision()
                if final is not None:
                    return final
            try:
                await self._guarded_apply(checked, applying)
            except _StalePlan as stale:
                if automatic_replans >= MAX_AUTOMATIC_REPLANS:
                    await self._fail("apply failed", stale)
                    raise ApplicationError(
                        str(stale), type="StalePlan", non_retryable=True
                    ) from None
                automatic_replans += 1
                workflow.logger.warning("stale plan, replanning: %s", stale)
                # Approvals were for the old plan: void them.
                self._ledger.void()
                self._set_state(RunState.REPLANNING)
                continue
            return RunState.DESTROYED if destroy else RunState.APPLIED

    # The run body ----------------------------------------------------------------------------

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
        await self._notifier.flush()
        await workflow.wait_condition(workflow.all_handlers_finished)
        if state == RunState.POLICY_FAILED:
            raise ApplicationError(self._reason, type="PolicyViolation", non_retryable=True)
        return self._result()

    async def _start(
        self, request: ProvisionRequest | DeprovisionRequest, *, destroy: bool, applying: RunState
    ) -> RunState:
        """Plan, decide and apply; a replan continues as new from here."""
        self._notifier.start()
        self._attested = workflow.patched(ATTESTED_DECISIONS_PATCH)
        self._set_state(RunState.INITIALIZING)
        if not await self._claim(destroy=destroy):
            return RunState.FAILED
        try:
            return await self._plan_decide_apply(destroy=destroy, applying=applying)
        except _Replan:
            await self._continue_as_new(request)

    async def _continue_as_new(self, request: ProvisionRequest | DeprovisionRequest) -> NoReturn:
        self._set_state(RunState.REPLANNING)
        self._reason = "replan requested: a fresh plan replaces this one"
        await self._notifier.flush(final=False)
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(
            request.model_copy(update={"replan_count": request.replan_count + 1})
        )


class _StalePlan(Exception):
    """The saved plan no longer matches the state: plan again."""


@workflow.defn(name=contracts.PROVISION_WORKFLOW)
class ProvisionInfraWorkflow(_TerraformRun):
    workflow_type = contracts.PROVISION_WORKFLOW

    @workflow.init
    def __init__(self, request: ProvisionRequest) -> None:
        self._setup(request)

    @workflow.signal(name=contracts.SIGNAL_DESTROY_NOW)
    def destroy_now(self) -> None:
        if self._ttl is not None:
            self._ttl.cancel()

    @workflow.signal(name=contracts.SIGNAL_EXTEND_TTL)
    def extend_ttl(self, extension: ExtendTtl) -> None:
        if self._ttl is None or self._state != RunState.EPHEMERAL_WAIT:
            workflow.logger.warning("extend_ttl ignored: the run is not waiting out a TTL")
            return
        self._ttl.extend(extension.seconds, latest=workflow.now() + MAX_TTL)
        self._notifier.changed()

    @workflow.run
    async def run(self, request: ProvisionRequest) -> ProvisionResult:
        final = await self._start(request, destroy=False, applying=RunState.APPLYING)
        if final == RunState.APPLIED and request.ttl_seconds:
            final = await self._ephemeral(request.ttl_seconds)
        return await self._finish(final)

    async def _ephemeral(self, ttl_seconds: int) -> RunState:
        """Wait out the TTL on a durable timer (extendable), then destroy what was applied."""
        self._ttl = TtlTimer(workflow.now() + min(timedelta(seconds=ttl_seconds), MAX_TTL))
        self._set_state(RunState.EPHEMERAL_WAIT)
        await self._ttl.wait()
        self._set_state(RunState.DESTROYING)
        if not workflow.patched(GUARDED_TEARDOWN_PATCH):
            return await self._unguarded_teardown()
        self._tearing_down = True
        # Whether the teardown's own apply was interrupted is its own story.
        self._partly_applied = False
        # Retried, replanned when stale, failed (and flushed) like every other apply.
        final = await self._plan_decide_apply(
            destroy=True, applying=RunState.DESTROYING, decided=True
        )
        self._retried_step_succeeded()
        if final == RunState.DESTROYED:
            self._reason = "ephemeral: destroyed after its TTL"
        elif final == RunState.NO_CHANGES:
            self._reason = "ephemeral: nothing was left to destroy after its TTL"
        return final

    async def _unguarded_teardown(self) -> RunState:
        """The teardown of runs that reached it before GUARDED_TEARDOWN_PATCH: a stale plan
        fails the run."""
        checked = await self._plan_and_check(destroy=True)
        try:
            await self._guarded_apply(checked, RunState.DESTROYING)
        except _StalePlan as stale:
            await self._fail("teardown failed", stale)
            raise ApplicationError(str(stale), type="StalePlan", non_retryable=True) from None
        self._reason = "ephemeral: destroyed after its TTL"
        return RunState.DESTROYED


@workflow.defn(name=contracts.DEPROVISION_WORKFLOW)
class DeprovisionInfraWorkflow(_TerraformRun):
    workflow_type = contracts.DEPROVISION_WORKFLOW

    @workflow.init
    def __init__(self, request: DeprovisionRequest) -> None:
        self._setup(request)

    @workflow.run
    async def run(self, request: DeprovisionRequest) -> ProvisionResult:
        return await self._finish(
            await self._start(request, destroy=True, applying=RunState.DESTROYING)
        )


__all__ = ["ProvisionInfraWorkflow", "DeprovisionInfraWorkflow", "OPERATOR"]
