"""Who may act on a run from Slack: approvers (users and user groups) and the four-eyes rule."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from workflows.models import RunStatus

log = logging.getLogger(__name__)

GROUP_CACHE_SECONDS = 60.0


@dataclass(frozen=True)
class Refusal:
    """Why an action is refused: `reason` labels the metric, `message` is shown to the user."""

    reason: str
    message: str


class ApproverDirectory:
    """Resolves the approvers setting (PROVISION_SLACK_APPROVERS), and any group a stack's rules
    name: user ids (U…/W…) as they are, user groups (S…) through usergroups.users.list, cached
    for a minute so membership changes apply without a restart."""

    def __init__(
        self,
        entries: Sequence[str],
        client: AsyncWebClient,
        *,
        cache_seconds: float = GROUP_CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.users = frozenset(e for e in entries if not e.startswith("S"))
        self.groups = tuple(e for e in entries if e.startswith("S"))
        self._client = client
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._members: dict[str, tuple[float, frozenset[str]]] = {}
        self._lock = asyncio.Lock()

    @property
    def empty(self) -> bool:
        return not self.users and not self.groups

    async def _group_members(self, group: str) -> frozenset[str]:
        cached = self._members.get(group)
        if cached and self._clock() - cached[0] < self._cache_seconds:
            return cached[1]
        async with self._lock:
            cached = self._members.get(group)
            if cached and self._clock() - cached[0] < self._cache_seconds:
                return cached[1]
            try:
                response = await self._client.usergroups_users_list(usergroup=group)
            except SlackApiError as exc:
                # Fail closed for a group never resolved; keep serving a stale answer otherwise.
                log.warning(
                    "cannot resolve approver group %s: %s", group, exc.response.get("error")
                )
                return cached[1] if cached else frozenset()
            members = frozenset(response.get("users") or [])
            self._members[group] = (self._clock(), members)
            return members

    async def is_approver(self, user_id: str) -> bool:
        if user_id in self.users:
            return True
        for group in self.groups:
            if user_id in await self._group_members(group):
                return True
        return False

    async def describe(self, limit: int = 8) -> str:
        """Who can approve, as Slack mentions (members of groups resolved, so nobody is pinged as
        a group): what a refused user needs to know, rather than the setting's name."""
        people = sorted(self.users)
        for group in self.groups:
            people += sorted(await self._group_members(group) - set(people))
        if not people:
            return "nobody yet"
        shown = ", ".join(f"<@{user}>" for user in people[:limit])
        return shown + (f" and {len(people) - limit} more" if len(people) > limit else "")

    async def groups_of(self, user_id: str, ids: Sequence[str]) -> list[str]:
        """The groups (S…) among `ids` that `user_id` is a member of."""
        return [g for g in ids if g.startswith("S") and user_id in await self._group_members(g)]

    async def describe_ids(self, ids: Sequence[str], limit: int = 8) -> str:
        """Users and groups of a rule, as mentions, groups resolved to their members."""
        people = sorted(i for i in ids if not i.startswith("S"))
        for group in (i for i in ids if i.startswith("S")):
            people += sorted(await self._group_members(group) - set(people))
        if not people:
            return "nobody yet"
        shown = ", ".join(f"<@{user}>" for user in people[:limit])
        return shown + (f" and {len(people) - limit} more" if len(people) > limit else "")

    async def warm(self) -> None:
        """Resolve the groups once at start, so the first click pays no extra round trip."""
        for group in self.groups:
            await self._group_members(group)


class AccessPolicy:
    """Who may act on a run, decided from the run's own state (its requester, its approver set,
    its owners), never from what a button or form echoed back.

    Approve/Deny: the run's approvers (its stack's, else the global ones), and never your own
    request unless self-approval is allowed. Replan, Destroy now, Extend: the requester, an owner
    or an approver. The workflow checks the same rules again on every decision."""

    def __init__(self, directory: ApproverDirectory, *, allow_self_approval: bool) -> None:
        self.directory = directory
        self.allow_self_approval = allow_self_approval

    async def _in(self, user_id: str, ids: Sequence[str]) -> bool:
        return user_id in ids or bool(await self.directory.groups_of(user_id, ids))

    async def is_approver(self, user_id: str, status: RunStatus | None) -> bool:
        if status is not None and status.approvers is not None:
            return await self._in(user_id, status.approvers)
        return await self.directory.is_approver(user_id)

    async def verified_groups(self, user_id: str, status: RunStatus | None) -> list[str]:
        """The user groups (S…) the rules of this run name that the user is in: what the
        workflow may count, signed by the bot, as the user's."""
        named = set(self.directory.groups)
        if status is not None:
            named |= set(status.approvers or ()) | set(status.owners)
        return await self.directory.groups_of(user_id, sorted(named))

    async def _who_approves(self, status: RunStatus) -> str:
        if status.approvers is not None:
            return await self.directory.describe_ids(status.approvers)
        return await self.directory.describe()

    async def decision_refusal(
        self, user_id: str, status: RunStatus, approve: bool
    ) -> Refusal | None:
        requester = status.requester
        own = requester.kind == "slack" and user_id == requester.id
        if status.plan_only and own:
            # Applying your own `plan`: the workflow knows whether the stack lets you.
            return None
        if not await self.is_approver(user_id, status):
            if status.approvers is None and self.directory.empty:
                return Refusal(
                    "no_approvers",
                    "Nobody can approve from Slack here yet, so an operator decides with "
                    "`provision approve` / `provision deny` in a terminal.",
                )
            stack = f" of stack {status.stack}" if status.stack else " for provisioning runs"
            return Refusal(
                "not_approver",
                f"You are not an approver{stack}; ask one of {await self._who_approves(status)}.",
            )
        if approve and own and not (self.allow_self_approval or status.allow_self_approval):
            return Refusal(
                "self_approval",
                "Four eyes: you requested this run, so someone else has to approve it.",
            )
        return None

    async def control_refusal(self, user_id: str, status: RunStatus) -> Refusal | None:
        requester = status.requester
        if requester.kind == "slack" and user_id == requester.id:
            return None
        if await self._in(user_id, status.owners) or await self.is_approver(user_id, status):
            return None
        return Refusal(
            "not_requester_or_approver",
            "Only the requester, an owner or an approver can do that to this run.",
        )

    async def run_refusal(self, user_id: str, runners: Sequence[str] | None) -> Refusal | None:
        """Starting a run of a stack: anyone, unless its `permissions.run` names who."""
        if runners is None or await self._in(user_id, runners):
            return None
        return Refusal(
            "not_runner",
            f"You may not run this stack; ask one of {await self.directory.describe_ids(runners)}.",
        )

    async def destroy_refusal(self, user_id: str, status: RunStatus) -> Refusal | None:
        """Destroying a workspace: its owners or the approvers (the workflow checks the stack's
        destroyers too); never whoever happened to run it last."""
        if await self._in(user_id, status.owners) or await self.is_approver(user_id, status):
            return None
        owners = await self.directory.describe_ids(status.owners) if status.owners else None
        who = f"its owners ({owners}) or an approver" if owners else "an approver"
        return Refusal(
            "not_owner_or_approver", f"Only {who} can destroy workspace {status.workspace}."
        )
