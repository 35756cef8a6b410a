"""The decision ledger: who decided what on the current plan, and whether that settles it.

Pure Python, no Temporal: the workflow feeds it decisions and the clock, so the approval rules
(how many approvals, four eyes, one decision per person) are tested alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from workflows.models import (
    Actor,
    ApplyDecision,
    DecisionOutcome,
    DecisionRecord,
    RunState,
    no_decision_awaited,
)

MAX_REASON_LENGTH = 2000


@dataclass(frozen=True)
class ApprovalRules:
    """The rules of one run's request."""

    required_approvals: int
    allow_self_approval: bool
    requester: Actor
    # Who may decide from chat (user and group ids); None: whoever the front door admits.
    # Operators (Temporal or CLI access) are not bound by it: they can run anything anyway.
    approvers: frozenset[str] | None = None
    stack: str | None = None
    # A `plan` whose policy is clean on an auto-apply stack: its requester may Apply it, as
    # `run` would have applied it without anyone.
    requester_may_apply: bool = False


@dataclass
class DecisionLedger:
    rules: ApprovalRules
    decisions: list[DecisionRecord] = field(default_factory=list)
    awaiting: bool = False

    @property
    def approvals(self) -> list[DecisionRecord]:
        return [d for d in self.decisions if d.is_approved]

    @property
    def denied(self) -> bool:
        return any(not d.is_approved for d in self.decisions)

    @property
    def settled(self) -> bool:
        """A denial, or enough approvals to apply."""
        return self.denied or len(self.approvals) >= self.rules.required_approvals

    def refusal(
        self, decision: ApplyDecision, state: RunState, actor: Actor | None = None
    ) -> str | None:
        """Why this decision cannot be taken now, or None. The same for updates and signals.

        `actor` is who decided as the workflow verified it (default: as the decision claims)."""
        actor = actor or decision.actor()
        if not self.awaiting:
            return no_decision_awaited(self.decisions, state)
        if any(d.actor.id == actor.id and d.actor.kind == actor.kind for d in self.decisions):
            return f"{actor.display} has already decided on this plan"
        requester = self.rules.requester
        approvers = self.rules.approvers
        if actor.kind == "slack" and approvers is not None and not actor.is_in(approvers):
            own_plan = actor.id == requester.id and self.rules.requester_may_apply
            if not own_plan:
                return f"{actor.display} is not an approver of stack {self.rules.stack or '?'}"
        if (
            decision.is_approved
            and actor.kind == "slack"
            and requester.kind == "slack"
            and actor.id == requester.id
            and not (self.rules.allow_self_approval or self.rules.requester_may_apply)
        ):
            return "four eyes: the requester cannot approve their own change"
        return None

    def update_refusal(
        self, decision: ApplyDecision, state: RunState, actor: Actor | None = None
    ) -> str | None:
        """The update's validator: the shared rules, plus the reason rules of the update path."""
        if decision.is_approved and not decision.reason.strip():
            return "a reason is required to approve"
        if len(decision.reason) > MAX_REASON_LENGTH:
            return f"the reason is longer than {MAX_REASON_LENGTH} characters"
        return self.refusal(decision, state, actor)

    def record(
        self,
        decision: ApplyDecision,
        via: Literal["update", "signal"],
        at: datetime,
        state: RunState,
        actor: Actor | None = None,
    ) -> DecisionOutcome:
        actor = actor or decision.actor()
        reason = decision.reason.strip()[:MAX_REASON_LENGTH] or (
            "" if decision.is_approved else "no reason given"
        )
        self.decisions.append(
            DecisionRecord(
                is_approved=decision.is_approved, reason=reason, actor=actor, at=at, via=via
            )
        )
        approvals = len(self.approvals)
        required = self.rules.required_approvals
        if not decision.is_approved:
            message = f"denied by {actor.display}"
        elif approvals >= required:
            message = f"approved by {actor.display}"
        else:
            message = f"approval {approvals} of {required} recorded"
        return DecisionOutcome(
            accepted=True,
            state=state,
            approvals=approvals,
            required_approvals=required,
            message=message,
        )

    @property
    def last_reason(self) -> str:
        return self.decisions[-1].reason if self.decisions else ""

    def void(self) -> None:
        """A new plan replaces the one decided on: its decisions no longer count."""
        self.decisions = []
