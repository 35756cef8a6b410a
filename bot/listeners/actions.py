"""Buttons on the run message: Approve (Apply for a plan), Deny, Replan, Destroy now, Extend.

A button names its run by id only; every click is checked against the run's state as Temporal
has it (run/control.py): the message it sits on, the team and app it came from, who may act."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_sdk.errors import SlackApiError

from bot.blocks import (
    APPROVE,
    DENY,
    DESTROY_NOW,
    EXTEND_SECONDS,
    EXTEND_TTL,
    REPLAN,
    RunRef,
    decision_ack,
    escape,
)
from bot.listeners import interaction_origin, slack_actor, where
from bot.modals import DecisionContext, decision_modal
from bot.operations import RunRefused, TemporalUnavailable
from bot.run_control import ActionRefused, refusal_text
from bot.services import BotServices
from workflows.models import Actor, ApprovalChannel

log = logging.getLogger(__name__)

_SOMETHING_WENT_WRONG = ":warning: Something went wrong handling that click; it is logged."


async def _tell_outcome(
    services: BotServices,
    channel: str,
    user_id: str,
    action: Awaitable[str | None],
    approved: bool = True,
) -> None:
    """Run a button's action and tell the clicker, privately, how it went (nothing to tell when
    it opened a form)."""
    try:
        message = await action
    except (ActionRefused, RunRefused) as exc:
        await services.tell(channel, user_id, f":no_entry_sign: {refusal_text(exc)}")
        return
    except TemporalUnavailable as exc:
        await services.tell(
            channel, user_id, f":warning: Temporal is unreachable: {escape(str(exc))}"
        )
        return
    if message is not None:
        await services.tell(channel, user_id, decision_ack(approved, message))


async def _decision(
    services: BotServices, body: dict[str, Any], user: Actor, ref: RunRef, approve: bool
) -> str | None:
    """Check the click against the run, then decide at once (a signal run, as in the original
    demo) or open the reason form (an update run). The form must open within the trigger's 3 s,
    so the run's state is read once, here, and the form opened right after."""
    control = services.control
    origin = interaction_origin(body, on_message=True)
    status = await control.decision_state(user, ref, approve, origin)
    if status.approval_channel == ApprovalChannel.SIGNAL:
        return await control.decide(user, ref, approve, "", origin, status=status)
    context = DecisionContext(ref, approve, status.workspace)
    trigger = body.get("trigger_id")
    try:
        await services.web.views_open(
            trigger_id=trigger if isinstance(trigger, str) else "",
            view=decision_modal(context, services.seal.seal(context, user.id)),
        )
    except SlackApiError as exc:
        log.warning("could not open the decision modal: %s", exc.response.get("error"))
        raise ActionRefused("no_form", "Slack did not open the form; try again.") from None
    return None


def register(app: AsyncApp, services: BotServices) -> None:
    async def on_click(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        # Counted from before the ack: once Slack has the ack, the click shows as in flight.
        with services.metrics.in_flight.track_inprogress():
            await _on_click(services, ack, body, action)

    for action_id in (APPROVE, DENY, REPLAN, DESTROY_NOW, EXTEND_TTL):
        app.action(action_id)(on_click)


async def _on_click(
    services: BotServices, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]
) -> None:
    await ack()
    user = slack_actor(body.get("user"))
    channel, _ = where(body)
    action_id = action.get("action_id")
    try:
        ref = RunRef.decode(action.get("value"))
    except ValueError:
        log.warning("%s: a button without a run reference: %.200r", action_id, action.get("value"))
        ref = None
    if user is None or ref is None:
        if user is None:
            log.warning("%s: a click without a well-formed user; ignored", action_id)
        elif channel:
            await services.tell(channel, user.id, ":no_entry_sign: This button is not a run's.")
        return
    control = services.control
    origin = interaction_origin(body, on_message=True)
    approve = action_id == APPROVE
    if action_id in (APPROVE, DENY):
        step = _decision(services, body, user, ref, approve)
    elif action_id == REPLAN:
        step = control.replan(user, ref, origin)
    elif action_id == DESTROY_NOW:
        step = control.destroy_now(user, ref, origin)
    else:
        step = control.extend_ttl(user, ref, EXTEND_SECONDS, origin)
    try:
        await _tell_outcome(services, channel, user.id, step, approve)
    except Exception:
        log.exception("%s on %s failed", action_id, ref.workflow_id)
        await services.tell(channel, user.id, _SOMETHING_WENT_WRONG)
