"""The local workspace in a browser: a Slack-like channel page and the HTTP routes it uses.

Every action of the page goes through LocalSlack's driver API (`slash_command`, `click_button`,
`submit_view`, `close_view`), so a person in the browser does exactly what the tests do, and the
page learns about changes from LocalSlack's event stream (Server-Sent Events).
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from .driver import WorkspaceDriver
from .errors import AckTimeout, ElementNotFound, InputRejected, SlackApiError, ViewNotOpen
from .events import Event
from .hints import CommandHints
from .model import ts_key

log = logging.getLogger(__name__)

SLACKBOT = "USLACKBOT"
# An open page gets a comment line this often, so a dead connection is noticed and closed.
SSE_KEEPALIVE_SECONDS = 15.0
MAX_UI_BODY = 256 * 1024
VALIDATION_FAILURES_SHOWN = 5
_STATIC_TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
}
# The page's own code is the only script it runs; message content can never add any.
_PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data: http: https:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
# Uploaded files are shown as text (or as the image they are), never run as a page.
_FILE_CSP = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox"
_IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
_TEXT_LIKE = re.compile(r"^(text/|application/(json|xml|x-yaml|yaml|javascript|x-sh|toml))")
_LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


class UiRequestError(Exception):
    def __init__(self, status: int, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.status, self.error, self.extra = status, error, extra


def _web_dir() -> Any:
    return resources.files(__package__).joinpath("web")


def _user_json(slack: WorkspaceDriver, user_id: str, notes: dict[str, str]) -> dict[str, Any]:
    user = slack.workspace.users[user_id]
    return {
        "id": user.id,
        "name": user.name,
        "real_name": user.real_name,
        "is_bot": user.is_bot,
        "note": notes.get(user.id, ""),
    }


class LocalSlackUI:
    """Routes of the browser client. Whoever hosts the workspace describes its app: `hints`
    (the slash commands' completions) and `user_notes` (a line under each person's name)."""

    def __init__(
        self,
        slack: WorkspaceDriver,
        *,
        hints: list[CommandHints] | None = None,
        user_notes: dict[str, str] | None = None,
        default_user: str | None = None,
        title: str = "localslack",
    ) -> None:
        self.slack = slack
        self.hints: list[CommandHints] = list(hints or [])
        self.user_notes: dict[str, str] = dict(user_notes or {})
        self.title = title
        # The user a new page acts as; the page's switcher changes it per tab.
        self.default_user = default_user

    def register(
        self, app: web.Application, index: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> None:
        async def root(request: web.Request) -> web.StreamResponse:
            # Browsers get the page; API clients asking for / keep getting the JSON summary.
            if "text/html" in request.headers.get("Accept", ""):
                return self._page()
            return await index(request)

        app.middlewares.append(self._host_guard)
        app.router.add_get("/", root)
        app.router.add_get("/ui/static/{name}", self._static)
        app.router.add_get("/ui/config", self._config)
        app.router.add_get("/ui/state", self._state)
        app.router.add_get("/ui/events", self._events)
        app.router.add_get("/ui/files/{file_id}", self._file)
        app.router.add_post("/ui/command", self._guarded(self._command))
        app.router.add_post("/ui/click", self._guarded(self._click))
        app.router.add_post("/ui/view/click", self._guarded(self._view_click))
        app.router.add_post("/ui/view/submit", self._guarded(self._view_submit))
        app.router.add_post("/ui/view/close", self._guarded(self._view_close))
        app.router.add_post("/ui/ephemeral/dismiss", self._guarded(self._dismiss))

    @web.middleware
    async def _host_guard(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        # A page on another site that re-points its own name at 127.0.0.1 (DNS rebinding) must
        # not read the workspace: on a loopback address only loopback names are served.
        if request.path == "/" or request.path.startswith("/ui/"):
            host = (request.host or "").rsplit(":", 1)[0]
            if self.slack.host in _LOOPBACK_NAMES and host not in _LOOPBACK_NAMES:
                return web.json_response({"ok": False, "error": "forbidden_host"}, status=403)
        return await handler(request)

    # -- page and static files ----------------------------------------------------------------

    def _page(self) -> web.Response:
        body = _web_dir().joinpath("index.html").read_bytes()
        return web.Response(
            body=body,
            content_type="text/html",
            charset="utf-8",
            headers={"Content-Security-Policy": _PAGE_CSP, "Cache-Control": "no-cache"},
        )

    async def _static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        suffix = name[name.rfind(".") :] if "." in name else ""
        # Only plain file names of known types: no path can climb out of web/.
        if not re.fullmatch(r"[a-z0-9_-]+\.[a-z]+", name) or suffix not in _STATIC_TYPES:
            raise web.HTTPNotFound()
        resource = _web_dir().joinpath(name)
        if not resource.is_file():
            raise web.HTTPNotFound()
        return web.Response(
            body=resource.read_bytes(),
            content_type=_STATIC_TYPES[suffix],
            charset="utf-8",
            headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
        )

    # -- reading ------------------------------------------------------------------------------

    async def _config(self, request: web.Request) -> web.Response:
        ws = self.slack.workspace
        humans = [u for u in ws.users.values() if not u.is_bot]
        default = self.default_user or (humans[0].id if humans else None)
        return web.json_response(
            {
                "title": self.title,
                "team": {"id": ws.team_id, "domain": ws.team_domain},
                "bot": _user_json(self.slack, ws.bot_user.id, self.user_notes),
                "users": [_user_json(self.slack, u.id, self.user_notes) for u in ws.users.values()],
                "default_user": default,
                "channels": [
                    {"id": c.id, "name": c.name} for c in ws.channels.values() if not c.is_im
                ],
                "commands": [h.to_json() for h in self.hints]
                or [{"command": self.slack.command, "description": "", "first": [], "options": {}}],
            }
        )

    def _user_param(self, request: web.Request) -> str:
        user = request.query.get("user", "")
        if user not in self.slack.workspace.users or user == self.slack.workspace.bot_user.id:
            raise UiRequestError(400, "user_not_found")
        return user

    async def _state(self, request: web.Request) -> web.Response:
        try:
            user = self._user_param(request)
            return web.json_response(self.state(user, request.query.get("channel", "infra")))
        except UiRequestError as exc:
            return web.json_response({"ok": False, "error": exc.error}, status=exc.status)
        except SlackApiError as exc:
            return web.json_response({"ok": False, "error": exc.error}, status=404)

    def state(self, user: str, channel: str = "infra") -> dict[str, Any]:
        """What `user` sees: the channel (messages with their threads), their ephemerals there,
        their open modals (top last, with inline errors), and whether the app is connected."""
        ws = self.slack.workspace
        target = ws.channel(channel)
        if user not in target.members:
            raise SlackApiError("channel_not_found")
        messages = []
        for message in ws.history(target.id):
            rendered = ws.render_message(message)
            if message.reply_ts:
                rendered["replies"] = [
                    ws.render_message(reply) for reply in ws.replies(target.id, message.ts)[1:]
                ]
            messages.append(rendered)
        ephemerals = sorted(
            (e.to_api() for e in ws.ephemerals_for(user, target.id)), key=lambda e: ts_key(e["ts"])
        )
        views = []
        for record in ws.stack(user):
            view = ws.render_view(record)
            view["errors"] = dict(record.errors)
            views.append(view)
        return {
            "ok": True,
            "user": user,
            "channel": {"id": target.id, "name": target.name, "topic": target.topic},
            "messages": messages,
            "ephemerals": ephemerals,
            "views": views,
            "app": {"connected": self.slack.connections > 0},
            "validation_failures": [
                {"source": f.source, "errors": f.errors}
                for f in ws.validation_failures[-VALIDATION_FAILURES_SHOWN:]
            ],
        }

    async def _file(self, request: web.Request) -> web.Response:
        record = self.slack.workspace.files.get(request.match_info["file_id"])
        if record is None:
            raise web.HTTPNotFound(text="file_not_found")
        headers = {
            "Content-Security-Policy": _FILE_CSP,
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-cache",
        }
        if record.mimetype in _IMAGE_TYPES:
            return web.Response(body=record.content, content_type=record.mimetype, headers=headers)
        if _TEXT_LIKE.match(record.mimetype) or record.snippet_type:
            # Whatever the file claims to be, it is shown as text: never as HTML on this origin.
            return web.Response(
                body=record.content, content_type="text/plain", charset="utf-8", headers=headers
            )
        headers["Content-Disposition"] = "attachment"
        return web.Response(
            body=record.content, content_type="application/octet-stream", headers=headers
        )

    def _relevant(self, event: Event, user: str) -> bool:
        kind = event.kind
        if kind.startswith(("ephemeral.", "view.", "home.")):
            return event.data.get("user") == user
        return kind.startswith(("message.", "file.", "connection.", "validation."))

    async def _events(self, request: web.Request) -> web.StreamResponse:
        """Server-Sent Events: one `change` per state change this user can see; the page then
        reads /ui/state again (cheap, and it can never drift from the server)."""
        try:
            user = self._user_param(request)
        except UiRequestError as exc:
            return web.json_response({"ok": False, "error": exc.error}, status=exc.status)
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)
        log.debug("a page of %s follows the workspace", user)
        subscription = self.slack.subscribe()
        try:
            await response.write(b"retry: 1000\nevent: hello\ndata: {}\n\n")
            while True:
                try:
                    event = await subscription.get(timeout=SSE_KEEPALIVE_SECONDS)
                except TimeoutError:
                    await response.write(b": keepalive\n\n")
                    continue
                except StopAsyncIteration:
                    break
                if self._relevant(event, user):
                    data = json.dumps({"seq": event.seq, "kind": event.kind})
                    await response.write(f"event: change\ndata: {data}\n\n".encode())
        except ConnectionResetError:
            # The tab closed: nothing left to tell.
            pass
        finally:
            subscription.close()
        return response

    # -- acting -------------------------------------------------------------------------------

    def _guarded(
        self, handler: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        """JSON in, JSON out; refuses requests another site's page could forge (CSRF, DNS
        rebinding), and turns the driver's exceptions into what the page shows."""

        async def route(request: web.Request) -> web.Response:
            try:
                self._check_origin(request)
                if request.content_type != "application/json":
                    raise UiRequestError(415, "json_required")
                if (request.content_length or 0) > MAX_UI_BODY:
                    raise UiRequestError(413, "too_large")
                try:
                    body = await request.json()
                except (json.JSONDecodeError, UnicodeDecodeError):
                    raise UiRequestError(400, "invalid_json") from None
                if not isinstance(body, dict):
                    raise UiRequestError(400, "invalid_json")
                user = body.get("user")
                ws = self.slack.workspace
                if not isinstance(user, str) or user not in ws.users or user == ws.bot_user.id:
                    raise UiRequestError(400, "user_not_found")
                return web.json_response({"ok": True, **await handler(body)})
            except UiRequestError as exc:
                return web.json_response(
                    {"ok": False, "error": exc.error, **exc.extra}, status=exc.status
                )
            except InputRejected as exc:
                return web.json_response(
                    {"ok": False, "error": "input_rejected", "errors": exc.errors}, status=422
                )
            except (ElementNotFound, ViewNotOpen) as exc:
                return web.json_response(
                    {"ok": False, "error": "not_on_screen", "detail": str(exc)}, status=409
                )
            except AckTimeout as exc:
                return web.json_response(
                    {"ok": False, "error": "app_did_not_respond", "detail": str(exc)}, status=504
                )
            except SlackApiError as exc:
                return web.json_response({"ok": False, "error": exc.error}, status=400)

        return route

    def _check_origin(self, request: web.Request) -> None:
        origin = request.headers.get("Origin")
        if origin is not None and urlsplit(origin).netloc != request.host:
            raise UiRequestError(403, "forbidden_origin")

    @staticmethod
    def _text(body: dict[str, Any], key: str, *, required: bool = True) -> str:
        value = body.get(key)
        if value is None and not required:
            return ""
        if not isinstance(value, str) or (required and not value):
            raise UiRequestError(400, "invalid_arguments", detail=f"{key} must be a string")
        return value

    async def _command(self, body: dict[str, Any]) -> dict[str, Any]:
        user, text = body["user"], self._text(body, "text").strip()
        channel = self._text(body, "channel", required=False) or "infra"
        thread_ts = body.get("thread_ts") if isinstance(body.get("thread_ts"), str) else None
        ws = self.slack.workspace
        if not text:
            raise UiRequestError(400, "no_text")
        if not text.startswith("/"):
            message = await self.slack.post_message(user, channel, text, thread_ts=thread_ts)
            return {"posted": message["ts"]}
        command, _, args = text.partition(" ")
        known = {h.command for h in self.hints} | {self.slack.command}
        if command not in known:
            # Slack's client answers this itself; the app never hears of it.
            shown = command.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            ws.post_ephemeral(
                ws.channel(channel).id,
                user,
                sender=SLACKBOT,
                source="slack",
                text=f"`{shown}` is not a valid command. In Slack, all messages that start "
                f'with the "/" character are interpreted as commands.',
            )
            return {"command": command, "known": False}
        ack = await self.slack.slash_command(user, args.strip(), channel, command=command)
        return {
            "command": command,
            "known": True,
            "envelope_id": ack.envelope_id,
            "latency": ack.latency,
        }

    async def _click(self, body: dict[str, Any]) -> dict[str, Any]:
        ack = await self.slack.click_button(
            body["user"],
            self._text(body, "channel"),
            self._text(body, "ts"),
            self._text(body, "action_id"),
            body.get("value") if isinstance(body.get("value"), str) else None,
            block_id=body.get("block_id") if isinstance(body.get("block_id"), str) else None,
        )
        return {"envelope_id": ack.envelope_id, "latency": ack.latency}

    async def _view_click(self, body: dict[str, Any]) -> dict[str, Any]:
        ack = await self.slack.click_view_button(
            body["user"],
            self._text(body, "view_id"),
            self._text(body, "action_id"),
            body.get("value") if isinstance(body.get("value"), str) else None,
            block_id=body.get("block_id") if isinstance(body.get("block_id"), str) else None,
        )
        return {"envelope_id": ack.envelope_id, "latency": ack.latency}

    async def _view_submit(self, body: dict[str, Any]) -> dict[str, Any]:
        values = body.get("values")
        values = {} if values is None else values
        if not isinstance(values, dict) or not all(isinstance(v, dict) for v in values.values()):
            raise UiRequestError(400, "invalid_arguments", detail="values: {block_id: {...}}")
        result = await self.slack.submit_view(body["user"], self._text(body, "view_id"), values)
        return {
            "response_action": result.response_action,
            "errors": result.errors,
            "closed": result.closed,
        }

    async def _view_close(self, body: dict[str, Any]) -> dict[str, Any]:
        await self.slack.close_view(
            body["user"], self._text(body, "view_id"), clear=bool(body.get("clear"))
        )
        return {}

    async def _dismiss(self, body: dict[str, Any]) -> dict[str, Any]:
        ws = self.slack.workspace
        channel = ws.channel(self._text(body, "channel"))
        with contextlib.suppress(SlackApiError):
            # Dismissing what is already gone is what a second click does: fine.
            ws.delete_ephemeral(ws.ephemeral(body["user"], channel.id, self._text(body, "ts")))
        return {}
