"""Records of the local workspace (users, channels, messages, ephemerals, views, files) and ids."""

from __future__ import annotations

import secrets
import string
import time
from dataclasses import dataclass, field
from typing import Any

_ID_ALPHABET = string.ascii_uppercase + string.digits


def new_id(prefix: str, length: int = 10) -> str:
    """Slack-looking ids: a type letter then upper-case alphanumerics (V0123ABCD, F..., ...)."""
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))


def new_trigger_id() -> str:
    # Same shape as Slack's: "<digits>.<digits>.<hex>".
    return f"{int(time.time() * 1000)}.{secrets.randbelow(10**10)}.{secrets.token_hex(16)}"


def short_block_id() -> str:
    # Slack fills in missing block_ids/action_ids with short random strings like these.
    return secrets.token_urlsafe(4)[:5]


class TsClock:
    """Message timestamps: unique and strictly increasing, in Slack's "seconds.micros" form."""

    def __init__(self) -> None:
        self._last = 0

    def next(self) -> str:
        micros = max(time.time_ns() // 1000, self._last + 1)
        self._last = micros
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def advance_past(self, ts: str) -> None:
        """Make every later ts greater than `ts` (a restored workspace's newest message)."""
        seconds, micros = ts_key(ts)
        self._last = max(self._last, seconds * 1_000_000 + micros)


def ts_key(ts: str) -> tuple[int, int]:
    seconds, _, micros = ts.partition(".")
    return int(seconds), int(micros or 0)


@dataclass(frozen=True)
class SlackUser:
    id: str
    name: str
    real_name: str
    is_bot: bool = False

    def to_api(self, team_id: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "team_id": team_id,
            "name": self.name,
            "real_name": self.real_name,
            "deleted": False,
            "is_bot": self.is_bot,
            "is_app_user": False,
            "is_admin": False,
            "tz": "UTC",
            "tz_offset": 0,
            "profile": {
                "real_name": self.real_name,
                "display_name": self.name,
                "email": f"{self.name}@localslack.test",
                "team": team_id,
            },
        }


@dataclass
class Channel:
    id: str
    name: str
    members: set[str]
    is_im: bool = False
    is_private: bool = False
    created: int = field(default_factory=lambda: int(time.time()))
    topic: str = ""
    purpose: str = ""

    def to_api(self, *, member: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "created": self.created,
            "is_im": self.is_im,
            "is_archived": False,
        }
        if self.is_im:
            body["user"] = next(iter(sorted(self.members - {member})), member)
            return body
        return {
            **body,
            "name": self.name,
            "name_normalized": self.name,
            "is_channel": not self.is_private,
            "is_group": self.is_private,
            "is_private": self.is_private,
            "is_general": False,
            "is_member": member in self.members,
            "num_members": len(self.members),
            "topic": {"value": self.topic, "creator": "", "last_set": 0},
            "purpose": {"value": self.purpose, "creator": "", "last_set": 0},
        }


@dataclass
class Message:
    channel: str
    ts: str
    user: str
    text: str = ""
    blocks: list[dict[str, Any]] = field(default_factory=list)
    attachments: list[dict[str, Any]] | None = None
    thread_ts: str | None = None
    bot_id: str | None = None
    app_id: str | None = None
    file_ids: list[str] = field(default_factory=list)
    metadata: dict[str, Any] | None = None
    subtype: str | None = None
    edited: dict[str, str] | None = None
    reply_ts: list[str] = field(default_factory=list)
    deleted: bool = False

    @property
    def is_reply(self) -> bool:
        return self.thread_ts is not None and self.thread_ts != self.ts


@dataclass
class Ephemeral:
    """A message only `user` sees; Slack never stores these, the local client does."""

    channel: str
    user: str
    ts: str
    text: str = ""
    blocks: list[dict[str, Any]] = field(default_factory=list)
    thread_ts: str | None = None
    source: str = "chat.postEphemeral"
    sender: str | None = None
    deleted: bool = False

    def to_api(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": "message",
            "subtype": "ephemeral",
            "channel": self.channel,
            "user": self.sender,
            "ts": self.ts,
            "text": self.text,
            "is_ephemeral": True,
            "source": self.source,
        }
        if self.blocks:
            body["blocks"] = self.blocks
        if self.thread_ts:
            body["thread_ts"] = self.thread_ts
        return body


@dataclass
class ViewRecord:
    id: str
    user: str
    view: dict[str, Any]
    hash: str
    root_view_id: str
    previous_view_id: str | None = None
    external_id: str = ""
    state: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    is_open: bool = True


@dataclass
class FileRecord:
    id: str
    name: str
    title: str
    user: str
    content: bytes = b""
    declared_length: int | None = None
    alt_txt: str | None = None
    snippet_type: str | None = None
    mimetype: str = "application/octet-stream"
    filetype: str = "binary"
    created: int = field(default_factory=lambda: int(time.time()))
    uploaded: bool = False
    # channel id -> timestamps of the messages that share the file there
    shares: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class Trigger:
    id: str
    user: str
    issued_at: float
    exchanged: bool = False


@dataclass
class ResponseUrl:
    """Where the app may answer an interaction: a slash command or an action on a message."""

    id: str
    user: str
    channel: str
    issued_at: float
    # The message the action came from; None for slash commands.
    message_ts: str | None = None
    message_is_ephemeral: bool = False
    uses: int = 0


@dataclass(frozen=True)
class ValidationFailure:
    source: str
    errors: list[str]
    payload: Any
    at: float = field(default_factory=time.time)
