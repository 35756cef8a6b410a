"""The bot's small HTTP side: /healthz (is the Socket Mode connection up?) and /metrics."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from bot.metrics import BotMetrics


def split_host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


class HealthServer:
    def __init__(
        self, address: str, *, connected: Callable[[], Awaitable[bool]], metrics: BotMetrics
    ) -> None:
        self._host, self._port = split_host_port(address)
        self._connected = connected
        self._metrics = metrics
        self._runner: web.AppRunner | None = None
        self._started = time.monotonic()
        self.port: int | None = None

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}"

    async def _healthz(self, request: web.Request) -> web.Response:
        connected = await self._connected()
        body = {
            "ok": connected,
            "socket_mode": "connected" if connected else "disconnected",
            "uptime_seconds": round(time.monotonic() - self._started, 1),
        }
        return web.json_response(body, status=200 if connected else 503)

    async def _metrics_page(self, request: web.Request) -> web.Response:
        return web.Response(
            body=self._metrics.exposition(),
            headers={"Content-Type": self._metrics.content_type},
        )

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics_page)
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self._host, self._port)
        await site.start()
        self._runner = runner
        self.port = runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
