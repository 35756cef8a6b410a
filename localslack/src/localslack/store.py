"""The in-memory workspace: every mutation goes through here and is published as an event."""

from __future__ import annotations

import copy
import mimetypes
import time
from collections.abc import Callable, Iterable
from typing import Any

from .errors import SlackApiError
from .events import EventBus
from .model import (
    Channel,
    Ephemeral,
    FileRecord,
    Message,
    ResponseUrl,
    SlackUser,
    Trigger,
    TsClock,
    ValidationFailure,
    ViewRecord,
    new_id,
    new_trigger_id,
    short_block_id,
    ts_key,
)
from .validation import interactive_elements

MAX_VIEW_STACK = 3
RESPONSE_URL_MAX_USES = 5
RESPONSE_URL_TTL = 30 * 60


def channel_id_for(name: str) -> str:
    return "C0" + "".join(ch for ch in name.upper() if ch.isalnum())


def normalize_blocks(blocks: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Copy blocks, filling in block_id/action_id where missing, as Slack does when storing."""
    normalized = copy.deepcopy(list(blocks))
    for block in normalized:
        block.setdefault("block_id", short_block_id())
        for element in interactive_elements(block):
            element.setdefault("action_id", short_block_id())
    return normalized


def _stateful_keys(blocks: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {
        (block["block_id"], element["action_id"])
        for block in blocks
        for element in interactive_elements(block)
        if element.get("type") != "button"
    }


class Workspace:
    """One team with one installed app (the bot under test) and some human users."""

    def __init__(
        self,
        *,
        bus: EventBus,
        base_url: Callable[[], str],
        users: Iterable[SlackUser],
        channels: Iterable[str],
        usergroups: dict[str, list[str]],
        team_id: str = "T0LOCAL",
        team_domain: str = "localslack",
        app_id: str = "A0LOCAL",
        bot_user: SlackUser | None = None,
        bot_id: str = "B0LOCAL",
        trigger_ttl: float = 3.0,
    ) -> None:
        self.bus = bus
        self._base_url = base_url
        self.team_id = team_id
        self.team_domain = team_domain
        self.app_id = app_id
        self.bot_user = bot_user or SlackUser("U0BOT", "provision", "provision", is_bot=True)
        self.bot_id = bot_id
        self.trigger_ttl = trigger_ttl
        self.clock = TsClock()
        self.users: dict[str, SlackUser] = {u.id: u for u in [*users, self.bot_user]}
        everyone = set(self.users)
        self.channels: dict[str, Channel] = {}
        for name in channels:
            channel = Channel(channel_id_for(name), name, members=set(everyone))
            self.channels[channel.id] = channel
        self.usergroups = {group: list(members) for group, members in usergroups.items()}
        self._messages: dict[str, dict[str, Message]] = {cid: {} for cid in self.channels}
        self._ephemerals: list[Ephemeral] = []
        self._views: dict[str, ViewRecord] = {}
        self._stacks: dict[str, list[str]] = {}
        self._homes: dict[str, str] = {}
        self.files: dict[str, FileRecord] = {}
        self._triggers: dict[str, Trigger] = {}
        self._response_urls: dict[str, ResponseUrl] = {}
        self.validation_failures: list[ValidationFailure] = []

    @property
    def base_url(self) -> str:
        return self._base_url()

    # -- directory ----------------------------------------------------------------------------

    def user(self, user_id: str) -> SlackUser:
        try:
            return self.users[user_id]
        except KeyError:
            raise SlackApiError("user_not_found") from None

    def channel(self, ref: str) -> Channel:
        """Look a conversation up by id, `#name`, `name`, or a user id (their DM with the bot)."""
        if ref in self.channels:
            return self.channels[ref]
        if ref in self.users and ref != self.bot_user.id:
            return self.im_with(ref)
        name = ref.removeprefix("#")
        for channel in self.channels.values():
            if not channel.is_im and channel.name == name:
                return channel
        raise SlackApiError("channel_not_found")

    def im_with(self, user_id: str) -> Channel:
        self.user(user_id)
        channel_id = "D" + user_id.removeprefix("U")
        if channel_id not in self.channels:
            self.channels[channel_id] = Channel(
                channel_id, user_id, members={user_id, self.bot_user.id}, is_im=True
            )
            self._messages[channel_id] = {}
        return self.channels[channel_id]

    def usergroup_users(self, usergroup: str) -> list[str]:
        try:
            return list(self.usergroups[usergroup])
        except KeyError:
            raise SlackApiError("no_such_subteam") from None

    # -- messages -----------------------------------------------------------------------------

    def _channel_messages(self, channel_id: str) -> dict[str, Message]:
        try:
            return self._messages[channel_id]
        except KeyError:
            raise SlackApiError("channel_not_found") from None

    def get_message(self, channel_id: str, ts: str) -> Message:
        message = self._channel_messages(channel_id).get(ts)
        if message is None or message.deleted:
            raise SlackApiError("message_not_found")
        return message

    def post_message(
        self,
        channel_id: str,
        *,
        user: str,
        text: str = "",
        blocks: list[dict[str, Any]] | None = None,
        attachments: list[dict[str, Any]] | None = None,
        thread_ts: str | None = None,
        file_ids: Iterable[str] = (),
        metadata: dict[str, Any] | None = None,
        subtype: str | None = None,
    ) -> Message:
        messages = self._channel_messages(channel_id)
        parent: Message | None = None
        if thread_ts:
            parent = messages.get(thread_ts)
            if parent is None:
                raise SlackApiError("thread_not_found")
            if parent.is_reply:
                # Replying to a reply threads under the same parent, as in Slack.
                parent = messages[parent.thread_ts or parent.ts]
        from_bot = user == self.bot_user.id
        message = Message(
            channel=channel_id,
            ts=self.clock.next(),
            user=user,
            text=text,
            blocks=normalize_blocks(blocks or []),
            attachments=copy.deepcopy(attachments) if attachments else None,
            thread_ts=parent.ts if parent else None,
            bot_id=self.bot_id if from_bot else None,
            app_id=self.app_id if from_bot else None,
            file_ids=list(file_ids),
            metadata=copy.deepcopy(metadata) if metadata else None,
            subtype=subtype,
        )
        messages[message.ts] = message
        if parent is not None:
            parent.reply_ts.append(message.ts)
            if parent.thread_ts is None:
                parent.thread_ts = parent.ts
        self.bus.emit(
            "message.posted",
            channel=channel_id,
            ts=message.ts,
            thread_ts=message.thread_ts,
            message=self.render_message(message),
        )
        return message

    def update_message(
        self,
        channel_id: str,
        ts: str,
        *,
        text: str | None = None,
        blocks: list[dict[str, Any]] | None = None,
        attachments: list[dict[str, Any]] | None = None,
    ) -> Message:
        message = self.get_message(channel_id, ts)
        if message.user != self.bot_user.id:
            raise SlackApiError("cant_update_message")
        # Like chat.update: an omitted field keeps its value, an empty list clears it.
        if text is not None:
            message.text = text
        if blocks is not None:
            message.blocks = normalize_blocks(blocks)
        if attachments is not None:
            message.attachments = copy.deepcopy(attachments) or None
        message.edited = {"user": self.bot_user.id, "ts": self.clock.next()}
        self.bus.emit(
            "message.updated", channel=channel_id, ts=ts, message=self.render_message(message)
        )
        return message

    def delete_message(self, channel_id: str, ts: str) -> None:
        message = self.get_message(channel_id, ts)
        if message.user != self.bot_user.id:
            raise SlackApiError("cant_delete_message")
        if message.reply_ts:
            # A parent with replies stays as a tombstone so the thread still reads.
            message.subtype = "tombstone"
            message.text = "This message was deleted."
            message.blocks = []
            message.attachments = None
            message.file_ids = []
            self.bus.emit(
                "message.updated", channel=channel_id, ts=ts, message=self.render_message(message)
            )
            return
        message.deleted = True
        if message.is_reply and message.thread_ts:
            parent = self._messages[channel_id][message.thread_ts]
            parent.reply_ts.remove(ts)
        self.bus.emit("message.deleted", channel=channel_id, ts=ts)

    def history(self, channel_id: str) -> list[Message]:
        """Top-level messages, oldest first."""
        return [
            m
            for m in sorted(self._channel_messages(channel_id).values(), key=lambda m: ts_key(m.ts))
            if not m.deleted and not m.is_reply
        ]

    def replies(self, channel_id: str, ts: str) -> list[Message]:
        """A thread: the parent then its replies, oldest first."""
        messages = self._channel_messages(channel_id)
        parent = messages.get(ts)
        if parent is None or parent.deleted:
            raise SlackApiError("thread_not_found")
        if parent.is_reply and parent.thread_ts:
            parent = messages[parent.thread_ts]
        replies = [messages[r] for r in parent.reply_ts if not messages[r].deleted]
        return [parent, *replies]

    def render_message(self, message: Message) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": "message",
            "user": message.user,
            "text": message.text,
            "ts": message.ts,
            "team": self.team_id,
        }
        if message.subtype:
            body["subtype"] = message.subtype
        if message.bot_id:
            body["bot_id"] = message.bot_id
            body["app_id"] = message.app_id
            body["bot_profile"] = {
                "id": message.bot_id,
                "app_id": message.app_id,
                "name": self.bot_user.name,
                "user_id": self.bot_user.id,
                "team_id": self.team_id,
                "deleted": False,
            }
        if message.blocks:
            body["blocks"] = copy.deepcopy(message.blocks)
        if message.attachments:
            body["attachments"] = copy.deepcopy(message.attachments)
        if message.file_ids:
            body["files"] = [self.render_file(self.files[f]) for f in message.file_ids]
            body["upload"] = True
        if message.metadata:
            body["metadata"] = copy.deepcopy(message.metadata)
        if message.edited:
            body["edited"] = dict(message.edited)
        if message.thread_ts:
            body["thread_ts"] = message.thread_ts
        if message.is_reply and message.thread_ts:
            body["parent_user_id"] = self._messages[message.channel][message.thread_ts].user
        live_replies = [
            self._messages[message.channel][r]
            for r in message.reply_ts
            if not self._messages[message.channel][r].deleted
        ]
        if live_replies:
            reply_users = list(dict.fromkeys(r.user for r in live_replies))
            body.update(
                reply_count=len(live_replies),
                reply_users=reply_users,
                reply_users_count=len(reply_users),
                latest_reply=live_replies[-1].ts,
            )
        return body

    def permalink(self, channel_id: str, ts: str) -> str:
        message = self.get_message(channel_id, ts)
        link = f"{self.base_url}archives/{channel_id}/p{ts.replace('.', '')}"
        if message.is_reply:
            link += f"?thread_ts={message.thread_ts}&cid={channel_id}"
        return link

    # -- ephemerals ---------------------------------------------------------------------------

    def post_ephemeral(
        self,
        channel_id: str,
        user: str,
        *,
        text: str = "",
        blocks: list[dict[str, Any]] | None = None,
        thread_ts: str | None = None,
        source: str = "chat.postEphemeral",
        sender: str | None = None,
    ) -> Ephemeral:
        channel = self.channel(channel_id)
        self.user(user)
        if user not in channel.members:
            raise SlackApiError("user_not_in_channel")
        ephemeral = Ephemeral(
            channel=channel.id,
            user=user,
            ts=self.clock.next(),
            text=text,
            blocks=normalize_blocks(blocks or []),
            thread_ts=thread_ts,
            source=source,
            sender=sender or self.bot_user.id,
        )
        self._ephemerals.append(ephemeral)
        self.bus.emit(
            "ephemeral.posted",
            user=user,
            channel=channel.id,
            ts=ephemeral.ts,
            message=ephemeral.to_api(),
        )
        return ephemeral

    def ephemeral(self, user: str, channel_id: str, ts: str) -> Ephemeral:
        for ephemeral in self._ephemerals:
            if (ephemeral.user, ephemeral.channel, ephemeral.ts) == (user, channel_id, ts):
                if not ephemeral.deleted:
                    return ephemeral
        raise SlackApiError("message_not_found")

    def ephemerals_for(self, user: str, channel_id: str | None = None) -> list[Ephemeral]:
        return [
            e
            for e in self._ephemerals
            if e.user == user and not e.deleted and (channel_id is None or e.channel == channel_id)
        ]

    def replace_ephemeral(
        self, ephemeral: Ephemeral, *, text: str, blocks: list[dict[str, Any]] | None
    ) -> None:
        ephemeral.text = text
        ephemeral.blocks = normalize_blocks(blocks or [])
        self.bus.emit(
            "ephemeral.updated",
            user=ephemeral.user,
            channel=ephemeral.channel,
            ts=ephemeral.ts,
            message=ephemeral.to_api(),
        )

    def delete_ephemeral(self, ephemeral: Ephemeral) -> None:
        ephemeral.deleted = True
        self.bus.emit(
            "ephemeral.deleted", user=ephemeral.user, channel=ephemeral.channel, ts=ephemeral.ts
        )

    # -- triggers and response URLs -----------------------------------------------------------

    def issue_trigger(self, user: str) -> str:
        trigger = Trigger(new_trigger_id(), user, time.monotonic())
        self._triggers[trigger.id] = trigger
        return trigger.id

    def exchange_trigger(self, trigger_id: str | None) -> Trigger:
        """Use up a trigger_id, with Slack's rules: one use, within a few seconds."""
        trigger = self._triggers.get(trigger_id or "")
        if trigger is None:
            raise SlackApiError("invalid_trigger_id")
        if trigger.exchanged:
            raise SlackApiError("exchanged_trigger_id")
        if time.monotonic() - trigger.issued_at > self.trigger_ttl:
            raise SlackApiError("expired_trigger_id")
        trigger.exchanged = True
        return trigger

    def issue_response_url(
        self,
        user: str,
        channel: str,
        *,
        message_ts: str | None = None,
        is_ephemeral: bool = False,
    ) -> tuple[ResponseUrl, str]:
        record = ResponseUrl(
            id=new_id("R", 16),
            user=user,
            channel=channel,
            issued_at=time.monotonic(),
            message_ts=message_ts,
            message_is_ephemeral=is_ephemeral,
        )
        self._response_urls[record.id] = record
        return record, f"{self.base_url}response/{record.id}"

    def use_response_url(self, record_id: str) -> ResponseUrl:
        record = self._response_urls.get(record_id)
        if record is None:
            raise SlackApiError("no_service", status=404)
        if time.monotonic() - record.issued_at > RESPONSE_URL_TTL:
            raise SlackApiError("expired_url", status=404)
        if record.uses >= RESPONSE_URL_MAX_USES:
            raise SlackApiError("used_url", status=404)
        record.uses += 1
        return record

    # -- views --------------------------------------------------------------------------------

    def stack(self, user: str) -> list[ViewRecord]:
        return [self._views[v] for v in self._stacks.get(user, [])]

    def find_view(self, view_id: str | None = None, external_id: str | None = None) -> ViewRecord:
        for record in self._views.values():
            if not record.is_open:
                continue
            if (view_id and record.id == view_id) or (
                external_id and record.external_id == external_id
            ):
                return record
        raise SlackApiError("not_found")

    def _new_view(
        self, user: str, view: dict[str, Any], *, root: str | None, previous: str | None
    ) -> ViewRecord:
        external_id = view.get("external_id") or ""
        if external_id:
            for other in self._views.values():
                if other.is_open and other.external_id == external_id:
                    raise SlackApiError("duplicate_external_id")
        view_id = new_id("V")
        record = ViewRecord(
            id=view_id,
            user=user,
            view=self._normalize_view(view),
            hash=self._new_hash(),
            root_view_id=root or view_id,
            previous_view_id=previous,
            external_id=external_id,
        )
        self._views[view_id] = record
        return record

    def _normalize_view(self, view: dict[str, Any]) -> dict[str, Any]:
        normalized = copy.deepcopy(view)
        normalized["blocks"] = normalize_blocks(view.get("blocks") or [])
        return normalized

    def _new_hash(self) -> str:
        return f"{time.time():.6f}.{new_id('', 8).lower()}"

    def open_view(self, user: str, view: dict[str, Any]) -> ViewRecord:
        for old in self.stack(user):
            self._close(old, reason="replaced")
        record = self._new_view(user, view, root=None, previous=None)
        self._stacks[user] = [record.id]
        self.bus.emit("view.opened", user=user, view=self.render_view(record))
        return record

    def push_view(self, user: str, view: dict[str, Any]) -> ViewRecord:
        stack = self._stacks.get(user) or []
        if not stack:
            raise SlackApiError("invalid_trigger_id")
        if len(stack) >= MAX_VIEW_STACK:
            raise SlackApiError("push_limit_reached")
        top = self._views[stack[-1]]
        record = self._new_view(user, view, root=top.root_view_id, previous=top.id)
        stack.append(record.id)
        self.bus.emit("view.pushed", user=user, view=self.render_view(record))
        return record

    def update_view(self, record: ViewRecord, view: dict[str, Any]) -> ViewRecord:
        new_external = view.get("external_id")
        if new_external is not None:
            record.external_id = new_external
        record.view = self._normalize_view(view)
        # Slack keeps what the user typed into inputs that survive the update.
        keep = _stateful_keys(record.view["blocks"])
        record.state = {
            block_id: {a: v for a, v in actions.items() if (block_id, a) in keep}
            for block_id, actions in record.state.items()
        }
        record.errors = {}
        record.hash = self._new_hash()
        self.bus.emit("view.updated", user=record.user, view=self.render_view(record))
        return record

    def set_view_state(self, record: ViewRecord, values: dict[str, dict[str, Any]]) -> None:
        record.state = copy.deepcopy(values)

    def set_view_errors(self, record: ViewRecord, errors: dict[str, str]) -> None:
        record.errors = dict(errors)
        self.bus.emit("view.errors", user=record.user, view_id=record.id, errors=dict(errors))

    def close_view(self, record: ViewRecord, *, clear: bool = False) -> list[ViewRecord]:
        """Close the top view (or the whole stack); returns what was closed, top first."""
        stack = self._stacks.get(record.user, [])
        if record.id not in stack:
            raise SlackApiError("not_found")
        closing = (
            list(reversed(stack)) if clear else list(reversed(stack[stack.index(record.id) :]))
        )
        for view_id in closing:
            self._close(self._views[view_id], reason="cleared" if clear else "closed")
        return [self._views[v] for v in closing]

    def _close(self, record: ViewRecord, *, reason: str) -> None:
        record.is_open = False
        stack = self._stacks.get(record.user, [])
        if record.id in stack:
            stack.remove(record.id)
        self.bus.emit("view.closed", user=record.user, view_id=record.id, reason=reason)

    def publish_home(self, user: str, view: dict[str, Any]) -> ViewRecord:
        self.user(user)
        existing = self._homes.get(user)
        if existing:
            record = self._views[existing]
            record.view = self._normalize_view(view)
            record.hash = self._new_hash()
        else:
            record = self._new_view(user, view, root=None, previous=None)
            self._homes[user] = record.id
        self.bus.emit("home.published", user=user, view=self.render_view(record))
        return record

    def home(self, user: str) -> ViewRecord:
        return self._views[self._homes[user]]

    def render_view(self, record: ViewRecord) -> dict[str, Any]:
        view = copy.deepcopy(record.view)
        return {
            "private_metadata": "",
            "callback_id": "",
            "clear_on_close": False,
            "notify_on_close": False,
            **view,
            "id": record.id,
            "team_id": self.team_id,
            "state": {"values": copy.deepcopy(record.state)},
            "hash": record.hash,
            "root_view_id": record.root_view_id,
            "previous_view_id": record.previous_view_id,
            "external_id": record.external_id,
            "app_id": self.app_id,
            "app_installed_team_id": self.team_id,
            "bot_id": self.bot_id,
        }

    # -- files --------------------------------------------------------------------------------

    def create_file(
        self,
        *,
        user: str,
        name: str,
        title: str | None = None,
        length: int | None = None,
        alt_txt: str | None = None,
        snippet_type: str | None = None,
    ) -> FileRecord:
        mimetype = mimetypes.guess_type(name)[0] or "application/octet-stream"
        extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
        record = FileRecord(
            id=new_id("F"),
            name=name,
            title=title or name,
            user=user,
            declared_length=length,
            alt_txt=alt_txt,
            snippet_type=snippet_type,
            mimetype=mimetype,
            filetype=extension or ("text" if mimetype.startswith("text/") else "binary"),
        )
        self.files[record.id] = record
        return record

    def store_upload(self, file_id: str, content: bytes) -> FileRecord:
        record = self.files.get(file_id)
        if record is None:
            raise SlackApiError("file_not_found", status=404)
        record.content = content
        record.uploaded = True
        self.bus.emit("file.uploaded", file=self.render_file(record))
        return record

    def share_file(
        self,
        record: FileRecord,
        channel_id: str,
        *,
        thread_ts: str | None = None,
        initial_comment: str = "",
        user: str | None = None,
    ) -> Message:
        message = self.post_message(
            channel_id,
            user=user or record.user,
            text=initial_comment,
            thread_ts=thread_ts,
            file_ids=[record.id],
        )
        record.shares.setdefault(channel_id, []).append(message.ts)
        self.bus.emit(
            "file.shared",
            file=self.render_file(record),
            channel=channel_id,
            ts=message.ts,
            thread_ts=message.thread_ts,
        )
        return message

    def file(self, file_id: str) -> FileRecord:
        try:
            return self.files[file_id]
        except KeyError:
            raise SlackApiError("file_not_found") from None

    def render_file(self, record: FileRecord) -> dict[str, Any]:
        url = f"{self.base_url}files/{record.id}/{record.name}"
        shares: dict[str, Any] = {}
        for channel_id, timestamps in record.shares.items():
            kind = "private" if self.channels[channel_id].is_im else "public"
            shares.setdefault(kind, {})[channel_id] = [
                {
                    "ts": ts,
                    **({"thread_ts": t} if (t := self._messages[channel_id][ts].thread_ts) else {}),
                }
                for ts in timestamps
            ]
        return {
            "id": record.id,
            "created": record.created,
            "timestamp": record.created,
            "name": record.name,
            "title": record.title,
            "mimetype": record.mimetype,
            "filetype": record.filetype,
            "pretty_type": record.filetype.upper(),
            "user": record.user,
            "user_team": self.team_id,
            "size": len(record.content),
            "mode": "hosted",
            "is_external": False,
            "is_public": any(not self.channels[c].is_im for c in record.shares),
            "url_private": url,
            "url_private_download": url + "?download=1",
            "permalink": f"{self.base_url}files/{record.id}",
            "alt_txt": record.alt_txt,
            "channels": [c for c in record.shares if not self.channels[c].is_im],
            "shares": shares,
        }

    # -- validation bookkeeping ---------------------------------------------------------------

    def record_validation_failure(self, source: str, errors: list[str], payload: Any) -> None:
        failure = ValidationFailure(source, list(errors), copy.deepcopy(payload))
        self.validation_failures.append(failure)
        self.bus.emit("validation.failed", source=source, errors=list(errors))
