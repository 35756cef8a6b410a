"""The provisioning activities driving the real terraform binary, run in an ActivityEnvironment.

Nothing here mocks terraform: plans and applies run the real CLI against the offline null
provider mirror; the local_namespace configuration creates a real namespace on the dev server.
A test runner subclass only *records* which terraform commands ran.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import os
import re
import shutil
import signal
import uuid
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.fault_points import FaultPoints
from activities.policy import PolicyEvaluator
from activities.provisioning import ProvisioningActivities
from activities.terraform import (
    REDACTED,
    CommandResult,
    Scrubber,
    TerraformRunner,
    plan_state_identity,
    redact_plan_document,
    render_plan_text,
    summarize_plan,
    terraform_plan_text,
)
from activities.terraform_process import (
    WRAPPER_NAME,
    CommandFiles,
    ProcessRunner,
    WorkspaceLock,
)
from activities.workspace_store import ApplyRecord
from provision.settings import default_terraform_binary
from provision.toolchain import Toolchain, prepare_toolchain
from tests.support.processes import run_process, temporal_cli_path, wait_until
from workflows.models import ApplyInput, ApplyResult, Faults, PlanInput, PlanResult

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES_DIR = Path(__file__).resolve().parents[1] / "fixtures"
TF_FIXTURES = FIXTURES_DIR / "tf"
PLANS_DIR = FIXTURES_DIR / "plans"
POLICY_DIR = REPO_ROOT / "terraform" / "policies"

CANARY = "canary-secret-xyz"
SECRET_ENV = "TF_VAR_api_key"
FIXTURE_SECRET = "fixture-api-key-do-not-leak"


class RecordingRunner(TerraformRunner):
    """The real runner; remembers the terraform subcommand of every invocation."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.commands: list[str] = []

    async def run(self, args, **kwargs) -> CommandResult:  # type: ignore[override]
        self.commands.append(args[0])
        return await super().run(args, **kwargs)


@pytest.fixture(scope="module")
def toolchain(tmp_path_factory: pytest.TempPathFactory) -> Toolchain:
    # One provider mirror and plugin cache for the module: copying the provider is the slow part.
    return prepare_toolchain(tmp_path_factory.mktemp("toolchain"), default_terraform_binary())


@pytest.fixture(scope="module")
def evaluator() -> PolicyEvaluator:
    return PolicyEvaluator(POLICY_DIR)


@pytest.fixture
def tf_root(tmp_path: Path) -> Path:
    """A private terraform root: the repo's local_namespace plus the test configurations."""
    root = tmp_path / "terraform"
    shutil.copytree(REPO_ROOT / "terraform" / "local_namespace", root / "local_namespace")
    for config in TF_FIXTURES.iterdir():
        if config.is_dir():
            shutil.copytree(config, root / config.name)
    return root


@pytest.fixture
def runner(toolchain: Toolchain, tf_root: Path, tmp_path: Path) -> RecordingRunner:
    return RecordingRunner(
        binary=toolchain.terraform_binary,
        terraform_root=tf_root,
        workspaces_dir=tmp_path / "workspaces",
        cli_config_file=toolchain.cli_config_file,
        path_prefix=toolchain.path_prefix,
    )


@pytest.fixture
def acts(runner: RecordingRunner, evaluator: PolicyEvaluator, tmp_path: Path):
    return ProvisioningActivities(
        runner,
        evaluator,
        data_dir=tmp_path,
        worker_env={**os.environ, SECRET_ENV: CANARY},
    )


def activity_env(attempt: int = 1, heartbeats: list | None = None) -> ActivityEnvironment:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, attempt=attempt)
    if heartbeats is not None:
        env.on_heartbeat = lambda *details: heartbeats.append(details)
    return env


async def plan(
    acts: ProvisioningActivities, *, attempt: int = 1, plan_id: str = "p1", **fields: Any
) -> PlanResult:
    return await activity_env(attempt).run(acts.plan, PlanInput(plan_id=plan_id, **fields))


async def apply(
    acts: ProvisioningActivities,
    result: PlanResult,
    workspace: str,
    *,
    attempt: int = 1,
    heartbeats: list | None = None,
    **fields: Any,
) -> ApplyResult:
    step = ApplyInput(
        workspace=workspace,
        plan_path=fields.pop("plan_path", result.plan_path),
        plan_sha256=fields.pop("plan_sha256", result.plan_sha256),
        **fields,
    )
    return await activity_env(attempt, heartbeats).run(acts.apply, step)


async def app_error(coro, error_type: str) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        await coro
    assert caught.value.type == error_type, caught.value
    return caught.value


async def describe_namespace(address: str, name: str):
    return await run_process(
        [
            temporal_cli_path(),
            "operator",
            "namespace",
            "describe",
            "--namespace",
            name,
            "--address",
            address,
        ],
        env=dict(os.environ),
        timeout=30,
    )


class Proc(NamedTuple):
    pid: int
    name: str
    state: str
    ppid: int
    pgid: int


def processes() -> list[Proc]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # exited while we looked
        # The command name is in parentheses and may itself contain spaces or parentheses.
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        state, ppid, pgid = stat[stat.rindex(")") + 2 :].split()[:3]
        found.append(Proc(int(entry.name), name, state, int(ppid), int(pgid)))
    return found


def live_group(pgid: int) -> list[Proc]:
    # Zombies are dead already; they only wait for a parent to reap them.
    return [p for p in processes() if p.pgid == pgid and p.state != "Z"]


# 1. The whole life of a namespace, with a secret that must never come back out ---------------


async def test_plan_apply_destroy_namespace_never_leaks_the_secret(
    acts: ProvisioningActivities, runner: RecordingRunner, temporal_address: str
) -> None:
    suffix = uuid.uuid4().hex[:8]
    name = f"tfact-{suffix}"
    workspace = f"tfact-{suffix}"
    variables = {
        "prefix": "tfact",
        "name_suffix": suffix,
        "region": "local",
        "address": temporal_address,
        "retention_days": 7,
    }
    created = await plan(
        acts,
        workspace=workspace,
        tf_directory="local_namespace",
        variables=variables,
        env_passthrough=[SECRET_ENV],
        plan_id="create",
    )
    assert CANARY not in created.model_dump_json()
    assert created.summary.add == 1 and created.summary.resources == ["+ null_resource.namespace"]
    assert "Plan: 1 to add, 0 to change, 0 to destroy." in created.plan_text
    # Terraform's own plan text, as every Terraform user reads it; the key shows as sensitive.
    assert created.plan_text.startswith("Terraform used the selected providers")
    assert "# null_resource.namespace will be created" in created.plan_text
    assert "(sensitive value)" in created.plan_text and "Saved the plan" not in created.plan_text
    triggers = created.plan_document["resource_changes"][0]["change"]["after"]["triggers"]
    assert triggers["api_key"] == REDACTED
    assert triggers["kind"] == "temporal_namespace" and triggers["retention_days"] == "7"
    assert created.plan_document["variables"]["api_key"] == {"value": REDACTED}
    # The variables are written for terraform to read; the secret is not among them.
    workspace_dir = runner.workspace_dir(workspace)
    assert CANARY not in (workspace_dir / "terraform.tfvars.json").read_text()
    assert CANARY not in (workspace_dir / "workspace.json").read_text()

    plan_file = Path(created.plan_path)
    assert plan_file.parent == runner.plans_dir(workspace)
    assert hashlib.sha256(plan_file.read_bytes()).hexdigest() == created.plan_sha256

    heartbeats: list[tuple] = []
    applied = await apply(
        acts, created, workspace, env_passthrough=[SECRET_ENV], heartbeats=heartbeats
    )
    assert heartbeats, "apply sent no heartbeat"
    assert CANARY not in json.dumps(heartbeats)
    assert CANARY not in applied.model_dump_json()
    assert applied.outputs == {
        "address": temporal_address,
        "connection_secret": REDACTED,
        "namespace_name": name,
        "region": "local",
        "retention_days": 7,
    }
    assert "Apply complete! Resources: 1 added" in applied.log_tail
    assert not plan_file.exists(), "an applied plan must not be applicable twice"
    # The secret did reach terraform (state keeps it, as terraform does): the checks above
    # passed because of redaction, not because the secret never arrived.
    assert CANARY in (workspace_dir / "terraform.tfstate").read_text()

    described = await wait_until(
        lambda: _describe_ok(temporal_address, name), timeout=15, what=f"namespace {name}"
    )
    assert re.search(r"WorkflowExecutionRetentionTtl\s+168h", described.stdout), described
    assert "region=local" in described.stdout

    # Destroy: the variables come from the workspace's record.
    destroy = await plan(
        acts, workspace=workspace, destroy=True, env_passthrough=[SECRET_ENV], plan_id="destroy"
    )
    assert CANARY not in destroy.model_dump_json()
    assert destroy.summary.destroy == 1 and destroy.summary.resources == [
        "- null_resource.namespace"
    ]
    destroyed = await apply(acts, destroy, workspace, env_passthrough=[SECRET_ENV])
    assert CANARY not in destroyed.model_dump_json()
    assert "Apply complete! Resources: 0 added, 0 changed, 1 destroyed." in destroyed.log_tail
    assert destroyed.outputs == {}
    gone = await describe_namespace(temporal_address, name)
    assert gone.returncode != 0 and "not found" in gone.output.lower(), gone


async def _describe_ok(address: str, name: str):
    result = await describe_namespace(address, name)
    return result if result.returncode == 0 else None


# 2. The activity refuses to apply anything but the exact plan it made ------------------------


async def test_apply_refuses_plans_that_are_not_the_approved_one(
    acts: ProvisioningActivities, runner: RecordingRunner, tmp_path: Path
) -> None:
    made = await plan(acts, workspace="quick", tf_directory="quick", variables={"value": "one"})
    plan_file = Path(made.plan_path)

    wrong_sha = await app_error(apply(acts, made, "quick", plan_sha256="0" * 64), "StalePlan")
    assert wrong_sha.non_retryable
    assert "does not match the plan that was checked and approved" in wrong_sha.message

    # A plan of another workspace, with its own correct hash, is not this workspace's plan.
    other = await plan(acts, workspace="other", tf_directory="quick", variables={"value": "one"})
    foreign = await app_error(apply(acts, other, "quick"), "StalePlan")
    assert foreign.non_retryable

    # A byte-identical copy outside the plans folder is refused too, however it is spelled.
    outside = tmp_path / "elsewhere" / plan_file.name
    outside.parent.mkdir()
    shutil.copy2(plan_file, outside)
    sneaky = runner.plans_dir("quick") / ".." / plan_file.name
    shutil.copy2(plan_file, sneaky)
    for path in (outside, sneaky):
        error = await app_error(apply(acts, made, "quick", plan_path=str(path)), "StalePlan")
        assert error.non_retryable

    original = plan_file.read_bytes()
    plan_file.write_bytes(original + b"\0")
    tampered = await app_error(apply(acts, made, "quick"), "StalePlan")
    assert tampered.non_retryable

    plan_file.unlink()
    missing = await app_error(apply(acts, made, "quick"), "StalePlan")
    assert missing.non_retryable and "replan" in missing.message

    assert "apply" not in runner.commands, "terraform apply ran on a refused plan"


# 3. Terraform's own stale-plan check, when the state moved on after the plan was made --------


async def test_plan_made_before_another_apply_is_stale(
    acts: ProvisioningActivities, runner: RecordingRunner, tmp_path: Path
) -> None:
    ws = "stale"
    # Terraform only compares state lineage and serial when there was a state at plan time.
    base = await plan(acts, workspace=ws, tf_directory="quick", variables={"value": "v1"})
    await apply(acts, base, ws)

    plan_a = await plan(
        acts, workspace=ws, tf_directory="quick", variables={"value": "v2"}, plan_id="a"
    )
    saved_a = tmp_path / "saved-a.tfplan"
    shutil.copy2(plan_a.plan_path, saved_a)
    plan_b = await plan(
        acts, workspace=ws, tf_directory="quick", variables={"value": "v3"}, plan_id="b"
    )
    # A newer plan of the workspace replaces the older one on the worker.
    missing = await app_error(apply(acts, plan_a, ws), "StalePlan")
    assert missing.non_retryable
    applied_b = await apply(acts, plan_b, ws)
    assert applied_b.outputs == {"value": "v3"}

    # Put plan A back exactly as approved: only terraform can tell that it is out of date now.
    shutil.copy2(saved_a, plan_a.plan_path)
    applies_before = runner.commands.count("apply")
    stale = await app_error(apply(acts, plan_a, ws), "StalePlan")
    assert runner.commands.count("apply") == applies_before + 1, "terraform did not judge it"
    assert stale.non_retryable
    assert "the state changed since it was made" in stale.message
    outputs = await runner.outputs(runner.workspace_dir(ws), runner.env({}), Scrubber())
    assert outputs == {"value": "v3"}


# 4. Cancelling an apply stops terraform and everything it started ---------------------------


async def test_cancelled_apply_stops_terraform_and_its_children(
    acts: ProvisioningActivities, runner: RecordingRunner
) -> None:
    made = await plan(acts, workspace="slow", tf_directory="slow", variables={})
    loop = asyncio.get_running_loop()
    beat = asyncio.Event()
    env = ActivityEnvironment()
    env.on_heartbeat = lambda *details: beat.set()
    step = ApplyInput(workspace="slow", plan_path=made.plan_path, plan_sha256=made.plan_sha256)
    task = asyncio.create_task(env.run(acts.apply, step))
    try:
        await asyncio.wait_for(beat.wait(), 30)
        # The runner starts terraform under its exit-code wrapper (its direct child), the leader
        # of a new process group, so an orphan outlives a dead worker and is stopped as a group.
        (wrapper,) = [p for p in processes() if p.ppid == os.getpid() and p.name == "sh"]
        assert wrapper.pgid == wrapper.pid
        terraform = wrapper

        async def provisioner_running() -> bool:
            names = [p.name for p in live_group(wrapper.pid)]
            return "terraform" in names and "sleep" in names

        await wait_until(provisioner_running, timeout=30, what="the local-exec `sleep 60`")
        cancelled_at = loop.time()
        env.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 30)
    finally:
        if not task.done():
            task.cancel()
    # SIGINT was enough: the runner did not have to wait for its SIGKILL grace period.
    assert loop.time() - cancelled_at < 5

    async def group_gone() -> bool:
        return not live_group(terraform.pid)

    try:
        await wait_until(group_gone, timeout=5, what=f"process group {terraform.pid} to exit")
    finally:
        if live_group(terraform.pid):  # only when failing: leave no stray process behind
            os.killpg(terraform.pid, signal.SIGKILL)
    assert "apply" in runner.commands


# 5. A variable that terraform's own validation rejects --------------------------------------


async def test_invalid_variable_is_a_non_retryable_config_error(
    acts: ProvisioningActivities,
) -> None:
    # Python callers validate too; this goes around them to reach terraform's validation.
    error = await app_error(
        plan(
            acts,
            workspace="bad",
            tf_directory="local_namespace",
            variables={"prefix": "BAD PREFIX", "name_suffix": "x"},
            env_passthrough=[SECRET_ENV],
        ),
        "TerraformConfigError",
    )
    assert error.non_retryable
    assert error.message.startswith("terraform plan failed: Error: Invalid value for variable")
    assert 'variable "prefix"' in error.message and "The prefix must match" in error.message
    for trace in ("Traceback", "goroutine", "panic:", 'File "'):
        assert trace not in error.message
    assert CANARY not in error.message


# 6. The recoverable-failure fault switch ---------------------------------------------------


async def test_fault_switch_fails_plans_until_it_is_cleared(
    acts: ProvisioningActivities, runner: RecordingRunner, tmp_path: Path
) -> None:
    fields = dict(
        workspace="faulty",
        tf_directory="quick",
        variables={"value": "one"},
        faults=Faults(plan_fault_switch="recoverable-failure"),
    )
    switch = tmp_path / "faults" / "recoverable-failure"
    assert not switch.exists()

    first = await app_error(plan(acts, attempt=1, **fields), "InjectedFault")
    assert not first.non_retryable
    assert switch.exists()
    assert "provision fault clear recoverable-failure" in first.message

    second = await app_error(plan(acts, attempt=2, **fields), "InjectedFault")
    assert not second.non_retryable
    assert runner.commands == [], "terraform ran while the fault switch was on"

    switch.unlink()
    made = await plan(acts, attempt=3, **fields)
    assert made.summary.add == 1
    assert not switch.exists(), "a retry must not turn the switch back on"


# 7. Simulated cloud API failures on apply --------------------------------------------------


async def test_simulated_api_failures_then_success(
    acts: ProvisioningActivities, runner: RecordingRunner
) -> None:
    faults = Faults(apply_failures=4)
    made = await plan(acts, workspace="flaky", tf_directory="quick", variables={"value": "one"})
    for attempt in range(1, 5):
        error = await app_error(
            apply(acts, made, "flaky", attempt=attempt, faults=faults), "SimulatedApiFailure"
        )
        assert not error.non_retryable
        assert f"attempt {attempt} of 4" in error.message
    assert "apply" not in runner.commands
    assert Path(made.plan_path).exists(), "a failed attempt must keep the plan for the retry"
    applied = await apply(acts, made, "flaky", attempt=5, faults=faults)
    assert applied.outputs == {"value": "one"}


# 8. Redaction of plan documents (no terraform needed) ---------------------------------------

PLAN_FIXTURES = sorted(p.stem for p in PLANS_DIR.glob("*.json"))
POLICY_TRIGGERS = ("kind", "retention_days", "protected")


def load_plan(name: str) -> dict:
    return json.loads((PLANS_DIR / f"{name}.json").read_text())


def test_some_fixtures_hold_the_secret_in_plaintext() -> None:
    # Otherwise the redaction tests below would pass without redacting anything.
    assert sum(FIXTURE_SECRET in json.dumps(load_plan(n)) for n in PLAN_FIXTURES) >= 3


@pytest.mark.parametrize("name", PLAN_FIXTURES)
def test_redacted_plan_keeps_what_policy_needs_and_no_secret(
    evaluator: PolicyEvaluator, name: str
) -> None:
    raw = load_plan(name)
    # No scrubber and no extra names: terraform's own sensitivity marks must be enough.
    redacted = redact_plan_document(raw, Scrubber(), set())
    text = render_plan_text(redacted)
    assert FIXTURE_SECRET not in json.dumps(redacted)
    assert FIXTURE_SECRET not in text

    for raw_rc, red_rc in zip(raw["resource_changes"], redacted["resource_changes"], strict=True):
        assert red_rc["address"] == raw_rc["address"]
        assert red_rc["change"]["actions"] == raw_rc["change"]["actions"]
        for side in ("before", "after"):
            raw_value, red_value = raw_rc["change"][side], red_rc["change"][side]
            if not isinstance(raw_value, dict):
                continue
            raw_attrs = raw_value.get("triggers") or raw_value
            red_attrs = red_value.get("triggers") or red_value
            for key in POLICY_TRIGGERS:
                if key in raw_attrs:
                    assert red_attrs[key] == raw_attrs[key], (raw_rc["address"], side, key)
            if "api_key" in raw_attrs:
                assert red_attrs["api_key"] == REDACTED
    if "api_key" in raw.get("variables", {}):
        assert redacted["variables"]["api_key"] == {"value": REDACTED}

    assert evaluator.evaluate(redacted) == evaluator.evaluate(raw)
    assert summarize_plan(redacted) == summarize_plan(raw)


def test_rendered_plan_shows_values_and_hides_the_secret() -> None:
    text = render_plan_text(redact_plan_document(load_plan("namespace_clean"), Scrubber(), set()))
    for line in (
        "+ null_resource.namespace",
        '    triggers.kind = "temporal_namespace"',
        '    triggers.retention_days = "7"',
        '    triggers.protected = "false"',
        '    triggers.api_key = "(sensitive)"',
        "Plan: 1 to add, 0 to change, 0 to destroy.",
    ):
        assert line in text.splitlines(), text
    deleted = render_plan_text(
        redact_plan_document(load_plan("destroy_protected"), Scrubber(), set())
    )
    assert '    triggers.protected = "true"' in deleted.splitlines(), deleted
    assert FIXTURE_SECRET not in deleted


def test_secret_without_sensitivity_marks_is_still_removed(evaluator: PolicyEvaluator) -> None:
    # A configuration that forgot `sensitive = true`: the passthrough names and values still
    # redact it, as the plan activity passes them.
    raw = load_plan("namespace_clean")
    del raw["configuration"]["root_module"]["variables"]["api_key"]["sensitive"]
    for rc in raw["resource_changes"]:
        rc["change"]["after_sensitive"] = {"triggers": {}}
    assert redact_plan_document(raw, Scrubber(), set())["variables"]["api_key"] == {
        "value": FIXTURE_SECRET
    }, "precondition: nothing marks the secret any more"

    redacted = redact_plan_document(raw, Scrubber([FIXTURE_SECRET]), {"api_key"})
    assert FIXTURE_SECRET not in json.dumps(redacted)
    assert FIXTURE_SECRET not in render_plan_text(redacted)
    assert redacted["variables"]["api_key"] == {"value": REDACTED}
    assert evaluator.evaluate(redacted) == evaluator.evaluate(raw)


# 9. `terraform init` runs once per configuration ---------------------------------------------


async def test_init_is_skipped_until_the_configuration_changes(
    acts: ProvisioningActivities, runner: RecordingRunner, tf_root: Path
) -> None:
    fields = dict(workspace="cached", tf_directory="quick")

    await plan(acts, variables={"value": "one"}, **fields)
    # A new workspace gets an empty state with a lineage first (`state pull`, `state push`).
    assert runner.commands == ["init", "state", "state", "plan", "show"]
    stamp = runner.workspace_dir("cached") / ".terraform" / "provision-init-stamp"
    assert stamp.exists()

    # New variable values are not a new configuration.
    runner.commands.clear()
    again = await plan(acts, variables={"value": "two"}, **fields)
    assert runner.commands == ["state", "plan", "show"]
    assert '"value" = "two"' in again.plan_text

    config = tf_root / "quick" / "main.tf"
    config.write_text(config.read_text() + '\noutput "extra" {\n  value = "added"\n}\n')
    runner.commands.clear()
    changed = await plan(acts, variables={"value": "two"}, **fields)
    assert runner.commands == ["init", "state", "plan", "show"]
    assert changed.plan_document["output_changes"]["extra"]["after"] == "added"


# 10. A plan is applied at most once, whatever a crash left behind -------------------------


def apply_record_path(runner: RecordingRunner, workspace: str, plan_id: str) -> Path:
    return runner.workspace_dir(workspace) / "applies" / f"{plan_id}.json"


async def test_a_retry_of_an_applied_plan_returns_its_recorded_result(
    acts: ProvisioningActivities, runner: RecordingRunner
) -> None:
    heartbeats: list[tuple] = []
    made = await activity_env(heartbeats=heartbeats).run(
        acts.plan,
        PlanInput(plan_id="once", workspace="once", tf_directory="quick", variables={}),
    )
    assert heartbeats, "plan sent no heartbeat"
    first = await apply(acts, made, "once")
    assert not Path(made.plan_path).exists()
    # The activity's completion was lost: the retry finds the record, not the plan file.
    again = await apply(acts, made, "once", attempt=2)
    assert again == first
    assert runner.commands.count("apply") == 1
    record = json.loads(apply_record_path(runner, "once", "once").read_text())
    assert record["phase"] == "succeeded" and record["exit_code"] == 0


async def _interrupted(
    acts: ProvisioningActivities, runner: RecordingRunner, workspace: str, tmp_path: Path
) -> PlanResult:
    """A plan applied, then made to look as if the worker died before anything was recorded
    and the exit-code wrapper died too: record `begun`, no exit file, plan file still there."""
    made = await plan(acts, workspace=workspace, tf_directory="quick", variables={}, plan_id="cut")
    saved = tmp_path / "cut.tfplan"
    shutil.copy2(made.plan_path, saved)
    await apply(acts, made, workspace)
    record_path = apply_record_path(runner, workspace, "cut")
    record = json.loads(record_path.read_text())
    record.update(phase="begun", exit_code=None, outputs={}, settled_by=None)
    record_path.write_text(json.dumps(record))
    runner.apply_files(workspace, "cut").exit.unlink()
    shutil.copy2(saved, made.plan_path)
    return made


async def test_an_interrupted_apply_is_settled_from_the_state(
    acts: ProvisioningActivities, runner: RecordingRunner, tmp_path: Path
) -> None:
    made = await _interrupted(acts, runner, "cut", tmp_path)
    settled = await apply(acts, made, "cut", attempt=2)
    assert settled.outputs == {"value": "one"}
    assert runner.commands.count("apply") == 1, "the plan was applied twice"
    record = json.loads(apply_record_path(runner, "cut", "cut").read_text())
    assert record["phase"] == "succeeded" and record["settled_by"] == "state"


async def test_an_interrupted_apply_with_unknown_outcome_asks_for_a_replan(
    acts: ProvisioningActivities, runner: RecordingRunner, tmp_path: Path
) -> None:
    made = await _interrupted(acts, runner, "unknown", tmp_path)
    files = runner.apply_files("unknown", "cut")
    files.log.write_text(files.log.read_text().replace("Apply complete!", "(cut off)"))
    error = await app_error(apply(acts, made, "unknown", attempt=2), "PartlyApplied")
    assert error.non_retryable and "replan" in error.message
    assert runner.commands.count("apply") == 1


async def test_an_apply_that_never_changed_the_state_runs_on_retry(
    acts: ProvisioningActivities, runner: RecordingRunner
) -> None:
    made = await plan(acts, workspace="fresh", tf_directory="quick", variables={}, plan_id="fresh")
    # The record says begun, but terraform never ran: the state is the one the plan was made on.
    acts.store.save_apply(
        "fresh", ApplyRecord(plan_id="fresh", plan_sha256=made.plan_sha256, phase="begun")
    )
    applied = await apply(acts, made, "fresh", attempt=2)
    assert applied.outputs == {"value": "one"}
    assert runner.commands.count("apply") == 1


# 11. One terraform at a time per workspace -------------------------------------------------


async def test_a_plan_waits_for_the_apply_holding_the_workspace(
    acts: ProvisioningActivities, runner: RecordingRunner
) -> None:
    made = await plan(acts, workspace="busy", tf_directory="slow", variables={})
    applying_env = ActivityEnvironment()
    started = asyncio.Event()
    applying_env.on_heartbeat = lambda *details: started.set()
    step = ApplyInput(
        workspace="busy", plan_path=made.plan_path, plan_sha256=made.plan_sha256, plan_id="p1"
    )
    applying = asyncio.create_task(applying_env.run(acts.apply, step))
    waiting_beats: list[tuple] = []
    planning = None
    try:
        await asyncio.wait_for(started.wait(), 30)
        await wait_until(
            lambda: _async_true("apply" in runner.commands), timeout=30, what="apply started"
        )
        commands_before = list(runner.commands)
        planning = asyncio.create_task(
            activity_env(heartbeats=waiting_beats).run(
                acts.plan,
                PlanInput(plan_id="p2", workspace="busy", tf_directory="slow", variables={}),
            )
        )
        # The waiting plan heartbeats (so its worker is known alive) and starts no terraform.
        await wait_until(
            lambda: _async_true(len(waiting_beats) >= 2), timeout=30, what="two heartbeats"
        )
        assert runner.commands == commands_before and not planning.done()
        assert ("waiting for the workspace",) in waiting_beats
        applying_env.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(applying, 30)
        replanned = await asyncio.wait_for(planning, 60)
        assert replanned.plan_id == "p2"
    finally:
        for task in (applying, planning):
            if task is not None and not task.done():
                task.cancel()


async def _async_true(value: bool) -> bool:
    return value


# 12. Orphans of a dead attempt: a plan is stopped, an apply is awaited ------------------------


async def _orphan(runner: RecordingRunner, workspace: str, command: str, seconds: int):
    """A process as a dead worker leaves it: in its own session under the wrapper's name, holding
    the workspace lock through an inherited descriptor, its worker's descriptor gone."""
    lock = WorkspaceLock(runner.workspace_dir(workspace))
    runner.workspace_dir(workspace).mkdir(parents=True, exist_ok=True)
    await lock.acquire(reap=False, grace_seconds=1)
    orphan = await asyncio.create_subprocess_exec(
        "/bin/sh",
        "-c",
        f"sleep {seconds}; true",
        WRAPPER_NAME,
        pass_fds=(lock.fd,),
        start_new_session=True,
    )
    lock.note_running(orphan.pid, command)
    lock.release()
    return orphan


async def test_a_plan_stops_an_orphaned_plan_and_awaits_an_orphaned_apply(
    acts: ProvisioningActivities, runner: RecordingRunner
) -> None:
    orphan = await _orphan(runner, "orphans", "plan", 60)
    try:
        made = await asyncio.wait_for(
            plan(acts, workspace="orphans", tf_directory="quick", variables={}), 60
        )
        assert made.summary.add == 1
        assert await asyncio.wait_for(orphan.wait(), 10) == -signal.SIGINT
    finally:
        if orphan.returncode is None:
            orphan.kill()

    loop = asyncio.get_running_loop()
    orphan = await _orphan(runner, "orphans", "apply", 3)
    started = loop.time()
    try:
        await asyncio.wait_for(
            plan(acts, workspace="orphans", tf_directory="quick", variables={}, plan_id="p2"), 60
        )
        # The plan ran only once the orphaned apply had finished on its own.
        assert loop.time() - started >= 3
        assert await asyncio.wait_for(orphan.wait(), 5) == 0
    finally:
        if orphan.returncode is None:
            orphan.kill()


def test_terraform_plan_text_keeps_terraforms_own_account_only() -> None:
    output = (
        "null_resource.a: Refreshing state... [id=1]\n\n"
        "Terraform used the selected providers to generate the following execution\n"
        "plan.\n\n  # null_resource.a will be replaced\n\nPlan: 1 to add, 0 to change, 1 to destroy.\n"
        "\n─────────────────\n\nSaved the plan to: /tmp/p\n"
    )
    text = terraform_plan_text(output)
    assert text.startswith("Terraform used") and text.rstrip().endswith("1 to destroy.")
    assert "Refreshing" not in text and "Saved the plan" not in text
    bounded = terraform_plan_text("No changes.\n" + "x\n" * 100_000, limit=1000)
    assert len(bounded) < 1100 and bounded.endswith("(truncated: the plan is longer)\n")


# 7. Load: a bounded number of terraform steps per worker, at a lower CPU priority -----------


async def test_runner_runs_at_most_max_concurrent_workspaces_at_once(tmp_path: Path) -> None:
    runner = TerraformRunner(
        binary="terraform",
        terraform_root=tmp_path,
        workspaces_dir=tmp_path / "workspaces",
        max_concurrent=2,
    )
    inside, peak, finished = 0, 0, []

    async def step(workspace: str) -> None:
        nonlocal inside, peak
        async with runner.locked(workspace, reap=False):
            inside += 1
            peak = max(peak, inside)
            for _ in range(5):  # give every other step the chance to enter
                await asyncio.sleep(0)
            inside -= 1
        finished.append(workspace)

    await asyncio.gather(*(step(f"ws{i}") for i in range(6)))
    assert peak == 2
    assert sorted(finished) == [f"ws{i}" for i in range(6)]


async def test_terraform_is_started_at_a_lower_cpu_priority(tmp_path: Path) -> None:
    # `nice` without arguments prints the niceness it runs at: the one terraform would get.
    base = os.nice(0)

    async def niceness(nice: int) -> int:
        process = ProcessRunner(kill_grace_seconds=1, faults=FaultPoints(), nice=nice)
        files = CommandFiles(tmp_path / f"{nice}.log", tmp_path / f"{nice}.exit")
        result = await process.run(["nice"], cwd=tmp_path, env=os.environ, files=files, lock=None)
        assert result.returncode == 0 and files.exit_code() == 0, result
        return int(result.output.strip())

    assert await niceness(7) == min(19, base + 7)
    assert await niceness(0) == base


async def test_a_saved_plan_of_a_new_workspace_cannot_be_applied_twice(
    acts: ProvisioningActivities, runner: RecordingRunner, tmp_path: Path
) -> None:
    """A new workspace is planned against an empty state with a lineage, so terraform's own
    stale-plan check refuses a second apply of the plan (say, by a terraform a dead worker left
    running while a retry applied): without a lineage it would create everything again."""
    first = await plan(acts, workspace="lineage", tf_directory="quick", variables={"value": "one"})
    assert plan_state_identity(Path(first.plan_path)) is not None
    copy = tmp_path / "the-same-plan.tfplan"
    shutil.copyfile(first.plan_path, copy)
    await apply(acts, first, "lineage")
    again = await runner.run(
        ["apply", "-input=false", "-no-color", str(copy)],
        cwd=runner.workspace_dir("lineage"),
        env=runner.env({}),
    )
    assert again.returncode != 0 and "Saved plan is stale" in again.output, again.output
