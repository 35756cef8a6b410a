"""End to end through the `provision` CLI: real worker process, real terraform, real dev server.

Each test checks what a user would: the exit code, the JSON the CLI prints, and whether the
Temporal namespace really exists on the dev server.
"""

from __future__ import annotations

import asyncio
import json
import signal

import pytest

from tests.support.processes import VENV_BIN, Stack, run_process, wait_until

pytestmark = pytest.mark.e2e


async def query_status(stack: Stack, workflow_id: str) -> str | None:
    result = await stack.temporal(
        "workflow",
        "query",
        "--workflow-id",
        workflow_id,
        "--type",
        "get_current_status",
        "--output",
        "json",
    )
    if result.returncode != 0:
        return None
    return json.loads(result.stdout)["queryResult"][0]


async def test_happy_path_then_destroy(stack: Stack) -> None:
    run = await stack.run("run", "happy-path", "--prefix", "e2e", "--wait", "--json")
    assert run.returncode == 0, run
    data = run.json()
    assert data["status"] == "applied"
    assert data["workflow_id"] == "provision-e2e-happy-path"
    assert data["workspace"] == "e2e-happy-path" and data["scenario"] == "happy-path"
    assert data["run_id"]
    assert data["outputs"]["namespace_name"] == "e2e-happy-path"
    assert data["outputs"]["connection_secret"] == "(sensitive)"
    assert await stack.namespace_exists("e2e-happy-path")

    status = await stack.run("status", "e2e-happy-path", "--json")
    assert status.returncode == 0 and status.json()["status"] == "applied"

    listed = await stack.run("list", "--status", "applied", "--json")
    assert "provision-e2e-happy-path" in [r["workflow_id"] for r in listed.json()]

    destroy = await stack.run(
        "destroy", "--scenario", "happy-path", "--prefix", "e2e", "--wait", "--json"
    )
    assert destroy.returncode == 0, destroy
    assert destroy.json()["status"] == "destroyed"
    assert not await stack.namespace_exists("e2e-happy-path")


async def test_human_in_the_loop_update(stack: Stack) -> None:
    workflow_id = "provision-e2e-human-in-the-loop-update"
    waiting = asyncio.ensure_future(
        stack.run("run", "human-in-the-loop-update", "--prefix", "e2e", "--wait", "--json")
    )
    await wait_until(lambda: _is(stack, workflow_id, "awaiting_approval"), what="awaiting_approval")
    assert not await stack.namespace_exists("e2e-human-in-the-loop-update")

    # A second run on the busy workspace is refused, naming the run that holds it.
    busy = await stack.run("run", "human-in-the-loop-update", "--prefix", "e2e")
    assert busy.returncode == 1
    assert "busy" in busy.stderr and workflow_id in busy.stderr

    refused = await stack.run("approve", workflow_id, "--reason", " ")
    assert refused.returncode == 1
    assert refused.stderr.strip().count("\n") == 0
    assert "reason is required" in refused.stderr

    approved = await stack.run("approve", workflow_id, "--reason", "reviewed the grant")
    assert approved.returncode == 0, approved
    result = await asyncio.wait_for(waiting, 120)
    assert result.returncode == 0, result
    data = result.json()
    assert data["status"] == "applied"
    assert data["decisions"][0]["actor"]["kind"] == "cli"
    assert data["decisions"][0]["reason"] == "reviewed the grant"
    assert await stack.namespace_exists("e2e-human-in-the-loop-update")

    late = await stack.run("approve", workflow_id, "--reason", "me too")
    assert late.returncode == 1 and "already decided: approved by" in late.stderr
    assert (await stack.run("destroy", "e2e-human-in-the-loop-update", "--wait")).returncode == 0
    assert not await stack.namespace_exists("e2e-human-in-the-loop-update")


async def _is(stack: Stack, workflow_id: str, state: str) -> bool:
    return await query_status(stack, workflow_id) == state


async def test_non_recoverable_failure_applies_nothing(stack: Stack) -> None:
    run = await stack.run("run", "non-recoverable-failure", "--prefix", "e2e", "--wait", "--json")
    assert run.returncode == 1, run
    data = run.json()
    assert data["status"] == "policy_failed"
    assert any(f["rule"] == "account_owner" for f in data["policy"]["findings"])
    assert "account_owner" in data["reason"]
    assert not await stack.namespace_exists("e2e-non-recoverable-failure")


async def test_ephemeral_is_destroyed_after_its_ttl(stack: Stack) -> None:
    workflow_id = "provision-e2e-ephemeral"
    waiting = asyncio.ensure_future(
        stack.run("run", "ephemeral", "--prefix", "e2e", "--ttl", "3", "--wait", "--json")
    )
    await wait_until(lambda: _is(stack, workflow_id, "waiting_ttl"), what="waiting_ttl")
    assert await stack.namespace_exists("e2e-ephemeral")
    result = await asyncio.wait_for(waiting, 120)
    assert result.returncode == 0, result
    assert result.json()["status"] == "destroyed"
    assert not await stack.namespace_exists("e2e-ephemeral")


async def test_recoverable_failure_goes_on_once_the_switch_is_cleared(stack: Stack) -> None:
    workflow_id = "provision-e2e-recoverable-failure"
    switch = stack.data_dir / "faults" / "recoverable-failure"
    waiting = asyncio.ensure_future(
        stack.run("run", "recoverable-failure", "--prefix", "e2e", "--wait", "--json")
    )

    async def plan_failing() -> bool:
        # The run's own state says it is retrying, and how to clear the fault.
        status = await stack.run("status", workflow_id, "--json")
        if status.returncode != 0:
            return False
        data = status.json()
        return (
            data["attempt"] >= 2
            and "provision fault clear recoverable-failure" in (data["error"] or "")
            and data["error"].startswith(f"retrying, attempt {data['attempt']}")
        )

    await wait_until(plan_failing, what="the plan retrying, visibly")
    assert switch.exists()
    cleared = await stack.run("fault", "clear", "recoverable-failure")
    assert cleared.returncode == 0 and not switch.exists()
    result = await asyncio.wait_for(waiting, 120)
    assert result.returncode == 0, result
    assert result.json()["status"] == "applied"
    assert (await stack.run("destroy", "e2e-recoverable-failure", "--wait")).returncode == 0


async def test_api_failure_succeeds_on_the_fifth_attempt(stack: Stack) -> None:
    run = await stack.run("run", "api-failure", "--prefix", "e2e", "--wait", "--json")
    assert run.returncode == 0, run
    history = await stack.temporal(
        "workflow", "show", "--workflow-id", "provision-e2e-api-failure", "--output", "json"
    )
    events = json.loads(history.stdout)["events"]
    scheduled = [
        e["activityTaskScheduledEventAttributes"]["activityType"]["name"]
        for e in events
        if e["eventType"] == "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED"
    ]
    # The workflow makes the retries: five apply attempts, the 5th is the one that applied.
    assert scheduled.count("terraform_apply") == 5
    status = run.json()
    assert status["attempt"] == 5 and "simulated cloud API failure" in status["last_error"]
    assert status["error"] is None
    assert await stack.namespace_exists("e2e-api-failure")
    assert (await stack.run("destroy", "e2e-api-failure", "--wait")).returncode == 0


async def test_usage_and_configuration_errors(stack: Stack) -> None:
    unknown = await stack.run("run", "no-such-scenario")
    assert unknown.returncode == 2 and "unknown stack" in unknown.stderr
    bad_prefix = await stack.run("run", "happy-path", "--prefix", "x; rm -rf /")
    assert bad_prefix.returncode == 2 and "prefix" in bad_prefix.stderr
    assert "Traceback" not in bad_prefix.stderr
    bad_setting = await stack.run("list", env={"PROVISION_APPROVAL_TIMEOUT": "soon"})
    assert bad_setting.returncode == 2
    assert bad_setting.stderr.strip().startswith("provision: PROVISION_APPROVAL_TIMEOUT")
    assert bad_setting.stderr.strip().count("\n") == 0
    no_key = await stack.run("list", env={"ENCRYPT_PAYLOADS": "true"})
    assert no_key.returncode == 2
    assert "ENCRYPT_PAYLOADS=true needs a key" in no_key.stderr
    bad_key = await stack.run("list", env={"PROVISION_CODEC_KEYS": "k1=not-base64-secretish"})
    assert bad_key.returncode == 2 and "not-base64-secretish" not in bad_key.stderr
    unreachable = await stack.run("list", env={"TEMPORAL_ADDRESS": "127.0.0.1:1"})
    assert unreachable.returncode == 3 and "cannot reach Temporal" in unreachable.stderr
    missing = await stack.run("status", "nobody-happy-path")
    assert missing.returncode == 1 and "no run found" in missing.stderr


async def test_worker_stops_cleanly_on_sigterm(stack: Stack, tmp_path) -> None:
    other = Stack(stack.address, tmp_path / "w2", stack.task_queue + "-2")
    await other.start_worker()
    assert other.worker is not None
    other.worker.send_signal(signal.SIGTERM)
    code = await asyncio.wait_for(other.worker.wait(), 30)
    assert code == 0
    assert "stopping worker" in other.worker_log.read_text()
    assert "Traceback" not in other.worker_log.read_text()


async def test_help_lists_every_scenario() -> None:
    result = await run_process([str(VENV_BIN / "provision"), "help"], env={"PATH": "/usr/bin"})
    assert result.returncode == 0
    for scenario in ("happy-path", "human-in-the-loop-signal", "ephemeral", "api-failure"):
        assert scenario in result.stdout
