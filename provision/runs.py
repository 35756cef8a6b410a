"""Run operations against Temporal, shared by the CLI and (injected into) the Slack bot."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from temporalio.client import (
    Client,
    RPCTimeoutOrCancelledError,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from workflows.contracts import (
    DEPROVISION_WORKFLOW,
    PROVISION_STATUS,
    PROVISION_WORKFLOW,
    QUERY_STATE,
    SCENARIO,
    SEARCH_ATTRIBUTES,
    SIGNAL_APPLY_DECISION,
    SIGNAL_REPLAN,
    TF_DIRECTORY,
    UPDATE_APPLY_DECISION,
    WORKFLOW_ID_PREFIX,
    workflow_id_for,
)
from workflows.models import (
    ApplyDecision,
    ApprovalChannel,
    DecisionOutcome,
    DeprovisionRequest,
    ProvisionRequest,
    ProvisionResult,
    RunState,
    RunStatus,
    no_decision_awaited,
)

# How long to look for a decision in the run's state once the update's answer was lost, and how
# long to wait for a settled decision to show in the state (the workflow moves on in the same task,
# so this is normally the first query).
CONFIRM_SECONDS = 30.0
SETTLE_SECONDS = 5.0
_POLL_SECONDS = 0.25
_QUERY_TIMEOUT = timedelta(seconds=5)


class RunError(Exception):
    """An operation on a run was refused; the message is one plain line."""


class WorkspaceBusy(RunError):
    def __init__(self, workspace: str, workflow_id: str, run_id: str, workflow_type: str):
        super().__init__(
            f"workspace {workspace} is busy: {workflow_type} run {run_id} of workflow "
            f"{workflow_id} holds it; wait for it to finish or check `provision status "
            f"{workflow_id}`"
        )
        self.workflow_id = workflow_id
        self.run_id = run_id


class RunNotFound(RunError):
    pass


@dataclass
class RunSummary:
    """One execution in a listing. `status` is what the run is: its `provisionStatus`, unless the
    execution was closed from outside (terminated, reset, timed out, cancelled, continued as new)
    while that still shows a state it never left."""

    workflow_id: str
    run_id: str
    workflow_type: str
    status: str
    scenario: str | None
    tf_directory: str | None
    execution_status: str
    start_time: str | None
    provision_status: str = field(default="")

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def effective_status(provision_status: str, execution_status: str) -> str:
    """`provisionStatus` while it is true: a run reset or terminated while awaiting approval keeps
    that attribute forever, so a closed execution with a non-final one shows how it closed."""
    if execution_status == "running":
        return provision_status or "pending"
    try:
        final = RunState(provision_status).is_final
    except ValueError:
        final = False
    return provision_status if final else execution_status


def check_text(value: str, what: str) -> str:
    """Refuse text protobuf cannot carry (lone surrogates), with a line saying which argument."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidText(
            f"{what} holds characters that are not valid text (lone surrogates)"
        ) from None
    return value


class InvalidText(RunError, ValueError):
    """An argument is not valid Unicode text; nothing was sent to Temporal."""


def resolve_workflow_id(target: str) -> str:
    """Accept a workflow id or a workspace name."""
    check_text(target, "the run id")
    return target if target.startswith(WORKFLOW_ID_PREFIX) else workflow_id_for(target)


class RunService:
    def __init__(
        self,
        client: Client,
        task_queue: str,
        ui_url: str | None = None,
        *,
        update_rpc_timeout: timedelta | None = None,
    ):
        self.client = client
        self.task_queue = task_queue
        self.ui_url = (ui_url or "").rstrip("/") or None
        self.update_rpc_timeout = update_rpc_timeout

    def run_url(self, workflow_id: str, run_id: str | None = None) -> str | None:
        if not self.ui_url:
            return None
        base = f"{self.ui_url}/namespaces/{self.client.namespace}/workflows/{workflow_id}"
        return f"{base}/{run_id}/history" if run_id else base

    async def missing_search_attributes(self) -> list[str]:
        """Names of our search attributes the server does not know (empty if unknowable)."""
        from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest

        try:
            resp = await self.client.operator_service.list_search_attributes(
                ListSearchAttributesRequest(namespace=self.client.namespace)
            )
        except RPCError:
            return []
        known = set(resp.custom_attributes) | set(resp.system_attributes)
        return [key.name for key in SEARCH_ATTRIBUTES if key.name not in known]

    async def start(
        self, request: ProvisionRequest | DeprovisionRequest
    ) -> WorkflowHandle[object, ProvisionResult]:
        workflow_id = workflow_id_for(request.workspace)
        is_destroy = isinstance(request, DeprovisionRequest)
        workflow_type = DEPROVISION_WORKFLOW if is_destroy else PROVISION_WORKFLOW
        attrs = [
            SearchAttributePair(SCENARIO, request.scenario),
            SearchAttributePair(PROVISION_STATUS, "pending"),
        ]
        if request.tf_directory:
            attrs.append(SearchAttributePair(TF_DIRECTORY, request.tf_directory))
        missing = await self.missing_search_attributes()
        if missing:
            raise RunError(
                "the Temporal namespace lacks the search attributes "
                f"{', '.join(missing)}; create them (see README: search attributes)"
            )
        try:
            return await self.client.start_workflow(
                workflow_type,
                request,
                id=workflow_id,
                task_queue=self.task_queue,
                result_type=ProvisionResult,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                search_attributes=TypedSearchAttributes(attrs),
            )
        except WorkflowAlreadyStartedError:
            holder = self.client.get_workflow_handle(workflow_id)
            desc = await holder.describe()
            raise WorkspaceBusy(
                request.workspace, workflow_id, desc.run_id, desc.workflow_type
            ) from None

    def handle(self, target: str) -> WorkflowHandle:
        workflow_id = resolve_workflow_id(target)  # refuses bad text before any client call
        return self.client.get_workflow_handle(workflow_id)

    async def status(self, target: str) -> RunStatus:
        handle = self.handle(target)
        try:
            return await handle.query(QUERY_STATE, result_type=RunStatus)
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise RunNotFound(f"no run found for {target}") from None
            raise RunError(f"cannot read the state of {target}: {exc.message}") from None

    async def send_decision(
        self,
        workflow_id: str,
        run_id: str | None,
        decision: ApplyDecision,
        *,
        by_signal: bool,
        on_unconfirmed: Callable[[], None] | None = None,
    ) -> DecisionOutcome | None:
        """Send a decision to a run: a signal, or the validated update whose refusal (the
        validator's one line) becomes a RunError. Connection trouble stays an RPCError.

        The outcome's state is the run's state after the decision. When the update's answer is
        lost (its RPC timed out, as under load, though the decision usually landed),
        `on_unconfirmed` is called and the decision is looked for in the run's state instead.
        """
        check_text(decision.reason, "the reason")
        handle = self.client.get_workflow_handle(workflow_id, run_id=run_id)
        if by_signal:
            await handle.signal(SIGNAL_APPLY_DECISION, decision)
            return None
        try:
            outcome = await handle.execute_update(
                UPDATE_APPLY_DECISION,
                decision,
                result_type=DecisionOutcome,
                rpc_timeout=self.update_rpc_timeout,
            )
        except WorkflowUpdateFailedError as exc:
            cause = exc.cause
            message = cause.message if isinstance(cause, ApplicationError) else str(cause or exc)
            raise RunError(message) from None
        except WorkflowUpdateRPCTimeoutOrCancelledError:
            if on_unconfirmed is not None:
                on_unconfirmed()
            return await self.confirm_decision(workflow_id, run_id, decision)
        return await self._after_decision(workflow_id, run_id, decision, outcome)

    async def _state_or_none(self, workflow_id: str, run_id: str | None) -> RunStatus | None:
        # Bounded, so one query stuck on a busy worker does not use up a caller's whole deadline.
        try:
            return await self.client.get_workflow_handle(workflow_id, run_id=run_id).query(
                QUERY_STATE, result_type=RunStatus, rpc_timeout=_QUERY_TIMEOUT
            )
        except (RPCError, RPCTimeoutOrCancelledError):
            return None

    async def _after_decision(
        self,
        workflow_id: str,
        run_id: str | None,
        decision: ApplyDecision,
        outcome: DecisionOutcome,
    ) -> DecisionOutcome:
        """The outcome with the state the run is in now: the update answers from its handler,
        before the workflow has moved on to apply or to rejected."""
        settled = not decision.is_approved or outcome.approvals >= outcome.required_approvals
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SETTLE_SECONDS
        latest: RunStatus | None = None
        while True:
            latest = await self._state_or_none(workflow_id, run_id) or latest
            if latest is not None and not (settled and latest.state == RunState.AWAITING_APPROVAL):
                break
            if loop.time() >= deadline:
                break
            await asyncio.sleep(_POLL_SECONDS)
        return outcome.model_copy(update={"state": latest.state}) if latest else outcome

    async def confirm_decision(
        self,
        workflow_id: str,
        run_id: str | None,
        decision: ApplyDecision,
        *,
        note: str = "confirmed from the run's state",
    ) -> DecisionOutcome:
        """The outcome of a decision that has no answer (a signal, or an update whose answer was
        lost), read from the run's decisions once it shows there."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CONFIRM_SECONDS
        reason = decision.reason.strip()
        while True:
            status = await self._state_or_none(workflow_id, run_id)
            record = next(
                (
                    d
                    for d in reversed(status.decisions if status else [])
                    if d.is_approved == decision.is_approved and (not reason or d.reason == reason)
                ),
                None,
            )
            if status is not None and record is not None:
                approvals = sum(1 for d in status.decisions if d.is_approved)
                verdict = "approved" if record.is_approved else "denied"
                return DecisionOutcome(
                    accepted=True,
                    state=status.state,
                    approvals=approvals,
                    required_approvals=status.required_approvals,
                    message=f"{verdict} by {record.actor.display} ({note})",
                )
            if loop.time() >= deadline:
                raise RunError(
                    f"the decision was sent to {workflow_id} but Temporal did not confirm it "
                    f"within {CONFIRM_SECONDS:.0f}s; check the run's state before deciding again"
                )
            await asyncio.sleep(_POLL_SECONDS)

    async def signal(self, workflow_id: str, run_id: str | None, name: str, *args: object) -> None:
        await self.client.get_workflow_handle(workflow_id, run_id=run_id).signal(name, *args)

    async def decide(
        self,
        target: str,
        decision: ApplyDecision,
        on_unconfirmed: Callable[[], None] | None = None,
    ) -> DecisionOutcome | None:
        """Approve or deny; by update (validated) unless the run asks for signals."""
        check_text(decision.reason, "the reason")
        status = await self.status(target)
        if status.state != RunState.AWAITING_APPROVAL:
            raise RunError(
                f"decision refused: {no_decision_awaited(status.decisions, status.state)}"
            )
        by_signal = status.approval_channel == ApprovalChannel.SIGNAL
        try:
            return await self.send_decision(
                status.workflow_id,
                None,
                decision,
                by_signal=by_signal,
                on_unconfirmed=on_unconfirmed,
            )
        except InvalidText:
            raise
        except RunError as exc:
            raise RunError(f"decision refused: {exc}") from None
        except RPCError as exc:
            raise RunError(f"decision refused: {exc.message}") from None

    async def replan(self, target: str) -> RunStatus:
        status = await self.status(target)
        if status.state.is_final:
            raise RunError(f"{status.workflow_id} is {status.state.value}: nothing to replan")
        await self.signal(status.workflow_id, None, SIGNAL_REPLAN)
        return status

    async def list_runs(self, state: str | None = None, limit: int = 50) -> list[RunSummary]:
        query = f"WorkflowType IN ('{PROVISION_WORKFLOW}', '{DEPROVISION_WORKFLOW}')"
        if state:
            valid = {s.value for s in RunState}
            if state not in valid:
                raise RunError(f"unknown status {state!r}; one of: {', '.join(sorted(valid))}")
            query += f" AND provisionStatus = '{state}'"
            if not RunState(state).is_final:
                # A run closed from outside keeps its last provisionStatus; it is not in it.
                query += " AND ExecutionStatus = 'Running'"
        runs: list[RunSummary] = []
        async for wf in self.client.list_workflows(query, limit=limit):
            attrs = wf.typed_search_attributes
            provision_status = attrs.get(PROVISION_STATUS) or ""
            execution_status = wf.status.name.lower() if wf.status else "unknown"
            runs.append(
                RunSummary(
                    workflow_id=wf.id,
                    run_id=wf.run_id,
                    workflow_type=wf.workflow_type,
                    status=effective_status(provision_status, execution_status),
                    scenario=attrs.get(SCENARIO),
                    tf_directory=attrs.get(TF_DIRECTORY),
                    execution_status=execution_status,
                    start_time=wf.start_time.isoformat() if wf.start_time else None,
                    provision_status=provision_status,
                )
            )
        return runs

    async def wait(
        self,
        handle: WorkflowHandle,
        on_status: Callable[[RunStatus], None] | None = None,
        poll_seconds: float = 0.5,
    ) -> RunStatus:
        """Wait for the run (following replans) to end; report each state change."""
        result_task = asyncio.ensure_future(handle.result(follow_runs=True))
        last: tuple[RunState, int] | None = None
        while not result_task.done():
            try:
                status = await self.client.get_workflow_handle(handle.id).query(
                    QUERY_STATE, result_type=RunStatus
                )
            except RPCError:
                status = None
            # A retried step stays in its state: each new attempt is reported too.
            if status and (status.state, status.attempt) != last and on_status:
                last = (status.state, status.attempt)
                on_status(status)
            await asyncio.wait({result_task}, timeout=poll_seconds)
        try:
            result_task.result()
        except WorkflowFailureError:
            pass
        final = await self.client.get_workflow_handle(handle.id).query(
            QUERY_STATE, result_type=RunStatus
        )
        if on_status and (final.state, final.attempt) != last:
            on_status(final)
        return final

    async def execution_status(self, target: str) -> WorkflowExecutionStatus | None:
        desc = await self.handle(target).describe()
        return desc.status
