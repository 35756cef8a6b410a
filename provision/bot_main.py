"""`provision bot`: the Slack bot, wired to Temporal through RunService; also `start_bot` for
hosting the bot inside another process (`provision dev`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import aiohttp
from slack_sdk.errors import SlackApiError
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from bot.app import BotHandle, connect_bot
from bot.operations import RunRefused, TemporalUnavailable
from bot.services import BotConfig
from provision.client import TemporalUnreachable, connect
from provision.runs import RunError, RunService, RunSummary
from provision.settings import Settings
from stacks.registry import StacksFileError, load_stacks
from workflows.contracts import SIGNAL_DESTROY_NOW, SIGNAL_EXTEND_TTL, SIGNAL_REPLAN
from workflows.models import (
    ApplyDecision,
    DecisionOutcome,
    DeprovisionRequest,
    ExtendTtl,
    ProvisionRequest,
    RunStatus,
)

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 5.0
# Codes that mean "Temporal is not there right now" rather than "Temporal said no".
_UNAVAILABLE = (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED)


@contextlib.contextmanager
def _temporal_errors(what: str) -> Iterator[None]:
    """Turn Temporal's and RunService's exceptions into the bot's two kinds of no."""
    try:
        yield
    except RunError as exc:
        raise RunRefused(str(exc)) from None
    except RPCError as exc:
        if exc.status in _UNAVAILABLE:
            raise TemporalUnavailable(f"{what}: {exc.message}") from None
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise RunRefused(
                f"{what} refused: this run has ended (replanned or finished); see the updated "
                "run message"
            ) from None
        raise RunRefused(f"{what}: {exc.message}") from None


class TemporalRunOperations:
    """The bot's RunOperations over RunService. Connects on first use when Temporal was down at
    start, so the bot runs (and says so to users) while Temporal is away."""

    def __init__(self, settings: Settings, client: Client | None) -> None:
        self._settings = settings
        self._service = RunService(client, settings.task_queue, settings.ui_url) if client else None
        self._connecting = asyncio.Lock()

    async def _runs(self) -> RunService:
        if self._service is not None:
            return self._service
        async with self._connecting:
            if self._service is None:
                try:
                    client = await asyncio.wait_for(
                        connect(self._settings), timeout=CONNECT_TIMEOUT_SECONDS
                    )
                except TemporalUnreachable as exc:
                    raise TemporalUnavailable(str(exc)) from None
                except TimeoutError:
                    raise TemporalUnavailable(
                        f"cannot reach Temporal at {self._settings.temporal_address} "
                        f"within {CONNECT_TIMEOUT_SECONDS:.0f}s"
                    ) from None
                log.info("connected to Temporal at %s", self._settings.temporal_address)
                self._service = RunService(client, self._settings.task_queue, self._settings.ui_url)
        return self._service

    async def ready(self) -> None:
        await self._runs()

    async def start(self, request: ProvisionRequest | DeprovisionRequest) -> StartedRun:
        runs = await self._runs()
        with _temporal_errors("start"):
            handle = await runs.start(request)
        return StartedRun(handle.id, handle.result_run_id or "")

    async def status(self, target: str) -> RunStatus:
        runs = await self._runs()
        with _temporal_errors("status"):
            return await runs.status(target)

    async def decide(
        self, workflow_id: str, run_id: str, decision: ApplyDecision, *, by_signal: bool
    ) -> DecisionOutcome | None:
        runs = await self._runs()
        with _temporal_errors("decision"):
            return await runs.send_decision(workflow_id, run_id, decision, by_signal=by_signal)

    async def _signal(self, workflow_id: str, run_id: str, name: str, *args: object) -> None:
        runs = await self._runs()
        with _temporal_errors(name):
            await runs.signal(workflow_id, run_id, name, *args)

    async def replan(self, workflow_id: str, run_id: str) -> None:
        await self._signal(workflow_id, run_id, SIGNAL_REPLAN)

    async def destroy_now(self, workflow_id: str, run_id: str) -> None:
        await self._signal(workflow_id, run_id, SIGNAL_DESTROY_NOW)

    async def extend_ttl(self, workflow_id: str, run_id: str, extension: ExtendTtl) -> None:
        await self._signal(workflow_id, run_id, SIGNAL_EXTEND_TTL, extension)

    async def list_runs(self, state: str | None = None) -> Sequence[RunSummary]:
        runs = await self._runs()
        with _temporal_errors("list"):
            return await runs.list_runs(state)

    def run_url(self, workflow_id: str, run_id: str | None = None) -> str | None:
        if self._service is not None:
            return self._service.run_url(workflow_id, run_id)
        return None


@dataclass(frozen=True)
class StartedRun:
    workflow_id: str
    run_id: str


def bot_config(settings: Settings) -> BotConfig:
    if not settings.slack_configured:
        raise ValueError("SLACK_BOT_TOKEN and SLACK_APP_TOKEN must both be set")
    assert settings.slack_bot_token is not None and settings.slack_app_token is not None
    return BotConfig(
        bot_token=settings.slack_bot_token.get_secret_value(),
        app_token=settings.slack_app_token.get_secret_value(),
        api_url=settings.slack_api_url,
        approvers=tuple(settings.slack_approvers),
        allow_self_approval=settings.allow_self_approval,
        health_address=settings.bot_health_address,
        namespace=settings.temporal_namespace,
        ui_url=settings.ui_url,
        temporal_address=settings.temporal_address,
        region=settings.tf_var_region or "local",
        approval_timeout_seconds=int(settings.approval_timeout.total_seconds()),
        stacks=load_stacks(settings.stacks_file),
        app_id=settings.slack_app_id,
    )


async def start_bot(settings: Settings, client: Client | None) -> BotHandle:
    """Start the Slack bot on `client` (None: connect when a command first needs Temporal)."""
    return await connect_bot(bot_config(settings), TemporalRunOperations(settings, client))


async def run_bot_main(settings: Settings) -> int:
    """Run the bot until SIGINT/SIGTERM. Exit 2 on missing or rejected Slack credentials."""
    logging.getLogger().setLevel(logging.INFO)
    if not settings.slack_configured:
        log.error("SLACK_BOT_TOKEN and SLACK_APP_TOKEN must both be set (see the README)")
        return 2
    operations = TemporalRunOperations(settings, None)
    try:
        await operations.ready()
    except TemporalUnavailable as exc:
        log.warning("%s; the bot starts anyway and connects when a command needs Temporal", exc)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        config = bot_config(settings)
    except StacksFileError as exc:
        log.error("%s", exc)
        return 2
    try:
        handle = await connect_bot(config, operations)
    except SlackApiError as exc:
        log.error("Slack refused the bot's tokens or connection: %s", exc.response.get("error"))
        return 2
    except aiohttp.ClientError as exc:
        log.error("cannot reach Slack at %s: %s", settings.slack_api_url, exc)
        return 2
    except OSError as exc:
        log.error(
            "cannot serve health on PROVISION_BOT_HEALTH_ADDRESS=%s: %s",
            settings.bot_health_address,
            exc.strerror or exc,
        )
        return 2
    try:
        await stop.wait()
        log.info("stopping the Slack bot")
    finally:
        await handle.stop()
    return 0
