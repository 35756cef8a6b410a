"""Worker roles: a workflows-only worker polls no activity task and an activities-only worker no
workflow task, so a run split across them moves only when both are there; with a sticky cache
smaller than the runs in flight, evicted runs are replayed and finish.

Real dev server, real `provision worker` processes, real terraform and namespaces.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import PendingActivityState, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from tests.support.processes import Stack, wait_until
from workflows.models import ProvisionResult, RunState

pytestmark = pytest.mark.e2e

RUNS = 3


@pytest.fixture
async def role_stacks(temporal_env: WorkflowEnvironment, tmp_path: Path):
    """Two worker slots on one task queue, each with its own data folder."""
    address = temporal_env.client.service_client.config.target_host
    queue = f"tq-{uuid.uuid4()}"
    stacks = [Stack(address, tmp_path / name, queue) for name in ("workflows", "activities")]
    try:
        yield stacks
    finally:
        for stack in stacks:
            await stack.stop_worker()


def identity(stack: Stack) -> str:
    """The worker's identity on the server, as it logged it when it started polling."""
    match = re.search(r"worker (\S+) polling task queue", stack.worker_log.read_text())
    assert match, stack.worker_log.read_text()
    return match.group(1)


async def pollers(client: Client, queue: str, kind: TaskQueueType.ValueType) -> set[str]:
    described = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace, task_queue=TaskQueue(name=queue), task_queue_type=kind
        )
    )
    return {poller.identity for poller in described.pollers}


async def test_split_roles_run_only_together_and_a_small_cache_replays(
    role_stacks: list[Stack], client: Client
) -> None:
    workflows, activities = role_stacks
    queue = workflows.task_queue
    # A sticky cache of 2 for 3 runs in flight: the workflows worker must evict and replay.
    await workflows.start_worker(
        {"PROVISION_MAX_CACHED_WORKFLOWS": "2"}, args=["--role", "workflows"]
    )
    wf_id = identity(workflows)

    async def polls_workflow_tasks() -> bool:
        return wf_id in await pollers(client, queue, TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW)

    await wait_until(polls_workflow_tasks, timeout=30, what="the workflows worker's poll")
    assert await pollers(client, queue, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY) == set()

    prefix = f"rl{uuid.uuid4().hex[:6]}"
    ids = []
    for n in range(RUNS):
        started = await workflows.run("run", "happy-path", "--prefix", f"{prefix}{n}", "--json")
        assert started.returncode == 0, started
        ids.append(started.json()["workflow_id"])
    handles = [client.get_workflow_handle(i, result_type=ProvisionResult) for i in ids]

    async def first_activities_scheduled() -> bool:
        for handle in handles:
            pending = (await handle.describe()).raw_description.pending_activities
            if not pending:
                return False
            # Scheduled, never started: nothing on this task queue polls activity tasks.
            assert [p.state for p in pending] == [
                PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED
            ], pending
        return True

    await wait_until(first_activities_scheduled, timeout=60, what="each run's first activity")
    # The workflows worker answers for its runs; none of them got past its first activity.
    for handle in handles:
        status = await handle.query("get_current_status", result_type=str)
        assert status not in (RunState.APPLIED.value, "applying"), status

    await activities.start_worker({"PROVISION_WORKER_ROLE": "activities"})
    act_id = identity(activities)
    results = await asyncio.wait_for(asyncio.gather(*(h.result() for h in handles)), 180)
    assert [r.state for r in results] == [RunState.APPLIED] * RUNS, results
    for n, result in enumerate(results):
        assert result.outputs["namespace_name"] == f"{prefix}{n}-happy-path"
    assert act_id in await pollers(client, queue, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY)
    assert act_id not in await pollers(client, queue, TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW)
    assert wf_id not in await pollers(client, queue, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY)
    # The activities worker ran every terraform step; the workflows worker laid out no workspace.
    assert not (workflows.data_dir / "workspaces").exists()
    assert len(list((activities.data_dir / "workspaces").iterdir())) == RUNS
