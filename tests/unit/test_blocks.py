"""The run message stays within Slack's limits whatever a run holds, and says what users need.

Slack's own rules are checked with LocalSlack's validator (the one its Web API applies), so a
message that passes here is one Slack would accept.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

import bot.blocks as blocks_module
from bot.blocks import (
    APPROVE,
    DENY,
    DESTROY_NOW,
    EXTEND_TTL,
    MAX_BLOCKS,
    REPLAN,
    RunRef,
    render_help,
    render_run_list,
    render_run_message,
    render_start_failure,
)
from bot.grammar import HELP
from bot.modals import DecisionContext, MetadataSeal, decision_modal, notice_modal
from localslack.validation import (
    MAX_MESSAGE_BLOCKS,
    block_errors,
    message_text_errors,
    view_errors,
)
from provision.runs import RunSummary
from tests.support.runs import awaiting_status
from workflows.models import (
    Actor,
    ApprovalChannel,
    DecisionRecord,
    PlanSummary,
    PolicyFinding,
    PolicyLevel,
    PolicyReport,
    RunState,
    RunStatus,
)

ALICE = Actor(id="U0ALICE", name="alice", kind="slack")
BOB = Actor(id="U0BOB", name="bob", kind="slack")
AT = datetime(2026, 5, 4, 12, 30, tzinfo=UTC)


def status(**changes) -> RunStatus:
    defaults = {
        "slack": None,
        "plan_summary": PlanSummary(
            add=2, resources=["null_resource.namespace", "null_resource.grant"]
        ),
        "plan_text": "+ null_resource.namespace\n+ null_resource.grant\n",
        "policy": PolicyReport(
            findings=[
                PolicyFinding(
                    rule="namespace_admin",
                    level=PolicyLevel.SOFT,
                    message="alice@example.com would become namespace admin",
                )
            ]
        ),
        "expires_at": AT,
        "ui_url": "http://localhost:8233",
    }
    return awaiting_status(**{"workspace": "alice-human-in-the-loop-update", **defaults, **changes})


def assert_slack_accepts(text: str, blocks: list[dict]) -> None:
    assert len(blocks) <= MAX_BLOCKS
    assert block_errors(blocks, limit=MAX_MESSAGE_BLOCKS) == []
    assert message_text_errors(text) == []


def all_text(blocks: list[dict]) -> str:
    parts: list[str] = []

    def walk(node) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("text"), str):
                parts.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(blocks)
    return "\n".join(parts)


def buttons(blocks: list[dict]) -> dict[str, dict]:
    return {
        element["action_id"]: element
        for block in blocks
        if block["type"] == "actions"
        for element in block["elements"]
    }


def test_awaiting_approval_shows_what_a_reviewer_needs() -> None:
    text, blocks = render_run_message(status(), namespace="default")
    assert_slack_accepts(text, blocks)
    assert text == "human-in-the-loop-update on alice-human-in-the-loop-update: awaiting approval"
    shown = all_text(blocks)
    assert blocks[0]["type"] == "header"
    assert "human-in-the-loop-update · alice-human-in-the-loop-update" in shown
    assert "<@U0ALICE>" in shown and "awaiting approval" in shown and "50%" in shown
    assert "+2 to add" in shown and "null_resource.grant" in shown
    assert "soft-mandatory `namespace_admin`" in shown
    assert "1 more approval needed" in shown
    url = (
        "http://localhost:8233/namespaces/default/workflows/"
        "provision-alice-human-in-the-loop-update/0196-run/history"
    )
    assert f"<{url}|provision-alice-human-in-the-loop-update>" in shown
    assert "full plan is in this message's thread" in shown

    actions = buttons(blocks)
    assert list(actions) == [APPROVE, DENY, REPLAN]
    ref = RunRef.decode(actions[APPROVE]["value"])
    assert ref == RunRef("provision-alice-human-in-the-loop-update", "0196-run")
    # Only the ids: who asked and how the run decides are read from the run on each click.
    assert json.loads(actions[APPROVE]["value"]) == {"w": ref.workflow_id, "r": "0196-run"}


def test_signal_scenario_buttons_say_so() -> None:
    _, blocks = render_run_message(status(approval_channel=ApprovalChannel.SIGNAL))
    assert set(json.loads(buttons(blocks)[DENY]["value"])) == {"w", "r"}
    assert "sent as signals" in all_text(blocks)


def test_a_plan_offers_apply() -> None:
    _, blocks = render_run_message(status(plan_only=True))
    assert buttons(blocks)[APPROVE]["text"]["text"] == "Apply"
    assert "Planned only" in all_text(blocks)


def test_after_the_decision_the_buttons_go_and_the_decider_shows() -> None:
    decided = status(
        state=RunState.APPLIED,
        progress=100,
        decisions=[
            DecisionRecord(is_approved=True, reason="reviewed", actor=BOB, at=AT, via="update")
        ],
        outputs={"namespace_name": "alice-x", "connection_secret": "(sensitive)"},
    )
    text, blocks = render_run_message(decided)
    assert_slack_accepts(text, blocks)
    assert buttons(blocks) == {}
    shown = all_text(blocks)
    assert "approved by <@U0BOB>" in shown and ": reviewed" in shown
    assert "<!date^" in shown
    assert "`namespace_name` = `alice-x`" in shown and "(sensitive)" in shown


def test_ttl_runs_offer_extend_and_destroy_now() -> None:
    waiting = status(state=RunState.EPHEMERAL_WAIT, progress=100, ttl_deadline=AT)
    text, blocks = render_run_message(waiting)
    assert_slack_accepts(text, blocks)
    actions = buttons(blocks)
    assert list(actions) == [EXTEND_TTL, DESTROY_NOW]
    assert actions[DESTROY_NOW]["confirm"]["confirm"]["text"] == "Destroy"
    assert "Destroyed automatically at" in all_text(blocks)
    assert buttons(render_run_message(waiting, interactive=False)[1]) == {}


def test_huge_plans_findings_outputs_and_decisions_are_truncated_not_fatal() -> None:
    long = "x" * 5000
    huge = status(
        workspace="w" * 63,
        scenario="s" * 200,
        plan_summary=PlanSummary(
            add=5000,
            change=3,
            destroy=7,
            resources=[f"null_resource.r{i}_{long}" for i in range(5000)],
        ),
        plan_text="+ resource\n" * 100_000,
        policy=PolicyReport(
            findings=[
                PolicyFinding(rule=f"rule_{i}", level=level, message=long)
                for i in range(500)
                for level in (PolicyLevel.ADVISORY, PolicyLevel.HARD)
            ]
        ),
        outputs={f"out_{i}_{long}": {"nested": [long] * 10} for i in range(300)},
        decisions=[
            DecisionRecord(is_approved=True, reason=long, actor=BOB, at=AT, via="update")
            for _ in range(200)
        ],
        reason=long,
        error=long,
        state=RunState.FAILED,
    )
    text, blocks = render_run_message(huge)
    assert_slack_accepts(text, blocks)
    shown = all_text(blocks)
    assert "and 4980 more resources" in shown
    assert "more findings" in shown and "more outputs" in shown and "earlier decisions" in shown
    assert all(
        len(b["text"]["text"]) <= 3000 for b in blocks if b["type"] == "section" and "text" in b
    )
    # Hard-mandatory findings come first: they are the ones that stop a run.
    policy = next(
        b["text"]["text"] for b in blocks if "*Policy*" in b.get("text", {}).get("text", "")
    )
    assert policy.splitlines()[1].startswith(":no_entry: hard-mandatory")


def test_mrkdwn_from_terraform_cannot_ping_or_link() -> None:
    sneaky = status(
        state=RunState.APPLIED,
        outputs={"note": "<!channel> see <https://evil.example|here> & more"},
        plan_summary=PlanSummary(add=1, resources=["null_resource.<!here>"]),
    )
    shown = all_text(render_run_message(sneaky)[1])
    assert "<!channel>" not in shown and "<!here>" not in shown and "<https://evil" not in shown
    assert "&lt;!channel&gt;" in shown and "&amp; more" in shown


def test_without_ui_url_or_run_id_there_is_no_link() -> None:
    starting = status(run_id="", state=RunState.PENDING, progress=0, plan_summary=None, policy=None)
    text, blocks = render_run_message(starting)
    assert_slack_accepts(text, blocks)
    assert "`provision-alice-human-in-the-loop-update`" in all_text(blocks)
    assert "http://localhost:8233" not in all_text(blocks)


def test_a_layout_slack_sdk_refuses_falls_back_to_a_short_message(monkeypatch) -> None:
    from slack_sdk.errors import SlackObjectFormationError

    def refuse(*args, **kwargs):
        raise SlackObjectFormationError("nope")

    monkeypatch.setattr(blocks_module, "_run_blocks", refuse)
    text, blocks = render_run_message(status())
    assert_slack_accepts(text, blocks)
    assert "awaiting approval" in all_text(blocks)


def test_run_ref_round_trip_and_rejects_junk() -> None:
    ref = RunRef("provision-a", "run-1")
    assert RunRef.decode(ref.encode()) == ref
    # Values of older messages carried the requester and the channel: both are ignored.
    assert RunRef.decode('{"w":"provision-a","r":"run-1","q":"U0EVE","s":1}') == ref
    for junk in (
        None,
        "",
        "{}",
        "[1]",
        "not json",
        '{"w":1,"r":"x"}',
        '{"w":"","r":"x"}',
        '{"w":"a\\ud800","r":"x"}',
        '{"w":"' + "w" * 301 + '","r":"x"}',
    ):
        with pytest.raises(ValueError):
            RunRef.decode(junk)


def test_other_replies_are_valid_too() -> None:
    text, blocks = render_start_failure("happy-path", "alice-happy-path", ALICE, "busy " * 2000)
    assert_slack_accepts(text, blocks)
    runs = [
        RunSummary(
            f"provision-w{i}",
            f"r{i}",
            "ProvisionInfraWorkflow",
            "applied",
            "happy-path",
            "local_namespace",
            "completed",
            "2026-05-04T12:30:00+00:00",
        )
        for i in range(2000)
    ]
    text, blocks = render_run_list(runs)
    assert_slack_accepts(text, blocks)
    assert "provision-w0" in all_text(blocks)
    empty_text, empty = render_run_list([], "applied")
    assert "none" in empty_text and block_errors(empty, limit=MAX_MESSAGE_BLOCKS) == []
    helped = render_help("unknown scenario 'nope'", HELP)
    assert helped.startswith(":warning: unknown scenario 'nope'")
    assert "&lt;stack&gt;" in helped and "<stack>" not in helped


def test_decision_modal_and_notice_are_valid_views() -> None:
    context = DecisionContext(RunRef("provision-" + "w" * 63, "r" * 36), True, "w" * 63)
    seal = MetadataSeal("xoxb-secret")
    approve = decision_modal(context, seal.seal(context, "U0BOB"))
    assert view_errors(approve) == []
    assert seal.open(approve["private_metadata"], "U0BOB") == (context.ref, True)
    reason = next(b for b in approve["blocks"] if b["type"] == "input")
    assert reason["optional"] is False and reason["element"]["max_length"] == 2000
    deny = decision_modal(DecisionContext(context.ref, False, "w"), "{}")
    assert next(b for b in deny["blocks"] if b["type"] == "input")["optional"] is True
    assert view_errors(notice_modal("A very long title that Slack would refuse", "x" * 5000)) == []


def test_decision_form_metadata_is_sealed_to_its_run_verdict_and_user() -> None:
    seal = MetadataSeal("xoxb-secret")
    context = DecisionContext(RunRef("provision-a", "run-1"), True, "a")
    sealed = seal.seal(context, "U0BOB")
    data = json.loads(sealed)
    forged = [
        json.dumps({**data, "w": "provision-b"}),  # transplanted to another run
        json.dumps({**data, "r": "run-2"}),
        json.dumps({**data, "a": False}),  # the verdict flipped
        json.dumps({**data, "m": "0" * 64}),
        json.dumps({k: v for k, v in data.items() if k != "m"}),
        MetadataSeal("another-bot").seal(context, "U0BOB"),
        "not json",
        "",
    ]
    for metadata in forged:
        with pytest.raises(ValueError):
            seal.open(metadata, "U0BOB")
    with pytest.raises(ValueError):
        seal.open(sealed, "U0EVE")  # opened for bob, submitted as eve
    assert seal.open(sealed, "U0BOB") == (context.ref, True)
