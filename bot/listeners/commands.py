"""`/provision …`: parsed by the shared grammar, acknowledged at once, then acted on."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.errors import SlackApiError

from bot.blocks import (
    clip,
    decision_ack,
    escape,
    render_help,
    render_run_list,
    render_run_message,
    render_start_failure,
)
from bot.grammar import Command, GrammarError, help_text, parse_text
from bot.listeners import command_actor, command_origin
from bot.operations import RunRefused, TemporalUnavailable
from bot.run_control import ActionRefused, refusal_text
from bot.services import BotServices
from stacks.model import Stack
from stacks.registry import Stacks
from stacks.requests import (
    RequestError,
    RunOptions,
    build_destroy_request,
    build_request,
    sanitize_prefix,
)
from workflows.contracts import (
    DEPROVISION_WORKFLOW,
    PROVISION_WORKFLOW,
    workflow_id_for,
    workspace_of,
)
from workflows.models import (
    Actor,
    DeprovisionRequest,
    ProvisionRequest,
    RunState,
    RunStatus,
    SlackMessageRef,
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
        variables=dict(command.variables),
        owners=tuple(command.owners),
        # The global approvers, for stacks that name none of their own; the workflow holds
        # every Slack decision to them.
        approvers=tuple(config.approvers) or None,
        plan_only=command.plan_only,
        stacks=config.stacks,
    )


def _request_for(
    services: BotServices, command: Command, user: Actor
) -> ProvisionRequest | DeprovisionRequest:
    if command.verb in ("run", "plan"):
        return build_request(_options(services, command, user, command.scenario or ""))
    if command.target:
        workspace = workspace_of(command.target)
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
        workflow_type=DEPROVISION_WORKFLOW if destroy else PROVISION_WORKFLOW,
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
    update = {"slack": message, "front_door_key": services.front_door_key}
    try:
        started = await services.operations.start(request.model_copy(update=update))
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


def render_stacks(stacks: Stacks) -> str:
    """`/provision stacks`: what a user can run here, and what each run may set."""
    lines = ["*Stacks* (`/provision <stack> [--var NAME=VALUE]…`)"]
    for stack in stacks:
        if stack.name == "destroy":
            continue
        lines.append(_stack_line(stack))
    return clip("\n".join(lines), 3000)


def _stack_line(stack: Stack) -> str:
    line = f"• `{stack.name}` {escape(stack.description)}"
    for name, spec in stack.inputs.items():
        default = "required" if spec.required else f"default {spec.default}"
        line += f"\n    `--var {escape(name)}=…` {escape(spec.allowed())} ({escape(default)})"
    if stack.permissions.run is not None:
        line += "\n    run by: " + ", ".join(_mention_id(i) for i in stack.permissions.run)
    return line


def _mention_id(slack_id: str) -> str:
    return f"<!subteam^{slack_id}>" if slack_id.startswith("S") else f"<@{slack_id}>"


async def _dispatch(
    services: BotServices,
    command: Command,
    user: Actor,
    body: dict[str, Any],
    respond: AsyncRespond,
) -> None:
    channel = body.get("channel_id") if isinstance(body.get("channel_id"), str) else ""
    control = services.control
    origin = command_origin(body)
    control.check_sender(origin)
    if command.verb in ("run", "plan", "destroy"):
        request = _request_for(services, command, user)
        # A stack that destroys (the original demo's `destroy` scenario) is a destroy too.
        if isinstance(request, DeprovisionRequest):
            await control.authorize_destroy(user, request.workspace, origin)
            stack = None
        else:
            stack = services.config.stacks.get(request.scenario)
            refusal = await control.access.run_refusal(user.id, stack.permissions.run)
            if refusal:
                raise ActionRefused(refusal.reason, refusal.message, markup=True)
        target = stack.channel if stack is not None and stack.channel else channel
        if target != channel:
            await respond(text=f"The run message of stack {stack.name} goes to <#{target}>.")
        await _post_and_start(services, request, user, target, respond)
    elif command.verb == "stacks":
        await respond(text=render_stacks(services.config.stacks))
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
            user, command.target or "", command.verb == "approve", command.reason or "", origin
        )
        await respond(text=decision_ack(command.verb == "approve", message))
    elif command.verb == "replan":
        await respond(text=escape(await control.replan_target(user, command.target or "", origin)))
    else:
        await respond(
            text=render_help(
                f"`{command.verb}` is not available in Slack", help_text(services.config.stacks)
            )
        )


def register(app: AsyncApp, services: BotServices) -> None:
    metrics = services.metrics

    stacks = services.config.stacks
    usage = help_text(stacks)

    @app.command(COMMAND)
    async def on_provision(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        # Counted from before the ack: once Slack has the ack, the command shows as in flight.
        with metrics.in_flight.track_inprogress():
            await _on_command(services, ack, body, respond, usage)


async def _on_command(
    services: BotServices,
    ack: AsyncAck,
    body: dict[str, Any],
    respond: AsyncRespond,
    usage: str,
) -> None:
    metrics = services.metrics
    stacks = services.config.stacks
    text = body.get("text")
    try:
        command = parse_text(text if isinstance(text, str) else "", stacks.names())
    except GrammarError as exc:
        metrics.commands.labels("invalid").inc()
        await ack(text=render_help(str(exc), usage))
        return
    metrics.commands.labels(command.verb).inc()
    if command.verb == "help":
        await ack(text=render_help(None, usage))
        return
    user = command_actor(body)
    if user is None:
        log.warning("/provision without a well-formed user_id; ignored")
        await ack(text=":no_entry_sign: This command names no Slack user.")
        return
    await ack()
    await _handle(services, command, user, body, respond, usage)


async def _handle(
    services: BotServices,
    command: Command,
    user: Actor,
    body: dict[str, Any],
    respond: AsyncRespond,
    usage: str,
) -> None:
    """Act on a parsed command and answer it; whatever goes wrong, the user hears something."""
    try:
        await _dispatch(services, command, user, body, respond)
    except RequestError as exc:
        await respond(text=render_help(str(exc), usage))
    except (ActionRefused, RunRefused) as exc:
        await respond(text=f":no_entry_sign: {refusal_text(exc)}")
    except TemporalUnavailable as exc:
        await respond(
            text=f":warning: Temporal is unreachable, try again shortly: {escape(str(exc))}"
        )
    except Exception:
        # The user must hear something; the details are for the operator's log.
        log.exception("/provision %s failed", command.verb)
        await respond(text=":warning: Something went wrong handling that; it is logged.")
