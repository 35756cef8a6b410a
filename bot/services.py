"""The bot's configuration and the dependencies its listeners share, injected at start."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.metrics import BotMetrics
from bot.operations import RunOperations
from bot.run_control import RunControl

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


@dataclass
class BotServices:
    config: BotConfig
    operations: RunOperations
    control: RunControl
    web: AsyncWebClient
    metrics: BotMetrics

    async def tell(self, channel: str, user: str, text: str) -> None:
        """An ephemeral line to one user; a failure to tell is logged, never raised."""
        try:
            await self.web.chat_postEphemeral(channel=channel, user=user, text=text)
        except SlackApiError as exc:
            log.warning("could not tell %s in %s: %s", user, channel, exc.response.get("error"))
