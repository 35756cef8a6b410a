"""The Slack bot: a Bolt AsyncApp over Socket Mode, its listeners, and its health/metrics server.

`provision` builds the configuration and the run operations and calls `connect_bot`; the bot
itself reads no settings and imports nothing from `provision`.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass

import aiohttp
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest

from bot.access import AccessPolicy, ApproverDirectory
from bot.health import HealthServer
from bot.listeners import actions, commands, views
from bot.metrics import BotMetrics
from bot.modals import MetadataSeal
from bot.operations import RunOperations
from bot.run_control import RunControl
from bot.services import BotConfig, BotServices
from bot.web_client import build_web_client
from workflows.attestation import DecisionSigner

log = logging.getLogger(__name__)


class TimedSocketModeHandler(AsyncSocketModeHandler):
    """Observes the ack latency the user feels: envelope received → acknowledgement sent."""

    def __init__(self, app: AsyncApp, app_token: str, metrics: BotMetrics, **kwargs) -> None:
        super().__init__(app, app_token, **kwargs)
        self._metrics = metrics

    async def handle(  # type: ignore[override]
        self, client: SocketModeClient, req: SocketModeRequest
    ) -> None:
        started = time.perf_counter()
        await super().handle(client, req)
        self._metrics.ack_seconds.labels(req.type).observe(time.perf_counter() - started)


@dataclass
class BotHandle:
    """A running bot. `stop()` closes the socket, the health server and the HTTP session."""

    app: AsyncApp
    services: BotServices
    handler: TimedSocketModeHandler
    health: HealthServer
    session: aiohttp.ClientSession

    @property
    def metrics(self) -> BotMetrics:
        return self.services.metrics

    @property
    def health_url(self) -> str:
        return self.health.url

    async def is_connected(self) -> bool:
        return await self.handler.client.is_connected()

    async def stop(self) -> None:
        await self.handler.close_async()
        await self.health.stop()
        await self.session.close()
        log.info("Slack bot stopped")


class _ClientTokenIsIntended(logging.Filter):
    """Bolt warns that SLACK_BOT_TOKEN "will be unused" whenever it is set and a client is
    given; giving our client (shared session, retries, error counts) is the point."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()


_BOLT_LOG = logging.getLogger("slack_bolt.AsyncApp")


def build_app(services: BotServices) -> AsyncApp:
    if not any(isinstance(f, _ClientTokenIsIntended) for f in _BOLT_LOG.filters):
        _BOLT_LOG.addFilter(_ClientTokenIsIntended())
    app = AsyncApp(client=services.web, process_before_response=False, logger=_BOLT_LOG)
    commands.register(app, services)
    actions.register(app, services)
    views.register(app, services)
    return app


async def connect_bot(config: BotConfig, operations: RunOperations) -> BotHandle:
    """Start the bot: check the bot token, connect Socket Mode, serve /healthz and /metrics."""
    metrics = BotMetrics()

    def count_error(method: str, error: str) -> None:
        metrics.slack_api_errors.labels(method, error).inc()

    async with contextlib.AsyncExitStack() as undo:
        # Whatever started is stopped again if a later step fails; on success nothing is.
        session = aiohttp.ClientSession()
        undo.push_async_callback(session.close)
        web = build_web_client(
            config.bot_token, config.api_url, on_error=count_error, session=session
        )
        identity = await web.auth_test()
        directory = ApproverDirectory(config.approvers, web)
        if directory.empty:
            log.warning(
                "PROVISION_SLACK_APPROVERS is empty: nobody can approve or deny from Slack; "
                "decide with `provision approve|deny` in a terminal"
            )
        else:
            await directory.warm()
        access = AccessPolicy(directory, allow_self_approval=config.allow_self_approval)
        # Keys of the bot's own, derived from its token: nobody without it can sign a decision
        # or seal a form (the workflow and the bot check).
        signer = DecisionSigner(config.bot_token)
        control = RunControl(
            operations,
            access,
            metrics,
            signer=signer,
            app_id=config.own_app_id,
            team_id=identity.get("team_id") or None,
        )
        if config.own_app_id is None:
            log.warning(
                "the app id is not known (SLACK_APP_TOKEN is not xapp-1-<app id>-…): clicks are "
                "not checked for their app"
            )
        services = BotServices(
            config=config,
            operations=operations,
            control=control,
            web=web,
            metrics=metrics,
            seal=MetadataSeal(config.bot_token),
            front_door_key=signer.public_key,
        )
        app = build_app(services)
        handler = TimedSocketModeHandler(
            app, config.app_token, metrics, ping_interval=config.socket_ping_interval
        )
        health = HealthServer(
            config.health_address, connected=handler.client.is_connected, metrics=metrics
        )
        await health.start()
        undo.push_async_callback(health.stop)
        undo.push_async_callback(handler.close_async)
        await handler.connect_async()
        undo.pop_all()
    log.info(
        "Slack bot %s connected (Socket Mode, API %s); health and metrics on %s",
        identity.get("user_id"),
        config.api_url,
        health.url,
    )
    return BotHandle(app, services, handler, health, session)
