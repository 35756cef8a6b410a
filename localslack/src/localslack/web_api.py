"""The Slack Web API: token checks, parameter decoding, methods, call recording, fault injection."""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from multidict import MultiMapping

from .errors import SlackApiError
from .model import Message, ts_key
from .socket_mode import SocketModeHub
from .store import Workspace
from .validation import MAX_MESSAGE_BLOCKS, block_errors, message_text_errors, view_errors

log = logging.getLogger(__name__)

BOT = "bot"
APP = "app"
BOT_SCOPES = (
    "chat:write,chat:write.public,commands,files:write,files:read,users:read,usergroups:read,"
    "channels:read,channels:history,groups:read,im:read,im:write,app_mentions:read"
)


@dataclass(frozen=True)
class Call:
    """One Web API request as the server saw it and answered it."""

    method: str
    params: dict[str, Any]
    status: int
    response: dict[str, Any]
    token_kind: str | None
    at: float
    injected: bool = False

    @property
    def ok(self) -> bool:
        return self.status == 200 and bool(self.response.get("ok"))


@dataclass
class Fault:
    status: int
    error: str
    retry_after: int | None
    remaining: int


@dataclass
class ApiRequest:
    method: str
    params: dict[str, Any]
    token_kind: str | None = None
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)

    def get(self, name: str, default: Any = None) -> Any:
        value = self.params.get(name)
        return default if value is None else value

    def require(self, name: str) -> Any:
        value = self.params.get(name)
        if value in (None, ""):
            raise SlackApiError(
                "invalid_arguments",
                response_metadata={"messages": [f"[ERROR] missing required field: {name}"]},
            )
        return value

    def flag(self, name: str) -> bool:
        value = self.params.get(name)
        if isinstance(value, str):
            return value.lower() in ("1", "true", "yes")
        return bool(value)

    def integer(self, name: str, default: int) -> int:
        value = self.params.get(name)
        try:
            return default if value in (None, "") else int(value)
        except (TypeError, ValueError):
            raise SlackApiError("invalid_arguments") from None

    def decoded(self, name: str, *, error: str) -> Any:
        """A JSON-valued parameter; form posts send it as a string, JSON posts as a value."""
        value = self.params.get(name)
        if isinstance(value, str):
            try:
                return json.loads(value)
            except json.JSONDecodeError:
                raise SlackApiError(error) from None
        return value


Handler = Callable[["WebApi", ApiRequest], dict[str, Any]]
_METHODS: dict[str, tuple[Handler, str]] = {}


def api_method(name: str, token: str = BOT) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        _METHODS[name] = (handler, token)
        return handler

    return register


def supported_methods() -> list[str]:
    return sorted(_METHODS)


def _cursor(offset: int) -> str:
    return base64.b64encode(f"next:{offset}".encode()).decode()


def _offset(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        return int(base64.b64decode(cursor).decode().removeprefix("next:"))
    except (ValueError, UnicodeDecodeError):
        raise SlackApiError("invalid_cursor") from None


def _page(items: list[Any], request: ApiRequest, default_limit: int) -> tuple[list[Any], dict]:
    start = _offset(request.get("cursor"))
    limit = max(1, min(request.integer("limit", default_limit), 1000))
    page = items[start : start + limit]
    more = start + limit < len(items)
    return page, {"next_cursor": _cursor(start + limit) if more else ""}


class WebApi:
    """Answers /api/<method> the way slack.com/api does, and keeps a log of every call."""

    def __init__(
        self,
        ws: Workspace,
        *,
        hub: SocketModeHub,
        bot_token: str,
        app_token: str,
        ws_base: Callable[[], str],
    ) -> None:
        self.ws = ws
        self.hub = hub
        self._tokens = {bot_token: BOT, app_token: APP}
        self._ws_base = ws_base
        self.calls: list[Call] = []
        self._faults: dict[str, list[Fault]] = {}

    # -- fault injection and recording --------------------------------------------------------

    def fail_next(
        self,
        method: str,
        *,
        times: int = 1,
        status: int = 429,
        retry_after: int | None = 1,
        error: str | None = None,
    ) -> None:
        default_error = {429: "ratelimited", 500: "internal_error", 503: "service_unavailable"}
        self._faults.setdefault(method, []).append(
            Fault(
                status=status,
                error=error or default_error.get(status, "fatal_error"),
                retry_after=retry_after if status == 429 else None,
                remaining=times,
            )
        )

    def recover(self, method: str | None = None) -> None:
        if method is None:
            self._faults.clear()
        else:
            self._faults.pop(method, None)

    def _take_fault(self, method: str) -> Fault | None:
        queue = self._faults.get(method) or []
        while queue and queue[0].remaining <= 0:
            queue.pop(0)
        if not queue:
            return None
        queue[0].remaining -= 1
        return queue[0]

    def record(self, call: Call) -> None:
        self.calls.append(call)
        self.ws.bus.emit(
            "api.call",
            method=call.method,
            status=call.status,
            ok=call.ok,
            error=call.response.get("error"),
            injected=call.injected,
        )

    # -- HTTP ---------------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        started = time.time()
        try:
            params, files = await self._read_params(request)
        except SlackApiError as exc:
            return web.json_response(exc.body(), status=exc.status)
        shown = {**params, **{k: {"filename": n, "size": len(b)} for k, (n, b) in files.items()}}
        shown.pop("token", None)
        headers: dict[str, str] = {}
        entry = _METHODS.get(method)
        fault = self._take_fault(method) if entry else None
        if fault is not None:
            body = {"ok": False, "error": fault.error}
            if fault.retry_after is not None:
                headers["Retry-After"] = str(fault.retry_after)
            self.record(Call(method, shown, fault.status, body, None, started, injected=True))
            return web.json_response(body, status=fault.status, headers=headers)
        status = 200
        token_kind: str | None = None
        try:
            if entry is None:
                raise SlackApiError("unknown_method", req_method=method)
            handler, needed = entry
            token_kind = self._authenticate(request, params, needed)
            body = handler(self, ApiRequest(method, params, token_kind, files))
            body = {"ok": True, **body}
        except SlackApiError as exc:
            body, status = exc.body(), exc.status
        if token_kind == BOT:
            headers["x-oauth-scopes"] = BOT_SCOPES
        self.record(Call(method, shown, status, body, token_kind, started))
        return web.json_response(body, status=status, headers=headers)

    async def _read_params(
        self, request: web.Request
    ) -> tuple[dict[str, Any], dict[str, tuple[str, bytes]]]:
        params: dict[str, Any] = dict(request.query)
        files: dict[str, tuple[str, bytes]] = {}
        if request.method != "POST" or not request.body_exists:
            return params, files
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except json.JSONDecodeError:
                raise SlackApiError("invalid_json") from None
            if not isinstance(body, dict):
                raise SlackApiError("invalid_json")
            params.update(body)
            return params, files
        form: MultiMapping[Any] = await request.post()
        for key, value in form.items():
            if isinstance(value, web.FileField):
                files[key] = (value.filename, value.file.read())
            else:
                params[key] = value
        return params, files

    def _authenticate(self, request: web.Request, params: dict[str, Any], needed: str) -> str:
        header = request.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else None
        token = token or params.pop("token", None)
        params.pop("token", None)
        if not token:
            raise SlackApiError("not_authed")
        kind = self._tokens.get(token)
        if kind is None:
            raise SlackApiError("invalid_auth")
        if kind != needed:
            raise SlackApiError("not_allowed_token_type")
        return kind

    # -- shared checks ------------------------------------------------------------------------

    def checked_message(self, request: ApiRequest) -> tuple[str | None, list[dict] | None]:
        """The text and blocks of a chat.* call, validated like Slack does."""
        text = request.get("text")
        blocks = request.decoded("blocks", error="invalid_blocks_format")
        if blocks is not None and not isinstance(blocks, list):
            raise SlackApiError("invalid_blocks_format")
        text_errors = message_text_errors(text)
        if text_errors:
            self.ws.record_validation_failure(request.method, text_errors, request.params)
            raise SlackApiError("msg_too_long", errors=text_errors)
        if blocks is not None:
            errors = block_errors(blocks, limit=MAX_MESSAGE_BLOCKS)
            if errors:
                self.ws.record_validation_failure(request.method, errors, request.params)
                raise SlackApiError(
                    "invalid_blocks",
                    errors=errors,
                    response_metadata={"messages": [f"[ERROR] {e}" for e in errors]},
                )
        return text, blocks

    def checked_view(self, request: ApiRequest) -> dict[str, Any]:
        view = request.decoded("view", error="invalid_arguments")
        if view is None:
            request.require("view")
        errors = view_errors(view)
        if errors:
            self.ws.record_validation_failure(request.method, errors, view)
            # Slack reports a bad view as invalid_arguments, not invalid_blocks.
            raise SlackApiError(
                "invalid_arguments",
                errors=errors,
                response_metadata={"messages": [f"[ERROR] {e}" for e in errors]},
            )
        return view

    def render_history(self, messages: list[Message]) -> list[dict[str, Any]]:
        return [self.ws.render_message(m) for m in messages]


# -- auth and connections -------------------------------------------------------------------


@api_method("auth.test")
def auth_test(api: WebApi, request: ApiRequest) -> dict[str, Any]:
    ws = api.ws
    return {
        "url": ws.base_url,
        "team": "Local Slack",
        "user": ws.bot_user.name,
        "team_id": ws.team_id,
        "user_id": ws.bot_user.id,
        "bot_id": ws.bot_id,
        "is_enterprise_install": False,
    }


@api_method("apps.connections.open", token=APP)
def apps_connections_open(api: WebApi, request: ApiRequest) -> dict[str, Any]:
    return {"url": api.hub.issue_url(api._ws_base())}


# -- chat -----------------------------------------------------------------------------------


@api_method("chat.postMessage")
def chat_post_message(api: WebApi, request: ApiRequest) -> dict[str, Any]:
    channel = api.ws.channel(request.require("channel"))
    text, blocks = api.checked_message(request)
    attachments = request.decoded("attachments", error="invalid_attachments")
    if not text and not blocks and not attachments:
        raise SlackApiError("no_text")
    message = api.ws.post_message(
        channel.id,
        user=api.ws.bot_user.id,
        text=text or "",
        blocks=blocks,
        attachments=attachments,
        thread_ts=request.get("thread_ts") or None,
        metadata=request.decoded("metadata", error="invalid_metadata_format"),
    )
    return {"channel": channel.id, "ts": message.ts, "message": api.ws.render_message(message)}


@api_method("chat.update")
def chat_update(api: WebApi, request: ApiRequest) -> dict[str, Any]:
    channel = api.ws.channel(request.require("channel"))
    ts = request.require("ts")
    text, blocks = api.checked_message(request)
    attachments = request.decoded("attachments", error="invalid_attachments")
    if text is None and blocks is None and attachments is None:
        raise SlackApiError("no_text")
    message = api.ws.update_message(
        channel.id, ts, text=text, blocks=blocks, attachments=attachments
    )
    return {
        "channel": channel.id,
        "ts": message.ts,
        "text": message.text,
        "message": api.ws.render_message(message),
    }


@api_method("chat.postEphemeral")
def chat_post_ephemeral(api: WebApi, request: ApiRequest) -> dict[str, Any]:
    channel = api.ws.channel(request.require("channel"))
    user = request.require("user")
    text, blocks = api.checked_message(request)
    if not text and not blocks:
        raise SlackApiError("no_text")
    ephemeral = api.ws.post_ephemeral(
        channel.id, user, text=text or "", blocks=blocks, thread_ts=request.get("thread_ts")
    )
    return {"message_ts": ephemeral.ts}


@api_method("chat.delete")
def chat_delete(api: WebApi, request: ApiRequest) -> dict[str, Any]:
    channel = api.ws.channel(request.require("channel"))
    ts = request.require("ts")
    api.ws.delete_message(channel.id, ts)
    return {"channel": channel.id, "ts": ts}


@api_method("chat.getPermalink")
def chat_get_permalink(api: WebApi, request: ApiRequest) -> dict[str, Any]:
    channel = api.ws.channel(request.require("channel"))
    permalink = api.ws.permalink(channel.id, request.require("message_ts"))
    return {"channel": channel.id, "permalink": permalink}


# -- conversations, users, usergroups -------------------------------------------------------


@api_method("conversations.info")
def conversations_info(api: WebApi, request: ApiRequest) -> dict[str, Any]:
    channel = api.ws.channel(request.require("channel"))
    return {"channel": channel.to_api(member=api.ws.bot_user.id)}


@api_method("conversations.list")
def conversations_list(api: WebApi, request: ApiRequest) -> dict[str, Any]:
    channels = [
        c.to_api(member=api.ws.bot_user.id) for c in api.ws.channels.values() if not c.is_im
    ]
    page, metadata = _page(channels, request, 100)
    return {"channels": page, "response_metadata": metadata}


@api_method("conversations.members")
def conversations_members(api: WebApi, request: ApiRequest) -> dict[str, Any]:
    channel = api.ws.channel(request.require("channel"))
    page, metadata = _page(sorted(channel.members), request, 100)
    return {"members": page, "response_metadata": metadata}


@api_method("conversations.open")
def conversations_open(api: WebApi, request: ApiRequest) -> dict[str, Any]:
    users = [u for u in str(request.require("users")).split(",") if u]
    if len(users) != 1:
        raise SlackApiError("not_implemented")
    return {"channel": api.ws.im_with(users[0]).to_api(member=api.ws.bot_user.id)}


def _window(messages: list[Message], request: ApiRequest) -> list[Message]:
    oldest, latest = request.get("oldest"), request.get("latest")
    inclusive = request.flag("inclusive")

    def inside(message: Message) -> bool:
        key = ts_key(message.ts)
        if oldest and (key < ts_key(oldest) or (key == ts_key(oldest) and not inclusive)):
            return False
        if latest and (key > ts_key(latest) or (key == ts_key(latest) and not inclusive)):
            return False
        return True

    return [m for m in messages if inside(m)]


@api_method("conversations.history")
def conversations_history(api: WebApi, request: ApiRequest) -> dict[str, Any]:
    channel = api.ws.channel(request.require("channel"))
    messages = list(reversed(_window(api.ws.history(channel.id), request)))
    page, metadata = _page(messages, request, 100)
    return {
        "messages": api.render_history(page),
        "has_more": bool(metadata["next_cursor"]),
        "pin_count": 0,
        "response_metadata": metadata,
    }


@api_method("conversations.replies")
def conversations_replies(api: WebApi, request: ApiRequest) -> dict[str, Any]:
    channel = api.ws.channel(request.require("channel"))
    thread = api.ws.replies(channel.id, request.require("ts"))
    parent, replies = thread[0], _window(thread[1:], request)
    page, metadata = _page([parent, *replies], request, 1000)
    return {
        "messages": api.render_history(page),
        "has_more": bool(metadata["next_cursor"]),
        "response_metadata": metadata,
    }


@api_method("users.info")
def users_info(api: WebApi, request: ApiRequest) -> dict[str, Any]:
    return {"user": api.ws.user(request.require("user")).to_api(api.ws.team_id)}


@api_method("users.list")
def users_list(api: WebApi, request: ApiRequest) -> dict[str, Any]:
    members = [u.to_api(api.ws.team_id) for u in api.ws.users.values()]
    page, metadata = _page(members, request, 100)
    return {"members": page, "response_metadata": metadata}


@api_method("usergroups.users.list")
def usergroups_users_list(api: WebApi, request: ApiRequest) -> dict[str, Any]:
    return {"users": api.ws.usergroup_users(request.require("usergroup"))}


@api_method("usergroups.list")
def usergroups_list(api: WebApi, request: ApiRequest) -> dict[str, Any]:
    include_users = request.flag("include_users")
    groups = []
    for group_id, users in api.ws.usergroups.items():
        group: dict[str, Any] = {
            "id": group_id,
            "team_id": api.ws.team_id,
            "is_usergroup": True,
            "name": group_id,
            "handle": group_id.lower(),
            "user_count": len(users),
        }
        if include_users:
            group["users"] = list(users)
        groups.append(group)
    return {"usergroups": groups}


# -- views ----------------------------------------------------------------------------------


@api_method("views.open")
def views_open(api: WebApi, request: ApiRequest) -> dict[str, Any]:
    view = api.checked_view(request)
    trigger_id = request.get("trigger_id") or request.get("interactivity_pointer")
    trigger = api.ws.exchange_trigger(trigger_id)
    record = api.ws.open_view(trigger.user, view)
    return {"view": api.ws.render_view(record)}


@api_method("views.push")
def views_push(api: WebApi, request: ApiRequest) -> dict[str, Any]:
    view = api.checked_view(request)
    trigger_id = request.get("trigger_id") or request.get("interactivity_pointer")
    trigger = api.ws.exchange_trigger(trigger_id)
    record = api.ws.push_view(trigger.user, view)
    return {"view": api.ws.render_view(record)}


@api_method("views.update")
def views_update(api: WebApi, request: ApiRequest) -> dict[str, Any]:
    view_id, external_id = request.get("view_id"), request.get("external_id")
    if not view_id and not external_id:
        request.require("view_id")
    record = api.ws.find_view(view_id=view_id, external_id=external_id)
    expected = request.get("hash")
    if expected and expected != record.hash:
        raise SlackApiError("hash_conflict")
    view = api.checked_view(request)
    api.ws.update_view(record, view)
    return {"view": api.ws.render_view(record)}


@api_method("views.publish")
def views_publish(api: WebApi, request: ApiRequest) -> dict[str, Any]:
    user = request.require("user_id")
    view = api.checked_view(request)
    if view.get("type") != "home":
        raise SlackApiError("invalid_arguments", errors=["views.publish takes a home view"])
    record = api.ws.publish_home(user, view)
    return {"view": api.ws.render_view(record)}


# -- files ----------------------------------------------------------------------------------


@api_method("files.getUploadURLExternal")
def files_get_upload_url_external(api: WebApi, request: ApiRequest) -> dict[str, Any]:
    filename = request.require("filename")
    length = request.integer("length", -1)
    if length < 0:
        request.require("length")
    record = api.ws.create_file(
        user=api.ws.bot_user.id,
        name=filename,
        length=length,
        alt_txt=request.get("alt_txt"),
        snippet_type=request.get("snippet_type"),
    )
    return {"upload_url": f"{api.ws.base_url}upload/{record.id}", "file_id": record.id}


@api_method("files.completeUploadExternal")
def files_complete_upload_external(api: WebApi, request: ApiRequest) -> dict[str, Any]:
    items = request.decoded("files", error="invalid_arguments")
    if not isinstance(items, list) or not items:
        raise SlackApiError("invalid_arguments")
    records = []
    for item in items:
        record = api.ws.file(item.get("id", "") if isinstance(item, dict) else "")
        if not record.uploaded:
            raise SlackApiError("file_not_found")
        if item.get("title"):
            record.title = item["title"]
        records.append(record)
    targets = [request.get("channel_id")] if request.get("channel_id") else []
    targets += [c for c in str(request.get("channels") or "").split(",") if c]
    comment = request.get("initial_comment") or ""
    thread_ts = request.get("thread_ts") or None
    for channel_ref in targets:
        channel = api.ws.channel(channel_ref)
        for index, record in enumerate(records):
            # One message carries the comment; Slack groups multi-file shares similarly.
            api.ws.share_file(
                record,
                channel.id,
                thread_ts=thread_ts,
                initial_comment=comment if index == 0 else "",
            )
    return {"files": [api.ws.render_file(r) for r in records]}


@api_method("files.upload")
def files_upload(api: WebApi, request: ApiRequest) -> dict[str, Any]:
    if "file" in request.files:
        filename, content = request.files["file"]
    elif request.get("content") is not None:
        filename, content = "file.txt", str(request.get("content")).encode()
    else:
        raise SlackApiError("no_file_data")
    record = api.ws.create_file(
        user=api.ws.bot_user.id,
        name=request.get("filename") or filename or "file",
        title=request.get("title"),
        length=len(content),
    )
    api.ws.store_upload(record.id, content)
    thread_ts = request.get("thread_ts") or None
    for channel_ref in [c for c in str(request.get("channels") or "").split(",") if c]:
        channel = api.ws.channel(channel_ref)
        api.ws.share_file(
            record,
            channel.id,
            thread_ts=thread_ts,
            initial_comment=request.get("initial_comment") or "",
        )
    return {"file": api.ws.render_file(record)}


@api_method("files.info")
def files_info(api: WebApi, request: ApiRequest) -> dict[str, Any]:
    return {"file": api.ws.render_file(api.ws.file(request.require("file")))}
