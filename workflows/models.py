"""Pydantic models that are the API of the provisioning workflows and their activities.

Every workflow, activity, signal, update and query takes or returns one of these, so fields can be
added later without breaking runs in flight. Secret values never appear here: only the *names* of
environment variables the worker passes through to terraform.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field, field_validator

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,30}$")
ENV_NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
# Workspace names become folder names and workflow ids: a little longer than a resource name.
WORKSPACE_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


# The longest any run waits for anything (an approval, a TTL): a year.
MAX_WAIT_SECONDS = 365 * 24 * 3600


class RunState(StrEnum):
    """Every state a run goes through; `provisionStatus` holds the value."""

    PENDING = "pending"
    INITIALIZING = "initializing"
    PLANNING = "planning"
    CHECKING_POLICY = "checking_policy"
    AWAITING_APPROVAL = "awaiting_approval"
    APPROVED = "approved"
    APPLYING = "applying"
    APPLIED = "applied"
    EPHEMERAL_WAIT = "waiting_ttl"
    DESTROYING = "destroying"
    DESTROYED = "destroyed"
    NO_CHANGES = "no_changes"
    REJECTED = "rejected"
    EXPIRED = "expired"
    POLICY_FAILED = "policy_failed"
    FAILED = "failed"
    REPLANNING = "replanning"

    @property
    def progress(self) -> int:
        return _PROGRESS[self]

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATES

    @property
    def is_success(self) -> bool:
        return self in (RunState.APPLIED, RunState.DESTROYED, RunState.NO_CHANGES)


_PROGRESS: dict[RunState, int] = {
    RunState.PENDING: 0,
    RunState.INITIALIZING: 10,
    RunState.PLANNING: 25,
    RunState.CHECKING_POLICY: 40,
    RunState.AWAITING_APPROVAL: 50,
    RunState.APPROVED: 60,
    RunState.APPLYING: 75,
    RunState.APPLIED: 100,
    RunState.EPHEMERAL_WAIT: 100,
    RunState.DESTROYING: 90,
    RunState.DESTROYED: 100,
    RunState.NO_CHANGES: 100,
    RunState.REJECTED: 100,
    RunState.EXPIRED: 100,
    RunState.POLICY_FAILED: 100,
    RunState.FAILED: 100,
    RunState.REPLANNING: 10,
}

FINAL_STATES = frozenset(
    {
        RunState.APPLIED,
        RunState.DESTROYED,
        RunState.NO_CHANGES,
        RunState.REJECTED,
        RunState.EXPIRED,
        RunState.POLICY_FAILED,
        RunState.FAILED,
    }
)


class ApprovalChannel(StrEnum):
    """How a human decision reaches the workflow (the original demo had both)."""

    UPDATE = "update"
    SIGNAL = "signal"


class Actor(BaseModel):
    """Who asked for or decided something. `kind` says how they were authenticated."""

    id: str
    name: str = ""
    kind: Literal["slack", "cli", "operator"] = "operator"
    # User groups (S…) the front door verified this person is in, among those a rule names.
    groups: list[str] = Field(default_factory=list, max_length=100)

    def is_in(self, ids: list[str] | frozenset[str] | set[str]) -> bool:
        """Named directly or through a group."""
        return self.id in ids or any(g in ids for g in self.groups)

    @property
    def display(self) -> str:
        return self.name or self.id


OPERATOR = Actor(id="temporal-operator", name="operator (via Temporal)", kind="operator")


class SlackMessageRef(BaseModel):
    """The run message in Slack that the notify activity keeps up to date."""

    channel: str
    ts: str
    thread_ts: str | None = None


class Faults(BaseModel):
    """Demo fault switches, driven by the scenario table, never by editing code."""

    # Apply attempts 1..N fail with a retryable "API" error; attempt N+1 succeeds.
    apply_failures: int = 0
    # Plan fails (retryable) while this switch file exists under the worker's data dir faults/.
    plan_fault_switch: str | None = None


TfValue = str | int | float | bool


class _RunRequest(BaseModel):
    """What every run of a workspace carries, whichever workflow type runs it."""

    workspace: str
    env_passthrough: list[str] = Field(default_factory=list)
    approval_channel: ApprovalChannel = ApprovalChannel.UPDATE
    required_approvals: int = Field(default=1, ge=1, le=10)
    allow_self_approval: bool = False
    # Bounded so that no deadline the workflow computes from them can overflow (issue 13.3).
    approval_timeout_seconds: int = Field(default=24 * 3600, ge=1, le=MAX_WAIT_SECONDS)
    pace_seconds: float = Field(default=0.0, ge=0, le=600)
    requester: Actor = OPERATOR
    slack: SlackMessageRef | None = None
    ui_url: str | None = None
    # Set by the workflow itself when it continues as new after a replan.
    replan_count: int = 0
    # The stack this run belongs to (None: a run started before stacks, or a bare destroy).
    stack: str | None = None
    # Who owns the workspace: its first run's requester plus any `--owner` (user or group ids).
    owners: list[str] = Field(default_factory=list, max_length=20)
    # Who may decide, as the front door resolved the stack's approvers (user ids);
    # None: any approver the front door admits (runs started before stacks).
    approvers: list[str] | None = Field(default=None, max_length=500)
    # Who may destroy the workspace besides its owners and approvers (the stack's
    # `permissions.destroy`); None: owners and approvers only.
    destroyers: list[str] | None = Field(default=None, max_length=500)
    # The public key of the front door that started the run (the Slack bot); decisions it
    # signs are recorded with the chat identity it verified.
    front_door_key: str | None = Field(default=None, max_length=200)

    @field_validator("workspace")
    @classmethod
    def _workspace(cls, v: str) -> str:
        if not WORKSPACE_PATTERN.match(v):
            raise ValueError(f"workspace {v!r} must match {WORKSPACE_PATTERN.pattern}")
        return v

    @field_validator("env_passthrough")
    @classmethod
    def _env_names(cls, v: list[str]) -> list[str]:
        for name in v:
            if not ENV_NAME_PATTERN.match(name):
                raise ValueError(f"environment variable name {name!r} is not valid")
        return v


class ProvisionRequest(_RunRequest):
    """Input of ProvisionInfraWorkflow; kept across continue-as-new (replan)."""

    scenario: str
    tf_directory: str
    variables: dict[str, TfValue] = Field(default_factory=dict)
    ttl_seconds: int | None = Field(default=None, ge=1, le=MAX_WAIT_SECONDS)
    faults: Faults = Field(default_factory=Faults)
    # The `--var` values as the stack typed them (also inside `variables`).
    inputs: dict[str, TfValue] = Field(default_factory=dict)
    # False: every plan with changes waits for a human, whatever the policy says.
    auto_apply: bool = True
    # Plan and check policy only; applying needs an explicit Apply (a decision).
    plan_only: bool = False


class DeprovisionRequest(_RunRequest):
    """Input of DeprovisionInfraWorkflow. Without tf_directory the workspace's record is used."""

    scenario: str = "destroy"
    tf_directory: str | None = None
    variables: dict[str, TfValue] | None = None


class ApplyDecision(BaseModel):
    """Argument of `update_apply_decision` and `signal_apply_decision` (original demo shape)."""

    is_approved: bool
    reason: str = ""
    approver: str | None = None
    approver_name: str | None = None
    approver_kind: Literal["slack", "cli", "operator"] | None = None
    approver_groups: list[str] = Field(default_factory=list, max_length=100)
    # The front door's signature (workflows/attestation.py); without it a chat identity is
    # recorded as an operator's.
    attestation: str | None = Field(default=None, max_length=200)

    def actor(self) -> Actor:
        if not self.approver:
            return OPERATOR
        return Actor(
            id=self.approver,
            name=self.approver_name or self.approver,
            kind=self.approver_kind or "operator",
            groups=list(self.approver_groups),
        )


class DecisionRecord(BaseModel):
    """A decision as the workflow recorded it."""

    is_approved: bool
    reason: str
    actor: Actor
    at: datetime
    via: Literal["update", "signal"]


def no_decision_awaited(decisions: list[DecisionRecord], state: RunState) -> str:
    """Why a run awaits no decision, naming who decided when someone did."""
    if decisions:
        last = decisions[-1]
        verdict = "approved" if last.is_approved else "denied"
        return f"already decided: {verdict} by {last.actor.display}"
    return f"no decision is awaited (the run is {state.value})"


class DecisionOutcome(BaseModel):
    """What the update returns to the caller."""

    accepted: bool
    state: RunState
    approvals: int
    required_approvals: int
    message: str


class ExtendTtl(BaseModel):
    seconds: int = Field(ge=1, le=30 * 24 * 3600)
    actor: Actor = OPERATOR


class PolicyLevel(StrEnum):
    ADVISORY = "advisory"
    SOFT = "soft-mandatory"
    HARD = "hard-mandatory"


class PolicyFinding(BaseModel):
    rule: str
    level: PolicyLevel
    message: str
    resource: str | None = None


class PolicyReport(BaseModel):
    """Every finding of every rule over one plan."""

    findings: list[PolicyFinding] = Field(default_factory=list)
    policies: list[str] = Field(default_factory=list)

    @property
    def hard_failures(self) -> list[PolicyFinding]:
        return [f for f in self.findings if f.level == PolicyLevel.HARD]

    @property
    def soft_failures(self) -> list[PolicyFinding]:
        return [f for f in self.findings if f.level == PolicyLevel.SOFT]

    @property
    def verdict(self) -> Literal["pass", "needs_approval", "blocked"]:
        if self.hard_failures:
            return "blocked"
        if self.soft_failures:
            return "needs_approval"
        return "pass"


class PlanSummary(BaseModel):
    add: int = 0
    change: int = 0
    destroy: int = 0
    resources: list[str] = Field(default_factory=list)

    @property
    def has_changes(self) -> bool:
        return bool(self.add or self.change or self.destroy)


class TerraformStepInput(BaseModel):
    """Everything an activity needs to find and drive one workspace."""

    workspace: str
    # The worker resolves a stack's source from its own stacks file, never from the request.
    stack: str | None = None
    tf_directory: str | None = None
    variables: dict[str, TfValue] | None = None
    env_passthrough: list[str] = Field(default_factory=list)
    scenario: str = ""
    faults: Faults = Field(default_factory=Faults)
    pace_seconds: float = 0.0
    # Which attempt of this step the workflow makes (it retries plan and apply itself).
    attempt: int = 1


class PlanInput(TerraformStepInput):
    destroy: bool = False
    plan_id: str


class ClaimInput(BaseModel):
    """Before a plan: may this run touch this workspace? Creates the record on a first run."""

    workspace: str
    stack: str | None
    requester: Actor
    owners: list[str] = Field(default_factory=list)
    destroy: bool = False
    approvers: list[str] | None = None
    destroyers: list[str] | None = None


class WorkspaceRecord(BaseModel):
    """Whose a workspace is: its stack and owners, set by its first run."""

    workspace: str
    stack: str | None
    owners: list[str] = Field(default_factory=list)
    created_by: Actor
    created_at: datetime | None = None


class PlanResult(BaseModel):
    plan_id: str
    plan_path: str
    plan_sha256: str
    tf_directory: str
    summary: PlanSummary
    # Human-readable, sensitive values already redacted.
    plan_text: str
    # Redacted `terraform show -json` document, the input of policy evaluation.
    plan_document: dict
    # The 40-hex commit a git-sourced stack was planned from (applied from the same checkout).
    source_revision: str | None = None


class PolicyInput(BaseModel):
    plan_document: dict
    # A destroy run (or an ephemeral teardown) was asked to delete: `destructive_change` is
    # about deletes nobody asked for.
    destroy: bool = False


class ApplyInput(TerraformStepInput):
    plan_path: str
    plan_sha256: str
    # The key of the apply's durable record; older callers leave it to the plan file's name.
    plan_id: str | None = None


class ApplyResult(BaseModel):
    outputs: dict[str, TfValue | list | dict | None] = Field(default_factory=dict)
    log_tail: str = ""


class RunStatus(BaseModel):
    """The full structured state of a run (query `get_state`); also what notify renders."""

    workflow_type: str
    workflow_id: str
    run_id: str
    scenario: str
    workspace: str
    tf_directory: str | None
    state: RunState
    progress: int
    requester: Actor
    approval_channel: ApprovalChannel
    required_approvals: int
    plan_summary: PlanSummary | None = None
    plan_text: str = ""
    policy: PolicyReport | None = None
    decisions: list[DecisionRecord] = Field(default_factory=list)
    outputs: dict = Field(default_factory=dict)
    reason: str = ""
    error: str | None = None
    # The current terraform step's attempt and the error that made the workflow retry it.
    attempt: int = 1
    last_error: str | None = None
    expires_at: datetime | None = None
    ttl_deadline: datetime | None = None
    replan_count: int = 0
    ui_url: str | None = None
    slack: SlackMessageRef | None = None
    updated_at: datetime | None = None
    stack: str | None = None
    owners: list[str] = Field(default_factory=list)
    approvers: list[str] | None = None
    allow_self_approval: bool = False
    plan_only: bool = False
    inputs: dict[str, TfValue] = Field(default_factory=dict)
    source_revision: str | None = None


class NotifyInput(BaseModel):
    status: RunStatus


class NotifyResult(BaseModel):
    """What notify did. `reposted` is the run's new message when the old one was gone (deleted,
    or lost by a local workspace): later notifications go there."""

    reposted: SlackMessageRef | None = None


class ProvisionResult(BaseModel):
    workflow_id: str
    run_id: str
    workspace: str
    scenario: str
    state: RunState
    reason: str = ""
    outputs: dict = Field(default_factory=dict)
