"""Buttons on the run message: Approve, Deny, Replan, Destroy now, Extend."""

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
from bot.listeners import slack_actor
from bot.modals import DecisionContext, decision_modal, notice_modal
from bot.operations import RunRefused, TemporalUnavailable
from bot.run_control import ActionRefused
from bot.services import BotServices

log = logging.getLogger(__name__)

_SOMETHING_WENT_WRONG = ":warning: Something went wrong handling that click; it is logged."


def _where(body: dict[str, Any]) -> tuple[str, str]:
    container = body.get("container") or {}
    channel = (body.get("channel") or {}).get("id") or container.get("channel_id") or ""
    return channel, container.get("message_ts") or (body.get("message") or {}).get("ts") or ""


async def _open_decision_modal(
    services: BotServices, body: dict[str, Any], ref: RunRef, approve: bool
) -> None:
    """Update path: authorize, open the modal (before any call to Temporal: the trigger lives
    3 s), then check the run still waits and turn the modal into a notice if it does not."""
    user = slack_actor(body["user"])
    channel, message_ts = _where(body)
    try:
        await services.control.authorize_decision(user, ref, approve)
    except ActionRefused as exc:
        await services.tell(channel, user.id, f":no_entry_sign: {escape(str(exc))}")
        return
    context = DecisionContext(
        ref, approve, channel, message_ts, ref.workflow_id.removeprefix("provision-")
    )
    try:
        opened = await services.web.views_open(
            trigger_id=body["trigger_id"], view=decision_modal(context)
        )
    except SlackApiError as exc:
        log.warning("could not open the decision modal: %s", exc.response.get("error"))
        await services.tell(channel, user.id, ":warning: Slack did not open the form; try again.")
        return
    try:
        await services.control.check_awaiting(user, ref)
        return
    except (ActionRefused, RunRefused) as exc:
        title, text = "Nothing to decide", f":no_entry_sign: {escape(str(exc))}"
    except TemporalUnavailable as exc:
        title, text = "Try again shortly", f":warning: Temporal is unreachable: {escape(str(exc))}"
    await services.tell(channel, user.id, text)
    try:
        await services.web.views_update(
            view_id=opened["view"]["id"],
            hash=opened["view"].get("hash"),
            view=notice_modal(title, text),
        )
    except SlackApiError as exc:
        # The user may already have closed or submitted it; the ephemeral said it all.
        log.info("could not replace the decision modal: %s", exc.response.get("error"))


async def _tell_outcome(
    services: BotServices,
    channel: str,
    user_id: str,
    action: Awaitable[str],
    approved: bool = True,
) -> None:
    """Run a button's action and tell the clicker, privately, how it went."""
    try:
        message = await action
    except (ActionRefused, RunRefused) as exc:
        await services.tell(channel, user_id, f":no_entry_sign: {escape(str(exc))}")
        return
    except TemporalUnavailable as exc:
        await services.tell(
            channel, user_id, f":warning: Temporal is unreachable: {escape(str(exc))}"
        )
        return
    await services.tell(channel, user_id, decision_ack(approved, message))


async def _decide_now(
    services: BotServices, body: dict[str, Any], ref: RunRef, approve: bool
) -> None:
    """Signal path: one click decides, as in the original demo."""
    user = slack_actor(body["user"])
    channel, _ = _where(body)
    await _tell_outcome(
        services, channel, user.id, services.control.decide(user, ref, approve, reason=""), approve
    )


def register(app: AsyncApp, services: BotServices) -> None:
    async def decision(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        try:
            ref = RunRef.decode(action.get("value"))
        except ValueError:
            log.warning("a decision button without a run reference: %r", action.get("value"))
            return
        approve = action["action_id"] == APPROVE
        try:
            if ref.by_signal:
                await _decide_now(services, body, ref, approve)
            else:
                await _open_decision_modal(services, body, ref, approve)
        except Exception:
            log.exception("%s on %s failed", action["action_id"], ref.workflow_id)
            channel, _ = _where(body)
            await services.tell(channel, body["user"]["id"], _SOMETHING_WENT_WRONG)

    async def control(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        user = slack_actor(body["user"])
        channel, _ = _where(body)
        try:
            ref = RunRef.decode(action.get("value"))
        except ValueError:
            log.warning("a run button without a run reference: %r", action.get("value"))
            return
        if action["action_id"] == REPLAN:
            step = services.control.replan(user, ref)
        elif action["action_id"] == DESTROY_NOW:
            step = services.control.destroy_now(user, ref)
        else:
            step = services.control.extend_ttl(user, ref, EXTEND_SECONDS)
        try:
            await _tell_outcome(services, channel, user.id, step)
        except Exception:
            log.exception("%s on %s failed", action["action_id"], ref.workflow_id)
            await services.tell(channel, user.id, _SOMETHING_WENT_WRONG)

    app.action(APPROVE)(decision)
    app.action(DENY)(decision)
    app.action(REPLAN)(control)
    app.action(DESTROY_NOW)(control)
    app.action(EXTEND_TTL)(control)
