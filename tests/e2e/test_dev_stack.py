"""`provision dev`: the whole local stack from nothing, used through the CLI, stopped by SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import uuid
from pathlib import Path

import aiohttp
import pytest

from provision.dev_server import port_open
from tests.support.processes import (
    VENV_BIN,
    Stack,
    free_port,
    payload_texts,
    run_process,
    temporal_cli_path,
)

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


async def ui_codec_endpoint(ui_port: int) -> str:
    """The codec endpoint the Temporal UI was given, as the UI's own settings API reports it."""
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{ui_port}/api/v1/settings") as response:
            assert response.status == 200
            settings = await response.json()
    return (settings.get("Codec") or {}).get("Endpoint") or ""


def pasted_lines(banner: str) -> list[str]:
    """The lines the banner asks to paste into a second terminal."""
    lines = banner.split("In a second terminal, paste:\n", 1)[1].splitlines()
    return [
        line.strip()
        for line in lines[: next(i for i, text in enumerate(lines) if not text.startswith(" "))]
    ]


def plain_shell_env() -> dict[str, str]:
    """A new terminal's environment: no settings of ours, and the venv not on PATH."""
    path = [p for p in os.environ.get("PATH", "").split(os.pathsep) if Path(p) != VENV_BIN]
    return {
        **{
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("TEMPORAL_", "PROVISION_", "SLACK_", "VIRTUAL_ENV"))
            and k != "ENCRYPT_PAYLOADS"
        },
        "PATH": os.pathsep.join(path),
    }


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
        banner = await read_until(dev, "Stop:", timeout=90)
        assert f"http://localhost:{ui_port}" in banner
        assert address in banner
        assert port_open("127.0.0.1", ui_port), "the Temporal UI is not listening"
        assert (data_dir / "temporal.db").exists()
        assert (data_dir / "terraform" / "cli.tfrc").exists()
        # Encryption on with no key configured: dev wrote one, readable by its owner only.
        key_file = data_dir / "codec.keys"
        assert key_file.stat().st_mode & 0o777 == 0o600
        assert f"http://127.0.0.1:{codec_port}/encryption_codec" in banner

        # The UI decodes through the codec server.
        assert await ui_codec_endpoint(ui_port) == f"http://127.0.0.1:{codec_port}/encryption_codec"

        # A second terminal, as the README has it: nothing set by hand but the data folder and
        # the address this test's stack uses (the demo's are the defaults).
        stack = Stack(address, data_dir, "provision-infra")
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

        # A terminal of another data folder has no key: it is told so, without a traceback.
        keyless = Stack(address, tmp_path / "elsewhere", "provision-infra")
        status = await keyless.run("status", workflow_id)
        assert status.returncode == 2, status
        assert "encrypted" in status.stderr and "PROVISION_CODEC_KEY_FILE" in status.stderr
        assert "Traceback" not in status.output

        # The banner's lines, pasted into a plain shell in another folder, work as printed.
        pasted = pasted_lines(banner)
        assert any(line.startswith("export PATH=") for line in pasted) or all(
            str(VENV_BIN) in line for line in pasted if "provision run" in line
        )
        shell = await run_process(
            ["bash", "-ec", "\n".join([f"cd {tmp_path}", *pasted])],
            env=plain_shell_env(),
            timeout=180,
        )
        assert shell.returncode == 0, shell
        assert "applied" in shell.stdout
    finally:
        if dev.returncode is None:
            dev.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(dev.wait(), 60)
    assert code == 0
    assert not port_open("127.0.0.1", grpc_port), "the dev server outlived `provision dev`"
    assert not port_open("127.0.0.1", ui_port)


def dev_env(data_dir: Path, **ports: int) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "PROVISION_"))},
        "TEMPORAL_ADDRESS": f"127.0.0.1:{ports['grpc']}",
        "PROVISION_DATA_DIR": str(data_dir),
        "PROVISION_DEV_UI_PORT": str(ports["ui"]),
        "PROVISION_CODEC_PORT": str(free_port()),
        "PROVISION_LOCAL_SLACK_PORT": str(ports["slack"]),
        "PROVISION_BOT_HEALTH_ADDRESS": f"127.0.0.1:{free_port()}",
        "PROVISION_WORKER_METRICS_ADDRESS": "off",
        "PYTHONUNBUFFERED": "1",
    }


async def start_dev(env: dict[str, str]) -> tuple[asyncio.subprocess.Process, str]:
    dev = await asyncio.create_subprocess_exec(
        str(VENV_BIN / "provision"),
        "dev",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        return dev, await read_until(dev, "Stop:", timeout=90)
    except BaseException:
        dev.send_signal(signal.SIGTERM)
        await asyncio.wait_for(dev.wait(), 60)
        raise


async def stop_dev(dev: asyncio.subprocess.Process) -> None:
    if dev.returncode is None:
        dev.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(dev.wait(), 60) == 0


async def test_default_demo_has_no_codec_banner_and_keeps_its_slack_channel(
    tmp_path: Path,
) -> None:
    from slack_sdk.web.async_client import AsyncWebClient

    ports = {"grpc": free_port(), "ui": free_port(), "slack": free_port()}
    env = dev_env(tmp_path / "data", **ports)
    dev, banner = await start_dev(env)
    try:
        # Encryption off: the UI is not pointed at a codec server (it would show an error).
        assert await ui_codec_endpoint(ports["ui"]) == ""
        assert "--codec-endpoint" not in banner
        web = AsyncWebClient(token="xoxb-local", base_url=f"http://127.0.0.1:{ports['slack']}/api/")
        posted = await web.chat_postMessage(channel="C0INFRA", text="before the restart")
    finally:
        await stop_dev(dev)
    assert (tmp_path / "data" / "local-slack.json").exists()

    dev, banner = await start_dev(env)
    try:
        history = await web.conversations_history(channel="C0INFRA")
        assert [m["ts"] for m in history["messages"]] == [posted["ts"]]
        assert history["messages"][0]["text"] == "before the restart"
    finally:
        await stop_dev(dev)


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
