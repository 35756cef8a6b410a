"""`/provision …`: parsed by the shared grammar, acknowledged at once, then acted on."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.errors import SlackApiError

from bot.blocks import (
    decision_ack,
    escape,
    render_help,
    render_run_list,
    render_run_message,
    render_start_failure,
)
from bot.grammar import HELP, Command, GrammarError, parse_text
from bot.operations import RunRefused, TemporalUnavailable
from bot.run_control import ActionRefused
from bot.services import BotServices
from stacks.requests import (
    RequestError,
    RunOptions,
    build_destroy_request,
    build_request,
    sanitize_prefix,
)
from workflows.models import (
    Actor,
    DeprovisionRequest,
    ProvisionRequest,
    RunState,
    RunStatus,
    SlackMessageRef,
    workflow_id_for,
)

log = logging.getLogger(__name__)

COMMAND = "/provision"
_NOT_IN_CHANNEL = ("not_in_channel", "channel_not_found", "is_archived")


def _options(services: BotServices, command: Command, user: Actor, scenario: str) -> RunOptions:
    config = services.config
    return RunOptions(
        scenario=scenario,
        # In Slack the prefix defaults to the user's own name, so runs are theirs by default.
        prefix=command.prefix or sanitize_prefix(user.name),
        workspace=command.workspace,
        ttl_seconds=command.ttl,
        pace_seconds=command.pace,
        region=config.region,
        temporal_address=config.temporal_address,
        approval_timeout_seconds=config.approval_timeout_seconds,
        requester=user,
        allow_self_approval=config.allow_self_approval,
        ui_url=config.ui_url,
    )


def _request_for(
    services: BotServices, command: Command, user: Actor
) -> ProvisionRequest | DeprovisionRequest:
    if command.verb == "run":
        return build_request(_options(services, command, user, command.scenario or ""))
    if command.target:
        workspace = command.target.removeprefix("provision-")
    elif command.scenario:
        prefix = command.prefix or sanitize_prefix(user.name)
        workspace = f"{prefix}-{command.scenario}"
    else:
        raise RequestError(
            "destroy needs a workspace: `/provision destroy <workspace>` or "
            "`/provision destroy --scenario S [--prefix P]`"
        )
    return build_destroy_request(
        workspace,
        scenario_name=command.scenario,
        options=_options(services, command, user, command.scenario or "happy-path"),
    )


def _starting_status(request: ProvisionRequest | DeprovisionRequest, user: Actor) -> RunStatus:
    """What the run message shows between posting it and the workflow's first notification."""
    destroy = isinstance(request, DeprovisionRequest)
    return RunStatus(
        workflow_type="DeprovisionInfraWorkflow" if destroy else "ProvisionInfraWorkflow",
        workflow_id=workflow_id_for(request.workspace),
        run_id="",
        scenario=request.scenario,
        workspace=request.workspace,
        tf_directory=request.tf_directory,
        state=RunState.PENDING,
        progress=0,
        requester=user,
        approval_channel=request.approval_channel,
        required_approvals=request.required_approvals,
        ui_url=request.ui_url,
    )


async def _post_and_start(
    services: BotServices,
    request: ProvisionRequest | DeprovisionRequest,
    user: Actor,
    channel: str,
    respond: AsyncRespond,
) -> None:
    """Post the run message first, then start the workflow with its ts, so the workflow's first
    notification always has a message to update."""
    # Nothing goes in the channel while Temporal is away: the user hears it privately.
    await services.operations.ready()
    text, blocks = render_run_message(
        _starting_status(request, user), namespace=services.config.namespace, interactive=False
    )
    try:
        posted = await services.web.chat_postMessage(channel=channel, text=text, blocks=blocks)
    except SlackApiError as exc:
        error = exc.response.get("error")
        if error in _NOT_IN_CHANNEL:
            await respond(
                text=":no_entry_sign: I can't post the run message here: invite me to this "
                "channel (`/invite @provision`) or use a channel I'm in. Nothing was started."
            )
        else:
            await respond(text=f":no_entry_sign: Slack refused the run message ({error}).")
        return
    message = SlackMessageRef(channel=posted["channel"], ts=posted["ts"])
    try:
        started = await services.operations.start(request.model_copy(update={"slack": message}))
    except (RunRefused, TemporalUnavailable) as exc:
        reason = str(exc)
        log.info("run of %s not started: %s", request.workspace, reason)
        text, blocks = render_start_failure(request.scenario, request.workspace, user, reason)
        try:
            await services.web.chat_update(
                channel=message.channel, ts=message.ts, text=text, blocks=blocks
            )
        except SlackApiError as update_error:
            log.warning("could not mark the run message as not started: %s", update_error)
        await respond(text=f":no_entry_sign: Not started: {escape(reason)}")
        return
    log.info(
        "started %s (run %s) for %s in %s", started.workflow_id, started.run_id, user.id, channel
    )


async def _dispatch(
    services: BotServices, command: Command, user: Actor, channel: str, respond: AsyncRespond
) -> None:
    control = services.control
    if command.verb in ("run", "destroy"):
        request = _request_for(services, command, user)
        if command.verb == "destroy":
            await control.authorize_destroy(user, request.workspace)
        await _post_and_start(services, request, user, channel, respond)
    elif command.verb == "status":
        status = await services.operations.status(command.target or "")
        text, blocks = render_run_message(
            status, namespace=services.config.namespace, interactive=False
        )
        await respond(text=text, blocks=blocks)
    elif command.verb == "list":
        runs = await services.operations.list_runs(command.status)
        text, blocks = render_run_list(runs, command.status)
        await respond(text=text, blocks=blocks)
    elif command.verb in ("approve", "deny"):
        message = await control.decide_on_target(
            user, command.target or "", command.verb == "approve", command.reason or ""
        )
        await respond(text=decision_ack(command.verb == "approve", message))
    elif command.verb == "replan":
        await respond(text=escape(await control.replan_target(user, command.target or "")))
    else:
        await respond(text=render_help(f"`{command.verb}` is not available in Slack", HELP))


def register(app: AsyncApp, services: BotServices) -> None:
    metrics = services.metrics

    @app.command(COMMAND)
    async def on_provision(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        try:
            command = parse_text(body.get("text") or "")
        except GrammarError as exc:
            metrics.commands.labels("invalid").inc()
            await ack(text=render_help(str(exc), HELP))
            return
        metrics.commands.labels(command.verb).inc()
        if command.verb == "help":
            await ack(text=render_help(None, HELP))
            return
        await ack()
        user = Actor(
            id=body["user_id"], name=body.get("user_name") or body["user_id"], kind="slack"
        )
        try:
            await _dispatch(services, command, user, body["channel_id"], respond)
        except RequestError as exc:
            await respond(text=render_help(str(exc), HELP))
        except (ActionRefused, RunRefused) as exc:
            await respond(text=f":no_entry_sign: {escape(str(exc))}")
        except TemporalUnavailable as exc:
            await respond(
                text=f":warning: Temporal is unreachable, try again shortly: {escape(str(exc))}"
            )
        except Exception:
            # The user must hear something; the details are for the operator's log.
            log.exception("/provision %s failed", command.verb)
            await respond(text=":warning: Something went wrong handling that; it is logged.")
