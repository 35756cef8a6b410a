"""Fuzz (issue 13.6): a few thousand generated `/provision` texts, clicks and form submissions
with forged fields, through a real Socket Mode connection to the real bot, against a run
waiting for approval on a real worker. Every one is acknowledged within Slack's 3 s, the bot
logs no traceback, and nothing the rules refuse reaches a workflow.

The generator is seeded, so a failure replays. Commands are typed by Carol, who approves
nothing and owns nothing; clicks and submissions carry at least one forged field, or come from
someone the rules refuse. Runs the fuzz starts (Carol may run stacks) go to a task queue no
worker polls, so nothing is planned; they are terminated at the end.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import random
import uuid

import pytest
from temporalio.client import Client

from bot.blocks import APPROVE, DENY, DESTROY_NOW, EXTEND_TTL, REPLAN
from bot.modals import REASON_BLOCK, REASON_INPUT
from localslack import LocalSlack
from localslack.interactions import slash_command_payload
from provision.bot_main import start_bot
from stacks.registry import BUILTIN
from tests.support.processes import Stack, wait_until
from tests.support.slack_e2e import (
    ALICE,
    BOB,
    CAROL,
    INFRA,
    bot_settings,
    message_saying,
    reached,
    run_message,
)

pytestmark = pytest.mark.e2e

SEED = 20261203
COMMANDS, CLICKS, SUBMISSIONS = 1500, 900, 600
IN_FLIGHT = 8  # payloads on the wire at once
WORKSPACE = "fz-human-in-the-loop-update"
WORKFLOW_ID = f"provision-{WORKSPACE}"

_WORDS = [
    *BUILTIN.names(),
    "run",
    "plan",
    "stacks",
    "check",
    "status",
    "approve",
    "deny",
    "replan",
    "destroy",
    "list",
    "help",
    "--prefix",
    "--ttl",
    "--workspace",
    "--pace",
    "--var",
    "--owner",
    "--reason",
    "--scenario",
    "--stack",
    "--status",
    "--json",
    "--wait",
    WORKSPACE,
    WORKFLOW_ID,
    "retention_days=7",
    "x=1",
    "U0BOB",
    "S0APPROVERS",
    "<!channel>",
    "<@U0BOB>",
    "'",
    '"',
    "—",
    "\u202e",
    "\x00",
    "\ud800",
    "🙂",
    "-1",
    "0",
    "1e309",
    "99999999999999999999",
    "nan",
    "a" * 300,
    "fz",
    "fz-x",
    "--",
    "-",
    "=",
    "$(reboot)",
    "../../etc/passwd",
    "ttl=1",
]


def fuzz_text(rng: random.Random) -> str:
    words = [rng.choice(_WORDS) for _ in range(rng.randint(0, 7))]
    if rng.random() < 0.1:
        words.append("".join(chr(rng.randint(1, 0x2FFF)) for _ in range(rng.randint(1, 40))))
    if rng.random() < 0.02:
        words.append("z" * rng.randint(3000, 20000))
    return " ".join(words)


def mutate_click(rng: random.Random, genuine: dict, carol: dict) -> dict:
    """A click payload with at least one field forged, within Slack's documented shapes (the
    fields a forging client could influence: values, ids, team, app, where it was clicked)."""
    payload = copy.deepcopy(genuine)
    value = json.loads(payload["actions"][0]["value"])
    forgeries = [
        lambda p: p.update(team={"id": rng.choice(["T0OTHER", "", "T0LOCAL2"])}),
        lambda p: p.update(api_app_id=rng.choice(["A0OTHER", "", None, 7])),
        lambda p: p.update(container={**genuine["container"], "message_ts": f"{rng.random():.6f}"}),
        lambda p: p.update(channel={"id": rng.choice(["C0OTHER", "D0BOB", ""])}),
        lambda p: p["actions"][0].update(
            value=json.dumps({**value, "w": rng.choice(["provision-other", WORKFLOW_ID + "x"])})
        ),
        lambda p: p["actions"][0].update(value=json.dumps({**value, "r": str(uuid.uuid4())})),
        lambda p: p["actions"][0].update(value=rng.choice(["", "{", "[]", "null", "1" * 5000])),
        lambda p: p.update(user=copy.deepcopy(carol)),
        lambda p: p.update(user={"id": rng.choice(["U0BOB\n", "U0NOBODY", "B0BOT", "W0X"])}),
        lambda p: p.update(container={"type": "view", "view_id": "V0NONE"}),
    ]
    for forge in rng.sample(forgeries, rng.randint(1, 3)):
        forge(payload)
    if rng.random() < 0.1:  # and sometimes the user is junk too: Bolt must still not raise
        payload["user"] = {"id": "U0BOB", "team_id": "T0OTHER"}
    return payload


def mutate_submission(rng: random.Random, genuine: dict, carol: dict) -> dict:
    payload = copy.deepcopy(genuine)
    metadata = json.loads(payload["view"]["private_metadata"])
    forgeries = [
        lambda p: p["view"].update(private_metadata=json.dumps({**metadata, "w": "provision-x"})),
        lambda p: p["view"].update(private_metadata=json.dumps({**metadata, "a": False})),
        lambda p: p["view"].update(
            private_metadata=json.dumps({**metadata, "m": f"{rng.getrandbits(256):064x}"})
        ),
        lambda p: p["view"].update(private_metadata=rng.choice(["", "{}", "null", "x" * 3000])),
        lambda p: p.update(user=copy.deepcopy(carol)),
        lambda p: p.update(team={"id": "T0OTHER"}),
        lambda p: p.update(api_app_id="A0OTHER"),
        lambda p: p["view"].update(state={"values": {}}),
    ]
    for forge in rng.sample(forgeries, rng.randint(1, 3)):
        forge(payload)
    return payload


async def test_fuzzed_commands_clicks_and_submissions(
    slack: LocalSlack,
    slack_stack: Stack,
    temporal: Client,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    rng = random.Random(SEED)
    # The run under attack, started through a bot on the worker's queue, then that bot leaves.
    real = await start_bot(bot_settings(slack_stack, slack), temporal)
    try:
        await slack.wait_for(lambda s: s.connections == 1, timeout=30)
        await slack.slash_command(ALICE, "human-in-the-loop-update --prefix fz")
        ts = await run_message(slack, WORKSPACE)
        await message_saying(slack, ts, "awaiting approval")
    finally:
        await real.stop()
    await slack.wait_for(lambda s: s.connections == 0, timeout=30)

    settings = bot_settings(slack_stack, slack, task_queue=f"fuzz-nobody-{uuid.uuid4()}")
    bot = await start_bot(settings, temporal)
    try:
        await slack.wait_for(lambda s: s.connections == 1, timeout=30)
        carol = slack.button_payload(CAROL, INFRA, ts, APPROVE)["user"]
        # Bob opens the form once, genuinely; its submissions are then forged.
        await slack.click_button(BOB, INFRA, ts, APPROVE)
        [modal] = await slack.wait_for(lambda s: s.views(BOB), timeout=30)
        genuine_submission = slack.submission_payload(
            BOB, modal["id"], {REASON_BLOCK: {REASON_INPUT: "fuzz"}}
        )

        sends = []
        ws = slack.workspace
        for _ in range(COMMANDS):
            _, response_url = ws.issue_response_url(CAROL, INFRA)
            payload = slash_command_payload(
                ws,
                user_id=CAROL,
                channel_id=INFRA,
                command="/provision",
                text=fuzz_text(rng),
                response_url=response_url,
                trigger_id=ws.issue_trigger(CAROL),
            )
            sends.append(("slash_commands", payload, True))
        for _ in range(CLICKS):
            who = rng.choice([ALICE, BOB, CAROL])
            action = rng.choice([APPROVE, DENY, REPLAN])
            genuine = slack.button_payload(who, INFRA, ts, action)
            if who == CAROL:
                # Carol may do nothing here; she also clicks buttons the message lacks.
                genuine["actions"][0]["action_id"] = rng.choice(
                    [APPROVE, DENY, REPLAN, DESTROY_NOW, EXTEND_TTL]
                )
                payload = genuine if rng.random() < 0.3 else mutate_click(rng, genuine, carol)
            elif who == ALICE and action == APPROVE and rng.random() < 0.3:
                payload = genuine  # four eyes: her own run
            else:
                payload = mutate_click(rng, genuine, carol)
            sends.append(("interactive", payload, False))
        for _ in range(SUBMISSIONS):
            payload = mutate_submission(rng, genuine_submission, carol)
            sends.append(("interactive", payload, True))
        rng.shuffle(sends)

        latencies: list[float] = []
        gate = asyncio.Semaphore(IN_FLIGHT)

        async def send(kind: str, payload: dict, response: bool) -> None:
            async with gate:
                ack = await slack.deliver(
                    kind, payload, accepts_response_payload=response, timeout=10
                )
                latencies.append(ack.latency)

        await asyncio.gather(*(send(*item) for item in sends))

        # Everything acknowledged; now wait until the bot has answered all of it.
        # (Polled: the gauge changes without a Slack event to wake a LocalSlack wait.)
        async def idle() -> bool:
            return bot.metrics.in_flight._value.get() == 0

        await wait_until(idle, timeout=120, what="the bot answered everything")
    finally:
        await bot.stop()

    assert len(latencies) == COMMANDS + CLICKS + SUBMISSIONS
    latencies.sort()
    print(
        f"\nfuzz: {len(latencies)} payloads, ack p50 {latencies[len(latencies) // 2] * 1000:.0f} ms,"
        f" p99 {latencies[int(len(latencies) * 0.99)] * 1000:.0f} ms, max {latencies[-1]:.2f} s"
    )
    assert latencies[-1] < 3.0
    tracebacks = [
        r
        for r in caplog.records
        if r.exc_info and r.name.startswith(("bot", "slack_bolt", "slack"))
    ]
    assert tracebacks == [], tracebacks[0].getMessage()
    # Nothing reached the run under attack; its state is as Alice left it.
    assert await reached(temporal, WORKFLOW_ID) == []
    state = await temporal.get_workflow_handle(WORKFLOW_ID).query("get_state")
    assert state["state"] == "awaiting_approval" and state["decisions"] == []
    # What the fuzz started, Carol may start: runs of her own, no destroy of Alice's workspace.
    started = [w async for w in temporal.list_workflows(f"TaskQueue = '{settings.task_queue}'")]
    for execution in started:
        assert WORKSPACE not in execution.id or execution.id == WORKFLOW_ID, execution.id
        await temporal.get_workflow_handle(execution.id, run_id=execution.run_id).terminate(
            "fuzz run"
        )
    # No decision left the bot: Carol approves nothing, and none of her runs got to a plan.
    # (A replan of a run of her own is hers to ask for, and may have been sent.)
    for kind in ("approve", "deny"):
        for outcome in ("sent", "rejected"):
            assert bot.metrics.decisions.labels(kind, outcome)._value.get() == 0
