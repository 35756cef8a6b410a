"""What people read in Slack: the deny modal, the private answers, refusals, status lines, plan
counts (issue 14.8). Each test reads the text a user would see."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.access import AccessPolicy, ApproverDirectory
from bot.blocks import (
    RunRef,
    decision_ack,
    mention,
    plan_counts,
    render_run_message,
)
from bot.modals import DecisionContext, decision_modal
from tests.support.runs import awaiting_status
from workflows.models import (
    OPERATOR,
    Actor,
    DecisionRecord,
    PlanSummary,
    RunState,
    RunStatus,
)

ALICE = Actor(id="U0ALICE", name="alice", kind="slack")
AT = datetime(2026, 5, 4, 12, 30, tzinfo=UTC)
REF = RunRef("provision-alice-hitl", "0196-run")


def status(**changes: object) -> RunStatus:
    defaults = {
        "plan_summary": PlanSummary(add=2, resources=["null_resource.a", "null_resource.b"]),
        "plan_text": "+ null_resource.a\n+ null_resource.b\n",
    }
    return awaiting_status(**{"workspace": "alice-hitl", **defaults, **changes})


def texts(node: object) -> str:
    if isinstance(node, dict):
        own = [node["text"]] if isinstance(node.get("text"), str) else []
        return "\n".join([*own, *(texts(v) for v in node.values())])
    if isinstance(node, list):
        return "\n".join(texts(v) for v in node)
    return ""


def shown_label(block: dict) -> str:
    """An input's label as Slack's client shows it: it appends " (optional)" itself."""
    return block["label"]["text"] + (" (optional)" if block.get("optional") else "")


def test_deny_modal_says_optional_once() -> None:
    context = DecisionContext(REF, approve=False, workspace="w")
    [reason] = [b for b in decision_modal(context, "{}")["blocks"] if b["type"] == "input"]
    assert shown_label(reason) == "Why do you deny? (optional)"
    approve = DecisionContext(REF, approve=True, workspace="w")
    [reason] = [b for b in decision_modal(approve, "{}")["blocks"] if b["type"] == "input"]
    assert shown_label(reason) == "Why do you approve?"


def test_private_answer_to_a_denial_is_not_a_check_mark() -> None:
    denied = decision_ack(False, "denied by bob")
    assert ":white_check_mark:" not in denied and "✅" not in denied
    assert denied.endswith("denied by bob")
    assert decision_ack(True, "approved by bob").startswith(":white_check_mark:")


def test_private_status_reply_points_to_the_run_messages_thread() -> None:
    _, private = render_run_message(status(), interactive=False)
    shown = texts(private)
    assert "this message's thread" not in shown
    assert "the thread of the run message in <#C0INFRA>" in shown
    _, posted = render_run_message(status(), interactive=True)
    assert "The full plan is in this message's thread." in texts(posted)
    many = status(
        plan_summary=PlanSummary(add=60, resources=[f"null_resource.r{i}" for i in range(60)])
    )
    _, private = render_run_message(many, interactive=False)
    assert "this message's thread" not in texts(private)


async def test_refusal_names_who_can_approve_not_the_setting() -> None:
    directory = ApproverDirectory(["U0BOB", "U0DAVE"], client=None)  # type: ignore[arg-type]
    policy = AccessPolicy(directory, allow_self_approval=False)
    refusal = await policy.decision_refusal("U0CAROL", status(), approve=True)
    assert refusal is not None
    assert "PROVISION_SLACK_APPROVERS" not in refusal.message
    assert "<@U0BOB>" in refusal.message and "<@U0DAVE>" in refusal.message
    nobody = AccessPolicy(ApproverDirectory([], client=None), allow_self_approval=False)  # type: ignore[arg-type]
    refusal = await nobody.decision_refusal("U0CAROL", status(), approve=False)
    assert refusal is not None and "PROVISION_SLACK_APPROVERS" not in refusal.message
    assert "provision approve" in refusal.message


def test_status_lines_name_the_operator_once() -> None:
    assert mention(OPERATOR) == "operator (via Temporal)"
    assert mention(Actor(id="cli:bob", name="bob", kind="cli")) == "bob (cli)"
    decided = status(
        state=RunState.APPLIED,
        progress=100,
        decisions=[
            DecisionRecord(is_approved=True, reason="ok", actor=OPERATOR, at=AT, via="update")
        ],
    )
    shown = texts(render_run_message(decided)[1])
    assert "operator (via Temporal)" in shown
    assert "(operator)" not in shown


@pytest.mark.parametrize(
    ("counts", "text"),
    [
        ((1, 0, 0), "+1 to add"),
        ((0, 2, 0), "~2 to change"),
        ((1, 0, 3), "+1 to add · −3 to destroy"),
        ((1, 2, 3), "+1 to add · ~2 to change · −3 to destroy"),
        ((0, 0, 0), "no changes"),
    ],
)
def test_plan_counts_leave_zeros_out(counts: tuple[int, int, int], text: str) -> None:
    assert plan_counts(*counts) == text


def test_run_message_has_no_zero_counts() -> None:
    shown = texts(render_run_message(status())[1])
    assert "+2 to add" in shown
    assert "~0" not in shown and "−0" not in shown


def test_slack_run_list_tells_repeated_workflow_ids_apart() -> None:
    from bot.blocks import render_run_list
    from provision.runs import RunSummary

    def summary(run_id: str, status: str, workflow_id: str = "provision-alice-hitl") -> RunSummary:
        return RunSummary(
            workflow_id=workflow_id,
            run_id=run_id,
            workflow_type="ProvisionInfraWorkflow",
            status=status,
            scenario="human-in-the-loop-update",
            tf_directory=None,
            execution_status=status,
            start_time="2026-05-04T12:30:00+00:00",
        )

    runs = [
        summary("r2", "terminated"),
        summary("r1", "continued_as_new"),
        summary("r0", "applied", "provision-b"),
    ]
    shown = texts(render_run_list(runs)[1])
    assert "`provision-alice-hitl` run `r2` terminated" in shown
    assert "`provision-alice-hitl` run `r1` continued_as_new" in shown
    assert "`provision-b` applied" in shown
