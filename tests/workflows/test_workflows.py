"""Workflow logic against the real dev server, with fake activities under the real names."""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import activity
from temporalio.client import Client, WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError
from temporalio.worker import Worker

from activities.workspaces import FileWorkspaceRecords, WorkspaceActivities
from workflows.attestation import DecisionSigner
from workflows.models import (
    Actor,
    ApplyDecision,
    ApplyInput,
    ApplyResult,
    ApprovalChannel,
    DeprovisionRequest,
    Faults,
    PlanInput,
    PlanResult,
    PlanSummary,
    PolicyFinding,
    PolicyInput,
    PolicyLevel,
    PolicyReport,
    ProvisionRequest,
    ProvisionResult,
    RunState,
    RunStatus,
)
from workflows.provision import DeprovisionInfraWorkflow, ProvisionInfraWorkflow

ALICE = Actor(id="U0ALICE", name="alice", kind="slack")
BOB = Actor(id="U0BOB", name="bob", kind="slack")
CAROL = Actor(id="U0CAROL", name="carol", kind="slack")
DEADLINE = 30.0
# The bot's signing key, as the Slack front door holds it.
SIGNER = DecisionSigner("xoxb-test-bot-token")


class FakeTerraform:
    """Stands in for the plan/policy/apply activities; records what the workflow asked."""

    def __init__(self, findings: list[PolicyFinding] | None = None, stale_applies: int = 0):
        self.findings = findings or []
        self.plans: list[PlanInput] = []
        self.applies: list[ApplyInput] = []
        self.apply_attempts: list[int] = []
        self.stale_applies = stale_applies
        # Workspace ownership is the real thing, on a folder of its own.
        self.claims = WorkspaceActivities(FileWorkspaceRecords(Path(tempfile.mkdtemp())))

    def activities(self) -> list:
        @activity.defn(name="terraform_plan")
        async def plan(step: PlanInput) -> PlanResult:
            self.plans.append(step)
            return PlanResult(
                plan_id=step.plan_id,
                plan_path=f"/plans/{step.plan_id}.tfplan",
                plan_sha256=f"sha-{step.plan_id}",
                tf_directory=step.tf_directory or "local_namespace",
                summary=PlanSummary(
                    add=0 if step.destroy else 1,
                    destroy=1 if step.destroy else 0,
                    resources=["+ null_resource.namespace"],
                ),
                plan_text=f"plan {step.plan_id}",
                plan_document={"resource_changes": []},
            )

        @activity.defn(name="evaluate_policy")
        async def evaluate_policy(request: PolicyInput) -> PolicyReport:
            return PolicyReport(findings=self.findings, policies=["fake.rego"])

        @activity.defn(name="terraform_apply")
        async def apply(step: ApplyInput) -> ApplyResult:
            # The workflow makes the retries and numbers them in the input.
            attempt = max(step.attempt, activity.info().attempt)
            self.apply_attempts.append(attempt)
            if attempt <= step.faults.apply_failures:
                raise ApplicationError("simulated API failure", type="SimulatedApiFailure")
            if self.stale_applies > 0:
                self.stale_applies -= 1
                raise ApplicationError("stale", type="StalePlan", non_retryable=True)
            self.applies.append(step)
            return ApplyResult(outputs={"namespace_name": step.workspace})

        return [plan, evaluate_policy, apply, self.claims.claim_workspace]


SOFT = [PolicyFinding(rule="namespace_admin", level=PolicyLevel.SOFT, message="admin grant")]
HARD = [PolicyFinding(rule="account_owner", level=PolicyLevel.HARD, message="owner grant")]


@asynccontextmanager
async def running(client: Client, fake: FakeTerraform) -> AsyncIterator[str]:
    task_queue = f"tq-{uuid.uuid4()}"
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[ProvisionInfraWorkflow, DeprovisionInfraWorkflow],
        activities=fake.activities(),
    ):
        yield task_queue


def request(**overrides) -> ProvisionRequest:
    base = dict(
        scenario="human-in-the-loop-update",
        workspace=f"t-{uuid.uuid4().hex[:12]}",
        tf_directory="local_admin_user",
        requester=ALICE,
        front_door_key=SIGNER.public_key,
    )
    base.update(overrides)
    return ProvisionRequest(**base)


async def start(client: Client, task_queue: str, req: ProvisionRequest):
    return await client.start_workflow(
        ProvisionInfraWorkflow.run,
        req,
        id=f"provision-{req.workspace}",
        task_queue=task_queue,
        result_type=ProvisionResult,
    )


async def wait_state(handle, state: RunState, timeout: float = DEADLINE) -> RunStatus:
    """Poll the query until the run reaches `state` (queries have no push channel)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last = None
    while loop.time() < deadline:
        try:
            last = await handle.query("get_state", result_type=RunStatus)
        except Exception:  # noqa: BLE001 - the first workflow task may not have run yet
            last = None
        if last and last.state == state:
            return last
        await asyncio.sleep(0.05)
    raise AssertionError(f"run never reached {state}; last state: {last and last.state}")


async def decide(handle, decision: ApplyDecision, *, sign: bool = True):
    """Send a decision as the Slack bot does: signed for the run it is meant for."""
    if sign and decision.approver_kind == "slack":
        run_id = (await handle.describe()).run_id
        decision = SIGNER.sign(handle.id, run_id, decision)
    return await handle.execute_update("update_apply_decision", decision)


def approve(by: Actor | None, reason: str = "looks good") -> ApplyDecision:
    if by is None:
        return ApplyDecision(is_approved=True, reason=reason)
    return ApplyDecision(
        is_approved=True,
        reason=reason,
        approver=by.id,
        approver_name=by.name,
        approver_kind=by.kind,
    )


async def test_clean_policy_applies_without_asking(client: Client) -> None:
    fake = FakeTerraform()
    async with running(client, fake) as tq:
        handle = await start(client, tq, request(scenario="happy-path"))
        result = await handle.result()
    assert result.state == RunState.APPLIED
    assert result.outputs == {"namespace_name": handle.id.removeprefix("provision-")}
    assert len(fake.plans) == 1 and len(fake.applies) == 1
    # Apply got exactly the plan that was made.
    assert fake.applies[0].plan_sha256 == f"sha-{fake.plans[0].plan_id}"


async def test_approve_via_update_with_validation(client: Client) -> None:
    fake = FakeTerraform(SOFT)
    async with running(client, fake) as tq:
        handle = await start(client, tq, request())
        status = await wait_state(handle, RunState.AWAITING_APPROVAL)
        assert status.policy and status.policy.verdict == "needs_approval"
        assert await handle.query("get_current_status") == "awaiting_approval"
        assert await handle.query("get_progress") == 50
        assert "plan" in await handle.query("get_plan")
        assert fake.applies == []

        with pytest.raises(WorkflowUpdateFailedError) as empty:
            await decide(handle, approve(BOB, reason="  "))
        assert "reason is required" in str(empty.value.cause)

        outcome = await decide(handle, approve(BOB))
        assert outcome["accepted"] is True
        result = await handle.result()
        assert result.state == RunState.APPLIED
        assert await handle.query("get_reason") == "looks good"

        with pytest.raises(RPCError) as late:
            await decide(handle, approve(CAROL))
        assert "already completed" in str(late.value)
        status = await handle.query("get_state", result_type=RunStatus)
    assert [d.actor.id for d in status.decisions] == [BOB.id]
    assert status.decisions[0].via == "update"


async def test_deny_via_signal_rejects_and_applies_nothing(client: Client) -> None:
    fake = FakeTerraform(SOFT)
    async with running(client, fake) as tq:
        req = request(scenario="human-in-the-loop-signal", approval_channel=ApprovalChannel.SIGNAL)
        handle = await start(client, tq, req)
        await wait_state(handle, RunState.AWAITING_APPROVAL)
        # The original demo's shape: no reason, no approver.
        await handle.signal("signal_apply_decision", {"is_approved": False})
        result = await handle.result()
        status = await handle.query("get_state", result_type=RunStatus)
    assert result.state == RunState.REJECTED
    assert fake.applies == []
    assert status.decisions[0].actor.kind == "operator"
    assert status.decisions[0].via == "signal"


async def test_replan_continues_as_new_with_a_fresh_plan(client: Client) -> None:
    fake = FakeTerraform(SOFT)
    async with running(client, fake) as tq:
        handle = await start(client, tq, request())
        await wait_state(handle, RunState.AWAITING_APPROVAL)
        first_run = (await handle.describe()).run_id
        await handle.signal("request_continue_as_new")
        latest = client.get_workflow_handle(handle.id, result_type=ProvisionResult)

        async def new_run_waiting() -> RunStatus:
            while True:
                status = await wait_state(latest, RunState.AWAITING_APPROVAL)
                if status.run_id != first_run:
                    return status
                await asyncio.sleep(0.05)

        status = await asyncio.wait_for(new_run_waiting(), DEADLINE)
        assert status.replan_count == 1
        assert status.decisions == []
        await decide(latest, approve(BOB))
        result = await latest.result()
    assert result.state == RunState.APPLIED
    assert len(fake.plans) == 2
    assert fake.plans[0].plan_id != fake.plans[1].plan_id
    assert fake.applies[0].plan_sha256 == f"sha-{fake.plans[1].plan_id}"


async def test_two_required_approvals_from_distinct_approvers(client: Client) -> None:
    fake = FakeTerraform(SOFT)
    async with running(client, fake) as tq:
        handle = await start(client, tq, request(required_approvals=2))
        await wait_state(handle, RunState.AWAITING_APPROVAL)
        first = await decide(handle, approve(BOB))
        assert first["approvals"] == 1 and first["required_approvals"] == 2
        with pytest.raises(WorkflowUpdateFailedError) as again:
            await decide(handle, approve(BOB, "twice"))
        assert "already decided" in str(again.value.cause)
        assert (await handle.query("get_state", result_type=RunStatus)).state == (
            RunState.AWAITING_APPROVAL
        )
        await decide(handle, approve(CAROL))
        result = await handle.result()
    assert result.state == RunState.APPLIED


async def test_one_deny_rejects_even_after_an_approval(client: Client) -> None:
    fake = FakeTerraform(SOFT)
    async with running(client, fake) as tq:
        handle = await start(client, tq, request(required_approvals=2))
        await wait_state(handle, RunState.AWAITING_APPROVAL)
        await decide(handle, approve(BOB))
        await decide(
            handle, ApplyDecision(is_approved=False, approver=CAROL.id, approver_kind="slack")
        )
        result = await handle.result()
    assert result.state == RunState.REJECTED
    assert fake.applies == []


async def test_four_eyes(client: Client) -> None:
    fake = FakeTerraform(SOFT)
    async with running(client, fake) as tq:
        handle = await start(client, tq, request())
        await wait_state(handle, RunState.AWAITING_APPROVAL)
        with pytest.raises(WorkflowUpdateFailedError) as own:
            await decide(handle, approve(ALICE))
        assert "four eyes" in str(own.value.cause)
        # An operator acting through Temporal directly is recorded as such.
        await decide(handle, approve(None, "break glass"))
        result = await handle.result()
        assert result.state == RunState.APPLIED
        status = await handle.query("get_state", result_type=RunStatus)
        assert status.decisions[0].actor.kind == "operator"

        self_ok = await start(client, tq, request(allow_self_approval=True))
        await wait_state(self_ok, RunState.AWAITING_APPROVAL)
        await decide(self_ok, approve(ALICE))
        assert (await self_ok.result()).state == RunState.APPLIED


async def test_decision_when_none_is_awaited_is_rejected(client: Client) -> None:
    fake = FakeTerraform()
    async with running(client, fake) as tq:
        handle = await start(client, tq, request(scenario="happy-path", ttl_seconds=3600))
        await wait_state(handle, RunState.EPHEMERAL_WAIT)
        with pytest.raises(WorkflowUpdateFailedError) as none:
            await decide(handle, approve(BOB))
        assert "no decision is awaited" in str(none.value.cause)
        await handle.signal("destroy_now")
        assert (await handle.result()).state == RunState.DESTROYED


async def test_approval_timeout_expires_and_applies_nothing(client: Client) -> None:
    fake = FakeTerraform(SOFT)
    async with running(client, fake) as tq:
        handle = await start(client, tq, request(approval_timeout_seconds=2))
        result = await handle.result()
    assert result.state == RunState.EXPIRED
    assert "no decision" in result.reason
    assert fake.applies == []


async def test_hard_policy_failure_stops_before_apply(client: Client) -> None:
    fake = FakeTerraform(HARD + SOFT)
    async with running(client, fake) as tq:
        handle = await start(client, tq, request(scenario="non-recoverable-failure"))
        with pytest.raises(WorkflowFailureError) as failed:
            await handle.result()
        assert "account_owner" in str(failed.value.cause)
        status = await handle.query("get_state", result_type=RunStatus)
    assert status.state == RunState.POLICY_FAILED
    assert fake.applies == []


async def test_api_failure_retries_until_the_fifth_attempt(client: Client) -> None:
    fake = FakeTerraform()
    async with running(client, fake) as tq:
        handle = await start(
            client, tq, request(scenario="api-failure", faults=Faults(apply_failures=4))
        )
        result = await handle.result()
    assert result.state == RunState.APPLIED
    assert fake.apply_attempts == [1, 2, 3, 4, 5]


async def test_stale_plan_is_replanned_and_asks_again(client: Client) -> None:
    fake = FakeTerraform(SOFT, stale_applies=1)
    async with running(client, fake) as tq:
        handle = await start(client, tq, request())
        await wait_state(handle, RunState.AWAITING_APPROVAL)
        await decide(handle, approve(BOB))
        # The first plan went stale: a new plan needs a new approval.
        status = await wait_state(handle, RunState.AWAITING_APPROVAL)
        assert status.decisions == []
        await decide(handle, approve(CAROL))
        result = await handle.result()
    assert result.state == RunState.APPLIED
    assert len(fake.plans) == 2
    assert fake.applies[0].plan_sha256 == f"sha-{fake.plans[1].plan_id}"


async def test_ttl_destroys_after_a_short_ttl(client: Client) -> None:
    fake = FakeTerraform()
    async with running(client, fake) as tq:
        handle = await start(client, tq, request(scenario="ephemeral", ttl_seconds=2))
        status = await wait_state(handle, RunState.EPHEMERAL_WAIT)
        assert status.ttl_deadline is not None
        result = await handle.result()
    assert result.state == RunState.DESTROYED
    assert [p.destroy for p in fake.plans] == [False, True]
    assert len(fake.applies) == 2


async def test_extend_ttl_moves_the_deadline(client: Client) -> None:
    fake = FakeTerraform()
    async with running(client, fake) as tq:
        handle = await start(client, tq, request(scenario="ephemeral", ttl_seconds=3600))
        before = await wait_state(handle, RunState.EPHEMERAL_WAIT)
        await handle.signal("extend_ttl", {"seconds": 600})
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DEADLINE
        while loop.time() < deadline:
            after = await handle.query("get_state", result_type=RunStatus)
            if after.ttl_deadline != before.ttl_deadline:
                break
            await asyncio.sleep(0.05)
        assert after.ttl_deadline - before.ttl_deadline == timedelta(seconds=600)
        await handle.signal("destroy_now")
        assert (await handle.result()).state == RunState.DESTROYED


async def test_deprovision_asks_where_policy_requires(client: Client) -> None:
    protected = [
        PolicyFinding(rule="protected_delete", level=PolicyLevel.SOFT, message="protected")
    ]
    fake = FakeTerraform(protected)
    async with running(client, fake) as tq:
        workspace = f"t-{uuid.uuid4().hex[:12]}"
        handle = await client.start_workflow(
            DeprovisionInfraWorkflow.run,
            DeprovisionRequest(workspace=workspace, requester=ALICE),
            id=f"provision-{workspace}",
            task_queue=tq,
            result_type=ProvisionResult,
        )
        await wait_state(handle, RunState.AWAITING_APPROVAL)
        await decide(handle, approve(BOB))
        result = await handle.result()
    assert result.state == RunState.DESTROYED
    assert fake.plans[0].destroy is True
    assert fake.plans[0].tf_directory is None


async def test_pace_slows_each_step_with_durable_timers(client: Client) -> None:
    fake = FakeTerraform()
    async with running(client, fake) as tq:
        handle = await start(client, tq, request(scenario="happy-path", pace_seconds=0.2))
        result = await handle.result()
        history = await handle.fetch_history()
    assert result.state == RunState.APPLIED
    timers = [e for e in history.events if e.HasField("timer_started_event_attributes")]
    # plan, policy and apply each wait out the pace first.
    assert len(timers) == 3


async def test_a_chat_identity_is_recorded_only_when_the_front_door_signed_it(
    client: Client,
) -> None:
    fake = FakeTerraform(SOFT)
    async with running(client, fake) as tq:
        handle = await start(client, tq, request(required_approvals=3))
        await wait_state(handle, RunState.AWAITING_APPROVAL)
        # `temporal workflow update … approver_kind: slack` by hand: no signature.
        await decide(handle, approve(BOB, "forged"), sign=False)
        # A signature made for another run does not count either: it is the operator again.
        other = SIGNER.sign(handle.id, "another-run-id", approve(CAROL, "replayed"))
        with pytest.raises(WorkflowUpdateFailedError) as again:
            await decide(handle, other, sign=False)
        assert "has already decided" in str(again.value.cause)
        # The real thing.
        await decide(handle, approve(CAROL, "reviewed"))
        state = await handle.query("get_state", result_type=RunStatus)
    actors = [(d.actor.id, d.actor.kind) for d in state.decisions]
    assert actors == [("temporal-operator", "operator"), ("U0CAROL", "slack")]
    assert "claiming bob" in state.decisions[0].actor.name


async def test_the_workflow_enforces_the_approver_set_and_reasons_on_signals(
    client: Client,
) -> None:
    fake = FakeTerraform(SOFT)
    async with running(client, fake) as tq:
        handle = await start(client, tq, request(approvers=["U0CAROL", "S0LEADS"]))
        await wait_state(handle, RunState.AWAITING_APPROVAL)
        with pytest.raises(WorkflowUpdateFailedError) as outsider:
            await decide(handle, approve(BOB))
        assert "bob is not an approver" in str(outsider.value.cause)
        # A signal without a reason cannot skip the update path's reason rule.
        run_id = (await handle.describe()).run_id
        bare = SIGNER.sign(handle.id, run_id, approve(CAROL, ""))
        await handle.signal("signal_apply_decision", bare)
        state = await handle.query("get_state", result_type=RunStatus)
        assert state.state == RunState.AWAITING_APPROVAL and state.decisions == []
        # A member of an approver group, as the bot verified it, may approve.
        lead = ApplyDecision(
            is_approved=True,
            reason="lead approves",
            approver="U0DAVE",
            approver_name="dave",
            approver_kind="slack",
            approver_groups=["S0LEADS"],
        )
        await decide(handle, lead)
        result = await handle.result()
    assert result.state == RunState.APPLIED
