"""Trust (issue 13): forged and unauthorized clicks, submissions and commands, sent with Slack's
documented payload shapes through a real Socket Mode connection to the real bot, against runs
on a real worker, dev server and terraform. None may reach a workflow; the real ones still do.

Each forgery is one of the faults measured before: a value naming another run or requester, a
click from another message, channel, team or app, a form's metadata edited or replayed by
someone else, a decision sent past the bot with a chat identity it never verified.
"""

from __future__ import annotations

import copy
import json
import logging

import pytest
from temporalio.client import Client

from bot.app import BotHandle
from bot.blocks import APPROVE, DENY, REPLAN
from bot.modals import REASON_BLOCK, REASON_INPUT
from localslack import LocalSlack
from localslack.interactions import slash_command_payload
from tests.support.slack_e2e import (
    ALICE,
    BOB,
    CAROL,
    INFRA,
    ephemeral_saying,
    message_saying,
    reached,
    run_message,
    sent,
    shown,
)
from workflows.contracts import (
    QUERY_STATE,
    SIGNAL_APPLY_DECISION,
    UPDATE_APPLY_DECISION,
)
from workflows.models import ApplyDecision

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("slack_stays_valid")]


async def awaiting_run(slack: LocalSlack, user: str, text: str, workspace: str) -> str:
    await slack.slash_command(user, text)
    ts = await run_message(slack, workspace)
    await message_saying(slack, ts, "awaiting approval")
    return ts


async def refused(slack: LocalSlack, ack_call, user: str, needle: str) -> None:
    """Deliver a forged payload: acknowledged within Slack's 3 s, answered with a refusal."""
    ack = await ack_call
    assert ack.latency < 3.0
    await ephemeral_saying(slack, user, needle)


async def test_forged_clicks_submissions_and_commands_reach_no_workflow(
    slack: LocalSlack, bot: BotHandle, temporal: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    ts_a = await awaiting_run(
        slack, ALICE, "human-in-the-loop-update --prefix ta", "ta-human-in-the-loop-update"
    )
    ts_b = await awaiting_run(
        slack, ALICE, "human-in-the-loop-update --prefix tb", "tb-human-in-the-loop-update"
    )
    run_a, run_b = "provision-ta-human-in-the-loop-update", "provision-tb-human-in-the-loop-update"
    before = sent(bot)

    def click(user: str, ts: str, action: str) -> dict:
        return slack.button_payload(user, INFRA, ts, action)

    def value_of(payload: dict) -> dict:
        return json.loads(payload["actions"][0]["value"])

    # 1. Replan with the requester id in the value set to the clicker's own (was: replanned).
    forged = click(CAROL, ts_a, REPLAN)
    forged["actions"][0]["value"] = json.dumps({**value_of(forged), "q": CAROL})
    await refused(
        slack,
        slack.deliver("interactive", forged),
        CAROL,
        "Only the requester, an owner or an approver",
    )

    # 2. Approve on A's message carrying B's run (was: approved B).
    forged = click(BOB, ts_a, APPROVE)
    forged["actions"][0]["value"] = click(BOB, ts_b, APPROVE)["actions"][0]["value"]
    await refused(slack, slack.deliver("interactive", forged), BOB, "not on this run's message")

    # 3. A click from another channel than the run message's (was: approved).
    forged = click(BOB, ts_a, APPROVE)
    forged["channel"]["id"] = forged["container"]["channel_id"] = "C0RANDOM"
    await refused(slack, slack.deliver("interactive", forged), BOB, "not on this run's message")

    # 4. From another team, and from another app (was: approved).
    forged = click(BOB, ts_a, APPROVE)
    forged["team"]["id"] = forged["user"]["team_id"] = "T0OTHER"
    await refused(slack, slack.deliver("interactive", forged), BOB, "another Slack workspace")
    forged = click(BOB, ts_a, APPROVE)
    forged["api_app_id"] = "A0OTHER"
    await refused(slack, slack.deliver("interactive", forged), BOB, "another Slack app")

    # 5. "Decide by signal" set in the value of an update run (was: approved with no reason):
    #    the bot asks for a reason as the run says, so a form opens and nothing is sent.
    forged = click(BOB, ts_a, APPROVE)
    forged["actions"][0]["value"] = json.dumps({**value_of(forged), "s": 1})
    await slack.deliver("interactive", forged)
    [modal] = await slack.wait_for(lambda s: s.views(BOB), timeout=15)
    metadata = modal["private_metadata"]

    # 6. The form's metadata edited to name run B, or the verdict flipped (was: B approved).
    for edit in ({"w": run_b}, {"a": False}, {"m": "0" * 64}):
        payload = slack.submission_payload(BOB, modal["id"], {REASON_BLOCK: {REASON_INPUT: "lgtm"}})
        payload["view"]["private_metadata"] = json.dumps({**json.loads(metadata), **edit})
        ack = await slack.deliver("interactive", payload, accepts_response_payload=True)
        assert ack.payload["response_action"] == "errors", edit
        assert "out of date" in ack.payload["errors"][REASON_BLOCK]

    # 7. Bob's form submitted as Carol (a non-approver replaying it).
    payload = slack.submission_payload(BOB, modal["id"], {REASON_BLOCK: {REASON_INPUT: "lgtm"}})
    payload["user"] = copy.deepcopy(click(CAROL, ts_a, APPROVE)["user"])
    ack = await slack.deliver("interactive", payload, accepts_response_payload=True)
    assert ack.payload["response_action"] == "errors"

    # 8. The requester approving her own run, Carol approving, by button and by command.
    await refused(
        slack, slack.deliver("interactive", click(ALICE, ts_a, APPROVE)), ALICE, "Four eyes"
    )
    await refused(
        slack, slack.deliver("interactive", click(CAROL, ts_a, DENY)), CAROL, "not an approver"
    )
    await slack.slash_command(CAROL, f"approve {run_a} --reason mine now")
    await ephemeral_saying(slack, CAROL, "You are not an approver")

    # 9. Junk where the run reference goes, and a click naming no user: refused or ignored.
    forged = click(BOB, ts_a, APPROVE)
    forged["actions"][0]["value"] = '{"w": "provision-ta-human-in-the-loop-update\\ud800", "r": 1}'
    await refused(slack, slack.deliver("interactive", forged), BOB, "not a run's")
    forged = click(BOB, ts_a, APPROVE)
    forged["user"] = {"id": "<!channel>"}
    assert (await slack.deliver("interactive", forged)).latency < 3.0

    # Nothing reached either workflow, and the bot sent nothing.
    assert sent(bot) == before
    assert await reached(temporal, run_a) == []
    assert await reached(temporal, run_b) == []
    for workflow_id in (run_a, run_b):
        state = await temporal.get_workflow_handle(workflow_id).query(QUERY_STATE)
        assert state["state"] == "awaiting_approval" and state["decisions"] == []
    assert not [
        r for r in caplog.records if r.exc_info and r.name.startswith(("bot", "slack_bolt"))
    ]

    # The genuine decisions still work: Bob approves A with a reason in the form he opened.
    done = await slack.submit_view(BOB, modal["id"], {REASON_BLOCK: {REASON_INPUT: "reviewed"}})
    assert done.closed
    applied = await message_saying(slack, ts_a, "applied")
    assert "approved by <@U0BOB>" in shown(applied)
    await slack.slash_command(BOB, f"deny {run_b} --reason not this one")
    await message_saying(slack, ts_b, "rejected")


async def test_a_command_from_another_team_or_app_starts_nothing(
    slack: LocalSlack, bot: BotHandle, temporal: Client
) -> None:
    for field, value, needle in (
        ("team_id", "T0OTHER", "another Slack workspace"),
        ("api_app_id", "A0OTHER", "another Slack app"),
    ):
        # A genuine payload, edited: built as LocalSlack builds slash commands.
        ws = slack.workspace
        record, response_url = ws.issue_response_url(CAROL, INFRA)
        payload = slash_command_payload(
            ws,
            user_id=CAROL,
            channel_id=INFRA,
            command="/provision",
            text="happy-path --prefix foreign",
            response_url=response_url,
            trigger_id=ws.issue_trigger(CAROL),
        )
        payload[field] = value
        ack = await slack.deliver("slash_commands", payload, accepts_response_payload=True)
        assert ack.latency < 3.0
        await ephemeral_saying(slack, CAROL, needle)
    assert not [m for m in slack.messages(INFRA) if "foreign-happy-path" in m["text"]]
    listed = [
        w async for w in temporal.list_workflows("WorkflowId = 'provision-foreign-happy-path'")
    ]
    assert listed == []


async def test_decisions_sent_past_the_bot_are_recorded_as_an_operators(
    slack: LocalSlack, bot: BotHandle, temporal: Client
) -> None:
    """Someone with Temporal access claims to be Bob: recorded as an operator, not as Bob; a
    signal without a reason on an update run is ignored."""
    ts = await awaiting_run(
        slack, ALICE, "human-in-the-loop-update --prefix op", "op-human-in-the-loop-update"
    )
    handle = temporal.get_workflow_handle("provision-op-human-in-the-loop-update")
    claim = ApplyDecision(
        is_approved=True, reason="", approver=BOB, approver_name="bob", approver_kind="slack"
    )
    await handle.signal(SIGNAL_APPLY_DECISION, claim)
    # Processed after the signal: had the signal counted, this update would find it decided.
    claimed = claim.model_copy(update={"reason": "trust me", "approver_groups": ["S0APPROVERS"]})
    outcome = await handle.execute_update(UPDATE_APPLY_DECISION, claimed)
    assert outcome["accepted"]
    [decision] = (await handle.query(QUERY_STATE))["decisions"]
    assert decision["reason"] == "trust me"
    assert decision["actor"]["kind"] == "operator"
    assert decision["actor"]["id"] != BOB and "claiming" in decision["actor"]["name"]
    applied = await message_saying(slack, ts, "applied")
    assert "approved by <@U0BOB>" not in shown(applied)
