"""Bolt listeners, grouped by kind: slash commands, button actions, modal submissions."""

from __future__ import annotations

from typing import Any

from workflows.models import Actor


def slack_actor(user: dict[str, Any]) -> Actor:
    """The Slack user of an interaction payload, as recorded with decisions."""
    return Actor(
        id=str(user["id"]),
        name=str(user.get("username") or user.get("name") or user["id"]),
        kind="slack",
    )
