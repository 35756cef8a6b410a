"""LocalSlack: a Slack workspace on 127.0.0.1 (Web API + Socket Mode) and a driver for its users."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web

from .errors import AckTimeout, ElementNotFound, InputRejected, SlackApiError, ViewNotOpen
from .events import Event, EventBus, Subscription
from .hints import CommandHints
from .interactions import (
    block_actions_payload,
    build_state_values,
    button_action,
    client_side_errors,
    deliver_response,
    events_api_payload,
    find_element,
    slash_command_payload,
    view_closed_payload,
    view_submission_payload,
)
from .model import SlackUser, ValidationFailure, ViewRecord
from .persistence import KEPT_EVENTS, WorkspaceFile
from .socket_mode import Envelope, SocketModeHub
from .store import Workspace
from .ui import LocalSlackUI
from .validation import view_errors
from .web_api import Call, WebApi, supported_methods

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_USERS = (
    SlackUser("U0ALICE", "alice", "Alice Anders"),
    SlackUser("U0BOB", "bob", "Bob Brown"),
    SlackUser("U0CAROL", "carol", "Carol Chen"),
)
DEFAULT_USERGROUPS = {"S0APPROVERS": ["U0ALICE", "U0BOB"]}
SLACKBOT = "USLACKBOT"


@dataclass(frozen=True)
class Ack:
    """The app's acknowledgement of one envelope, as the user's client experienced it."""

    envelope_id: str
    type: str
    payload: dict[str, Any] | None
    latency: float
    deliveries: int
    retry_attempt: int
    trigger_id: str | None = None


@dataclass(frozen=True)
class ViewSubmissionResult:
    ack: Ack
    response_action: str | None
    errors: dict[str, str] | None
    # What the user sees afterwards: the top of their modal stack, or None when it closed.
    view: dict[str, Any] | None
    closed: bool


class LocalSlack:
    """A small Slack: one team, some users and channels, and one installed Socket Mode app.

    The Web API lives under `api_url` (point slack_sdk's `base_url` there) and
    `apps.connections.open` hands out WebSocket URLs on the same port. The async driver
    methods (`slash_command`, `click_button`, `submit_view`, ...) are what people do in the
    Slack client; state accessors and `wait_for`/`subscribe` observe the result.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        users: Sequence[SlackUser] | None = None,
        channels: Sequence[str] = ("infra",),
        usergroups: dict[str, list[str]] | None = None,
        bot_token: str = "xoxb-local",
        # Shaped like Slack's (xapp-1-<app id>-…), so the bot learns its app id from it.
        app_token: str = "xapp-1-A0LOCAL-1-local",
        command: str = "/provision",
        ack_timeout: float = 3.0,
        trigger_ttl: float = 3.0,
        redelivery_delay: float = 1.0,
        disconnect_grace: float = 10.0,
        heartbeat: float | None = None,
        event_subscriptions: Iterable[str] = ("app_mention",),
        commands: Sequence[CommandHints] = (),
        user_notes: dict[str, str] | None = None,
        default_user: str | None = None,
        data_file: str | os.PathLike[str] | None = None,
    ) -> None:
        self.host = host
        self._requested_port = port
        self.port: int | None = None
        self.bot_token = bot_token
        self.app_token = app_token
        self.command = command
        self.ack_timeout = ack_timeout
        self.event_subscriptions = frozenset(event_subscriptions)
        self.bus = EventBus()
        self.workspace = Workspace(
            bus=self.bus,
            base_url=lambda: self.url,
            users=users if users is not None else DEFAULT_USERS,
            channels=channels,
            usergroups=usergroups if usergroups is not None else DEFAULT_USERGROUPS,
            trigger_ttl=trigger_ttl,
        )
        self.hub = SocketModeHub(
            bus=self.bus,
            app_id=self.workspace.app_id,
            redelivery_delay=redelivery_delay,
            disconnect_grace=disconnect_grace,
            heartbeat=heartbeat,
        )
        self.web_api = WebApi(
            self.workspace,
            hub=self.hub,
            bot_token=bot_token,
            app_token=app_token,
            ws_base=lambda: f"ws://{self.host}:{self.port}/",
        )
        # The browser client (page, state, events), told about the app by whoever hosts it.
        self.ui = LocalSlackUI(
            self, hints=list(commands), user_notes=user_notes, default_user=default_user
        )
        self._runner: web.AppRunner | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        # Where channels are kept across restarts (None: in memory only, as tests want).
        self.data_file = WorkspaceFile(data_file) if data_file is not None else None
        self._keeper: asyncio.Task[None] | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("LocalSlack is not started")
        return f"http://{self.host}:{self.port}/"

    @property
    def api_url(self) -> str:
        return self.url + "api/"

    def _app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self.web_api.handle)
        app.router.add_get("/socket", self.hub.handle)
        app.router.add_post("/upload/{file_id}", self._upload)
        app.router.add_post("/response/{response_id}", self._response_url)
        app.router.add_get("/files/{file_id}/{name}", self._download)
        app.router.add_get("/archives/{channel}/{pts}", self._archive)
        self.ui.register(app, index=self._index)
        return app

    async def start(self) -> None:
        if self.data_file is not None:
            restored = self.data_file.load_into(self.workspace)
            if restored:
                log.info("local slack: %d messages back from %s", restored, self.data_file.path)
            self._keeper = asyncio.create_task(self._keep(self.bus.subscribe(KEPT_EVENTS)))
        runner = web.AppRunner(self._app(), handle_signals=False, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self._requested_port)
        await site.start()
        self._runner = runner
        self.port = runner.addresses[0][1]
        log.info("local slack listening on %s", self.url)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await self.hub.close()
        self.bus.close()
        if self._keeper is not None:
            # The bus is closed, so the keeper writes what is left and ends.
            await self._keeper
            self._keeper = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> LocalSlack:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _keep(self, changes: Subscription) -> None:
        """Write the data file after changes, coalescing bursts into one write."""
        assert self.data_file is not None
        ended = False
        while not ended:
            try:
                await changes.get()
            except StopAsyncIteration:
                break
            while True:
                try:
                    await changes.get(timeout=0.05)
                except TimeoutError:
                    break
                except StopAsyncIteration:
                    ended = True
                    break
            try:
                self.data_file.save(self.workspace)
            except OSError as exc:
                log.warning("local slack: cannot write %s: %s", self.data_file.path, exc)
        with contextlib.suppress(OSError):
            self.data_file.save(self.workspace)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- observing ----------------------------------------------------------------------------

    @property
    def calls(self) -> list[Call]:
        return list(self.web_api.calls)

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.web_api.calls if c.method == method]

    @property
    def validation_failures(self) -> list[ValidationFailure]:
        return list(self.workspace.validation_failures)

    def assert_no_validation_failures(self) -> None:
        failures = self.workspace.validation_failures
        assert not failures, "Slack would have rejected: " + "; ".join(
            f"{f.source}: {', '.join(f.errors)}" for f in failures
        )

    @property
    def envelopes(self) -> list[Envelope]:
        return list(self.hub.envelopes.values())

    @property
    def connections(self) -> int:
        return len(self.hub.open_connections)

    @property
    def connections_opened(self) -> int:
        return self.hub.connections_opened

    @property
    def events(self) -> list[Event]:
        return list(self.bus.history)

    def subscribe(
        self, kinds: Iterable[str] | None = None, *, replay: bool = False
    ) -> Subscription:
        return self.bus.subscribe(kinds, replay=replay)

    async def wait_for(self, predicate: Callable[[LocalSlack], T], timeout: float = 10.0) -> T:
        """Wait until predicate(self) is truthy and return it; LookupError means "not yet"."""
        return await self.bus.wait_for(
            lambda: predicate(self), timeout, what=getattr(predicate, "__name__", "")
        )

    def fail_next(
        self,
        method: str,
        times: int = 1,
        status: int = 429,
        retry_after: int | None = 1,
        error: str | None = None,
    ) -> None:
        """Answer the next `times` calls to `method` with an HTTP `status` failure."""
        self.web_api.fail_next(
            method, times=times, status=status, retry_after=retry_after, error=error
        )

    def recover(self, method: str | None = None) -> None:
        """Drop the failures still queued for `method` (every method when None): the outage
        that `fail_next(method, times=…)` began ends now."""
        self.web_api.recover(method)

    def channel_id(self, channel: str) -> str:
        return self.workspace.channel(channel).id

    def messages(self, channel: str) -> list[dict[str, Any]]:
        """Top-level messages of a channel, oldest first (replies are in `thread`)."""
        ws = self.workspace
        return [ws.render_message(m) for m in ws.history(ws.channel(channel).id)]

    def message(self, channel: str, ts: str) -> dict[str, Any]:
        ws = self.workspace
        try:
            return ws.render_message(ws.get_message(ws.channel(channel).id, ts))
        except SlackApiError as exc:
            raise KeyError(f"{channel}/{ts}: {exc.error}") from None

    def thread(self, channel: str, ts: str) -> list[dict[str, Any]]:
        ws = self.workspace
        try:
            return [ws.render_message(m) for m in ws.replies(ws.channel(channel).id, ts)]
        except SlackApiError as exc:
            raise KeyError(f"{channel}/{ts}: {exc.error}") from None

    def ephemerals(self, user_id: str, channel: str | None = None) -> list[dict[str, Any]]:
        channel_id = self.workspace.channel(channel).id if channel else None
        return [e.to_api() for e in self.workspace.ephemerals_for(user_id, channel_id)]

    def views(self, user_id: str) -> list[dict[str, Any]]:
        """The user's open modals, bottom of the stack first."""
        return [self.workspace.render_view(r) for r in self.workspace.stack(user_id)]

    def view(self, view_id: str) -> dict[str, Any]:
        try:
            return self.workspace.render_view(self.workspace.find_view(view_id=view_id))
        except SlackApiError:
            raise KeyError(f"no open view {view_id}") from None

    def home(self, user_id: str) -> dict[str, Any]:
        return self.workspace.render_view(self.workspace.home(user_id))

    @property
    def files(self) -> list[dict[str, Any]]:
        return [self.workspace.render_file(f) for f in self.workspace.files.values()]

    def file_content(self, file_id: str) -> bytes:
        return self.workspace.files[file_id].content

    # -- socket control -----------------------------------------------------------------------

    async def disconnect_all(self, reason: str = "refresh_requested") -> int:
        return await self.hub.disconnect_all(reason)

    async def drop_connections(self) -> int:
        return await self.hub.drop_all()

    async def _request(
        self,
        kind: str,
        payload: dict[str, Any],
        *,
        accepts_response_payload: bool,
        timeout: float | None,
    ) -> Ack:
        envelope = self.hub.send(kind, payload, accepts_response_payload=accepts_response_payload)
        ack_payload = await self.hub.wait_ack(envelope, timeout or self.ack_timeout)
        return Ack(
            envelope_id=envelope.id,
            type=kind,
            payload=ack_payload,
            latency=envelope.latency or 0.0,
            deliveries=len(envelope.deliveries),
            retry_attempt=envelope.retry_attempt,
            trigger_id=payload.get("trigger_id"),
        )

    # -- what users do ------------------------------------------------------------------------

    async def slash_command(
        self,
        user_id: str,
        text: str = "",
        channel: str = "C0INFRA",
        *,
        command: str | None = None,
        timeout: float | None = None,
    ) -> Ack:
        """Type `/command text` in `channel` and press enter; returns once the app acked."""
        ws = self.workspace
        target = ws.channel(channel)
        command = command or self.command
        record, response_url = ws.issue_response_url(user_id, target.id)
        payload = slash_command_payload(
            ws,
            user_id=user_id,
            channel_id=target.id,
            command=command,
            text=text,
            response_url=response_url,
            trigger_id=ws.issue_trigger(user_id),
        )
        try:
            ack = await self._request(
                "slash_commands", payload, accepts_response_payload=True, timeout=timeout
            )
        except AckTimeout:
            ws.post_ephemeral(
                target.id,
                user_id,
                sender=SLACKBOT,
                source="slack",
                text=f'{command} failed with the error "operation_timeout"',
            )
            raise
        body = ack.payload or {}
        if body.get("text") or body.get("blocks"):
            # Slack shows an ack's message like a response_url post: ephemeral unless in_channel.
            with contextlib.suppress(SlackApiError):
                deliver_response(ws, record, body, source="ack")
        return ack

    async def click_button(
        self,
        user_id: str,
        channel: str,
        message_ts: str,
        action_id: str,
        value: str | None = None,
        *,
        block_id: str | None = None,
        timeout: float | None = None,
    ) -> Ack:
        """Click a button on a message (or on an ephemeral message the user sees)."""
        payload = self.button_payload(
            user_id, channel, message_ts, action_id, value, block_id=block_id
        )
        return await self.deliver("interactive", payload, timeout=timeout)

    def button_payload(
        self,
        user_id: str,
        channel: str,
        message_ts: str,
        action_id: str,
        value: str | None = None,
        *,
        block_id: str | None = None,
    ) -> dict[str, Any]:
        """The block_actions payload a click would send, without sending it: tests edit it
        the way a forging client could and `deliver` it."""
        ws = self.workspace
        target = ws.channel(channel)
        if user_id not in target.members:
            raise ElementNotFound(f"{user_id} cannot see {target.id}")
        rendered: dict[str, Any] | None
        try:
            message = ws.get_message(target.id, message_ts)
            blocks, thread_ts = message.blocks, message.thread_ts
            rendered = ws.render_message(message)
            is_ephemeral = False
        except SlackApiError:
            try:
                ephemeral = ws.ephemeral(user_id, target.id, message_ts)
            except SlackApiError:
                raise ElementNotFound(f"no message {message_ts} in {target.id}") from None
            # Slack sends no "message" for clicks on ephemeral messages.
            blocks, thread_ts, rendered = ephemeral.blocks, ephemeral.thread_ts, None
            is_ephemeral = True
        block, element = find_element(blocks, action_id=action_id, block_id=block_id, value=value)
        _, response_url = ws.issue_response_url(
            user_id, target.id, message_ts=message_ts, is_ephemeral=is_ephemeral
        )
        container: dict[str, Any] = {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": target.id,
            "is_ephemeral": is_ephemeral,
        }
        if thread_ts:
            container["thread_ts"] = thread_ts
        return block_actions_payload(
            ws,
            user_id=user_id,
            action=button_action(block, element),
            container=container,
            trigger_id=ws.issue_trigger(user_id),
            state_values=build_state_values(blocks, {}, {}),
            channel_id=target.id,
            message=rendered,
            response_url=response_url,
        )

    async def deliver(
        self,
        kind: str,
        payload: dict[str, Any],
        *,
        accepts_response_payload: bool = False,
        timeout: float | None = None,
    ) -> Ack:
        """Send any payload to the app over Socket Mode, as is (`interactive`,
        `slash_commands`, `events_api`): what a forging client, or Slack itself, could send."""
        return await self._request(
            kind, payload, accepts_response_payload=accepts_response_payload, timeout=timeout
        )

    def _visible_view(self, user_id: str, view_id: str) -> ViewRecord:
        stack = self.workspace.stack(user_id)
        if not stack or stack[-1].id != view_id:
            raise ViewNotOpen(f"{view_id} is not the view {user_id} is looking at")
        return stack[-1]

    async def click_view_button(
        self,
        user_id: str,
        view_id: str,
        action_id: str,
        value: str | None = None,
        *,
        block_id: str | None = None,
        timeout: float | None = None,
    ) -> Ack:
        """Click a button inside the modal the user has open."""
        ws = self.workspace
        record = self._visible_view(user_id, view_id)
        blocks = record.view["blocks"]
        block, element = find_element(blocks, action_id=action_id, block_id=block_id, value=value)
        ws.set_view_state(record, build_state_values(blocks, record.state, {}))
        payload = block_actions_payload(
            ws,
            user_id=user_id,
            action=button_action(block, element),
            container={"type": "view", "view_id": record.id},
            trigger_id=ws.issue_trigger(user_id),
            state_values=record.state,
            view=ws.render_view(record),
        )
        return await self._request(
            "interactive", payload, accepts_response_payload=False, timeout=timeout
        )

    async def submit_view(
        self,
        user_id: str,
        view_id: str,
        values: dict[str, dict[str, Any]] | None = None,
        *,
        timeout: float | None = None,
    ) -> ViewSubmissionResult:
        """Fill in inputs ({block_id: {action_id: value}}) and press the modal's submit button.

        A plain value is converted to the element's state shape (a string for text inputs, an
        option value for selects); a dict with "type" is used as the state as is. Raises
        InputRejected, without contacting the app, where Slack's client would refuse.
        """
        record = self._visible_view(user_id, view_id)
        payload = self.submission_payload(user_id, view_id, values)
        ack = await self._request(
            "interactive", payload, accepts_response_payload=True, timeout=timeout
        )
        return self._apply_view_response(record, ack)

    def submission_payload(
        self, user_id: str, view_id: str, values: dict[str, dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        """The view_submission payload pressing submit would send, without sending it (see
        `button_payload`)."""
        ws = self.workspace
        record = self._visible_view(user_id, view_id)
        blocks = record.view["blocks"]
        state = build_state_values(blocks, record.state, values or {})
        problems = client_side_errors(blocks, state)
        if problems:
            raise InputRejected(problems)
        ws.set_view_state(record, state)
        return view_submission_payload(
            ws, user_id=user_id, view=ws.render_view(record), trigger_id=ws.issue_trigger(user_id)
        )

    def _apply_view_response(self, record: ViewRecord, ack: Ack) -> ViewSubmissionResult:
        ws = self.workspace
        body = ack.payload or {}
        action = body.get("response_action")
        errors: dict[str, str] | None = None
        problems: list[str] = []
        try:
            if action is None:
                ws.close_view(record)
            elif action == "errors":
                errors = dict(body.get("errors") or {})
                inputs = {b["block_id"] for b in record.view["blocks"] if b.get("type") == "input"}
                problems = [
                    f"errors names {k!r}, which is not an input block of the view"
                    for k in errors
                    if k not in inputs
                ]
                ws.set_view_errors(record, errors)
            elif action in ("update", "push"):
                problems = view_errors(body.get("view"))
                if not problems and action == "update":
                    ws.update_view(record, body["view"])
                elif not problems:
                    ws.push_view(record.user, body["view"])
            elif action == "clear":
                ws.close_view(record, clear=True)
            else:
                problems = [f"unknown response_action {action!r}"]
        except SlackApiError as exc:
            problems = [exc.error]
        if problems:
            # Slack's client shows "We had some trouble connecting" and leaves the view as is.
            ws.record_validation_failure("view_submission ack", problems, body)
        stack = ws.stack(record.user)
        return ViewSubmissionResult(
            ack=ack,
            response_action=action,
            errors=errors,
            view=ws.render_view(stack[-1]) if stack else None,
            closed=not record.is_open,
        )

    async def close_view(
        self, user_id: str, view_id: str, *, clear: bool = False, timeout: float | None = None
    ) -> Ack | None:
        """Press Cancel (or the X when `clear`); the app hears of it only with notify_on_close."""
        ws = self.workspace
        record = self._visible_view(user_id, view_id)
        rendered = ws.render_view(record)
        ws.close_view(record, clear=clear)
        if not record.view.get("notify_on_close"):
            return None
        payload = view_closed_payload(ws, user_id=user_id, view=rendered, is_cleared=clear)
        return await self._request(
            "interactive", payload, accepts_response_payload=False, timeout=timeout
        )

    async def post_message(
        self, user_id: str, channel: str, text: str, *, thread_ts: str | None = None
    ) -> dict[str, Any]:
        """A person writes in a channel; the app hears it if subscribed (message/app_mention)."""
        ws = self.workspace
        target = ws.channel(channel)
        message = ws.post_message(target.id, user=user_id, text=text, thread_ts=thread_ts)
        event: dict[str, Any] = {
            "user": user_id,
            "text": text,
            "ts": message.ts,
            "channel": target.id,
            "event_ts": message.ts,
            "team": ws.team_id,
        }
        if message.thread_ts:
            event["thread_ts"] = message.thread_ts
        wanted = []
        if "message" in self.event_subscriptions:
            wanted.append(
                {"type": "message", **event, "channel_type": "im" if target.is_im else "channel"}
            )
        if "app_mention" in self.event_subscriptions and f"<@{ws.bot_user.id}>" in text:
            wanted.append({"type": "app_mention", **event})
        for item in wanted:
            envelope = self.hub.send(
                "events_api", events_api_payload(ws, item), accepts_response_payload=False
            )
            self._spawn(self._settle(envelope))
        return ws.render_message(message)

    async def _settle(self, envelope: Envelope) -> None:
        # Nobody waits on an event's ack, but an unacked one must not be redelivered forever.
        with contextlib.suppress(AckTimeout):
            await self.hub.wait_ack(envelope, self.ack_timeout)

    # -- HTTP surfaces besides the Web API ----------------------------------------------------

    async def _upload(self, request: web.Request) -> web.Response:
        file_id = request.match_info["file_id"]
        if request.content_type.startswith("multipart/"):
            form = await request.post()
            field = form.get("file")
            content = field.file.read() if isinstance(field, web.FileField) else b""
        else:
            content = await request.read()
        try:
            self.workspace.store_upload(file_id, content)
        except SlackApiError as exc:
            return web.Response(status=exc.status, text=exc.error)
        return web.Response(text=f"OK - {len(content)}", content_type="text/plain")

    async def _response_url(self, request: web.Request) -> web.Response:
        response_id = request.match_info["response_id"]
        try:
            if request.content_type == "application/json":
                body = await request.json()
            else:
                body = json.loads((await request.post()).get("payload") or "{}")
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = None
        status, text = 200, "ok"
        try:
            if not isinstance(body, dict):
                raise SlackApiError("invalid_payload", status=400)
            target = self.workspace.use_response_url(response_id)
            deliver_response(self.workspace, target, body, source="response_url")
        except SlackApiError as exc:
            status, text = exc.status if exc.status != 200 else 400, exc.error
        self.web_api.record(
            Call(
                "response_url",
                body if isinstance(body, dict) else {},
                status,
                {"ok": status == 200, **({"error": text} if status != 200 else {})},
                None,
                time.time(),
            )
        )
        return web.Response(status=status, text=text, content_type="text/plain")

    async def _download(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.bot_token}":
            return web.Response(status=403, text="forbidden")
        record = self.workspace.files.get(request.match_info["file_id"])
        if record is None:
            return web.Response(status=404, text="file_not_found")
        return web.Response(body=record.content, content_type=record.mimetype)

    async def _archive(self, request: web.Request) -> web.Response:
        digits = request.match_info["pts"].removeprefix("p")
        ts = f"{digits[:-6]}.{digits[-6:]}"
        try:
            message = self.message(request.match_info["channel"], ts)
        except KeyError:
            return web.json_response({"ok": False, "error": "message_not_found"}, status=404)
        return web.json_response(
            {"ok": True, "channel": request.match_info["channel"], "message": message}
        )

    async def _index(self, request: web.Request) -> web.Response:
        ws = self.workspace
        return web.json_response(
            {
                "team": {"id": ws.team_id, "domain": ws.team_domain},
                "app": {"id": ws.app_id, "bot_user_id": ws.bot_user.id, "bot_id": ws.bot_id},
                "api_url": self.api_url,
                "users": [u.to_api(ws.team_id) for u in ws.users.values()],
                "channels": [c.to_api(member=ws.bot_user.id) for c in ws.channels.values()],
                "methods": supported_methods(),
                "connections": self.connections,
            }
        )
