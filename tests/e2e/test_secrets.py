"""Secrets hygiene end to end: a canary secret never appears in history, queries, logs or output.

Every scenario runs with encryption on, the canary in the worker's passthrough environment as the
sensitive terraform variable `api_key` (which also feeds the sensitive output
`connection_secret`). Then every history is read raw, decoded through the codec server, and the
worker log and every CLI output are searched for the canary.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from codec.keys import KeyRing
from tests.support.processes import VENV_BIN, Stack, free_port, payload_texts, wait_until

pytestmark = pytest.mark.e2e

CANARY = "canary-Zq8vW3xK-secret"
KEYS = KeyRing.generate("hygiene-test").to_spec()


@pytest_asyncio.fixture(scope="module")
async def secret_stack(temporal_env, tmp_path_factory) -> AsyncIterator[tuple[Stack, str]]:
    address = temporal_env.client.service_client.config.target_host
    stack = Stack(address, tmp_path_factory.mktemp("secrets"), f"tq-{uuid.uuid4()}")
    codec_env = {
        "ENCRYPT_PAYLOADS": "true",
        "PROVISION_CODEC_KEYS": KEYS,
        "PROVISION_COMPRESS_PAYLOADS": "true",
    }
    stack.env.update(codec_env)
    await stack.start_worker({"TF_VAR_api_key": CANARY})
    port = free_port()
    codec = await asyncio.create_subprocess_exec(
        str(VENV_BIN / "provision"),
        "codec-server",
        "--port",
        str(port),
        env=stack.env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert codec.stdout is not None
    await asyncio.wait_for(codec.stdout.readline(), 30)
    try:
        yield stack, f"http://127.0.0.1:{port}/encryption_codec"
    finally:
        codec.send_signal(signal.SIGTERM)
        await asyncio.wait_for(codec.wait(), 30)
        await stack.stop_worker()


async def state_is(stack: Stack, workflow_id: str, state: str) -> bool:
    result = await stack.run("status", workflow_id, "--json")
    return result.returncode == 0 and result.json()["status"] == state


async def run_every_scenario(stack: Stack) -> tuple[list[tuple[str, str]], list[str]]:
    """Run all nine scenarios; return the workflow ids and every CLI output."""
    outputs: list[str] = []
    ids: list[str] = []

    async def cli(*args: str) -> dict:
        result = await stack.run(*args)
        outputs.append(result.output)
        return result.json() if result.stdout.strip().startswith("{") else {}

    for scenario in ("happy-path", "advanced-visibility", "api-failure", "non-recoverable-failure"):
        data = await cli("run", scenario, "--prefix", "sec", "--wait", "--json")
        ids.append((data["workflow_id"], data["run_id"]))
    data = await cli("run", "ephemeral", "--prefix", "sec", "--ttl", "1", "--wait", "--json")
    ids.append((data["workflow_id"], data["run_id"]))

    for scenario, verb in (
        ("human-in-the-loop-update", "approve"),
        ("human-in-the-loop-signal", "deny"),
    ):
        started = await cli("run", scenario, "--prefix", "sec", "--json")
        workflow_id = started["workflow_id"]
        ids.append((workflow_id, started["run_id"]))
        await wait_until(lambda w=workflow_id: state_is(stack, w, "awaiting_approval"))
        await cli(verb, workflow_id, "--reason", "hygiene check")
        final = "applied" if verb == "approve" else "rejected"
        await wait_until(lambda w=workflow_id, f=final: state_is(stack, w, f))
        outputs.append((await stack.run("status", workflow_id, "--json")).output)

    started = await cli("run", "recoverable-failure", "--prefix", "sec", "--json")
    ids.append((started["workflow_id"], started["run_id"]))
    switch = stack.data_dir / "faults" / "recoverable-failure"
    await wait_until(lambda: _exists(switch), what="fault switch on")
    await cli("fault", "clear", "recoverable-failure")
    await wait_until(lambda: state_is(stack, started["workflow_id"], "applied"))

    for workspace in ("sec-happy-path", "sec-human-in-the-loop-update"):
        data = await cli("destroy", workspace, "--wait", "--json")
        assert data["status"] == "destroyed", data
        ids.append((data["workflow_id"], data["run_id"]))
    return ids, outputs


async def _exists(path: Path) -> bool:
    return path.exists()


async def test_the_canary_appears_nowhere(secret_stack: tuple[Stack, str]) -> None:
    stack, codec_endpoint = secret_stack
    ids, outputs = await run_every_scenario(stack)
    assert len(set(ids)) == 10

    for workflow_id, run_id in sorted(set(ids)):
        raw = await stack.temporal(
            "workflow",
            "show",
            "--workflow-id",
            workflow_id,
            "--run-id",
            run_id,
            "--output",
            "json",
        )
        assert raw.returncode == 0, raw
        assert CANARY not in raw.stdout
        raw_payloads = payload_texts(json.loads(raw.stdout))
        assert raw_payloads, "no payloads found in the history"
        assert not any(CANARY in p for p in raw_payloads)

        opened = await stack.temporal(
            "workflow",
            "show",
            "--workflow-id",
            workflow_id,
            "--run-id",
            run_id,
            "--output",
            "json",
            "--codec-endpoint",
            codec_endpoint,
        )
        assert opened.returncode == 0, opened
        decoded = "\n".join(payload_texts(json.loads(opened.stdout)))
        # Decoding worked (the history is readable) and still holds no secret.
        assert "sec-" in decoded
        assert CANARY not in decoded and CANARY not in opened.stdout

        for query in ("get_plan", "get_reason", "get_state"):
            result = await stack.temporal(
                "workflow",
                "query",
                "--workflow-id",
                workflow_id,
                "--run-id",
                run_id,
                "--type",
                query,
                "--codec-endpoint",
                codec_endpoint,
            )
            assert CANARY not in result.output

    assert not any(CANARY in out for out in outputs)
    worker_log = stack.worker_log.read_text()
    assert "sec-happy-path" in worker_log
    assert CANARY not in worker_log
    # The secret did reach terraform: the connection_secret output was computed from it, then
    # redacted inside the activity.
    status = await stack.run("status", "sec-advanced-visibility", "--json")
    assert status.json()["outputs"]["connection_secret"] == "(sensitive)"
    state_file = stack.data_dir / "workspaces" / "sec-advanced-visibility" / "terraform.tfstate"
    assert CANARY in state_file.read_text()
    assert os.stat(state_file.parent).st_mode & 0o077 == 0
