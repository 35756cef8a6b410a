"""The bot's configuration and the dependencies its listeners share, injected at start."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.metrics import BotMetrics
from bot.modals import MetadataSeal
from bot.operations import RunOperations
from bot.run_control import RunControl
from stacks.registry import BUILTIN, Stacks

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BotConfig:
    """Plain values from the edge's settings; the bot reads no environment itself."""

    bot_token: str
    app_token: str
    api_url: str = "https://slack.com/api/"
    approvers: tuple[str, ...] = ()
    allow_self_approval: bool = False
    health_address: str = "127.0.0.1:8090"
    namespace: str = "default"
    ui_url: str | None = None
    # What requests need from the edge (as the CLI passes them): the Temporal frontend the
    # local configurations create namespaces on, the region label, the approval timeout.
    temporal_address: str = "localhost:7233"
    region: str = "local"
    approval_timeout_seconds: int = 24 * 3600
    socket_ping_interval: float = 10.0
    # The stacks users may run (the built-in ones unless a stacks file adds or hides some).
    stacks: Stacks = BUILTIN
    # The Slack app this bot is; clicks and submissions of any other app are refused.
    # Default: read from the app-level token (xapp-1-<app id>-…).
    app_id: str | None = None

    @property
    def own_app_id(self) -> str | None:
        if self.app_id:
            return self.app_id
        match = _APP_TOKEN.match(self.app_token)
        return match.group(1) if match else None


_APP_TOKEN = re.compile(r"^xapp-\d+-(A[A-Z0-9]+)-")


@dataclass
class BotServices:
    config: BotConfig
    operations: RunOperations
    control: RunControl
    web: AsyncWebClient
    metrics: BotMetrics
    # Authenticates the decision form's private_metadata.
    seal: MetadataSeal
    # This bot's public decision key: every run it starts names it, so the workflow records
    # the Slack users whose decisions the bot signed (workflows/attestation.py).
    front_door_key: str | None = None

    async def tell(self, channel: str, user: str, text: str) -> None:
        """An ephemeral line to one user; a failure to tell is logged, never raised."""
        try:
            await self.web.chat_postEphemeral(channel=channel, user=user, text=text)
        except SlackApiError as exc:
            log.warning("could not tell %s in %s: %s", user, channel, exc.response.get("error"))
