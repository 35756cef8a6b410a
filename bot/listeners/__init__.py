"""Bolt listeners, grouped by kind: slash commands, button actions, modal submissions.

What a payload says is read defensively here, once: a forged or malformed payload gets a warning
in the log and nothing else, never a traceback."""

from __future__ import annotations

import re
from typing import Any

from bot.run_control import Origin
from workflows.models import Actor

_USER_ID = re.compile(r"^[UW][A-Z0-9]{1,30}$")
_NAME_LIMIT = 80


def _text(value: object, limit: int = 200) -> str | None:
    if isinstance(value, str) and value and len(value) <= limit and value.isprintable():
        return value
    return None


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def slack_actor(user: object) -> Actor | None:
    """The Slack user of an interaction payload, as recorded with decisions; None when the
    payload names no well-formed user."""
    user = _dict(user)
    user_id = _text(user.get("id"), 32)
    if user_id is None or not _USER_ID.match(user_id):
        return None
    name = _text(user.get("username"), _NAME_LIMIT) or _text(user.get("name"), _NAME_LIMIT)
    return Actor(id=user_id, name=name or user_id, kind="slack")


def command_actor(body: dict[str, Any]) -> Actor | None:
    """The user of a slash command payload (user_id, user_name)."""
    return slack_actor({"id": body.get("user_id"), "name": body.get("user_name")})


def where(body: dict[str, Any]) -> tuple[str, str]:
    """The channel and message ts a button sits on ("" when the payload lacks them)."""
    container = _dict(body.get("container"))
    channel = _text(_dict(body.get("channel")).get("id")) or _text(container.get("channel_id"))
    ts = _text(container.get("message_ts")) or _text(_dict(body.get("message")).get("ts"))
    return channel or "", ts or ""


def interaction_origin(body: dict[str, Any], *, on_message: bool) -> Origin:
    """Team, app and (for a button) message of a block_actions or view_submission payload."""
    team = _text(_dict(body.get("team")).get("id")) or _text(_dict(body.get("user")).get("team_id"))
    channel, ts = where(body) if on_message else (None, None)
    return Origin(
        team_id=team,
        app_id=_text(body.get("api_app_id")),
        channel=channel,
        message_ts=ts,
        on_message=on_message,
    )


def command_origin(body: dict[str, Any]) -> Origin:
    return Origin(
        team_id=_text(body.get("team_id")),
        app_id=_text(body.get("api_app_id")),
        channel=_text(body.get("channel_id")),
    )
