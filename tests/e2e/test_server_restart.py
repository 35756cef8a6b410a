"""A dev-server restart while a run awaits approval: the decision sent after it still applies.

The test owns its dev server (free ports, a SQLite file of its own, our search attributes), a
real `provision worker` process that rides out the outage, and the `provision` CLI.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import pytest

from provision.dev_server import DevServer, port_open
from tests.support.processes import DEV_SERVER_STARTUP_TIMEOUT, Stack, free_port, wait_until

pytestmark = pytest.mark.e2e

WORKSPACE = "restart-human-in-the-loop-update"
WORKFLOW_ID = f"provision-{WORKSPACE}"


async def status_of(stack: Stack) -> dict | None:
    shown = await stack.run("status", WORKSPACE, "--json")
    return shown.json() if shown.returncode == 0 else None


async def test_a_decision_after_a_dev_server_restart_still_applies(tmp_path: Path) -> None:
    port, ui_port = free_port(), free_port()

    def dev_server() -> DevServer:
        # The same database file and ports each time: a restart, not a new server.
        return DevServer(
            host="127.0.0.1",
            port=port,
            ui_port=ui_port,
            db_file=tmp_path / "t.db",
            log_file=tmp_path / "dev-server.log",
        )

    startup = DEV_SERVER_STARTUP_TIMEOUT.total_seconds()
    servers = [dev_server()]
    stack = Stack(f"127.0.0.1:{port}", tmp_path / "data", f"tq-{uuid.uuid4()}")
    try:
        servers[0].start()
        await servers[0].wait_ready(timeout=startup)
        await stack.start_worker()
        started = await stack.run("run", "human-in-the-loop-update", "--prefix", "restart")
        assert started.returncode == 0, started

        async def awaiting() -> bool:
            status = await status_of(stack)
            return status is not None and status["status"] == "awaiting_approval"

        await wait_until(awaiting, timeout=120, what="awaiting_approval")

        # SIGTERM, and wait for it to exit; then the same database on the same port.
        stopped = time.monotonic()
        await asyncio.to_thread(servers[0].stop)
        assert servers[0].process is not None and servers[0].process.poll() is not None
        assert not port_open("127.0.0.1", port)
        servers.append(dev_server())
        servers[1].start()
        await servers[1].wait_ready(timeout=startup)
        print(f"\ndev server back after {time.monotonic() - stopped:.1f} s")

        # The run survived, still waiting; the worker reconnected by itself.
        waiting = await status_of(stack)
        assert waiting is not None and waiting["status"] == "awaiting_approval", waiting
        approved = await stack.run("approve", WORKFLOW_ID, "--reason", "after a server restart")
        assert approved.returncode == 0, approved

        async def applied() -> dict | None:
            status = await status_of(stack)
            return status if status is not None and status["status"] == "applied" else None

        final = await wait_until(applied, timeout=120, what="applied after the restart")
        assert [d["reason"] for d in final["decisions"]] == ["after a server restart"]
        assert final["outputs"]["namespace_name"] == WORKSPACE
        assert await stack.namespace_exists(WORKSPACE)
    finally:
        await stack.stop_worker()
        for server in servers:
            await asyncio.to_thread(server.stop)
