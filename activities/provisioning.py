"""Activities of the provisioning workflows: plan, policy, apply. Side effects live here."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.apply_once import ApplyJob, ApplyOnce
from activities.plan_document import Scrubber, redact_plan_document
from activities.plan_rendering import render_plan_text, summarize_plan
from activities.shared_store import PgPlanStore, PlanRefused
from activities.sources import ResolvedSource, SourceResolver
from activities.terraform import TerraformError, TerraformRunner, sha256_file
from activities.terraform_process import heartbeating
from activities.workspace_store import FileWorkspaceStore, WorkspaceStore
from activities.workspaces import FileWorkspaceRecords, WorkspaceRecords
from stacks.registry import BUILTIN_STACKS
from workflows import metrics
from workflows.contracts import APPLY_ACTIVITY, EVALUATE_POLICY_ACTIVITY, PLAN_ACTIVITY
from workflows.models import (
    ApplyInput,
    ApplyResult,
    PlanInput,
    PlanResult,
    PolicyInput,
    PolicyReport,
    TerraformStepInput,
)

log = logging.getLogger(__name__)


def _attempt(step: TerraformStepInput) -> int:
    """The workflow counts the attempts it makes; the server counts its own retries."""
    return max(step.attempt, activity.info().attempt)


def _beat(detail: dict[str, str]) -> Callable[[], None]:
    return lambda: activity.heartbeat(detail["text"])


def _app_error(exc: TerraformError) -> ApplicationError:
    return ApplicationError(str(exc), type=exc.kind, non_retryable=not exc.retryable)


@contextlib.contextmanager
def _timed(step: str) -> Iterator[None]:
    """Record how long a terraform step took, and whether it succeeded, on the worker's meter."""
    started = time.monotonic()
    outcome = "error"
    try:
        yield
        outcome = "ok"
    except asyncio.CancelledError:
        outcome = "cancelled"
        raise
    finally:
        activity.metric_meter().create_histogram_float(
            metrics.TERRAFORM_STEP, metrics.DESCRIPTIONS[metrics.TERRAFORM_STEP], "s"
        ).record(time.monotonic() - started, {"step": step, "outcome": outcome})


def _count_policy(report: PolicyReport) -> None:
    meter = activity.metric_meter()
    meter.create_counter(
        metrics.POLICY_EVALUATIONS, metrics.DESCRIPTIONS[metrics.POLICY_EVALUATIONS]
    ).add(1, {"verdict": report.verdict})
    findings = meter.create_counter(
        metrics.POLICY_FINDINGS, metrics.DESCRIPTIONS[metrics.POLICY_FINDINGS]
    )
    for finding in report.findings:
        findings.add(1, {"rule": finding.rule, "level": finding.level.value})


@dataclass(frozen=True)
class _Target:
    """What a step works on: the configuration, its variables, and where a stack's came from."""

    tf_directory: str
    variables: dict
    scenario: str
    stack: str | None
    revision: str | None


class ProvisioningActivities:
    """Dependencies come in through the constructor, so tests can pass their own."""

    def __init__(
        self,
        runner: TerraformRunner,
        policy_evaluator: object,
        *,
        data_dir: Path,
        worker_env: Mapping[str, str] | None = None,
        extra_passthrough: Sequence[str] = (),
        store: WorkspaceStore | None = None,
        sources: SourceResolver | None = None,
        records: WorkspaceRecords | None = None,
        plans: PgPlanStore | None = None,
    ):
        self.runner = runner
        self.sources = sources
        # Looked up per call: a runner may be given later (tests build activities without one).
        self.store = store or FileWorkspaceStore(lambda ws: self.runner.workspace_dir(ws))
        # Ownership records, claimed before every plan (activities/workspaces.py).
        self.workspace_records = records or (
            FileWorkspaceRecords(runner.workspaces_dir) if runner is not None else None
        )
        # Shared saved plans: set when workers share a database; None keeps them on this worker.
        self.plans = plans
        self.apply_once = ApplyOnce(runner, self.store, timed=_timed)
        self.policy = policy_evaluator
        self.data_dir = data_dir
        self.worker_env = dict(os.environ if worker_env is None else worker_env)
        # Names the operator passes to every run (PROVISION_PASSTHROUGH_ENV), beside the request's.
        self.extra_passthrough = tuple(extra_passthrough)

    # Secrets: only names travel in inputs; values are read here, in the worker.

    def _passthrough(self, names: list[str]) -> tuple[dict[str, str], Scrubber, set[str]]:
        names = sorted({*names, *self.extra_passthrough})
        values = {name: self.worker_env[name] for name in names if name in self.worker_env}
        scrub = Scrubber([v for v in values.values() if len(v) >= 4])
        tf_vars = {name[len("TF_VAR_") :] for name in names if name.startswith("TF_VAR_")}
        return values, scrub, tf_vars

    def fault_switch_path(self, name: str) -> Path:
        return self.data_dir / "faults" / name

    def _check_plan_fault(self, step: TerraformStepInput) -> None:
        switch = step.faults.plan_fault_switch
        if not switch:
            return
        path = self.fault_switch_path(switch)
        if _attempt(step) == 1 and not path.exists():
            # The scenario turns its switch on at the first attempt so every demo shows the fault.
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(
                "While this file exists, plans of the recoverable-failure scenario fail.\n"
                "Remove it (provision fault clear recoverable-failure) and the next retry succeeds.\n"
            )
        if path.exists():
            raise ApplicationError(
                f"simulated bug: the fault switch {path} is on; clear it with "
                f"`provision fault clear {switch}` and the next retry succeeds",
                type="InjectedFault",
            )

    def _resolve(self, step: TerraformStepInput) -> _Target:
        tf_directory, variables = step.tf_directory, step.variables
        stack, revision = step.stack, None
        if tf_directory is None or variables is None:
            record = self.runner.read_record(step.workspace)
            if record is None:
                raise ApplicationError(
                    f"workspace {step.workspace!r} has no record on this worker: nothing to destroy",
                    type="UnknownWorkspace",
                    non_retryable=True,
                )
            tf_directory = tf_directory or record["tf_directory"]
            variables = variables if variables is not None else record["variables"]
            stack = stack or record.get("stack")
            # A destroy tears down what was applied: the same commit of a git source.
            revision = record.get("source_revision")
        return _Target(tf_directory, dict(variables), step.scenario, stack, revision)

    async def _source(self, target: _Target) -> ResolvedSource | None:
        declared = self.sources is not None and self.sources.declared(target.stack)
        if not declared:
            if target.stack and target.stack not in BUILTIN_STACKS:
                # A stack of the requester's stacks file that this worker was not given.
                raise TerraformError(
                    f"stack {target.stack!r} is not declared in this worker's stacks file "
                    "(PROVISION_STACKS_FILE)",
                    kind="TerraformConfigError",
                    retryable=False,
                )
            return None
        return await self.sources.resolve(target.stack or "", target.revision)

    @activity.defn(name=PLAN_ACTIVITY)
    async def plan(self, step: PlanInput) -> PlanResult:
        self._check_plan_fault(step)
        env_values, scrub, secret_vars = self._passthrough(step.env_passthrough)
        target = self._resolve(step)
        detail = {"text": "waiting for the workspace"}
        try:
            async with heartbeating(_beat(detail)):
                detail["text"] = "fetching the stack's source"
                source = await self._source(target)
                detail["text"] = "waiting for the workspace"
                async with self.runner.locked(step.workspace, reap=True):
                    detail["text"] = "planning"
                    plan_path, document, text = await self._plan(
                        step, target, source, env_values, scrub
                    )
        except TerraformError as exc:
            raise _app_error(exc) from None
        redacted = redact_plan_document(document, scrub, secret_vars)
        summary = summarize_plan(redacted)
        return PlanResult(
            plan_id=step.plan_id,
            plan_path=str(plan_path),
            plan_sha256=sha256_file(plan_path),
            tf_directory=target.tf_directory,
            summary=summary,
            # Terraform's own text, scrubbed of every secret value the worker passed through;
            # the rendering of the redacted document when terraform said nothing readable.
            plan_text=scrub(text) if text.strip() else scrub(render_plan_text(redacted)),
            plan_document=redacted,
            source_revision=source.revision if source else None,
        )

    async def _plan(
        self,
        step: PlanInput,
        target: _Target,
        source: ResolvedSource | None,
        env_values: dict[str, str],
        scrub: Scrubber,
    ) -> tuple[Path, dict, str]:
        work = self._prepare(step.workspace, target, source)
        env = self.runner.env({**env_values, "TF_VAR_workspace": step.workspace})
        with _timed("init"):
            await self.runner.init(work, env, scrub)
            await self.runner.ensure_state(work, env)
        plan_path = self.runner.plans_dir(step.workspace) / f"{step.plan_id}.tfplan"
        self.runner.discard_plans(step.workspace)
        with _timed("plan"):
            document, text = await self.runner.plan(
                work, plan_path, env, scrub, destroy=step.destroy
            )
        if self.plans is not None:
            self.plans.save(
                step.workspace, step.plan_id, plan_path.read_bytes(), destroy=step.destroy
            )
        return plan_path, document, text

    @activity.defn(name=EVALUATE_POLICY_ACTIVITY)
    async def evaluate_policy(self, request: PolicyInput) -> PolicyReport:
        from activities.policy import PolicyError, PolicySyntaxError

        try:
            document = {**request.plan_document, "provision": {"destroy": request.destroy}}
            report = self.policy.evaluate(document)
        except PolicySyntaxError as exc:
            raise ApplicationError(str(exc), type="PolicySyntaxError", non_retryable=True) from None
        except PolicyError as exc:
            raise ApplicationError(str(exc), type="PolicyError", non_retryable=True) from None
        _count_policy(report)
        return report

    def _check_plan_file(self, step: ApplyInput) -> Path:
        plan_path = Path(step.plan_path)
        expected_dir = self.runner.plans_dir(step.workspace)
        if plan_path.parent.resolve() != expected_dir or not plan_path.exists():
            raise ApplicationError(
                f"the saved plan {plan_path.name} is missing on this worker: replan",
                type="StalePlan",
                non_retryable=True,
            )
        if sha256_file(plan_path) != step.plan_sha256:
            raise ApplicationError(
                "the saved plan file does not match the plan that was checked and approved",
                type="StalePlan",
                non_retryable=True,
            )
        return plan_path

    def _applied_target(self, step: ApplyInput) -> _Target:
        """What the plan was made from, as the planning worker recorded it (its revision too)."""
        record = self.runner.read_record(step.workspace)
        if record is None:
            return self._resolve(step)
        return _Target(
            record["tf_directory"],
            dict(record["variables"]),
            step.scenario,
            record.get("stack") or step.stack,
            record.get("source_revision"),
        )

    def _prepare(self, workspace: str, target: _Target, source: ResolvedSource | None) -> Path:
        """Lay out the workspace's configuration (the stack's, at its planned revision)."""
        return self.runner.prepare(
            workspace,
            target.tf_directory,
            target.variables,
            target.scenario,
            source=source.folder if source else None,
            stack=target.stack,
            revision=source.revision if source else target.revision,
        )

    async def _fetch_shared_plan(
        self, step: ApplyInput, job: ApplyJob, target: _Target, source: ResolvedSource | None
    ) -> None:
        """Lay out the workspace on this worker and fetch the approved plan into it."""
        assert self.plans is not None
        if "/" in job.plan_id or job.plan_id.startswith("."):
            raise ApplicationError(
                f"plan id {job.plan_id!r} is not a file name", type="StalePlan", non_retryable=True
            )
        work = self._prepare(step.workspace, target, source)
        with _timed("init"):
            await self.runner.init(work, job.env, job.scrub)
        try:
            stored = self.plans.fetch(step.workspace, job.plan_id, step.plan_sha256)
        except PlanRefused as exc:
            raise ApplicationError(str(exc), type="StalePlan", non_retryable=True) from None
        plans = self.runner.plans_dir(step.workspace)
        plans.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = plans / f"{job.plan_id}.tfplan"
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(stored.data)
        tmp.replace(path)
        job.plan_path = path
        job.destroy = stored.destroy

    def _apply_job(self, step: ApplyInput, detail: dict[str, str]) -> ApplyJob:
        env_values, scrub, _ = self._passthrough(step.env_passthrough)

        def on_line(line: str) -> None:
            if line.strip():
                detail["text"] = scrub(line.strip())[:200]

        return ApplyJob(
            workspace=step.workspace,
            plan_id=step.plan_id or Path(step.plan_path).stem,
            plan_path=Path(step.plan_path),
            plan_sha256=step.plan_sha256,
            attempt=_attempt(step),
            env=self.runner.env({**env_values, "TF_VAR_workspace": step.workspace}),
            scrub=scrub,
            on_line=on_line,
        )

    @activity.defn(name=APPLY_ACTIVITY)
    async def apply(self, step: ApplyInput) -> ApplyResult:
        detail = {"text": "starting apply"}
        job = self._apply_job(step, detail)
        done = self.apply_once.recorded_success(job)
        if done is not None:
            return done
        if self.plans is None:
            self._check_plan_file(step)
        attempt = job.attempt
        if not self.apply_once.has_record(job) and attempt <= step.faults.apply_failures:
            raise ApplicationError(
                f"simulated cloud API failure (attempt {attempt} of "
                f"{step.faults.apply_failures} that fail)",
                type="SimulatedApiFailure",
            )
        try:
            async with heartbeating(_beat(detail)):
                if self.plans is None:
                    async with self.runner.locked(step.workspace, reap=True):
                        return await self.apply_once.apply(job)
                target = self._applied_target(step)
                source = await self._source(target)
                async with self.runner.locked(step.workspace, reap=True):
                    detail["text"] = "fetching the saved plan"
                    await self._fetch_shared_plan(step, job, target, source)
                    result = await self.apply_once.apply(job)
                self.plans.discard(step.workspace, job.plan_id)
                return result
        except TerraformError as exc:
            raise _app_error(exc) from None
        except asyncio.CancelledError:
            log.warning("apply of workspace %s cancelled; terraform stopped", step.workspace)
            raise
