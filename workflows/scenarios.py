"""The scenarios of the original demo, one row each, and how a request is built from one.

Pure data and validation (no workflow code): the CLI and the Slack bot both build requests here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pydantic import ValidationError

from workflows.models import (
    NAME_PATTERN,
    Actor,
    ApprovalChannel,
    DeprovisionRequest,
    Faults,
    ProvisionRequest,
    SlackMessageRef,
    TfValue,
)

EMAIL_PATTERN = re.compile(r"^[a-z0-9._%+-]{1,64}@[a-z0-9.-]{1,253}\.[a-z]{2,24}$")
ADDRESS_PATTERN = re.compile(r"^[A-Za-z0-9.-]+:[0-9]{1,5}$")
DEFAULT_EPHEMERAL_TTL = 300
# Secrets a run may need; only these names travel, the worker reads the values.
LOCAL_PASSTHROUGH = ("TF_VAR_api_key",)
CLOUD_PASSTHROUGH = ("TEMPORAL_CLOUD_API_KEY", "TF_VAR_api_key")


class RequestError(ValueError):
    """Bad user input; the message is one line a user can act on."""


def _one_line(exc: ValueError) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ()))
        message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
        return f"{where}: {message}" if where else message
    return str(exc).splitlines()[0]


@dataclass(frozen=True)
class Scenario:
    name: str
    tf_directory: str
    summary: str
    variables: dict[str, TfValue] = field(default_factory=dict)
    approval_channel: ApprovalChannel = ApprovalChannel.UPDATE
    faults: Faults = field(default_factory=Faults)
    default_ttl_seconds: int | None = None
    deprovision: bool = False
    passthrough: tuple[str, ...] = LOCAL_PASSTHROUGH


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "happy-path",
            "local_namespace",
            "create a namespace; policy is clean, so it applies without asking",
            {"retention_days": 7},
        ),
        Scenario(
            "advanced-visibility",
            "local_namespace",
            "like happy-path; follow it with search attributes (provisionStatus, scenario)",
            {"retention_days": 14},
        ),
        Scenario(
            "human-in-the-loop-signal",
            "local_admin_user",
            "namespace + admin grant; policy asks a human, who answers with a signal",
            {"retention_days": 7},
            approval_channel=ApprovalChannel.SIGNAL,
        ),
        Scenario(
            "human-in-the-loop-update",
            "local_admin_user",
            "namespace + admin grant; policy asks a human, who answers with a validated update",
            {"retention_days": 7},
        ),
        Scenario(
            "recoverable-failure",
            "local_namespace",
            "plan fails (retrying) while the fault switch is on; clear it and the run goes on",
            {"retention_days": 7},
            faults=Faults(plan_fault_switch="recoverable-failure"),
        ),
        Scenario(
            "non-recoverable-failure",
            "local_admin_user",
            "grants account owner: a hard-mandatory policy failure, nothing is applied",
            {"retention_days": 7, "account_owner": True},
        ),
        Scenario(
            "api-failure",
            "local_namespace",
            "apply fails on attempts 1-4 (simulated API outage) and succeeds on the 5th",
            {"retention_days": 7},
            faults=Faults(apply_failures=4),
        ),
        Scenario(
            "ephemeral",
            "local_namespace",
            "create a namespace, keep it for a TTL (--ttl), then destroy it",
            {"retention_days": 1},
            default_ttl_seconds=DEFAULT_EPHEMERAL_TTL,
        ),
        Scenario(
            "destroy",
            "local_namespace",
            "destroy a workspace: plan -destroy, policy, a decision where required, apply",
            deprovision=True,
        ),
    )
}


def scenario_names() -> list[str]:
    return list(SCENARIOS)


def get_scenario(name: str) -> Scenario:
    try:
        return SCENARIOS[name]
    except KeyError:
        raise RequestError(
            f"unknown scenario {name!r}; choose one of: {', '.join(SCENARIOS)}"
        ) from None


def check_name(label: str, value: str) -> str:
    if not NAME_PATTERN.match(value):
        raise RequestError(
            f"{label} {value!r} is not allowed: use 1-31 lowercase letters, digits or '-', "
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

    scenario: str
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


def default_workspace(prefix: str, scenario: str) -> str:
    return f"{prefix}-{scenario}"


def build_request(options: RunOptions) -> ProvisionRequest | DeprovisionRequest:
    scenario = get_scenario(options.scenario)
    prefix = check_name("prefix", options.prefix)
    region = check_name("region", options.region)
    if scenario.deprovision and not options.workspace:
        raise RequestError(
            "destroy needs a workspace: `destroy <workspace>` or `destroy --scenario S --prefix P`"
        )
    workspace = options.workspace or default_workspace(prefix, scenario.name)
    if options.ttl_seconds is not None and options.ttl_seconds < 1:
        raise RequestError("--ttl must be a positive number of seconds")
    variables: dict[str, TfValue] = {
        "prefix": prefix,
        "name_suffix": scenario.name,
        "region": region,
        "address": options.temporal_address,
        **scenario.variables,
    }
    if scenario.tf_directory == "local_admin_user":
        variables["admin_email"] = f"{prefix}@example.com"
    validate_variables(variables)
    passthrough = sorted(set(scenario.passthrough) | set(options.extra_passthrough))
    common = {
        "workspace": workspace,
        "env_passthrough": passthrough,
        "approval_channel": scenario.approval_channel,
        "required_approvals": options.required_approvals,
        "allow_self_approval": options.allow_self_approval,
        "approval_timeout_seconds": options.approval_timeout_seconds,
        "pace_seconds": options.pace_seconds,
        "slack": options.slack,
        "ui_url": options.ui_url,
    }
    if options.requester is not None:
        common["requester"] = options.requester
    try:
        if scenario.deprovision:
            return DeprovisionRequest(scenario=scenario.name, tf_directory=None, **common)
        return ProvisionRequest(
            scenario=scenario.name,
            tf_directory=scenario.tf_directory,
            variables=variables,
            faults=scenario.faults,
            ttl_seconds=options.ttl_seconds or scenario.default_ttl_seconds,
            **common,
        )
    except ValueError as exc:
        raise RequestError(_one_line(exc)) from None


def build_destroy_request(
    workspace: str, *, scenario_name: str | None, options: RunOptions
) -> DeprovisionRequest:
    """Destroy a workspace. With its scenario the configuration is known; without, the worker
    uses the workspace's own record of what was applied."""
    tf_directory = None
    variables = None
    if scenario_name:
        provision = build_request(
            RunOptions(**{**options.__dict__, "scenario": scenario_name, "workspace": workspace})
        )
        if isinstance(provision, ProvisionRequest):
            tf_directory, variables = provision.tf_directory, provision.variables
    try:
        return DeprovisionRequest(
            workspace=workspace,
            scenario="destroy",
            tf_directory=tf_directory,
            variables=variables,
            env_passthrough=sorted(set(LOCAL_PASSTHROUGH) | set(options.extra_passthrough)),
            approval_timeout_seconds=options.approval_timeout_seconds,
            required_approvals=options.required_approvals,
            allow_self_approval=options.allow_self_approval,
            pace_seconds=options.pace_seconds,
            requester=options.requester or Actor(id="operator"),
            slack=options.slack,
            ui_url=options.ui_url,
        )
    except ValueError as exc:
        raise RequestError(_one_line(exc)) from None
