"""A platform team's own stack, from Slack: LocalSlack over real Socket Mode, the real bot and
a real worker reading the same stacks file (outside the repository), real terraform.

Judged (issue 9): a user outside `permissions.run` is refused; a run on another stack's or
another owner's workspace is refused; a replacing plan waits for approval; destroy by a
non-owner is refused. Also: the stack's channel gets its run messages, `plan` offers Apply,
`/provision stacks` lists the stack with its inputs.
"""

from __future__ import annotations

import json
import re
import textwrap
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from bot.app import BotHandle
from bot.blocks import APPROVE
from bot.modals import REASON_BLOCK, REASON_INPUT
from localslack import LocalSlack
from provision.bot_main import start_bot
from provision.client import connect
from tests.e2e.test_stacks_e2e import CONFIG
from tests.support.processes import Stack
from tests.support.slack_e2e import (
    ALICE,
    BOB,
    CAROL,
    INFRA,
    bot_settings,
    buttons,
    ephemeral_saying,
    shown,
)

pytestmark = pytest.mark.e2e

PLATFORM = "C0PLATFORM"


@pytest_asyncio.fixture(scope="module")
async def team_slack() -> AsyncIterator[LocalSlack]:
    server = LocalSlack(channels=("infra", "platform"))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest_asyncio.fixture(scope="module")
async def team(
    temporal_env: WorkflowEnvironment, tmp_path_factory, team_slack: LocalSlack
) -> AsyncIterator[Stack]:
    outside = tmp_path_factory.mktemp("platform-team-slack")
    (outside / "servers").mkdir()
    (outside / "servers" / "main.tf").write_text(CONFIG)
    stacks_file = outside / "stacks.yaml"
    stacks_file.write_text(
        textwrap.dedent(
            f"""\
            stacks:
              servers:
                description: a few servers
                source: ./servers
                inputs:
                  size: {{type: number, min: 1, max: 5, default: 1}}
                permissions:
                  run: [{ALICE}, {BOB}]
                channel: {team_slack.channel_id("platform")}
            """
        )
    )
    address = temporal_env.client.service_client.config.target_host
    stack = Stack(address, tmp_path_factory.mktemp("team-slack-data"), f"tq-{uuid.uuid4()}")
    stack.env["PROVISION_STACKS_FILE"] = str(stacks_file)
    stack.stacks_file = stacks_file  # type: ignore[attr-defined]
    await stack.start_worker(
        {"SLACK_BOT_TOKEN": team_slack.bot_token, "SLACK_API_URL": team_slack.api_url}
    )
    try:
        yield stack
    finally:
        await stack.stop_worker()


@pytest_asyncio.fixture(scope="module")
async def team_bot(team: Stack, team_slack: LocalSlack) -> AsyncIterator[BotHandle]:
    settings = bot_settings(team, team_slack, stacks_file=team.stacks_file)  # type: ignore[attr-defined]
    handle = await start_bot(settings, None)
    try:
        await team_slack.wait_for(lambda s: s.connections == 1, timeout=30)
        yield handle
    finally:
        await handle.stop()


def messages_of(slack: LocalSlack, channel: str, workspace: str) -> list[dict]:
    return [m for m in slack.messages(channel) if f" on {workspace}:" in m["text"]]


async def message_in(slack: LocalSlack, channel: str, workspace: str, state: str) -> dict:
    def says(s: LocalSlack) -> dict | None:
        found = messages_of(s, channel, workspace)
        last = found[-1]["text"] if found else ""
        return found[-1] if re.search(rf": {re.escape(state)}( \(|$)", last) else None

    try:
        return await slack.wait_for(says, timeout=90)
    except TimeoutError:
        seen = [m["text"] for m in messages_of(slack, channel, workspace)]
        raise AssertionError(f"{workspace} never said {state!r} in {channel}: {seen}") from None


async def test_stack_rules_from_slack(
    team_slack: LocalSlack, team: Stack, team_bot: BotHandle
) -> None:
    slack = team_slack
    platform = slack.channel_id("platform")

    # Listed, with its input.
    await slack.slash_command(CAROL, "stacks")
    listed = await ephemeral_saying(slack, CAROL, "`servers`")
    assert "--var size=" in listed and "a number from 1 to 5" in listed

    # Outside permissions.run: refused, nothing posted.
    await slack.slash_command(CAROL, "servers --var size=2")
    await ephemeral_saying(slack, CAROL, "You may not run this stack")
    assert messages_of(slack, platform, "carol-servers") == []

    # Bob runs it, typed in #infra: the run message goes to the stack's channel.
    await slack.slash_command(BOB, "servers --var size=2")
    await ephemeral_saying(slack, BOB, f"goes to <#{platform}>")
    applied = await message_in(slack, platform, "bob-servers", "applied")
    assert "bob-servers: 2 x web" in shown(applied) and buttons(applied) == []
    assert messages_of(slack, INFRA, "bob-servers") == []
    client = await connect(bot_settings(team, slack))
    await client.get_workflow_handle("provision-bob-servers").result()  # closed, not only shown

    # Alice may run the stack, but not on Bob's workspace.
    await slack.slash_command(ALICE, "servers --workspace bob-servers --var size=3")
    failed = await message_in(slack, platform, "bob-servers", "failed")
    await client.get_workflow_handle("provision-bob-servers").result()
    assert "belongs to" in shown(failed)

    # A change that replaces Bob's servers asks a human, though the stack auto-applies.
    await slack.slash_command(BOB, "servers --var size=4")
    waiting = await message_in(slack, platform, "bob-servers", "awaiting approval")
    assert APPROVE in buttons(waiting)
    assert "destructive_change" in shown(waiting)
    await slack.click_button(ALICE, platform, waiting["ts"], APPROVE)
    [modal] = await slack.wait_for(lambda s: s.views(ALICE), timeout=30)
    await slack.submit_view(ALICE, modal["id"], {REASON_BLOCK: {REASON_INPUT: "resize ok"}})
    await message_in(slack, platform, "bob-servers", "applied")
    await client.get_workflow_handle("provision-bob-servers").result()

    # `plan` offers Apply, and applies nothing until it is pressed.
    await slack.slash_command(ALICE, "plan servers --var size=1")
    planned = await message_in(slack, platform, "alice-servers", "awaiting approval")
    [apply] = [
        e for b in planned["blocks"] if b["type"] == "actions" for e in b["elements"]
        if e["action_id"] == APPROVE
    ]  # fmt: skip
    assert apply["text"]["text"] == "Apply"
    # Its state is the empty one a new workspace starts with: nothing applied.
    state = team.data_dir / "workspaces" / "alice-servers" / "terraform.tfstate"
    assert not state.exists() or not json.loads(state.read_text()).get("resources")

    # Destroy by someone who owns nothing here, and approves nothing: refused.
    await slack.slash_command(CAROL, "destroy bob-servers")
    await ephemeral_saying(slack, CAROL, "Only its owners")


def test_stacks_file_is_outside_the_repository(team: Stack) -> None:
    repo = Path(__file__).resolve().parents[2]
    assert repo not in team.stacks_file.resolve().parents  # type: ignore[attr-defined]
