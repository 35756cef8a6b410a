"""Who may act on a run from Slack: approvers (users and user groups) and the four-eyes rule."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.blocks import RunRef

log = logging.getLogger(__name__)

GROUP_CACHE_SECONDS = 60.0


@dataclass(frozen=True)
class Refusal:
    """Why an action is refused: `reason` labels the metric, `message` is shown to the user."""

    reason: str
    message: str


class ApproverDirectory:
    """Resolves the approvers setting (PROVISION_SLACK_APPROVERS): user ids (U…/W…) as they are, user groups (S…) through
    usergroups.users.list, cached for a minute so membership changes apply without a restart."""

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

    async def warm(self) -> None:
        """Resolve the groups once at start, so the first click pays no extra round trip."""
        for group in self.groups:
            await self._group_members(group)


class AccessPolicy:
    """Approve/Deny: approvers only, and never your own request unless self-approval is allowed.
    Replan, Destroy now, Extend: the requester or an approver."""

    def __init__(self, directory: ApproverDirectory, *, allow_self_approval: bool) -> None:
        self.directory = directory
        self.allow_self_approval = allow_self_approval

    async def decision_refusal(self, user_id: str, ref: RunRef, approve: bool) -> Refusal | None:
        if not await self.directory.is_approver(user_id):
            if self.directory.empty:
                return Refusal(
                    "no_approvers",
                    "Nobody can approve from Slack here yet, so an operator decides with "
                    "`provision approve` / `provision deny` in a terminal.",
                )
            return Refusal(
                "not_approver",
                "You are not an approver for provisioning runs; ask one of "
                f"{await self.directory.describe()}.",
            )
        if approve and user_id == ref.requester_id and not self.allow_self_approval:
            return Refusal(
                "self_approval",
                "Four eyes: you requested this run, so someone else has to approve it.",
            )
        return None

    async def control_refusal(self, user_id: str, ref: RunRef) -> Refusal | None:
        if user_id == ref.requester_id or await self.directory.is_approver(user_id):
            return None
        return Refusal(
            "not_requester_or_approver",
            "Only the requester or an approver can do that to this run.",
        )
