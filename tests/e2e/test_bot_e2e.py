"""The Slack front door end to end: the real bot (in process, Socket Mode), a real `provision
worker` process whose notify activity talks to the same LocalSlack, the real dev server and real
terraform. Each test asserts what people in the channel see, and what reached the workflow.
"""

from __future__ import annotations

import asyncio
import re
import signal

import aiohttp
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from bot.app import BotHandle
from bot.blocks import APPROVE, DENY, DESTROY_NOW, EXTEND_TTL, REPLAN
from bot.modals import REASON_BLOCK, REASON_INPUT
from localslack import InputRejected, LocalSlack
from tests.support.processes import VENV_BIN, Stack
from tests.support.slack_e2e import (
    ALICE,
    BOB,
    CAROL,
    INFRA,
    RUN_TIMEOUT,
    SECRET_CANARY,
    buttons,
    ephemeral_saying,
    history_events,
    message_saying,
    namespace_exists,
    run_message,
    shown,
)

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("slack_stays_valid")]


# -- tests ----------------------------------------------------------------------------------


async def test_happy_path_converges_through_slack_errors_then_destroys(
    slack: LocalSlack, slack_stack: Stack, bot: BotHandle
) -> None:
    # Slack is briefly rate limiting and failing: the run must not notice.
    slack.fail_next("chat.update", status=429, retry_after=1)
    slack.fail_next("chat.update", status=500)
    ack = await slack.slash_command(ALICE, "happy-path")
    assert ack.latency < 3.0
    ts = await run_message(slack, "alice-happy-path")
    message = await message_saying(slack, ts, "applied")
    text = shown(message)
    assert "happy-path · alice-happy-path" in text and "<@U0ALICE>" in text
    assert "100%" in text and "`namespace_name` = `alice-happy-path`" in text
    assert "`connection_secret` = `(sensitive)`" in text
    assert "/namespaces/default/workflows/provision-alice-happy-path/" in text
    assert buttons(message) == []
    assert await namespace_exists(slack_stack, "alice-happy-path")
    statuses = [c.status for c in slack.calls_to("chat.update")]
    assert 429 in statuses and 500 in statuses and statuses[-1] == 200

    # The full plan is in the thread, once, however often the message was updated.
    def plan_replies(s: LocalSlack) -> list[dict]:
        return [m for m in s.thread(INFRA, ts)[1:] if "Full plan of alice-happy-path" in m["text"]]

    [plan] = await slack.wait_for(plan_replies, timeout=10)
    assert "null_resource" in shown(plan)
    assert len([c for c in slack.calls_to("chat.update") if c.ok]) >= 2
    assert len(plan_replies(slack)) == 1

    # Carol may not tear Alice's namespace down; Alice may, and gets a message of its own.
    await slack.slash_command(CAROL, "destroy alice-happy-path")
    await ephemeral_saying(slack, CAROL, "Only its owners (<@U0ALICE>) or an approver can destroy")
    await slack.slash_command(ALICE, "destroy alice-happy-path")
    destroy_ts = await slack.wait_for(
        lambda s: [m["ts"] for m in s.messages(INFRA) if m["text"].startswith("destroy on ")],
        timeout=10,
    )
    destroyed = await message_saying(slack, destroy_ts[-1], "destroyed")
    assert "destroy · alice-happy-path" in shown(destroyed)
    assert not await namespace_exists(slack_stack, "alice-happy-path")


async def test_update_path_refuses_outsiders_then_asks_a_reason(
    slack: LocalSlack, slack_stack: Stack, bot: BotHandle, temporal: Client
) -> None:
    workflow_id = "provision-alice-human-in-the-loop-update"
    await slack.slash_command(ALICE, "human-in-the-loop-update")
    ts = await run_message(slack, "alice-human-in-the-loop-update")
    waiting = await message_saying(slack, ts, "awaiting approval")
    assert buttons(waiting) == [APPROVE, DENY, REPLAN]
    assert "soft-mandatory `namespace_admin`" in shown(waiting)
    run_id = (await temporal.get_workflow_handle(workflow_id).describe()).run_id

    # Carol is no approver, Alice asked for it: both are refused and nothing reaches the run.
    await slack.click_button(CAROL, INFRA, ts, APPROVE)
    await ephemeral_saying(slack, CAROL, "not an approver")
    await slack.click_button(ALICE, INFRA, ts, APPROVE)
    await ephemeral_saying(slack, ALICE, "Four eyes")
    assert slack.views(CAROL) == [] and slack.views(ALICE) == []

    await slack.click_button(BOB, INFRA, ts, APPROVE)
    [modal] = await slack.wait_for(lambda s: s.views(BOB), timeout=10)
    with pytest.raises(InputRejected):  # Slack's client insists on a reason
        await slack.submit_view(BOB, modal["id"], {REASON_BLOCK: {REASON_INPUT: ""}})
    blank = await slack.submit_view(BOB, modal["id"], {REASON_BLOCK: {REASON_INPUT: "   "}})
    assert blank.response_action == "errors" and not blank.closed
    assert "a reason is required to approve" in blank.errors[REASON_BLOCK]
    events = await history_events(temporal, workflow_id, run_id)
    assert EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED not in events
    assert EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED not in events

    done = await slack.submit_view(
        BOB, modal["id"], {REASON_BLOCK: {REASON_INPUT: "reviewed the grant"}}
    )
    assert done.closed and done.response_action is None
    applied = await message_saying(slack, ts, "applied")
    assert buttons(applied) == []
    assert "approved by <@U0BOB>" in shown(applied) and "reviewed the grant" in shown(applied)
    await ephemeral_saying(slack, BOB, "approved by bob")
    [decision] = (await temporal.get_workflow_handle(workflow_id).query("get_state"))["decisions"]
    # Bob's group, as the bot verified it and signed it with the decision.
    assert decision["actor"] == {
        "id": BOB,
        "name": "bob",
        "kind": "slack",
        "groups": ["S0APPROVERS"],
    }
    assert decision["via"] == "update"
    events = await history_events(temporal, workflow_id, run_id)
    assert events.count(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED) == 1
    assert await namespace_exists(slack_stack, "alice-human-in-the-loop-update")
    refused = bot.metrics.refusals
    assert refused.labels("not_approver")._value.get() >= 1
    assert refused.labels("self_approval")._value.get() >= 1


async def test_signal_path_replan_then_a_double_click_deny_sends_one_decision(
    slack: LocalSlack, slack_stack: Stack, bot: BotHandle, temporal: Client
) -> None:
    workflow_id = "provision-alice-human-in-the-loop-signal"
    await slack.slash_command(ALICE, "human-in-the-loop-signal")
    ts = await run_message(slack, "alice-human-in-the-loop-signal")
    await message_saying(slack, ts, "awaiting approval")
    first_run = (await temporal.get_workflow_handle(workflow_id).describe()).run_id

    await slack.click_button(BOB, INFRA, ts, REPLAN)
    await ephemeral_saying(slack, BOB, "Replan requested")

    def replanned(s: LocalSlack) -> dict | None:
        message = s.message(INFRA, ts)
        fresh = "replan 1" in shown(message) and message["text"].endswith("awaiting approval")
        return message if fresh else None

    again = await slack.wait_for(replanned, timeout=RUN_TIMEOUT)
    second_run = (await temporal.get_workflow_handle(workflow_id).describe()).run_id
    assert second_run != first_run and second_run in shown(again)
    assert buttons(again) == [APPROVE, DENY, REPLAN]

    # Two clicks before the first one's effect shows: one signal, one "already decided".
    await asyncio.gather(
        slack.click_button(BOB, INFRA, ts, DENY), slack.click_button(BOB, INFRA, ts, DENY)
    )
    await ephemeral_saying(slack, BOB, "already decided: denied by bob")
    rejected = await message_saying(slack, ts, "rejected")
    assert buttons(rejected) == [] and "denied by <@U0BOB>" in shown(rejected)
    events = await history_events(temporal, workflow_id, second_run)
    assert events.count(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED) == 1
    assert not await namespace_exists(slack_stack, "alice-human-in-the-loop-signal")


async def test_ephemeral_run_extend_and_destroy_now(
    slack: LocalSlack, slack_stack: Stack, bot: BotHandle, temporal: Client
) -> None:
    workflow_id = "provision-alice-ephemeral"
    await slack.slash_command(ALICE, "ephemeral --ttl 600")
    ts = await run_message(slack, "alice-ephemeral")
    waiting = await message_saying(slack, ts, "applied, waiting out its TTL")
    assert buttons(waiting) == [EXTEND_TTL, DESTROY_NOW]
    handle = temporal.get_workflow_handle(workflow_id)
    before = (await handle.query("get_state"))["ttl_deadline"]

    await slack.click_button(CAROL, INFRA, ts, DESTROY_NOW)
    await ephemeral_saying(slack, CAROL, "Only the requester, an owner or an approver")
    await slack.click_button(ALICE, INFRA, ts, EXTEND_TTL)
    await ephemeral_saying(slack, ALICE, "Extended by 60 minutes")

    async def extended() -> bool:
        return (await handle.query("get_state"))["ttl_deadline"] != before

    await asyncio.wait_for(_until(extended), 10)
    await slack.click_button(ALICE, INFRA, ts, DESTROY_NOW)
    destroyed = await message_saying(slack, ts, "destroyed")
    assert buttons(destroyed) == []
    assert not await namespace_exists(slack_stack, "alice-ephemeral")


async def _until(predicate) -> None:
    while not await predicate():
        await asyncio.sleep(0.05)


async def test_commands_status_list_help_and_usage_errors(
    slack: LocalSlack, bot: BotHandle
) -> None:
    unknown = await slack.slash_command(CAROL, "frobnicate")
    assert "unknown command or stack 'frobnicate'" in unknown.payload["text"]
    assert "Stacks:" in unknown.payload["text"]
    await slack.slash_command(CAROL, "happy-path --prefix 'x; rm -rf /'")
    await ephemeral_saying(slack, CAROL, "prefix")
    await slack.slash_command(CAROL, "happy-path --colour blue")
    await ephemeral_saying(slack, CAROL, "unrecognized arguments: --colour blue")
    await slack.slash_command(CAROL, "status nobody-happy-path")
    await ephemeral_saying(slack, CAROL, "no run found for nobody-happy-path")
    await slack.slash_command(CAROL, "approve nobody-x --reason because")
    await ephemeral_saying(slack, CAROL, "no run found")
    await slack.slash_command(CAROL, "list")
    await ephemeral_saying(slack, CAROL, "Recent runs")
    help_ack = await slack.slash_command(CAROL, "help")
    assert "/provision &lt;command&gt;" in help_ack.payload["text"]


async def test_a_busy_workspace_is_refused_with_the_holder_named(
    slack: LocalSlack, bot: BotHandle, temporal: Client
) -> None:
    await slack.slash_command(BOB, "human-in-the-loop-update --workspace bob-busy")
    ts = await run_message(slack, "bob-busy")
    await message_saying(slack, ts, "awaiting approval")
    await slack.slash_command(BOB, "human-in-the-loop-update --workspace bob-busy")
    told = await ephemeral_saying(slack, BOB, "Not started")
    assert "workspace bob-busy is busy" in told and "provision-bob-busy" in told
    failed = await message_saying(slack, await run_message(slack, "bob-busy"), "not started")
    assert "busy" in shown(failed)
    # The command path has the same checks as the buttons: Bob asked, so Bob may only deny.
    await slack.slash_command(BOB, "approve bob-busy --reason mine")
    await ephemeral_saying(slack, BOB, "Four eyes")
    await slack.slash_command(BOB, "deny bob-busy --reason 'not today'")
    await ephemeral_saying(slack, BOB, "denied by bob")
    await message_saying(slack, ts, "rejected")


async def test_a_disconnect_envelope_loses_no_command(slack: LocalSlack, bot: BotHandle) -> None:
    opened = slack.connections_opened
    assert await slack.disconnect_all() == 1
    during = await slack.slash_command(CAROL, "help", timeout=10)
    await slack.wait_for(lambda s: s.connections_opened == opened + 1 and s.connections == 1)
    after = await slack.slash_command(CAROL, "list", timeout=10)
    assert "Usage" in during.payload["text"] and during.deliveries == 1
    assert after.deliveries == 1
    await ephemeral_saying(slack, CAROL, "Recent runs")
    assert all(e.duplicate_acks == 0 for e in slack.envelopes)


async def test_healthz_and_metrics(slack: LocalSlack, bot: BotHandle) -> None:
    await slack.slash_command(CAROL, "help")
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{bot.health_url}/healthz") as response:
            assert response.status == 200
            assert (await response.json())["socket_mode"] == "connected"
        async with session.get(f"{bot.health_url}/metrics") as response:
            assert response.status == 200
            page = await response.text()
    assert 'provision_bot_slash_commands_total{verb="help"}' in page
    assert 'provision_bot_ack_seconds_bucket{kind="slash_commands",le="0.2"}' in page
    assert "provision_bot_decisions_total" in page
    assert "provision_bot_refused_actions_total" in page
    assert "provision_bot_slack_api_errors_total" in page


async def test_provision_bot_process_without_temporal_then_without_slack(
    slack_stack: Stack, tmp_path
) -> None:
    """`provision bot` starts while Temporal is down, answers with an ephemeral error, reports
    503 when Slack goes away, and stops cleanly on SIGTERM."""
    own = LocalSlack()
    await own.start()
    log_path = tmp_path / "bot.log"
    env = {
        **slack_stack.env,
        "TEMPORAL_ADDRESS": "127.0.0.1:1",
        "SLACK_BOT_TOKEN": own.bot_token,
        "SLACK_APP_TOKEN": own.app_token,
        "SLACK_API_URL": own.api_url,
        "PROVISION_BOT_HEALTH_ADDRESS": "127.0.0.1:0",
    }
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            str(VENV_BIN / "provision"),
            "bot",
            env=env,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
        )
    try:
        await own.wait_for(lambda s: s.connections == 1, timeout=30)
        health = await _health_url(log_path)
        assert "the bot starts anyway" in log_path.read_text()
        await own.slash_command(CAROL, "happy-path")
        told = await own.wait_for(
            lambda s: [e["text"] for e in s.ephemerals(CAROL) if "unreachable" in e["text"]],
            timeout=20,
        )
        assert "cannot reach Temporal at 127.0.0.1:1" in told[0]
        assert own.messages(INFRA) == []  # nothing was posted in the channel
        assert "Usage" in (await own.slash_command(CAROL, "help")).payload["text"]
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{health}/healthz") as response:
                assert response.status == 200
            await own.stop()

            async def unhealthy() -> bool:
                async with session.get(f"{health}/healthz") as response:
                    return response.status == 503

            await asyncio.wait_for(_until(unhealthy), 30)
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0
        # The SDK may log its failed reconnects while Slack is away; the shutdown must be clean.
        shutdown = log_path.read_text().split("stopping the Slack bot", 1)[1]
        assert "Slack bot stopped" in shutdown and "Traceback" not in shutdown
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await own.stop()


async def _health_url(log_path) -> str:
    async def logged() -> bool:
        return "health and metrics on" in log_path.read_text(errors="replace")

    await asyncio.wait_for(_until(logged), 30)
    return re.search(r"health and metrics on (http://\S+)", log_path.read_text()).group(1)


async def test_no_secret_ever_reached_slack(slack: LocalSlack, slack_stack: Stack) -> None:
    """Runs above applied with the canary as a sensitive terraform input and output."""
    import json

    assert slack.calls_to("chat.update"), "no run message was ever updated"
    every_call = json.dumps(
        [{"method": c.method, "params": c.params, "response": c.response} for c in slack.calls],
        default=str,
    )
    assert "(sensitive)" in every_call  # the redacted output was shown...
    assert SECRET_CANARY not in every_call  # ...and its value never was
    assert SECRET_CANARY not in slack_stack.worker_log.read_text()
    state = list((slack_stack.data_dir / "workspaces").glob("*/terraform.tfstate*"))
    assert any(SECRET_CANARY in p.read_text() for p in state), "the canary never reached terraform"
