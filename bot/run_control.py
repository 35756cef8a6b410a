"""Acting on a run from Slack: who may, whether the run still waits for it, and sending it once.

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
from bot.blocks import RunRef
from bot.metrics import BotMetrics
from bot.operations import RunOperations, RunRefused, TemporalUnavailable
from workflows.models import (
    Actor,
    ApplyDecision,
    ExtendTtl,
    RunState,
    RunStatus,
    no_decision_awaited,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

# How many runs' decisions the bot remembers; only the last few minutes matter (double clicks).
LEDGER_SIZE = 1000


class ActionRefused(Exception):
    """The bot refused an action; nothing was sent to the workflow."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class SentDecision:
    actor: Actor
    approved: bool


class RunControl:
    def __init__(
        self, operations: RunOperations, access: AccessPolicy, metrics: BotMetrics
    ) -> None:
        self.operations = operations
        self.access = access
        self.metrics = metrics
        # Decisions this bot sent, per run: a signal cannot be refused by the workflow, and the
        # run's state only changes once the workflow has processed it, so a second click in
        # between must be stopped here.
        self._sent: OrderedDict[tuple[str, str], list[SentDecision]] = OrderedDict()
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    def _refuse(self, refusal: Refusal | ActionRefused) -> NoReturn:
        if isinstance(refusal, Refusal):
            refusal = ActionRefused(refusal.reason, refusal.message)
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

    # -- decisions ------------------------------------------------------------------------------

    async def authorize_decision(self, user: Actor, ref: RunRef, approve: bool) -> None:
        """Raise ActionRefused unless `user` may take this decision (no call to Temporal)."""
        refusal = await self.access.decision_refusal(user.id, ref, approve)
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
        if status.run_id != ref.run_id:
            self._refuse(
                ActionRefused(
                    "plan_replaced",
                    "This plan was replaced by a newer one (replanned); decide on the updated "
                    "run message.",
                )
            )
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

    async def check_awaiting(self, user: Actor, ref: RunRef) -> RunStatus:
        """The run's state if it still waits for `user`'s decision; ActionRefused otherwise."""
        status = await self.operations.status(ref.workflow_id)
        self._check_awaiting(status, ref, user)
        return status

    async def decide(self, user: Actor, ref: RunRef, approve: bool, reason: str) -> str:
        """Authorize, check the run still waits, and send the decision exactly once.

        A signal cannot be refused, so the run's state is queried first. An update goes to the
        run without that query: its validator refuses atomically what the query would (not
        awaited, already decided, four eyes), writes nothing when it does, and a query racing
        the workflow's own task can wait for it for most of a second.
        """
        kind = "approve" if approve else "deny"
        await self.authorize_decision(user, ref, approve)
        async with self._lock(ref):
            if ref.by_signal:
                self._check_awaiting(await self.operations.status(ref.workflow_id), ref, user)
            else:
                self._check_sent(ref, user, required_approvals=None)
            decision = ApplyDecision(
                is_approved=approve,
                reason=reason,
                approver=user.id,
                approver_name=user.name or user.id,
                approver_kind="slack",
            )
            by_signal = ref.by_signal
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

    async def decide_on_target(self, user: Actor, target: str, approve: bool, reason: str) -> str:
        """`/provision approve|deny <id>`: the same checks, for the run's latest plan."""
        status = await self.operations.status(target)
        return await self.decide(user, RunRef.of(status), approve, reason)

    # -- run control ----------------------------------------------------------------------------

    async def _controlled(self, user: Actor, ref: RunRef) -> RunStatus:
        refusal = await self.access.control_refusal(user.id, ref)
        if refusal:
            self._refuse(refusal)
        status = await self.operations.status(ref.workflow_id)
        if status.run_id != ref.run_id:
            self._refuse(
                ActionRefused(
                    "plan_replaced",
                    "This run was replaced by a newer one; use the updated message.",
                )
            )
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

    async def replan(self, user: Actor, ref: RunRef) -> str:
        status = await self._controlled(user, ref)
        if status.state.is_final or status.state in (RunState.APPLYING, RunState.DESTROYING):
            self._refuse(
                ActionRefused(
                    "not_replannable", f"The run is {status.state.value}: nothing to replan."
                )
            )
        await self._send("replan", self.operations.replan(ref.workflow_id, ref.run_id))
        log.info("replan of %s (run %s) requested by %s", ref.workflow_id, ref.run_id, user.id)
        return "Replan requested: a fresh plan replaces this one in the same message."

    async def replan_target(self, user: Actor, target: str) -> str:
        status = await self.operations.status(target)
        return await self.replan(user, RunRef.of(status))

    async def authorize_destroy(self, user: Actor, workspace: str) -> None:
        """Destroying a workspace from Slack: its last requester or an approver, like Destroy
        now; a channel member must not tear down someone else's infrastructure."""
        if await self.access.directory.is_approver(user.id):
            return
        try:
            status = await self.operations.status(workspace)
        except RunRefused:
            self._refuse(
                ActionRefused(
                    "not_requester_or_approver",
                    f"No run of {workspace} is known here, so only an approver can destroy it.",
                )
            )
        requester = status.requester
        if requester.kind == "slack" and requester.id == user.id:
            return
        self._refuse(
            ActionRefused(
                "not_requester_or_approver",
                f"Only whoever asked for {workspace} ({requester.display}) or an approver can "
                "destroy it.",
            )
        )

    async def _ttl_run(self, user: Actor, ref: RunRef) -> RunStatus:
        status = await self._controlled(user, ref)
        if status.state != RunState.EPHEMERAL_WAIT:
            self._refuse(
                ActionRefused(
                    "not_waiting_ttl",
                    f"The run is {status.state.value}, not waiting out its TTL.",
                )
            )
        return status

    async def destroy_now(self, user: Actor, ref: RunRef) -> str:
        await self._ttl_run(user, ref)
        await self._send("destroy_now", self.operations.destroy_now(ref.workflow_id, ref.run_id))
        log.info("destroy now of %s requested by %s", ref.workflow_id, user.id)
        return "Destroying now: the message follows the teardown."

    async def extend_ttl(self, user: Actor, ref: RunRef, seconds: int) -> str:
        await self._ttl_run(user, ref)
        extension = ExtendTtl(seconds=seconds, actor=user)
        await self._send(
            "extend_ttl", self.operations.extend_ttl(ref.workflow_id, ref.run_id, extension)
        )
        log.info("TTL of %s extended by %ss by %s", ref.workflow_id, seconds, user.id)
        return f"Extended by {seconds // 60} minutes."
