"""The run message converges through a Slack outage: chat.update fails across the run's final
state change and long after it, then Slack recovers and the message shows the final state, with
no buttons, within seconds. Real bot, real `provision worker`, dev server, terraform, LocalSlack.
"""

from __future__ import annotations

import re
import time

import pytest
from temporalio.client import Client

from bot.app import BotHandle
from bot.blocks import APPROVE, DENY, REPLAN
from localslack import LocalSlack
from tests.support.processes import Stack, wait_until
from tests.support.slack_e2e import (
    ALICE,
    BOB,
    INFRA,
    buttons,
    ephemeral_saying,
    message_saying,
    namespace_exists,
    run_message,
)
from workflows.models import ProvisionResult, RunState, RunStatus

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("slack_stays_valid")]

# Before the message converged, a state was dropped after five attempts of three HTTP calls
# each (the SDK retries a 503 twice itself): the outage outlasts that for the final state.
DROPPED_AFTER_CALLS = 5 * 3
# A round retries every <= 10 s; one attempt makes three calls about a second apart.
CURRENT_WITHIN = 30.0


def says(state: str, text: str) -> bool:
    return re.search(rf": {re.escape(state)}( \(|$)", text) is not None


async def test_the_final_state_lands_after_an_outage_across_it(
    slack: LocalSlack, slack_stack: Stack, bot: BotHandle, temporal: Client
) -> None:
    # A workspace of its own: the session's dev server may hold other modules' runs.
    workspace = "alice-converge"
    await slack.slash_command(ALICE, f"human-in-the-loop-update --workspace {workspace}")
    ts = await run_message(slack, workspace)
    waiting = await message_saying(slack, ts, "awaiting approval")
    assert buttons(waiting) == [APPROVE, DENY, REPLAN]

    # Slack's chat.update is down from here until recover(): the decision and the apply, the
    # run's final state change, all happen during the outage.
    slack.fail_next("chat.update", times=1_000_000, status=503)
    await slack.slash_command(BOB, f"approve {workspace} --reason 'reviewed the grant'")
    await ephemeral_saying(slack, BOB, "approved by bob")
    outage = time.monotonic()
    handle = temporal.get_workflow_handle(f"provision-{workspace}", result_type=ProvisionResult)

    async def applied() -> bool:
        status = await handle.query("get_state", result_type=RunStatus)
        return status.state == RunState.APPLIED

    await wait_until(applied, timeout=120, what="the run applied")
    applied_at = time.monotonic()

    def final_state_failed_long(s: LocalSlack) -> bool:
        tried = [c for c in s.calls_to("chat.update") if says("applied", c.params.get("text", ""))]
        return len(tried) > DROPPED_AFTER_CALLS and all(c.injected for c in tried)

    # Long enough that the old notifier would have given the final state up for good.
    await slack.wait_for(final_state_failed_long, timeout=180)
    stale = slack.message(INFRA, ts)
    assert says("awaiting approval", stale["text"]) and buttons(stale), stale["text"]

    slack.recover("chat.update")
    recovered = time.monotonic()
    final = await message_saying(slack, ts, "applied", timeout=CURRENT_WITHIN)
    current_after = time.monotonic() - recovered
    assert buttons(final) == []
    print(
        f"\noutage {recovered - outage:.0f} s, applied {recovered - applied_at:.0f} s before "
        f"Slack recovered; message current {current_after:.1f} s after"
    )

    result = await handle.result()
    assert result.state == RunState.APPLIED
    assert await namespace_exists(slack_stack, workspace)
