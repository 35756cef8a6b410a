"""The Slack front door end to end, shared by the tests that drive it: a LocalSlack on
127.0.0.1, a real `provision worker` process whose notify activity talks to it, the real dev
server and terraform, the real bot in process over Socket Mode; and what people see."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from bot.app import BotHandle
from localslack import LocalSlack
from provision.bot_main import start_bot
from provision.client import connect
from provision.settings import Settings
from tests.support.processes import Stack

INFRA = "C0INFRA"
ALICE, BOB, CAROL = "U0ALICE", "U0BOB", "U0CAROL"
RUN_TIMEOUT = 60
SECRET_CANARY = "canary-slack-7Hq2Lm9-secret"


# -- fixtures -------------------------------------------------------------------------------


@pytest_asyncio.fixture(scope="module")
async def slack() -> AsyncIterator[LocalSlack]:
    server = LocalSlack()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest_asyncio.fixture(scope="module")
async def slack_stack(
    temporal_env: WorkflowEnvironment, tmp_path_factory, slack: LocalSlack
) -> AsyncIterator[Stack]:
    address = temporal_env.client.service_client.config.target_host
    stack = Stack(address, tmp_path_factory.mktemp("slack-stack"), f"tq-{uuid.uuid4()}")
    # The canary rides in the worker's passthrough environment (terraform's sensitive api_key):
    # the last test checks that no Slack call ever carried it.
    await stack.start_worker(
        {
            "SLACK_BOT_TOKEN": slack.bot_token,
            "SLACK_API_URL": slack.api_url,
            "TF_VAR_api_key": SECRET_CANARY,
        }
    )
    try:
        yield stack
    finally:
        await stack.stop_worker()


def bot_settings(stack: Stack, slack: LocalSlack, **changes: object) -> Settings:
    values: dict[str, object] = {
        "temporal_address": stack.address,
        "task_queue": stack.task_queue,
        "slack_bot_token": slack.bot_token,
        "slack_app_token": slack.app_token,
        "slack_api_url": slack.api_url,
        # S0APPROVERS is alice and bob; carol approves nothing.
        "slack_approvers": ["S0APPROVERS"],
        "bot_health_address": "127.0.0.1:0",
        "data_dir": stack.data_dir,
    }
    return Settings(**{**values, **changes})


@pytest_asyncio.fixture(scope="module")
async def temporal(slack_stack: Stack, slack: LocalSlack) -> Client:
    return await connect(bot_settings(slack_stack, slack))


@pytest_asyncio.fixture(scope="module")
async def bot(slack_stack: Stack, slack: LocalSlack, temporal: Client) -> AsyncIterator[BotHandle]:
    handle = await start_bot(bot_settings(slack_stack, slack), temporal)
    try:
        yield handle
    finally:
        await handle.stop()


@pytest.fixture
def slack_stays_valid(slack: LocalSlack) -> Iterator[None]:
    """Every Slack call a test made was one Slack would accept (use with usefixtures)."""
    yield
    slack.assert_no_validation_failures()


# -- what people see ------------------------------------------------------------------------


async def run_message(slack: LocalSlack, workspace: str) -> str:
    """The ts of the run message of `workspace` (the newest, if it ran before)."""

    def posted(s: LocalSlack) -> str | None:
        found = [m for m in s.messages(INFRA) if f" on {workspace}:" in m["text"]]
        return found[-1]["ts"] if found else None

    return await slack.wait_for(posted, timeout=10)


async def message_saying(slack: LocalSlack, ts: str, state: str, timeout: float = RUN_TIMEOUT):
    """Wait until the run message's text says `state`; return the whole message."""

    def says(s: LocalSlack) -> dict | None:
        message = s.message(INFRA, ts)
        return message if re.search(rf": {re.escape(state)}( \(|$)", message["text"]) else None

    try:
        return await slack.wait_for(says, timeout=timeout)
    except TimeoutError:
        said = slack.message(INFRA, ts)["text"]
        raise AssertionError(f"message never said {state!r}: {said}") from None


async def ephemeral_saying(slack: LocalSlack, user: str, needle: str, timeout: float = 15) -> str:
    def told(s: LocalSlack) -> str | None:
        found = [e["text"] for e in s.ephemerals(user, INFRA) if needle in e["text"]]
        return found[-1] if found else None

    try:
        return await slack.wait_for(told, timeout=timeout)
    except TimeoutError:
        seen = [e["text"] for e in slack.ephemerals(user, INFRA)]
        raise AssertionError(f"{user} was not told {needle!r}; was told: {seen}") from None


def shown(message: dict) -> str:
    """All text of a message as the client renders it (fields, sections, buttons)."""
    parts: list[str] = [message.get("text") or ""]

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("text"), str):
                parts.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(message.get("blocks") or [])
    return "\n".join(parts)


def buttons(message: dict) -> list[str]:
    return [
        element["action_id"]
        for block in message.get("blocks") or []
        if block["type"] == "actions"
        for element in block["elements"]
    ]


async def history_events(
    temporal: Client, workflow_id: str, run_id: str
) -> list[EventType.ValueType]:
    history = await temporal.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
    return [event.event_type for event in history.events]


async def namespace_exists(stack: Stack, name: str) -> bool:
    return await stack.namespace_exists(name)


# Events that mean something reached the workflow from outside.
_REACHED = {
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ADMITTED,
}


async def reached(temporal: Client, workflow_id: str) -> list:
    state = await temporal.get_workflow_handle(workflow_id).query("get_state")
    events = await history_events(temporal, workflow_id, state["run_id"])
    return [e for e in events if e in _REACHED]


def sent(bot: BotHandle) -> float:
    """Decisions, replans and TTL changes the bot sent (accepted or refused by the workflow)."""
    total = 0.0
    for metric in bot.metrics.decisions.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total") and sample.labels.get("outcome") != "error":
                total += sample.value
    return total
