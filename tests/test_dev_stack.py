"""`provision dev`: the whole local stack from nothing, used through the CLI, stopped by SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import uuid
from pathlib import Path

import pytest

from provision.dev_server import port_open
from tests.conftest import VENV_BIN, Stack, free_port, payload_texts, temporal_cli_path

pytestmark = pytest.mark.e2e


async def read_until(proc: asyncio.subprocess.Process, needle: str, timeout: float) -> str:
    """Collect the process's output until a line contains `needle` (or fail at the deadline)."""
    assert proc.stdout is not None
    seen: list[str] = []

    async def scan() -> str:
        while True:
            line = await proc.stdout.readline()
            if not line:
                raise AssertionError("provision dev exited early:\n" + "".join(seen))
            seen.append(line.decode(errors="replace"))
            if needle in seen[-1]:
                return "".join(seen)

    try:
        return await asyncio.wait_for(scan(), timeout)
    except TimeoutError:
        raise AssertionError(f"no {needle!r} within {timeout}s:\n" + "".join(seen)) from None


async def test_dev_starts_everything_and_stops_it(tmp_path: Path) -> None:
    grpc_port, ui_port, codec_port = free_port(), free_port(), free_port()
    address = f"127.0.0.1:{grpc_port}"
    data_dir = tmp_path / "data"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "PROVISION_"))},
        "TEMPORAL_ADDRESS": address,
        "PROVISION_DATA_DIR": str(data_dir),
        "PROVISION_DEV_UI_PORT": str(ui_port),
        "PROVISION_CODEC_PORT": str(codec_port),
        "PROVISION_LOCAL_SLACK_PORT": str(free_port()),
        "PROVISION_BOT_HEALTH_ADDRESS": f"127.0.0.1:{free_port()}",
        "ENCRYPT_PAYLOADS": "true",
        "PYTHONUNBUFFERED": "1",
    }
    dev = await asyncio.create_subprocess_exec(
        str(VENV_BIN / "provision"),
        "dev",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        banner = await read_until(dev, "Ready.", timeout=90)
        assert f"http://localhost:{ui_port}" in banner
        assert address in banner
        assert port_open("127.0.0.1", ui_port), "the Temporal UI is not listening"
        assert (data_dir / "temporal.db").exists()
        assert (data_dir / "terraform" / "cli.tfrc").exists()
        # Encryption on with no key configured: dev wrote one, readable by its owner only.
        key_file = data_dir / "codec.keys"
        assert key_file.stat().st_mode & 0o777 == 0o600
        assert f"http://127.0.0.1:{codec_port}/encryption_codec" in banner

        stack = Stack(address, data_dir, "provision-infra")
        stack.env.update({"ENCRYPT_PAYLOADS": "true", "PROVISION_CODEC_KEY_FILE": str(key_file)})
        run = await stack.run("run", "happy-path", "--prefix", "dev", "--wait", "--json")
        assert run.returncode == 0, run
        workflow_id = run.json()["workflow_id"]
        sealed = await stack.temporal(
            "workflow", "show", "--workflow-id", workflow_id, "--output", "json"
        )
        assert "binary/encrypted" in json.dumps(payload_texts(json.loads(sealed.stdout)))
        assert "dev-happy-path" not in "".join(payload_texts(json.loads(sealed.stdout)))
        opened = await stack.temporal(
            "workflow",
            "show",
            "--workflow-id",
            workflow_id,
            "--output",
            "json",
            "--codec-endpoint",
            f"http://127.0.0.1:{codec_port}/encryption_codec",
        )
        assert "dev-happy-path" in "".join(payload_texts(json.loads(opened.stdout)))
        assert run.json()["status"] == "applied"
        assert await stack.namespace_exists("dev-happy-path")
        # Search attributes were registered by `provision dev`: visibility queries work.
        listed = await stack.run("list", "--status", "applied", "--json")
        assert [r["scenario"] for r in listed.json()] == ["happy-path"]
    finally:
        if dev.returncode is None:
            dev.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(dev.wait(), 60)
    assert code == 0
    assert not port_open("127.0.0.1", grpc_port), "the dev server outlived `provision dev`"
    assert not port_open("127.0.0.1", ui_port)


async def test_dev_uses_a_server_that_already_answers(
    temporal_address: str, tmp_path: Path
) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "PROVISION_"))},
        "TEMPORAL_ADDRESS": temporal_address,
        "TEMPORAL_TASK_QUEUE": f"tq-{uuid.uuid4()}",
        "PROVISION_CODEC_PORT": str(free_port()),
        "PROVISION_LOCAL_SLACK_PORT": str(free_port()),
        "PROVISION_BOT_HEALTH_ADDRESS": f"127.0.0.1:{free_port()}",
        "PROVISION_DATA_DIR": str(tmp_path / "data"),
        "PYTHONUNBUFFERED": "1",
    }
    dev = await asyncio.create_subprocess_exec(
        str(VENV_BIN / "provision"),
        "dev",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        banner = await read_until(dev, "Ready.", timeout=60)
        assert "using the server already answering" in banner
        assert not (tmp_path / "data" / "temporal.db").exists()
    finally:
        dev.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(dev.wait(), 60) == 0
    # The shared server is still there: `provision dev` stops only what it started.
    proc = await asyncio.create_subprocess_exec(
        temporal_cli_path(),
        "operator",
        "namespace",
        "describe",
        "--namespace",
        "default",
        "--address",
        temporal_address,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert await proc.wait() == 0


async def test_search_attributes_are_registered_where_missing(temporal_env) -> None:
    from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
    from temporalio.client import Client

    from provision.search_attributes import ensure_search_attributes

    namespace = f"sa-{uuid.uuid4().hex[:8]}"
    address = temporal_env.client.service_client.config.target_host
    created = await asyncio.create_subprocess_exec(
        temporal_cli_path(),
        "operator",
        "namespace",
        "create",
        "--namespace",
        namespace,
        "--address",
        address,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert await created.wait() == 0
    client = await Client.connect(address, namespace=namespace)
    added = await ensure_search_attributes(client)
    assert added == ["provisionStatus", "scenario", "tfDirectory"]
    listed = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    assert {"provisionStatus", "scenario", "tfDirectory"} <= set(listed.custom_attributes)
    assert await ensure_search_attributes(client) == []
