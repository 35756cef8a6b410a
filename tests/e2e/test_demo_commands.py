"""The original demo README's `temporal workflow …` commands, run with the real temporal CLI."""

from __future__ import annotations

import json

import pytest

from tests.support.processes import Stack, wait_until

pytestmark = pytest.mark.e2e


async def query(stack: Stack, workflow_id: str, query_type: str):
    result = await stack.temporal(
        "workflow", "query", "--workflow-id", workflow_id, "--type", query_type, "--output", "json"
    )
    assert result.returncode == 0, result
    return json.loads(result.stdout)["queryResult"][0]


async def state_is(stack: Stack, workflow_id: str, state: str) -> bool:
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
    return result.returncode == 0 and json.loads(result.stdout)["queryResult"][0] == state


async def start_waiting(stack: Stack, scenario: str, prefix: str) -> str:
    started = await stack.run("run", scenario, "--prefix", prefix, "--json")
    assert started.returncode == 0, started
    workflow_id = started.json()["workflow_id"]
    await wait_until(lambda: state_is(stack, workflow_id, "awaiting_approval"), what="waiting")
    return workflow_id


async def result_of(stack: Stack, workflow_id: str) -> dict:
    result = await stack.temporal(
        "workflow", "result", "--workflow-id", workflow_id, "--output", "json", timeout=120
    )
    return json.loads(result.stdout) if result.stdout.strip() else {}


async def test_update_and_queries_with_the_temporal_cli(stack: Stack) -> None:
    workflow_id = await start_waiting(stack, "human-in-the-loop-update", "democli")
    assert await query(stack, workflow_id, "get_progress") == 50
    plan = await query(stack, workflow_id, "get_plan")
    assert "null_resource.admin_grant" in plan and "Plan: 2 to add" in plan
    assert await query(stack, workflow_id, "get_reason") == ""

    empty = await stack.temporal(
        "workflow",
        "update",
        "execute",
        "--workflow-id",
        workflow_id,
        "--name",
        "update_apply_decision",
        "--input",
        '{"is_approved": true, "reason": ""}',
    )
    assert empty.returncode != 0 and "reason is required" in empty.output

    approved = await stack.temporal(
        "workflow",
        "update",
        "execute",
        "--workflow-id",
        workflow_id,
        "--name",
        "update_apply_decision",
        "--input",
        '{"is_approved": true, "reason": "Approved after review"}',
    )
    assert approved.returncode == 0, approved
    await wait_until(lambda: state_is(stack, workflow_id, "applied"), what="applied")
    assert await query(stack, workflow_id, "get_reason") == "Approved after review"
    assert await query(stack, workflow_id, "get_progress") == 100

    second = await stack.temporal(
        "workflow",
        "update",
        "execute",
        "--workflow-id",
        workflow_id,
        "--name",
        "update_apply_decision",
        "--input",
        '{"is_approved": false, "reason": "too late"}',
    )
    assert second.returncode != 0
    assert (
        await stack.run("destroy", "democli-human-in-the-loop-update", "--wait")
    ).returncode == 0


async def test_signal_deny_with_the_temporal_cli(stack: Stack) -> None:
    workflow_id = await start_waiting(stack, "human-in-the-loop-signal", "democli")
    sent = await stack.temporal(
        "workflow",
        "signal",
        "--workflow-id",
        workflow_id,
        "--name",
        "signal_apply_decision",
        "--input",
        '{"is_approved": false}',
    )
    assert sent.returncode == 0, sent
    await wait_until(lambda: state_is(stack, workflow_id, "rejected"), what="rejected")
    assert not await stack.namespace_exists("democli-human-in-the-loop-signal")


async def test_replan_signal_with_the_temporal_cli(stack: Stack) -> None:
    workflow_id = await start_waiting(stack, "human-in-the-loop-update", "replan")
    first = await stack.temporal(
        "workflow", "describe", "--workflow-id", workflow_id, "--output", "json"
    )
    first_run = json.loads(first.stdout)["workflowExecutionInfo"]["execution"]["runId"]
    sent = await stack.temporal(
        "workflow", "signal", "--workflow-id", workflow_id, "--name", "request_continue_as_new"
    )
    assert sent.returncode == 0, sent

    async def new_run_waiting() -> bool:
        described = await stack.temporal(
            "workflow", "describe", "--workflow-id", workflow_id, "--output", "json"
        )
        run_id = json.loads(described.stdout)["workflowExecutionInfo"]["execution"]["runId"]
        return run_id != first_run and await state_is(stack, workflow_id, "awaiting_approval")

    await wait_until(new_run_waiting, what="a new run waiting for a decision")
    deny = await stack.run("deny", workflow_id, "--reason", "not now")
    assert deny.returncode == 0, deny
    await wait_until(lambda: state_is(stack, workflow_id, "rejected"), what="rejected")


async def test_reset_to_the_plan_step_asks_again(stack: Stack) -> None:
    workflow_id = await start_waiting(stack, "human-in-the-loop-update", "reset")
    history = await stack.temporal(
        "workflow", "show", "--workflow-id", workflow_id, "--output", "json"
    )
    events = json.loads(history.stdout)["events"]
    plan_done = next(
        int(e["eventId"]) for e in events if e["eventType"] == "EVENT_TYPE_ACTIVITY_TASK_COMPLETED"
    )
    # Reset points are workflow-task boundaries: the first task completed after the plan.
    reset_point = next(
        int(e["eventId"])
        for e in events
        if int(e["eventId"]) > plan_done and e["eventType"] == "EVENT_TYPE_WORKFLOW_TASK_COMPLETED"
    )
    reset = await stack.temporal(
        "workflow",
        "reset",
        "--workflow-id",
        workflow_id,
        "--event-id",
        str(reset_point),
        "--reason",
        "re-check policy",
    )
    assert reset.returncode == 0, reset
    await wait_until(lambda: state_is(stack, workflow_id, "awaiting_approval"), what="waiting")
    approve = await stack.run("approve", workflow_id, "--reason", "after reset")
    assert approve.returncode == 0, approve
    await wait_until(lambda: state_is(stack, workflow_id, "applied"), timeout=90, what="applied")
    assert await stack.namespace_exists("reset-human-in-the-loop-update")
    destroyed = await stack.run("destroy", "reset-human-in-the-loop-update", "--wait")
    assert destroyed.returncode == 0, destroyed
