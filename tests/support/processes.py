"""The real processes tests start and talk to: the `provision` worker and CLIs (Stack), the
temporal CLI, subprocess runs, polling with a deadline, payload inspection."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import socket
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import pytest

from provision.client import TemporalUnreachable
from provision.executables import temporal_cli

REPO_ROOT = Path(__file__).resolve().parents[2]


VENV_BIN = Path(sys.executable).parent


def temporal_cli_path() -> str:
    try:
        return temporal_cli()
    except TemporalUnreachable as exc:
        pytest.fail(str(exc))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def payload_parts(node: object) -> list[bytes]:
    """Every payload's data and metadata values, base64-decoded, in a history's JSON form
    (`temporal workflow show --output json` or a recorded history)."""
    found: list[bytes] = []
    if isinstance(node, dict):
        if isinstance(node.get("data"), str) and isinstance(node.get("metadata"), dict):
            found.append(base64.b64decode(node["data"]))
            found += [base64.b64decode(v) for v in node["metadata"].values() if isinstance(v, str)]
        for value in node.values():
            found += payload_parts(value)
    elif isinstance(node, list):
        for item in node:
            found += payload_parts(item)
    return found


def payload_texts(node: object) -> list[str]:
    return [part.decode(errors="replace") for part in payload_parts(node)]


# The SDK waits 5 s for the dev server by default; on a loaded machine one slow start would turn
# into an error in every test that uses the server.
DEV_SERVER_STARTUP_TIMEOUT = timedelta(seconds=120)


class Stack:
    """A real `provision worker` process plus helpers to run CLIs against the same server."""

    def __init__(self, address: str, data_dir: Path, task_queue: str):
        self.address = address
        self.data_dir = data_dir
        self.task_queue = task_queue
        self.env = {
            **{
                k: v
                for k, v in os.environ.items()
                if not k.startswith(("TEMPORAL_", "PROVISION_", "SLACK_"))
            },
            "TEMPORAL_ADDRESS": address,
            "TEMPORAL_TASK_QUEUE": task_queue,
            "PROVISION_DATA_DIR": str(data_dir),
            "PYTHONUNBUFFERED": "1",
        }
        self.worker: asyncio.subprocess.Process | None = None
        self.worker_log = data_dir / "worker.log"

    async def start_worker(
        self, extra_env: dict[str, str] | None = None, args: Sequence[str] = ()
    ) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.worker_log.open("ab")
        self.worker = await asyncio.create_subprocess_exec(
            str(VENV_BIN / "provision"),
            "worker",
            *args,
            env={**self.env, **(extra_env or {})},
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
        )
        log.close()
        await self.wait_for_log("polling task queue", timeout=60)

    async def wait_for_log(self, needle: str, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            if self.worker_log.exists() and needle in self.worker_log.read_text(errors="replace"):
                return
            if self.worker and self.worker.returncode is not None:
                raise AssertionError(f"worker exited:\n{self.worker_log.read_text()[-3000:]}")
            await asyncio.sleep(0.1)
        raise AssertionError(f"worker never logged {needle!r}:\n{self.worker_log.read_text()}")

    async def stop_worker(self) -> int | None:
        if self.worker and self.worker.returncode is None:
            self.worker.send_signal(signal.SIGTERM)
            await asyncio.wait_for(self.worker.wait(), 30)
        return self.worker.returncode if self.worker else None

    async def run(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 120
    ) -> CompletedRun:
        return await run_process(
            [str(VENV_BIN / "provision"), *args], env={**self.env, **(env or {})}, timeout=timeout
        )

    async def temporal(self, *args: str, timeout: float = 60) -> CompletedRun:
        return await run_process(
            [temporal_cli_path(), *args, "--address", self.address], env=self.env, timeout=timeout
        )

    async def namespace_exists(self, name: str) -> bool:
        result = await self.temporal("operator", "namespace", "describe", "--namespace", name)
        if result.returncode == 0:
            return True
        assert "not found" in result.output.lower(), result.output
        return False


class CompletedRun:
    def __init__(self, returncode: int, stdout: str, stderr: str):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def json(self) -> object:
        return json.loads(self.stdout)

    def __repr__(self) -> str:
        return f"<exit {self.returncode}\nstdout: {self.stdout}\nstderr: {self.stderr}>"


async def run_process(argv: list[str], env: dict[str, str], timeout: float = 120) -> CompletedRun:
    proc = await asyncio.create_subprocess_exec(
        *argv,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    return CompletedRun(proc.returncode or 0, out.decode(), err.decode())


async def wait_until(predicate, timeout: float = 60.0, interval: float = 0.1, what: str = ""):
    """Await an async predicate until it returns a truthy value, or fail at the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last = None
    while loop.time() < deadline:
        last = await predicate()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s: {what} (last: {last!r})")
