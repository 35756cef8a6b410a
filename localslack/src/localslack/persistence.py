"""Keeps a workspace's channels (messages, threads, files) in a JSON file across restarts.

What a person would find again in Slack after closing the app survives; what is per session
(open modals, ephemeral messages, triggers, response URLs) does not, as in Slack.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from .model import FileRecord, Message, ts_key
from .store import Workspace

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
# The state changes that alter what is kept.
KEPT_EVENTS = frozenset(
    {"message.posted", "message.updated", "message.deleted", "file.uploaded", "file.shared"}
)


def snapshot(workspace: Workspace) -> dict[str, Any]:
    channels = {}
    for channel_id, messages in workspace._messages.items():
        channel = workspace.channels[channel_id]
        channels[channel_id] = {
            "name": channel.name,
            "is_im": channel.is_im,
            "topic": channel.topic,
            "messages": [dataclasses.asdict(m) for m in messages.values()],
        }
    files = []
    for record in workspace.files.values():
        item = dataclasses.asdict(record)
        item["content"] = base64.b64encode(record.content).decode()
        files.append(item)
    return {"version": FORMAT_VERSION, "channels": channels, "files": files}


def restore(workspace: Workspace, data: dict[str, Any]) -> int:
    """Put a snapshot's messages and files back; returns how many messages came back."""
    if data.get("version") != FORMAT_VERSION:
        raise ValueError(f"unknown workspace file version {data.get('version')!r}")
    restored = 0
    latest = "0.0"
    for channel_id, saved in data.get("channels", {}).items():
        if channel_id not in workspace.channels:
            if not saved.get("is_im") or saved.get("name") not in workspace.users:
                continue  # a channel or person this workspace no longer has
            workspace.im_with(saved["name"])
        workspace.channels[channel_id].topic = saved.get("topic", "")
        messages = workspace._messages[channel_id]
        for item in saved.get("messages", []):
            message = Message(**item)
            messages[message.ts] = message
            restored += 1
            latest = max(latest, message.ts, key=ts_key)
    for item in data.get("files", []):
        item = dict(item)
        item["content"] = base64.b64decode(item.get("content", ""))
        record = FileRecord(**item)
        workspace.files[record.id] = record
    workspace.clock.advance_past(latest)
    return restored


class WorkspaceFile:
    """The JSON file a workspace is kept in; written whole and atomically (rename)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def load_into(self, workspace: Workspace) -> int:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return restore(workspace, data)
        except FileNotFoundError:
            return 0
        except (ValueError, TypeError, KeyError) as exc:
            # A damaged file must not stop the workspace: keep it aside and start empty.
            aside = self.path.with_suffix(self.path.suffix + ".unreadable")
            with contextlib.suppress(OSError):
                self.path.replace(aside)
            log.warning("local slack: cannot read %s (%s); kept it as %s", self.path, exc, aside)
            return 0

    def save(self, workspace: Workspace) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        body = json.dumps(snapshot(workspace), separators=(",", ":"))
        fd, tmp = tempfile.mkstemp(prefix=self.path.name, dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(body)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
