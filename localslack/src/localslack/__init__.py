"""A local, Slack-compatible workspace server (Web API + Socket Mode) for tests and demos."""

from .errors import (
    AckTimeout,
    ElementNotFound,
    InputRejected,
    LocalSlackError,
    SlackApiError,
    ViewNotOpen,
)
from .events import Event, Subscription
from .hints import CommandHints, Suggestion
from .model import SlackUser, ValidationFailure
from .server import DEFAULT_USERGROUPS, DEFAULT_USERS, Ack, LocalSlack, ViewSubmissionResult
from .socket_mode import Envelope
from .web_api import Call

__all__ = [
    "Ack",
    "AckTimeout",
    "Call",
    "CommandHints",
    "DEFAULT_USERGROUPS",
    "DEFAULT_USERS",
    "ElementNotFound",
    "Envelope",
    "Event",
    "InputRejected",
    "LocalSlack",
    "LocalSlackError",
    "SlackApiError",
    "SlackUser",
    "Suggestion",
    "Subscription",
    "ValidationFailure",
    "ViewNotOpen",
    "ViewSubmissionResult",
]
