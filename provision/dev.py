"""The local stack (`provision dev`): the dev server, a worker, the codec server and the bot (on a
local Slack workspace unless Slack tokens are set) in one process, stopped together."""

from __future__ import annotations

import logging
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from provision import local_stack
from provision.client import build_runtime, connect
from provision.codec_main import codec_app_for, ui_origins
from provision.dev_server import DevServer, port_open, split_address
from provision.executables import command, second_terminal_setup
from provision.search_attributes import ensure_search_attributes
from provision.settings import ConfigurationError, Settings, WorkerRole
from provision.signals import stop_requested
from workflows.contracts import QUERY_STATUS, workflow_id_for

if TYPE_CHECKING:
    from bot.app import BotHandle

    # Only provision.dev_workspace imports the local Slack package (an import-linter contract).
    from provision.dev_workspace import LocalSlack

log = logging.getLogger(__name__)


def dev_settings(settings: Settings, data_dir: Path) -> Settings:
    """Local-stack defaults: with encryption on and no key, a key file under the data dir."""
    if settings.encrypt_payloads and not (settings.codec_keys or settings.codec_key_file):
        from codec.keys import write_new_key_file
        from provision.client import DEFAULT_KEY_FILE_NAME

        key_file = data_dir / DEFAULT_KEY_FILE_NAME
        write_new_key_file(key_file)
        print(f"Codec:         encryption key file {key_file} (mode 0600)")
        return settings.model_copy(update={"codec_key_file": key_file})
    return settings


def needs_codec(settings: Settings) -> bool:
    """Whether the UI needs the codec server: only encoded payloads need decoding."""
    return settings.encrypt_payloads or settings.compress_payloads


def ready_banner(settings: Settings, codec_endpoint: str | None) -> list[str]:
    """What to paste into a second terminal: each line works there as printed (the stack's codec
    settings reach it through the data folder, see provision/local_stack.py)."""
    exports = {}
    if "data_dir" in settings.model_fields_set:
        exports["PROVISION_DATA_DIR"] = str(settings.data_dir)
    if "temporal_address" in settings.model_fields_set:
        # The temporal CLI reads it too.
        exports["TEMPORAL_ADDRESS"] = settings.temporal_address
    setup = second_terminal_setup(exports, settings.data_dir)
    on_path = bool(setup) and setup[-1].startswith("export PATH=")
    provision_cli = "provision" if on_path else command("provision")
    temporal = "temporal" if on_path else command("temporal")
    workflow_id = workflow_id_for("demo-happy-path")
    query = f"{temporal} workflow query --workflow-id {workflow_id} --type {QUERY_STATUS}"
    if codec_endpoint:
        query += f" --codec-endpoint {codec_endpoint}"
    indent = " " * 15
    return [
        "Ready. In a second terminal, paste:",
        *(indent + line for line in setup),
        f"{indent}{provision_cli} run happy-path --prefix demo --wait",
        f"{indent}{query}",
    ]


async def run_dev(
    settings: Settings, on_ready: Callable[[Settings], Awaitable[None]] | None = None
) -> int:
    """Start what is missing of the local stack, print where it is, stop it all on a signal.

    `on_ready` gets the final settings (local Slack's included) once Temporal answers."""
    from codec.server import run_codec_server
    from provision.bot_main import start_bot
    from provision.dev_workspace import DATA_FILE_NAME, slack_banner, start_local_slack
    from provision.worker import build_worker

    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    settings = dev_settings(settings, data_dir)
    codec_app = codec_app_for(settings, ui_origins(settings, settings.dev_ui_port))
    codec_url = f"http://127.0.0.1:{settings.codec_port}"
    codec_endpoint = f"{codec_url}/encryption_codec" if needs_codec(settings) else None
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
    stop = stop_requested()
    try:
        if not settings.slack_configured:
            local_slack, settings = await start_local_slack(
                settings, data_file=data_dir / DATA_FILE_NAME
            )
        if port_open(bind, port):
            print(f"Temporal: using the server already answering at {settings.temporal_address}")
        else:
            server = DevServer(
                host=bind,
                port=port,
                ui_port=settings.dev_ui_port,
                db_file=data_dir / "temporal.db",
                log_file=data_dir / "temporal-dev-server.log",
                codec_endpoint=codec_endpoint,
            )
            print(f"Temporal: starting the dev server on {bind}:{port} (data {server.db_file})")
            server.start()
            await server.wait_ready()
        client = await connect(settings, runtime=runtime)
        added = await ensure_search_attributes(client)
        if added:
            print(f"Temporal: registered search attributes {', '.join(added)}")
        worker = build_worker(client, settings, role=WorkerRole.ALL)
        if on_ready is not None:
            await on_ready(settings)
        bot = await start_bot(settings, client)
        codec_runner = await run_codec_server(codec_app, "127.0.0.1", settings.codec_port)
        local_stack.announce(
            data_dir,
            temporal_address=settings.temporal_address,
            encrypt=settings.encrypt_payloads,
            compress=settings.compress_payloads,
        )
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
                f"{'on' if settings.encrypt_payloads else 'off'}"
                + ("; the Temporal UI decodes through it)" if needs_codec(settings) else ")")
            )
            print(slack_banner(local_slack, settings))
            print("\n".join(ready_banner(settings, codec_endpoint)))
            print("Stop:          Ctrl-C")
            sys.stdout.flush()
            await stop.wait()
            print("stopping…")
        await codec_runner.cleanup()
    finally:
        local_stack.withdraw(data_dir)
        if bot:
            await bot.stop()
        if local_slack:
            await local_slack.stop()
        if server:
            server.stop()
    return 0
