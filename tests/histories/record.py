"""Re-record the replay histories from real runs: real worker, real terraform, a fresh dev server.

Usage: `make record-histories` (or `.venv/bin/python tests/histories/record.py`). Commit the
JSON files it writes next to itself; tests/workflows/test_replay.py replays every one of them.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from temporalio.client import Client, WorkflowHandle  # noqa: E402
from temporalio.testing import WorkflowEnvironment  # noqa: E402

from codec.converter import build_data_converter  # noqa: E402
from codec.keys import KeyRing  # noqa: E402
from provision.runs import RunService  # noqa: E402
from provision.settings import load_settings  # noqa: E402
from provision.worker import build_worker  # noqa: E402
from stacks.requests import RunOptions, build_destroy_request, build_request  # noqa: E402
from workflows.contracts import SEARCH_ATTRIBUTES  # noqa: E402
from workflows.models import ApplyDecision, RunState, RunStatus  # noqa: E402

TASK_QUEUE = "record-histories"
# A fixed, public test key: only for the recorded encrypted histories, never for real use.
RECORDING_KEY_SPEC = "replay-test-key=" + "cmVwbGF5LXRlc3Qta2V5LW5vdC1hLXNlY3JldC0wMDE="


async def wait_state(service: RunService, workflow_id: str, state: RunState) -> RunStatus:
    for _ in range(600):
        try:
            status = await service.status(workflow_id)
            if status.state == state:
                return status
        except Exception:  # noqa: BLE001 - not started yet
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{workflow_id} never reached {state}")


async def save(
    client: Client, handle: WorkflowHandle, name: str, run_id: str | None = None
) -> None:
    history = await client.get_workflow_handle(handle.id, run_id=run_id).fetch_history()
    path = HERE / f"{name}.json"
    path.write_text(json.dumps(json.loads(history.to_json()), indent=1) + "\n")
    print(f"wrote {path.relative_to(HERE.parent.parent)} ({len(history.events)} events)")


async def record_api_failure(client: Client, service: RunService, options) -> None:
    """Four failed apply attempts retried by the workflow itself, then the applying one."""
    handle = await service.start(build_request(options("api-failure")))
    await handle.result()
    await save(client, handle, "api_failure_retried")


async def record(client: Client, address: str, data_dir: Path, suffix: str) -> None:
    settings = load_settings(data_dir=data_dir, temporal_address=address, task_queue=TASK_QUEUE)
    service = RunService(client, TASK_QUEUE)

    def options(scenario: str, **extra) -> RunOptions:
        return RunOptions(scenario=scenario, prefix="rec", temporal_address=address, **extra)

    async with build_worker(client, settings):
        handle = await service.start(build_request(options("happy-path")))
        await handle.result()
        await save(client, handle, f"happy_path{suffix}")

        destroy = await service.start(
            build_destroy_request("rec-happy-path", scenario_name=None, options=options("destroy"))
        )
        await destroy.result()
        await save(client, destroy, f"destroy{suffix}")

        if suffix:
            return

        handle = await service.start(build_request(options("human-in-the-loop-update")))
        await wait_state(service, handle.id, RunState.AWAITING_APPROVAL)
        try:
            await service.decide(handle.id, ApplyDecision(is_approved=True, reason=" "))
        except Exception:  # noqa: BLE001 - the rejected update is part of what we record
            pass
        await service.decide(
            handle.id,
            ApplyDecision(
                is_approved=True,
                reason="recorded approval",
                approver="U0BOB",
                approver_name="bob",
                approver_kind="slack",
            ),
        )
        await handle.result()
        await save(client, handle, "human_in_the_loop_update")

        handle = await service.start(build_request(options("human-in-the-loop-signal")))
        first = await wait_state(service, handle.id, RunState.AWAITING_APPROVAL)
        await service.replan(handle.id)
        second = None
        for _ in range(600):
            status = await service.status(handle.id)
            if status.run_id != first.run_id and status.state == RunState.AWAITING_APPROVAL:
                second = status
                break
            await asyncio.sleep(0.1)
        assert second is not None
        await save(client, handle, "replan_first_run", run_id=first.run_id)
        await service.decide(handle.id, ApplyDecision(is_approved=False))
        await client.get_workflow_handle(handle.id).result()
        await save(client, handle, "human_in_the_loop_signal_denied")

        handle = await service.start(build_request(options("ephemeral", ttl_seconds=2)))
        await handle.result()
        await save(client, handle, "ephemeral")

        await record_api_failure(client, service, options)

        handle = await service.start(build_request(options("non-recoverable-failure")))
        try:
            await handle.result()
        except Exception:  # noqa: BLE001 - this scenario fails by design
            pass
        await save(client, handle, "non_recoverable_failure")


async def main() -> None:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(Path(sys.executable).parent / "temporal"),
        search_attributes=SEARCH_ATTRIBUTES,
        dev_server_log_level="error",
        # The SDK's default is 5 s; a loaded machine can take longer to start it.
        dev_server_startup_timeout=timedelta(seconds=120),
    )
    address = env.client.service_client.config.target_host
    try:
        with tempfile.TemporaryDirectory() as tmp:
            plain = await Client.connect(address, data_converter=build_data_converter())
            await record(plain, address, Path(tmp) / "plain", "")
            encrypted = await Client.connect(
                address,
                data_converter=build_data_converter(
                    key_ring=KeyRing.parse(RECORDING_KEY_SPEC), encrypt=True, compress=True
                ),
            )
            await record(encrypted, address, Path(tmp) / "encrypted", "_encrypted")
    finally:
        await env.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
