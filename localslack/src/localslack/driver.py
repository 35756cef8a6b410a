"""What the browser client needs of a workspace: its state, its event stream, and the actions
people take. LocalSlack provides it; the client depends on this interface, not on the server."""

from __future__ import annotations

from typing import Any, Protocol

from .events import Subscription
from .store import Workspace


class WorkspaceDriver(Protocol):
    host: str
    command: str
    workspace: Workspace

    @property
    def connections(self) -> int: ...

    def subscribe(self, kinds: Any = None, *, replay: bool = False) -> Subscription: ...

    async def slash_command(
        self, user_id: str, text: str = "", channel: str = "C0INFRA", *, command: str | None = None
    ) -> Any: ...

    async def click_button(
        self,
        user_id: str,
        channel: str,
        message_ts: str,
        action_id: str,
        value: str | None = None,
        *,
        block_id: str | None = None,
    ) -> Any: ...

    async def click_view_button(
        self,
        user_id: str,
        view_id: str,
        action_id: str,
        value: str | None = None,
        *,
        block_id: str | None = None,
    ) -> Any: ...

    async def submit_view(
        self, user_id: str, view_id: str, values: dict[str, dict[str, Any]] | None = None
    ) -> Any: ...

    async def close_view(self, user_id: str, view_id: str, *, clear: bool = False) -> Any: ...

    async def post_message(
        self, user_id: str, channel: str, text: str, *, thread_ts: str | None = None
    ) -> dict[str, Any]: ...
