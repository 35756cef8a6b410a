"""Acting on a run from Slack: who may, whether the run still waits for it, and sending it once.

Every decision is made from the run's own state, read from Temporal when the click, submission
or command arrives: its current run id, its requester, owners and approvers, how it takes
decisions, and where its message is. A button or form carries only the run's ids.

Slack-free, so the listeners stay thin: each method either returns a line to show the user or
raises ActionRefused (nothing was sent) / RunRefused (the workflow said no).
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import NoReturn, TypeVar

from bot.access import AccessPolicy, Refusal
from bot.blocks import RunRef, escape
from bot.metrics import BotMetrics
from bot.operations import RunOperations, RunRefused, TemporalUnavailable
from workflows.attestation import DecisionSigner
from workflows.models import (
    Actor,
    ApplyDecision,
    ApprovalChannel,
    ExtendTtl,
    RunState,
    RunStatus,
    no_decision_awaited,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

# As the workflow's validator (workflows/decisions.py MAX_REASON_LENGTH) and the form allow.
REASON_MAX_LENGTH = 2000

# How many runs' decisions the bot remembers; only the last few minutes matter (double clicks).
LEDGER_SIZE = 1000


class ActionRefused(Exception):
    """The bot refused an action; nothing was sent to the workflow. `markup`: the message is
    Slack markup the bot composed from validated ids (mentions of who may act), shown as is;
    any other message is escaped when shown."""

    def __init__(self, reason: str, message: str, *, markup: bool = False) -> None:
        super().__init__(message)
        self.reason = reason
        self.markup = markup


def refusal_text(exc: Exception) -> str:
    """A refusal as Slack shows it: the bot's own markup as is, anything else escaped."""
    if isinstance(exc, ActionRefused) and exc.markup:
        return str(exc)
    return escape(str(exc))


@dataclass(frozen=True)
class SentDecision:
    actor: Actor
    approved: bool


@dataclass(frozen=True)
class Origin:
    """Where an action came from, as Slack's payload says: the team and app, and for a button
    the message it sits on (a command or a form submission has no message)."""

    team_id: str | None = None
    app_id: str | None = None
    channel: str | None = None
    message_ts: str | None = None
    on_message: bool = False


class RunControl:
    def __init__(
        self,
        operations: RunOperations,
        access: AccessPolicy,
        metrics: BotMetrics,
        *,
        signer: DecisionSigner | None = None,
        app_id: str | None = None,
        team_id: str | None = None,
    ) -> None:
        self.operations = operations
        self.access = access
        self.metrics = metrics
        # Signs every decision this bot sends, so the workflow records the Slack user it names.
        self.signer = signer
        # This bot's Slack app and team: an action of another app or team is refused.
        self.app_id = app_id
        self.team_id = team_id
        # Decisions this bot sent, per run: a signal cannot be refused by the workflow, and the
        # run's state only changes once the workflow has processed it, so a second click in
        # between must be stopped here.
        self._sent: OrderedDict[tuple[str, str], list[SentDecision]] = OrderedDict()
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    def _refuse(self, refusal: Refusal | ActionRefused) -> NoReturn:
        if isinstance(refusal, Refusal):
            refusal = ActionRefused(refusal.reason, refusal.message, markup=True)
        self.metrics.refusals.labels(refusal.reason).inc()
        raise refusal

    def _lock(self, ref: RunRef) -> asyncio.Lock:
        key = (ref.workflow_id, ref.run_id)
        if len(self._locks) > LEDGER_SIZE:
            for stale in [k for k, lock in self._locks.items() if not lock.locked()]:
                del self._locks[stale]
        return self._locks.setdefault(key, asyncio.Lock())

    def _remember(self, ref: RunRef, actor: Actor, approved: bool) -> None:
        key = (ref.workflow_id, ref.run_id)
        self._sent.setdefault(key, []).append(SentDecision(actor, approved))
        self._sent.move_to_end(key)
        while len(self._sent) > LEDGER_SIZE:
            self._sent.popitem(last=False)

    # -- the run's truth -----------------------------------------------------------------------

    def check_sender(self, origin: Origin) -> None:
        """Refuse an action from another Slack app or team than this bot's."""
        if self.app_id and origin.app_id != self.app_id:
            self._refuse(ActionRefused("foreign_app", "This action came from another Slack app."))
        if self.team_id and origin.team_id != self.team_id:
            self._refuse(
                ActionRefused("foreign_team", "This action came from another Slack workspace.")
            )

    def check_origin(self, status: RunStatus, origin: Origin) -> None:
        """Refuse an action from another app or team, or a button not on this run's message."""
        self.check_sender(origin)
        if origin.on_message:
            message = status.slack
            if (
                message is None
                or origin.channel != message.channel
                or origin.message_ts != message.ts
            ):
                self._refuse(
                    ActionRefused(
                        "wrong_message",
                        "This button is not on this run's message; use the run's own message.",
                    )
                )

    async def run_state(self, ref: RunRef, origin: Origin) -> RunStatus:
        """The run's current state, refusing an action on a replaced run or from elsewhere."""
        status = await self.operations.status(ref.workflow_id)
        self.check_origin(status, origin)
        if status.run_id != ref.run_id:
            self._refuse(
                ActionRefused(
                    "plan_replaced",
                    "This plan was replaced by a newer one (replanned); use the updated run "
                    "message.",
                )
            )
        return status

    # -- decisions ------------------------------------------------------------------------------

    async def authorize_decision(self, user: Actor, status: RunStatus, approve: bool) -> None:
        """Raise ActionRefused unless `user` may take this decision on this run."""
        refusal = await self.access.decision_refusal(user.id, status, approve)
        if refusal:
            self._refuse(refusal)

    def _check_sent(self, ref: RunRef, user: Actor, required_approvals: int | None) -> None:
        """What this bot already sent to the run: a denial, enough approvals, or this user."""
        sent = self._sent.get((ref.workflow_id, ref.run_id), [])
        denial = next((s for s in sent if not s.approved), None)
        if denial:
            self._refuse(
                ActionRefused(
                    "already_decided", f"already decided: denied by {denial.actor.display}"
                )
            )
        approvals = [s for s in sent if s.approved]
        if required_approvals is not None and len(approvals) >= required_approvals:
            self._refuse(
                ActionRefused(
                    "already_decided", f"already decided: approved by {approvals[-1].actor.display}"
                )
            )
        if any(s.actor.id == user.id for s in sent):
            self._refuse(ActionRefused("already_decided", "You have already decided on this plan."))

    def _check_awaiting(self, status: RunStatus, ref: RunRef, user: Actor) -> None:
        self._check_sent(ref, user, status.required_approvals)
        if status.state != RunState.AWAITING_APPROVAL:
            self._refuse(
                ActionRefused(
                    "already_decided" if status.decisions else "not_awaited",
                    no_decision_awaited(status.decisions, status.state),
                )
            )
        if any(d.actor.kind == "slack" and d.actor.id == user.id for d in status.decisions):
            self._refuse(ActionRefused("already_decided", "You have already decided on this plan."))

    async def decision_state(
        self, user: Actor, ref: RunRef, approve: bool, origin: Origin
    ) -> RunStatus:
        """The run's state if `user` may decide on it now; ActionRefused otherwise. Its
        approval channel says whether a click decides at once or asks for a reason first."""
        status = await self.run_state(ref, origin)
        await self.authorize_decision(user, status, approve)
        self._check_awaiting(status, ref, user)
        return status

    async def decide(
        self,
        user: Actor,
        ref: RunRef,
        approve: bool,
        reason: str,
        origin: Origin,
        status: RunStatus | None = None,
    ) -> str:
        """Authorize from the run's state, check it still waits, and send the decision once,
        signed, as the run takes decisions (signal or update; the workflow's validator refuses
        atomically what it must for updates)."""
        kind = "approve" if approve else "deny"
        if status is None:
            status = await self.decision_state(user, ref, approve, origin)
        by_signal = status.approval_channel == ApprovalChannel.SIGNAL
        # The update path's reason rules, checked before sending (the workflow checks again).
        if not by_signal and approve and not reason.strip():
            self._refuse(ActionRefused("no_reason", "a reason is required to approve"))
        if len(reason) > REASON_MAX_LENGTH:
            self._refuse(
                ActionRefused(
                    "reason_too_long", f"The reason is longer than {REASON_MAX_LENGTH} characters."
                )
            )
        async with self._lock(ref):
            self._check_sent(ref, user, status.required_approvals)
            groups = await self.access.verified_groups(user.id, status)
            decision = ApplyDecision(
                is_approved=approve,
                reason=reason,
                approver=user.id,
                approver_name=user.name or user.id,
                approver_kind="slack",
                approver_groups=groups,
            )
            if self.signer is not None:
                decision = self.signer.sign(ref.workflow_id, status.run_id, decision)
            outcome = await self._send(
                kind,
                self.operations.decide(ref.workflow_id, ref.run_id, decision, by_signal=by_signal),
            )
            self._remember(ref, user, approve)
        log.info(
            "%s of %s (run %s) by %s sent by %s",
            kind,
            ref.workflow_id,
            ref.run_id,
            user.id,
            "signal" if by_signal else "update",
        )
        if outcome is not None:
            return outcome.message
        return f"{'approval' if approve else 'denial'} sent to {ref.workflow_id}"

    async def decide_on_target(
        self, user: Actor, target: str, approve: bool, reason: str, origin: Origin
    ) -> str:
        """`/provision approve|deny <id>`: the same checks, for the run's latest plan."""
        status = await self.operations.status(target)
        return await self.decide(user, RunRef.of(status), approve, reason, origin)

    # -- run control ----------------------------------------------------------------------------

    async def _controlled(self, user: Actor, ref: RunRef, origin: Origin) -> RunStatus:
        status = await self.run_state(ref, origin)
        refusal = await self.access.control_refusal(user.id, status)
        if refusal:
            self._refuse(refusal)
        return status

    async def _send(self, kind: str, action: Awaitable[T]) -> T:
        """Await what reaches the workflow, counting it as sent, rejected or failed."""
        try:
            result = await action
        except RunRefused:
            self.metrics.decisions.labels(kind, "rejected").inc()
            raise
        except TemporalUnavailable:
            self.metrics.decisions.labels(kind, "error").inc()
            raise
        self.metrics.decisions.labels(kind, "sent").inc()
        return result

    async def replan(self, user: Actor, ref: RunRef, origin: Origin) -> str:
        status = await self._controlled(user, ref, origin)
        if status.state.is_final or status.state in (RunState.APPLYING, RunState.DESTROYING):
            self._refuse(
                ActionRefused(
                    "not_replannable", f"The run is {status.state.value}: nothing to replan."
                )
            )
        await self._send("replan", self.operations.replan(ref.workflow_id, ref.run_id))
        log.info("replan of %s (run %s) requested by %s", ref.workflow_id, ref.run_id, user.id)
        return "Replan requested: a fresh plan replaces this one in the same message."

    async def replan_target(self, user: Actor, target: str, origin: Origin) -> str:
        status = await self.operations.status(target)
        return await self.replan(user, RunRef.of(status), origin)

    async def authorize_destroy(self, user: Actor, workspace: str, origin: Origin) -> None:
        """Destroying a workspace from Slack: its owners or an approver, read from the
        workspace's last run; never whoever happened to run it last. (The worker checks the
        workspace's ownership record again before anything is planned.)"""
        self.check_sender(origin)
        try:
            status = await self.operations.status(workspace)
        except RunRefused:
            if await self.access.is_approver(user.id, None):
                return
            self._refuse(
                ActionRefused(
                    "not_owner_or_approver",
                    f"No run of {workspace} is known here, so only an approver can destroy it.",
                )
            )
        refusal = await self.access.destroy_refusal(user.id, status)
        if refusal:
            self._refuse(refusal)

    async def _ttl_run(self, user: Actor, ref: RunRef, origin: Origin) -> RunStatus:
        status = await self._controlled(user, ref, origin)
        if status.state != RunState.EPHEMERAL_WAIT:
            self._refuse(
                ActionRefused(
                    "not_waiting_ttl",
                    f"The run is {status.state.value}, not waiting out its TTL.",
                )
            )
        return status

    async def destroy_now(self, user: Actor, ref: RunRef, origin: Origin) -> str:
        await self._ttl_run(user, ref, origin)
        await self._send("destroy_now", self.operations.destroy_now(ref.workflow_id, ref.run_id))
        log.info("destroy now of %s requested by %s", ref.workflow_id, user.id)
        return "Destroying now: the message follows the teardown."

    async def extend_ttl(self, user: Actor, ref: RunRef, seconds: int, origin: Origin) -> str:
        await self._ttl_run(user, ref, origin)
        extension = ExtendTtl(seconds=seconds, actor=user)
        await self._send(
            "extend_ttl", self.operations.extend_ttl(ref.workflow_id, ref.run_id, extension)
        )
        log.info("TTL of %s extended by %ss by %s", ref.workflow_id, seconds, user.id)
        return f"Extended by {seconds // 60} minutes."
