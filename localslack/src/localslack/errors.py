"""Exceptions raised by the local Slack server and by its user-side driver API."""

from __future__ import annotations

from typing import Any


class LocalSlackError(Exception):
    """Base class of everything this package raises."""


class SlackApiError(LocalSlackError):
    """A Slack-level failure: becomes `{"ok": false, "error": code, ...}` on the wire."""

    def __init__(self, error: str, *, status: int = 200, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.status = status
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"ok": False, "error": self.error, **self.extra}


class AckTimeout(LocalSlackError):
    """The app did not acknowledge an envelope before the deadline."""

    def __init__(self, envelope_id: str, envelope_type: str, timeout: float) -> None:
        super().__init__(f"{envelope_type} envelope {envelope_id} not acked within {timeout:.1f}s")
        self.envelope_id = envelope_id
        self.envelope_type = envelope_type
        self.timeout = timeout


class ElementNotFound(LocalSlackError):
    """The user tried to interact with something that is not on screen (any more)."""


class ViewNotOpen(LocalSlackError):
    """The user tried to act on a view that is not the visible one."""


class InputRejected(LocalSlackError):
    """Slack's client refused a view submission before sending it (e.g. a required field)."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(f"the Slack client would not submit this view: {errors}")
        self.errors = errors
