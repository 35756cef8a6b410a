"""The worker: its wiring (workflows and activities on the configured task queue) and its main
(`provision worker`)."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker

from activities.notify import SlackNotifier, notifier_web_client
from activities.policy import PolicyEvaluator
from activities.provisioning import ProvisioningActivities
from activities.sources import SourceResolver
from activities.terraform import TerraformRunner
from activities.workspaces import WorkspaceActivities
from provision.client import build_runtime, connect
from provision.settings import Settings, WorkerRole
from provision.shared_state import SharedState
from provision.signals import stop_requested
from provision.toolchain import prepare_toolchain
from stacks.registry import load_stacks
from workflows.provision import DeprovisionInfraWorkflow, ProvisionInfraWorkflow

log = logging.getLogger(__name__)

WORKFLOWS = (ProvisionInfraWorkflow, DeprovisionInfraWorkflow)


def build_activities(settings: Settings) -> ProvisioningActivities:
    toolchain = prepare_toolchain(settings.data_dir, settings.terraform_binary)
    shared = SharedState.open(settings) if settings.database_url else None
    runner = TerraformRunner(
        binary=toolchain.terraform_binary,
        terraform_root=settings.terraform_root,
        workspaces_dir=settings.workspaces_dir,
        cli_config_file=toolchain.cli_config_file,
        path_prefix=toolchain.path_prefix,
        state_backend=shared.state_backend if shared else None,
        target_records=shared.records if shared else None,
        max_concurrent=settings.max_terraform,
        nice=settings.terraform_nice,
    )
    stacks = load_stacks(settings.stacks_file)
    return ProvisioningActivities(
        runner,
        _policy_evaluator(settings),
        data_dir=settings.data_dir.resolve(),
        extra_passthrough=settings.passthrough_env,
        sources=SourceResolver(stacks, settings.data_dir / "sources"),
        store=shared.applies if shared else None,
        records=shared.records if shared else None,
        plans=shared.plans if shared else None,
    )


def _policy_evaluator(settings: Settings) -> PolicyEvaluator:
    return PolicyEvaluator(
        settings.terraform_root / "policies", config={"max_changes": settings.max_changes}
    )


def build_policy_activities(settings: Settings) -> ProvisioningActivities:
    """A workflows-only worker runs no terraform: the policy check alone, a local activity."""
    return ProvisioningActivities(None, _policy_evaluator(settings), data_dir=settings.data_dir)


def build_notifier(settings: Settings) -> SlackNotifier:
    """Without SLACK_BOT_TOKEN the notifier is a no-op that says so once."""
    if settings.slack_bot_token is None:
        return SlackNotifier(None)
    token = settings.slack_bot_token.get_secret_value()
    return SlackNotifier(notifier_web_client(token, settings.slack_api_url))


def build_worker(
    client: Client,
    settings: Settings,
    *,
    activities: ProvisioningActivities | None = None,
    notifier: SlackNotifier | None = None,
    extra_activities: Sequence[object] = (),
    task_queue: str | None = None,
    role: WorkerRole | None = None,
) -> Worker:
    """A worker of `role` (default: the settings'): `workflows` polls workflow tasks only and
    runs the policy check (a local activity) itself; `activities` polls activity tasks only."""
    role = role or settings.worker_role
    polls_workflows = role != WorkerRole.ACTIVITIES
    if role == WorkerRole.WORKFLOWS:
        acts = activities or build_policy_activities(settings)
        registered: list[object] = [acts.evaluate_policy]
    else:
        acts = activities or build_activities(settings)
        notify = (notifier or build_notifier(settings)).notify
        claims = WorkspaceActivities(acts.workspace_records)
        registered = [
            acts.plan,
            acts.apply,
            acts.evaluate_policy,
            claims.claim_workspace,
            notify,
            *extra_activities,
        ]
    cache = settings.max_cached_workflows
    return Worker(
        client,
        task_queue=task_queue or settings.task_queue,
        workflows=list(WORKFLOWS) if polls_workflows else [],
        activities=registered,
        no_remote_activities=role == WorkerRole.WORKFLOWS,
        # A bounded sticky cache: runs idle past it (awaiting approval, a TTL) are evicted and
        # replayed from their history when their next task comes. The SDK allows no more
        # concurrent workflow tasks than cached workflows.
        max_cached_workflows=cache,
        max_concurrent_workflow_tasks=min(100, cache) if cache else None,
        graceful_shutdown_timeout=timedelta(seconds=15),
    )


async def run_until_signalled(worker: Worker, role: WorkerRole = WorkerRole.ALL) -> None:
    """Run a worker until SIGINT/SIGTERM, then shut it down cleanly."""
    stop = stop_requested()
    async with worker:
        log.info(
            "worker %s polling task queue %s (pid %s, role %s)",
            worker.client.identity,
            worker.task_queue,
            os.getpid(),
            role,
        )
        await stop.wait()
        log.info("stopping worker")


async def run_worker_main(settings: Settings) -> int:
    """`provision worker`: one worker against TEMPORAL_ADDRESS, exporting its metrics."""
    client = await connect(settings, runtime=build_runtime(settings))
    await run_until_signalled(build_worker(client, settings), settings.worker_role)
    return 0
