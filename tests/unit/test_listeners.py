"""The listeners as functions: payload readers, a slash command, a click, a submission, with
Slack and Temporal replaced by recorders (the Socket Mode paths are in tests/e2e/)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.access import AccessPolicy, ApproverDirectory
from bot.blocks import APPROVE, REPLAN, RunRef
from bot.listeners import command_actor, interaction_origin, slack_actor, where
from bot.listeners.actions import _on_click
from bot.listeners.commands import _on_command
from bot.listeners.views import _on_decision
from bot.metrics import BotMetrics
from bot.modals import REASON_BLOCK, MetadataSeal
from bot.run_control import Origin, RunControl
from bot.services import BotConfig, BotServices
from tests.support.runs import MESSAGE, awaiting_status
from workflows.models import (
    Actor,
    RunStatus,
)

ALICE = Actor(id="U0ALICE", name="alice", kind="slack")


def waiting() -> RunStatus:
    return awaiting_status("alice-x", run_id="run-1")


class Recorder:
    """Stands in for Slack's Web API, ack and respond: records what the listener said."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def chat_postEphemeral(self, **kwargs: Any) -> dict:
        self.calls.append(("ephemeral", kwargs))
        return {"ok": True}

    async def views_open(self, **kwargs: Any) -> dict:
        self.calls.append(("views_open", kwargs))
        return {"ok": True, "view": {"id": "V1"}}

    async def ack(self, **kwargs: Any) -> None:
        self.calls.append(("ack", kwargs))

    async def respond(self, **kwargs: Any) -> None:
        self.calls.append(("respond", kwargs))

    def said(self, kind: str) -> list[dict[str, Any]]:
        return [kwargs for k, kwargs in self.calls if k == kind]


class Operations:
    def __init__(self, status: RunStatus) -> None:
        self.current = status
        self.sent: list[str] = []

    async def ready(self) -> None: ...

    async def status(self, target: str) -> RunStatus:
        return self.current

    async def decide(self, workflow_id, run_id, decision, *, by_signal):
        self.sent.append("decide")

    async def replan(self, workflow_id, run_id) -> None:
        self.sent.append("replan")


def services(recorder: Recorder, operations: Operations) -> BotServices:
    config = BotConfig(
        bot_token="xoxb-test", app_token="xapp-1-A0LOCAL-1-x", approvers=("U0BOB", "U0ALICE")
    )
    access = AccessPolicy(
        ApproverDirectory(config.approvers, client=None), allow_self_approval=False
    )  # type: ignore[arg-type]
    metrics = BotMetrics()
    control = RunControl(operations, access, metrics, app_id="A0LOCAL", team_id="T0LOCAL")  # type: ignore[arg-type]
    return BotServices(config, operations, control, recorder, metrics, MetadataSeal("xoxb-test"))  # type: ignore[arg-type]


def click(user: str, action_id: str, value: str, **changes: Any) -> tuple[dict, dict]:
    body = {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), "team_id": "T0LOCAL"},
        "team": {"id": "T0LOCAL"},
        "api_app_id": "A0LOCAL",
        "channel": {"id": MESSAGE.channel},
        "container": {"type": "message", "message_ts": MESSAGE.ts, "channel_id": MESSAGE.channel},
        "trigger_id": "t-1",
        **changes,
    }
    return body, {"action_id": action_id, "value": value}


def test_payload_readers_take_only_well_formed_values() -> None:
    assert slack_actor({"id": "U0BOB", "username": "bob"}) == Actor(
        id="U0BOB", name="bob", kind="slack"
    )
    for junk in (None, {}, {"id": 5}, {"id": "<!channel>"}, {"id": "U0BOB\n"}, "U0BOB"):
        assert slack_actor(junk) is None
    assert command_actor({"user_id": "U0BOB", "user_name": "x" * 500}).name == "U0BOB"
    body, _ = click("U0BOB", APPROVE, "{}")
    assert where(body) == (MESSAGE.channel, MESSAGE.ts)
    assert interaction_origin(body, on_message=True) == Origin(
        "T0LOCAL", "A0LOCAL", MESSAGE.channel, MESSAGE.ts, on_message=True
    )
    assert where({"channel": "C0X", "container": None}) == ("", "")


async def test_a_command_answers_help_and_usage_errors_in_its_ack() -> None:
    recorder = Recorder()
    svc = services(recorder, Operations(waiting()))
    await _on_command(
        svc, recorder.ack, {"text": "help", "user_id": "U0BOB"}, recorder.respond, "U"
    )
    await _on_command(
        svc, recorder.ack, {"text": "nosuch", "user_id": "U0BOB"}, recorder.respond, "U"
    )
    await _on_command(svc, recorder.ack, {"text": "list", "user_id": "<x>"}, recorder.respond, "U")
    acks = [a.get("text", "") for a in recorder.said("ack")]
    assert len(acks) == 3 and "unknown command or stack 'nosuch'" in acks[1]
    assert "names no Slack user" in acks[2] and recorder.said("respond") == []


async def test_a_command_from_another_team_is_refused_after_the_ack() -> None:
    recorder = Recorder()
    operations = Operations(waiting())
    body = {
        "text": "replan alice-x",
        "user_id": "U0ALICE",
        "team_id": "T0OTHER",
        "api_app_id": "A0LOCAL",
    }
    await _on_command(services(recorder, operations), recorder.ack, body, recorder.respond, "U")
    [answer] = recorder.said("respond")
    assert "another Slack workspace" in answer["text"] and operations.sent == []


@pytest.mark.parametrize(
    ("user", "action_id", "changes", "needle"),
    [
        ("U0CAROL", REPLAN, {}, "Only the requester, an owner or an approver"),
        ("U0BOB", APPROVE, {"api_app_id": "A0OTHER"}, "another Slack app"),
        (
            "U0BOB",
            APPROVE,
            {"container": {"message_ts": "1.0", "channel_id": "C0INFRA"}},
            "not on this run's message",
        ),
        ("U0ALICE", APPROVE, {}, "Four eyes"),
    ],
)
async def test_a_refused_click_is_told_privately_and_sends_nothing(
    user: str, action_id: str, changes: dict, needle: str
) -> None:
    recorder = Recorder()
    operations = Operations(waiting())
    body, action = click(user, action_id, RunRef("provision-alice-x", "run-1").encode(), **changes)
    await _on_click(services(recorder, operations), recorder.ack, body, action)
    [told] = recorder.said("ephemeral")
    assert needle in told["text"] and told["user"] == user
    assert operations.sent == [] and recorder.said("views_open") == []


async def test_an_approvers_click_on_an_update_run_opens_a_sealed_form() -> None:
    recorder = Recorder()
    svc = services(recorder, Operations(waiting()))
    body, action = click("U0BOB", APPROVE, RunRef("provision-alice-x", "run-1").encode())
    await _on_click(svc, recorder.ack, body, action)
    [opened] = recorder.said("views_open")
    metadata = opened["view"]["private_metadata"]
    assert set(json.loads(metadata)) == {"w", "r", "a", "m"}
    assert svc.seal.open(metadata, "U0BOB") == (RunRef("provision-alice-x", "run-1"), True)


async def test_a_submission_with_edited_metadata_is_out_of_date() -> None:
    recorder = Recorder()
    operations = Operations(waiting())
    svc = services(recorder, operations)
    body = {"user": {"id": "U0BOB"}, "team": {"id": "T0LOCAL"}, "api_app_id": "A0LOCAL"}
    view = {
        "private_metadata": json.dumps(
            {"w": "provision-alice-x", "r": "run-1", "a": True, "m": "0"}
        )
    }
    await _on_decision(svc, recorder.ack, body, view)
    [ack] = recorder.said("ack")
    assert ack["response_action"] == "errors" and "out of date" in ack["errors"][REASON_BLOCK]
    assert operations.sent == []
