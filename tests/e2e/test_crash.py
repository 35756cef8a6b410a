"""A real worker process SIGKILLed at deterministic points (PROVISION_FAULT_POINTS); a new worker
finishes the run: within 60 s, applied with its outputs, one namespace, the plan applied once.

Real dev server, real terraform, real namespaces. The recovery times printed here (`-s`) are the
figures in the README's durability section.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import NamespaceState
from temporalio.api.workflowservice.v1 import ListNamespacesRequest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from tests.support.processes import Stack
from workflows.models import ProvisionResult, RunState, RunStatus

pytestmark = pytest.mark.e2e

RECOVERY_DEADLINE = 60.0


@pytest.fixture
async def crash_stack(temporal_env: WorkflowEnvironment, tmp_path: Path):
    address = temporal_env.client.service_client.config.target_host
    stack = Stack(address, tmp_path / "data", f"tq-{uuid.uuid4()}")
    try:
        yield stack
    finally:
        await stack.stop_worker()


async def registered_namespaces(client: Client, name: str) -> int:
    count, token = 0, b""
    while True:
        page = await client.workflow_service.list_namespaces(
            ListNamespacesRequest(page_size=200, next_page_token=token)
        )
        count += sum(
            1
            for ns in page.namespaces
            if ns.namespace_info.name == name
            and ns.namespace_info.state == NamespaceState.NAMESPACE_STATE_REGISTERED
        )
        token = page.next_page_token
        if not token:
            return count


async def killed_at(stack: Stack, point: str, timeout: float = 90) -> None:
    """Wait for the worker started with `point` to SIGKILL itself there."""
    assert stack.worker is not None
    await asyncio.wait_for(stack.worker.wait(), timeout)
    assert stack.worker.returncode == -9, stack.worker_log.read_text()[-3000:]
    assert f"fault point {point} reached" in stack.worker_log.read_text()


async def start_run(stack: Stack, prefix: str) -> str:
    started = await stack.run("run", "happy-path", "--prefix", prefix, "--json")
    assert started.returncode == 0, started
    return started.json()["workflow_id"]


async def recover(stack: Stack, client: Client, workflow_id: str) -> tuple[ProvisionResult, float]:
    """Start a healthy worker; return the run's result and seconds from worker start to it."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    await stack.start_worker()
    handle = client.get_workflow_handle(workflow_id, result_type=ProvisionResult)
    result = await asyncio.wait_for(handle.result(), RECOVERY_DEADLINE)
    return result, loop.time() - started


def apply_logs(stack: Stack, result: ProvisionResult) -> str:
    """Everything terraform apply printed for this run's plans (plan ids start with the run id)."""
    applies = stack.data_dir / "workspaces" / result.workspace / "applies"
    return "".join(p.read_text() for p in sorted(applies.glob(f"{result.run_id}-*.log")))


async def assert_applied_once(
    stack: Stack, client: Client, workflow_id: str, result: ProvisionResult
) -> None:
    workspace = result.workspace
    assert result.state == RunState.APPLIED, result
    assert result.outputs["namespace_name"] == workspace
    assert result.outputs["connection_secret"] == "(sensitive)"
    status = await client.get_workflow_handle(workflow_id).query("get_state", result_type=RunStatus)
    assert status.state == RunState.APPLIED and status.outputs == result.outputs
    assert await registered_namespaces(client, workspace) == 1
    logs = apply_logs(stack, result)
    # One terraform apply of the run's plan: never a second "Creating..." of the namespace.
    assert logs.count("Apply complete!") == 1, logs
    assert logs.count("null_resource.namespace: Creating...") == 1, logs
    assert f"namespace {workspace} already exists" not in logs + stack.worker_log.read_text()


async def test_worker_killed_mid_plan_is_replaced_within_a_minute(
    crash_stack: Stack, client: Client
) -> None:
    prefix = f"cp{uuid.uuid4().hex[:6]}"
    await crash_stack.start_worker({"PROVISION_FAULT_POINTS": "plan-running"})
    workflow_id = await start_run(crash_stack, prefix)
    await killed_at(crash_stack, "plan-running")
    result, seconds = await recover(crash_stack, client, workflow_id)
    print(f"\nrecovery after SIGKILL mid-plan: {seconds:.1f} s")
    await assert_applied_once(crash_stack, client, workflow_id, result)
    status = await client.get_workflow_handle(workflow_id).query("get_state", result_type=RunStatus)
    assert status.last_error and "timed out" in status.last_error, status


@pytest.mark.parametrize("point", ["apply-running", "after-apply-exit", "after-apply-recorded"])
async def test_worker_killed_around_apply_on_a_new_workspace(
    crash_stack: Stack, client: Client, point: str
) -> None:
    prefix = f"ca{uuid.uuid4().hex[:6]}"
    await crash_stack.start_worker({"PROVISION_FAULT_POINTS": point})
    workflow_id = await start_run(crash_stack, prefix)
    await killed_at(crash_stack, point)
    result, seconds = await recover(crash_stack, client, workflow_id)
    print(f"\nrecovery after SIGKILL at {point} (new workspace): {seconds:.1f} s")
    await assert_applied_once(crash_stack, client, workflow_id, result)
    record = json.loads(
        next(
            (crash_stack.data_dir / "workspaces" / result.workspace / "applies").glob("*.json")
        ).read_text()
    )
    assert record["phase"] == "succeeded" and record["settled_by"] == "exit", record


async def test_worker_killed_after_apply_exit_on_a_workspace_with_state(
    crash_stack: Stack, client: Client
) -> None:
    prefix = f"cs{uuid.uuid4().hex[:6]}"
    await crash_stack.start_worker()
    first = await crash_stack.run("run", "happy-path", "--prefix", prefix, "--wait", "--json")
    assert first.returncode == 0 and first.json()["status"] == "applied", first
    gone = await crash_stack.run(
        "destroy", "--scenario", "happy-path", "--prefix", prefix, "--wait", "--json"
    )
    assert gone.returncode == 0 and gone.json()["status"] == "destroyed", gone
    await crash_stack.stop_worker()
    state = crash_stack.data_dir / "workspaces" / f"{prefix}-happy-path" / "terraform.tfstate"
    assert json.loads(state.read_text())["lineage"], "precondition: the workspace has a state"

    await crash_stack.start_worker({"PROVISION_FAULT_POINTS": "after-apply-exit"})
    workflow_id = await start_run(crash_stack, prefix)
    await killed_at(crash_stack, "after-apply-exit")
    result, seconds = await recover(crash_stack, client, workflow_id)
    print(f"\nrecovery after SIGKILL at after-apply-exit (workspace with state): {seconds:.1f} s")
    await assert_applied_once(crash_stack, client, workflow_id, result)
