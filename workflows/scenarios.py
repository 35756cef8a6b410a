"""The scenarios of the original demo, one row each: pure data.

They are the built-in stacks (`stacks/registry.py`); requests are built in `stacks/requests.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from workflows.models import ApprovalChannel, Faults, TfValue

DEFAULT_EPHEMERAL_TTL = 300
# Secrets a run may need; only these names travel, the worker reads the values.
LOCAL_PASSTHROUGH = ("TF_VAR_api_key",)


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
