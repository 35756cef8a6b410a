"""Submission of the decision modal: the update goes out before the ack, so the workflow's
validator can answer inline in the modal (empty reason, already decided, four eyes).

The form's private_metadata is sealed by the bot (bot/modals.py MetadataSeal) and names only the
run and the verdict; the run's state is read again, as for a click."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck

from bot.blocks import RunRef, clip, decision_ack, escape
from bot.listeners import interaction_origin, slack_actor
from bot.modals import DECISION_CALLBACK, REASON_BLOCK, notice_modal, submitted_reason
from bot.operations import RunRefused, TemporalUnavailable
from bot.run_control import ActionRefused, refusal_text
from bot.services import BotServices

log = logging.getLogger(__name__)

# Slack waits 3 s for the ack. A decision that takes longer is finished after the ack, and its
# outcome reported by an ephemeral message instead of inline.
ACK_BUDGET_SECONDS = 2.0
INLINE_ERROR_LIMIT = 300


def register(app: AsyncApp, services: BotServices) -> None:
    @app.view(DECISION_CALLBACK)
    async def on_decision(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        # Counted from before the ack: once Slack has the ack, the form shows as in flight.
        with services.metrics.in_flight.track_inprogress():
            await _on_decision(services, ack, body, view)


async def _on_decision(
    services: BotServices, ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]
) -> None:
    user = slack_actor(body.get("user"))
    metadata = view.get("private_metadata")
    try:
        if user is None:
            raise ValueError("a submission without a well-formed user")
        ref, approve = services.seal.open(metadata if isinstance(metadata, str) else "", user.id)
    except ValueError as exc:
        log.warning("decision form refused: %s", exc)
        await ack(response_action="errors", errors={REASON_BLOCK: "This form is out of date."})
        return
    origin = interaction_origin(body, on_message=False)
    decided = asyncio.ensure_future(
        services.control.decide(user, ref, approve, submitted_reason(view), origin)
    )
    done, _ = await asyncio.wait({decided}, timeout=ACK_BUDGET_SECONDS)
    if not done:
        await ack(
            response_action="update",
            view=notice_modal(
                "Decision on its way",
                "Temporal is slow to answer; you will get a message when it has.",
            ),
        )
        await _report_late(services, ref, approve, user.id, decided)
        return
    try:
        message = decided.result()
    except (ActionRefused, RunRefused) as exc:
        await ack(
            response_action="errors",
            errors={REASON_BLOCK: clip(str(exc), INLINE_ERROR_LIMIT)},
        )
        return
    except TemporalUnavailable:
        await ack(
            response_action="errors",
            errors={REASON_BLOCK: "Temporal is unreachable right now; try again shortly."},
        )
        return
    except Exception:
        log.exception("decision of %s by %s failed", ref.workflow_id, user.id)
        await ack(
            response_action="errors",
            errors={REASON_BLOCK: "Something went wrong sending this; it is logged."},
        )
        return
    await ack()
    await _tell(services, ref, user.id, decision_ack(approve, message))


async def _tell(services: BotServices, ref: RunRef, user_id: str, text: str) -> None:
    """Privately, in the channel of the run's message (read from the run, not the form)."""
    try:
        status = await services.operations.status(ref.workflow_id)
    except (RunRefused, TemporalUnavailable):
        return
    if status.slack is not None:
        await services.tell(status.slack.channel, user_id, text)


async def _report_late(
    services: BotServices, ref: RunRef, approve: bool, user_id: str, decided: asyncio.Future
) -> None:
    try:
        message = await decided
    except (ActionRefused, RunRefused) as exc:
        text = f":no_entry_sign: Your decision was not taken: {refusal_text(exc)}"
    except TemporalUnavailable as exc:
        text = f":warning: Your decision was not sent, Temporal is unreachable: {escape(str(exc))}"
    except Exception:
        log.exception("decision of %s by %s failed", ref.workflow_id, user_id)
        text = ":warning: Something went wrong sending your decision; it is logged."
    else:
        text = decision_ack(approve, message)
    await _tell(services, ref, user_id, text)
