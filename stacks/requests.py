"""One request builder for every front door: a stack, a user's choices and the edge's settings →
the workflow's request. The CLI and the Slack bot both build their requests here.

Everything a user typed is checked here, before anything starts, with one line that names the
input and what is allowed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from pydantic import ValidationError

from stacks.model import SLACK_ID_PATTERN, Stack
from stacks.registry import BUILTIN, Stacks
from workflows.models import (
    NAME_PATTERN,
    WORKSPACE_PATTERN,
    Actor,
    ApprovalChannel,
    DeprovisionRequest,
    Faults,
    ProvisionRequest,
    SlackMessageRef,
    TfValue,
)
from workflows.scenarios import LOCAL_PASSTHROUGH, Scenario

EMAIL_PATTERN = re.compile(r"^[a-z0-9._%+-]{1,64}@[a-z0-9.-]{1,253}\.[a-z]{2,24}$")
ADDRESS_PATTERN = re.compile(r"^[A-Za-z0-9.-]+:[0-9]{1,5}$")
MAX_PACE_SECONDS = 60.0
MAX_OWNERS = 20


class RequestError(ValueError):
    """Bad user input; the message is one line a user can act on."""


def _one_line(exc: ValueError) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ()))
        message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
        return f"{where}: {message}" if where else message
    return str(exc).splitlines()[0]


def check_name(label: str, value: str) -> str:
    if not NAME_PATTERN.match(value):
        raise RequestError(
            f"{label} {value!r} is not allowed: use 1-31 lowercase letters, digits or '-', "
            "starting with a letter or digit"
        )
    return value


def check_workspace(value: str) -> str:
    if not WORKSPACE_PATTERN.match(value):
        raise RequestError(
            f"workspace {value!r} is not allowed: use 1-63 lowercase letters, digits or '-', "
            "starting with a letter or digit"
        )
    return value


def sanitize_prefix(raw: str) -> str:
    """A user name → a valid prefix (`Alice.Smith` → `alice-smith`)."""
    cleaned = re.sub(r"[^a-z0-9-]+", "-", raw.lower()).strip("-")
    cleaned = re.sub(r"-{2,}", "-", cleaned)[:31].strip("-")
    return cleaned or "user"


def validate_variables(variables: dict[str, TfValue]) -> None:
    """Python-side check of every variable that reaches a shell command (terraform checks too)."""
    for key in ("prefix", "name_suffix", "region"):
        if key in variables:
            check_name(key, str(variables[key]))
    if "workspace" in variables:
        check_workspace(str(variables["workspace"]))
    if "admin_email" in variables and not EMAIL_PATTERN.match(str(variables["admin_email"])):
        raise RequestError(f"admin_email {variables['admin_email']!r} is not a valid address")
    if "address" in variables and not ADDRESS_PATTERN.match(str(variables["address"])):
        raise RequestError(f"address {variables['address']!r} is not host:port")
    retention = variables.get("retention_days")
    if retention is not None and (not isinstance(retention, int) or not 0 <= retention <= 3650):
        raise RequestError("retention_days must be a whole number of days, 0-3650")


@dataclass
class RunOptions:
    """What a user chose on the command line or in Slack, plus the edge's settings."""

    scenario: str  # the stack's name (the original demo called them scenarios)
    prefix: str
    workspace: str | None = None
    ttl_seconds: int | None = None
    pace_seconds: float = 0.0
    region: str = "local"
    temporal_address: str = "127.0.0.1:7233"
    approval_timeout_seconds: int = 24 * 3600
    requester: Actor | None = None
    required_approvals: int = 1
    allow_self_approval: bool = False
    extra_passthrough: tuple[str, ...] = ()
    slack: SlackMessageRef | None = None
    ui_url: str | None = None
    variables: dict[str, str] = field(default_factory=dict)
    owners: tuple[str, ...] = ()
    # The approver set as the front door resolved it (user ids); None: nobody is restricted.
    approvers: tuple[str, ...] | None = None
    plan_only: bool = False
    stacks: Stacks = BUILTIN


def default_workspace(prefix: str, stack: str) -> str:
    return f"{prefix}-{stack}"


def _stack(options: RunOptions) -> Stack:
    try:
        return options.stacks.get(options.scenario)
    except LookupError as exc:
        raise RequestError(str(exc)) from None


def _ttl(stack: Stack, scenario: Scenario | None, given: int | None) -> int | None:
    if given is not None:
        if given < 1:
            raise RequestError("--ttl must be a positive number of seconds")
        if given > stack.ttl.max:
            raise RequestError(
                f"--ttl {given}: stack {stack.name} allows at most {stack.ttl.max} seconds "
                f"({stack.ttl.max / 86400:g} days)"
            )
        return given
    if stack.ttl.default is not None:
        return stack.ttl.default
    return scenario.default_ttl_seconds if scenario else None


def _variables(stack: Stack, scenario: Scenario | None, options: RunOptions, workspace: str):
    try:
        inputs = stack.input_values(options.variables)
    except ValueError as exc:
        raise RequestError(str(exc)) from None
    variables: dict[str, TfValue] = {**stack.variables, **inputs}
    if scenario is not None:
        prefix = check_name("prefix", options.prefix)
        variables = {
            "prefix": prefix,
            "name_suffix": scenario.name,
            "region": check_name("region", options.region),
            "address": options.temporal_address,
            # The namespace is named after the workspace, so two workspaces never share one.
            "workspace": workspace,
            **variables,
        }
        if scenario.tf_directory == "local_admin_user":
            variables["admin_email"] = f"{prefix}@example.com"
        validate_variables(variables)
    return variables, inputs


def _owners(options: RunOptions) -> list[str]:
    owners = [options.requester.id] if options.requester else []
    for owner in options.owners:
        if not SLACK_ID_PATTERN.match(owner):
            raise RequestError(
                f"--owner {owner!r} is not a Slack user id (U…, W…) or user-group id (S…)"
            )
        if owner not in owners:
            owners.append(owner)
    if len(owners) > MAX_OWNERS:
        raise RequestError(f"at most {MAX_OWNERS} owners")
    return owners


def _approvers(stack: Stack, options: RunOptions) -> list[str] | None:
    """The stack's own approvers, else the global ones the front door was given."""
    if stack.permissions.approve is not None:
        return list(stack.permissions.approve)
    return list(options.approvers) if options.approvers is not None else None


def _common(options: RunOptions, stack: Stack, workspace: str) -> dict:
    if not 0 <= options.pace_seconds <= MAX_PACE_SECONDS:
        raise RequestError(f"--pace must be between 0 and {MAX_PACE_SECONDS:g} seconds")
    passthrough = set(LOCAL_PASSTHROUGH) | set(stack.secrets) | set(options.extra_passthrough)
    common = {
        "workspace": workspace,
        "stack": stack.name,
        "env_passthrough": sorted(passthrough),
        "approval_channel": ApprovalChannel(stack.approval_channel),
        "required_approvals": stack.approvals if not stack.builtin else options.required_approvals,
        "allow_self_approval": stack.self_approval or options.allow_self_approval,
        "approval_timeout_seconds": options.approval_timeout_seconds,
        "pace_seconds": options.pace_seconds,
        "slack": options.slack,
        "ui_url": options.ui_url,
        "owners": _owners(options),
        "approvers": _approvers(stack, options),
        "destroyers": stack.permissions.destroy,
    }
    if options.requester is not None:
        common["requester"] = options.requester
    return common


def build_request(options: RunOptions) -> ProvisionRequest | DeprovisionRequest:
    stack = _stack(options)
    scenario = options.stacks.scenario_of(stack)
    if scenario is not None and scenario.deprovision:
        if not options.workspace:
            raise RequestError(
                "destroy needs a workspace: `destroy <workspace>` or `destroy --scenario S "
                "--prefix P`"
            )
        return build_destroy_request(options.workspace, scenario_name=None, options=options)
    workspace = check_workspace(
        options.workspace or default_workspace(sanitize_prefix(options.prefix), stack.name)
    )
    variables, inputs = _variables(stack, scenario, options, workspace)
    try:
        return ProvisionRequest(
            scenario=stack.name,
            tf_directory=stack.source_label,
            variables=variables,
            inputs=inputs,
            faults=scenario.faults if scenario else Faults(),
            ttl_seconds=_ttl(stack, scenario, options.ttl_seconds),
            auto_apply=stack.auto_apply,
            plan_only=options.plan_only,
            **_common(options, stack, workspace),
        )
    except ValueError as exc:
        raise RequestError(_one_line(exc)) from None


def build_destroy_request(
    workspace: str, *, scenario_name: str | None, options: RunOptions
) -> DeprovisionRequest:
    """Destroy a workspace. With its stack the configuration is known; without, the worker
    uses the workspace's own record of what was applied."""
    check_workspace(workspace)
    tf_directory = None
    variables = None
    # Without a stack named, the destroy stack's rules apply and the record names the stack.
    rules = options.stacks.by_name.get("destroy") or BUILTIN.get("destroy")
    if scenario_name:
        provision = build_request(replace(options, scenario=scenario_name, workspace=workspace))
        if isinstance(provision, ProvisionRequest):
            tf_directory, variables = provision.tf_directory, provision.variables
            rules = _stack(replace(options, scenario=scenario_name))
    common = _common(options, rules, workspace)
    common["stack"] = rules.name if scenario_name else None
    common.setdefault("requester", Actor(id="operator"))
    try:
        return DeprovisionRequest(
            scenario="destroy", tf_directory=tf_directory, variables=variables, **common
        )
    except ValueError as exc:
        raise RequestError(_one_line(exc)) from None
