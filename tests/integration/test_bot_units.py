"""The bot's parts against LocalSlack, with Temporal replaced by an in-memory RunOperations:
approver groups, the notify activity, and the paths a real stack rarely takes (slow Temporal,
Temporal down, a plan replaced under a click, no approvers configured)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import pytest_asyncio
from slack_sdk.web.async_client import AsyncWebClient
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

import bot.listeners.views as views_module
from activities.notify import SlackNotifier, notifier_web_client, plan_marker
from bot.access import ApproverDirectory
from bot.app import BotHandle, connect_bot
from bot.blocks import APPROVE, DENY, render_run_message
from bot.modals import REASON_BLOCK, REASON_INPUT
from bot.operations import RunRefused, TemporalUnavailable
from bot.services import BotConfig
from localslack import LocalSlack
from workflows.models import (
    Actor,
    ApplyDecision,
    ApprovalChannel,
    DecisionOutcome,
    NotifyInput,
    PlanSummary,
    RunState,
    RunStatus,
    SlackMessageRef,
)

INFRA = "C0INFRA"
ALICE, BOB = "U0ALICE", "U0BOB"
MANIFEST = Path(__file__).resolve().parents[2] / "bot" / "manifest.yaml"


def waiting_status(**changes) -> RunStatus:
    status = RunStatus(
        workflow_type="ProvisionInfraWorkflow",
        workflow_id="provision-alice-x",
        run_id="run-1",
        scenario="human-in-the-loop-update",
        workspace="alice-x",
        tf_directory="local_admin_user",
        state=RunState.AWAITING_APPROVAL,
        progress=50,
        requester=Actor(id=ALICE, name="alice", kind="slack"),
        approval_channel=ApprovalChannel.UPDATE,
        required_approvals=1,
        plan_summary=PlanSummary(add=1, resources=["null_resource.grant"]),
        plan_text="+ null_resource.grant\n",
        updated_at=datetime(2026, 5, 4, tzinfo=UTC),
    )
    return status.model_copy(update=changes)


class FakeOperations:
    """RunOperations in memory: a status per workflow id, the decisions it was sent."""

    def __init__(self, status: RunStatus) -> None:
        self.current = status
        self.unavailable = False
        self.decisions: list[ApplyDecision] = []
        self.release = asyncio.Event()
        self.release.set()

    async def ready(self) -> None:
        if self.unavailable:
            raise TemporalUnavailable("cannot reach Temporal at 127.0.0.1:1")

    async def status(self, target: str) -> RunStatus:
        await self.ready()
        return self.current

    async def decide(self, workflow_id, run_id, decision, *, by_signal):
        await self.release.wait()
        if run_id != self.current.run_id:
            raise RunRefused("that run has ended")
        self.decisions.append(decision)
        return DecisionOutcome(
            accepted=True,
            state=RunState.APPROVED,
            approvals=1,
            required_approvals=1,
            message=f"approved by {decision.approver_name}",
        )

    async def start(self, request):
        raise RunRefused("not in this test")

    async def replan(self, workflow_id, run_id) -> None: ...

    async def destroy_now(self, workflow_id, run_id) -> None: ...

    async def extend_ttl(self, workflow_id, run_id, extension) -> None: ...

    async def list_runs(self, state=None):
        return []

    def run_url(self, workflow_id, run_id=None):
        return None


@pytest_asyncio.fixture
async def slack() -> AsyncIterator[LocalSlack]:
    server = LocalSlack()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def web(slack: LocalSlack) -> AsyncWebClient:
    return notifier_web_client(slack.bot_token, slack.api_url)


async def start(
    slack: LocalSlack, operations: FakeOperations, approvers=("S0APPROVERS",)
) -> BotHandle:
    config = BotConfig(
        bot_token=slack.bot_token,
        app_token=slack.app_token,
        api_url=slack.api_url,
        approvers=tuple(approvers),
        health_address="127.0.0.1:0",
    )
    handle = await connect_bot(config, operations)
    await slack.wait_for(lambda s: s.connections == 1, timeout=10)
    return handle


async def post_run_message(slack: LocalSlack, operations: FakeOperations) -> str:
    """Post the run message and record it in the run's state, as the bot and workflow do:
    the bot accepts a click only on the message the run names."""
    text, blocks = render_run_message(operations.current)
    posted = await web(slack).chat_postMessage(channel=INFRA, text=text, blocks=blocks)
    message = SlackMessageRef(channel=INFRA, ts=posted["ts"])
    operations.current = operations.current.model_copy(update={"slack": message})
    return posted["ts"]


async def told(slack: LocalSlack, user: str, needle: str) -> str:
    def find(s: LocalSlack) -> str | None:
        found = [e["text"] for e in s.ephemerals(user, INFRA) if needle in e["text"]]
        return found[-1] if found else None

    return await slack.wait_for(find, timeout=10)


# -- approvers ------------------------------------------------------------------------------


async def test_approver_groups_are_resolved_and_cached_for_a_minute(slack: LocalSlack) -> None:
    now = [0.0]
    directory = ApproverDirectory(["S0APPROVERS", "U0CAROL"], web(slack), clock=lambda: now[0])
    assert await directory.is_approver("U0CAROL")  # listed by id: no lookup
    assert await directory.is_approver(BOB) and await directory.is_approver(ALICE)
    assert not await directory.is_approver("U0DAVE")
    assert len(slack.calls_to("usergroups.users.list")) == 1
    slack.workspace.usergroups["S0APPROVERS"] = [ALICE]
    now[0] = 59.0
    assert await directory.is_approver(BOB)  # still cached
    now[0] = 61.0
    assert not await directory.is_approver(BOB)
    assert len(slack.calls_to("usergroups.users.list")) == 2
    # Slack failing keeps the last answer rather than locking everyone out, or in.
    slack.fail_next("usergroups.users.list", times=10, status=400, error="invalid_auth")
    now[0] = 200.0
    assert await directory.is_approver(ALICE) and not await directory.is_approver(BOB)


# -- the notify activity --------------------------------------------------------------------


async def test_notify_updates_the_message_and_shares_each_plan_once(slack: LocalSlack) -> None:
    posted = await web(slack).chat_postMessage(channel=INFRA, text="starting")
    ref = SlackMessageRef(channel=INFRA, ts=posted["ts"])
    status = waiting_status(slack=ref)
    env = ActivityEnvironment()
    await env.run(SlackNotifier(web(slack)).notify, NotifyInput(status=status))
    await env.run(SlackNotifier(web(slack)).notify, NotifyInput(status=status))  # a new worker
    message = slack.message(INFRA, posted["ts"])
    assert message["text"].endswith("awaiting approval")
    thread = slack.thread(INFRA, posted["ts"])
    assert len(thread) == 2 and plan_marker(status.plan_text) in thread[1]["text"]

    long_plan = "".join(f"+ null_resource.r{i}\n" for i in range(2000))
    notifier = SlackNotifier(web(slack))
    replanned = status.model_copy(update={"plan_text": long_plan, "run_id": "run-2"})
    await env.run(notifier.notify, NotifyInput(status=replanned))
    await env.run(notifier.notify, NotifyInput(status=replanned))
    thread = slack.thread(INFRA, posted["ts"])
    assert len(thread) == 3
    [shared] = thread[2]["files"]
    assert slack.file_content(shared["id"]).decode() == long_plan
    slack.assert_no_validation_failures()


async def test_notify_gives_up_on_a_gone_channel_and_retries_an_outage(slack: LocalSlack) -> None:
    # (A gone message is posted again: tests/integration/test_notify.py.)
    env = ActivityEnvironment()
    gone = waiting_status(slack=SlackMessageRef(channel="C0GONE", ts="1.000001"))
    with pytest.raises(ApplicationError) as raised:
        await env.run(SlackNotifier(web(slack)).notify, NotifyInput(status=gone))
    assert raised.value.non_retryable and "channel_not_found" in str(raised.value)

    posted = await web(slack).chat_postMessage(channel=INFRA, text="starting")
    status = waiting_status(slack=SlackMessageRef(channel=INFRA, ts=posted["ts"]))
    slack.fail_next("chat.update", times=3, status=500)
    with pytest.raises(ApplicationError) as raised:
        await env.run(SlackNotifier(web(slack)).notify, NotifyInput(status=status))
    assert not raised.value.non_retryable  # Temporal retries; the SDK already tried 3 times
    await env.run(SlackNotifier(web(slack)).notify, NotifyInput(status=status))
    assert slack.message(INFRA, posted["ts"])["text"].endswith("awaiting approval")


async def test_notify_without_slack_does_nothing_and_says_so_once(caplog) -> None:
    caplog.set_level(logging.INFO, logger="activities.notify")
    notifier = SlackNotifier(None)
    status = waiting_status(slack=SlackMessageRef(channel=INFRA, ts="1.000001"))
    for _ in range(3):
        await ActivityEnvironment().run(notifier.notify, NotifyInput(status=status))
    assert sum("Slack is not configured" in r.getMessage() for r in caplog.records) == 1


# -- the bot with an in-memory Temporal -----------------------------------------------------


async def test_a_slow_decision_is_finished_after_the_ack(slack: LocalSlack, monkeypatch) -> None:
    monkeypatch.setattr(views_module, "ACK_BUDGET_SECONDS", 0.05)
    operations = FakeOperations(waiting_status())
    handle = await start(slack, operations)
    try:
        ts = await post_run_message(slack, operations)
        await slack.click_button(BOB, INFRA, ts, APPROVE)
        [modal] = await slack.wait_for(lambda s: s.views(BOB), timeout=10)
        operations.release.clear()
        submitted = await slack.submit_view(BOB, modal["id"], {REASON_BLOCK: {REASON_INPUT: "ok"}})
        assert submitted.response_action == "update"
        assert submitted.view["title"]["text"] == "Decision on its way"
        operations.release.set()
        await told(slack, BOB, "approved by bob")
        [decision] = operations.decisions
        assert (decision.approver, decision.approver_kind, decision.reason) == (BOB, "slack", "ok")
    finally:
        await handle.stop()
    slack.assert_no_validation_failures()


async def test_temporal_down_or_a_replaced_plan_open_no_form(slack: LocalSlack) -> None:
    operations = FakeOperations(waiting_status())
    handle = await start(slack, operations)
    try:
        ts = await post_run_message(slack, operations)
        operations.unavailable = True
        await slack.click_button(BOB, INFRA, ts, APPROVE)
        # The run's state is read before the form opens: without it there is nothing to decide.
        await told(slack, BOB, "Temporal is unreachable")
        assert slack.views(BOB) == []

        operations.unavailable = False
        replanned = operations.current.model_copy(update={"run_id": "run-2"})
        operations.current = replanned  # replanned meanwhile
        await slack.click_button(BOB, INFRA, ts, DENY)
        await told(slack, BOB, "replaced by a newer one")
        assert operations.decisions == []
        assert handle.metrics.refusals.labels("plan_replaced")._value.get() == 1
    finally:
        await handle.stop()
    slack.assert_no_validation_failures()


async def test_without_approvers_nobody_decides_from_slack(slack: LocalSlack) -> None:
    operations = FakeOperations(waiting_status(approval_channel=ApprovalChannel.SIGNAL))
    handle = await start(slack, operations, approvers=())
    try:
        ts = await post_run_message(slack, operations)
        await slack.click_button(BOB, INFRA, ts, APPROVE)
        await told(slack, BOB, "Nobody can approve from Slack here yet")
        assert operations.decisions == [] and slack.views(BOB) == []
    finally:
        await handle.stop()


def test_manifest_asks_for_socket_mode_the_command_and_only_the_scopes_used() -> None:
    text = MANIFEST.read_text()
    assert "socket_mode_enabled: true" in text and "command: /provision" in text
    assert "interactivity:\n    is_enabled: true" in text
    bot_scopes = text.split("    bot:\n", 1)[1].split("settings:", 1)[0]
    scopes = {line.strip().removeprefix("- ") for line in bot_scopes.splitlines() if line.strip()}
    assert scopes == {
        "commands",  # /provision
        "chat:write",  # chat.postMessage, chat.update, chat.postEphemeral
        "files:write",  # files.getUploadURLExternal, files.completeUploadExternal
        "channels:history",  # conversations.replies (public channels)
        "groups:history",  # conversations.replies (private channels)
        "usergroups:read",  # usergroups.users.list
    }
