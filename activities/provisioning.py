"""Activities of the provisioning workflows: plan, policy, apply. Side effects live here."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.terraform import (
    Scrubber,
    TerraformError,
    TerraformRunner,
    redact_plan_document,
    render_plan_text,
    sha256_file,
    summarize_plan,
)
from workflows import metrics
from workflows.models import (
    APPLY_ACTIVITY,
    EVALUATE_POLICY_ACTIVITY,
    PLAN_ACTIVITY,
    ApplyInput,
    ApplyResult,
    PlanInput,
    PlanResult,
    PolicyInput,
    PolicyReport,
    TerraformStepInput,
)

log = logging.getLogger(__name__)


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
    ):
        self.runner = runner
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
        if activity.info().attempt == 1 and not path.exists():
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

    def _resolve(self, step: TerraformStepInput) -> tuple[str, dict, str]:
        tf_directory, variables = step.tf_directory, step.variables
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
        return tf_directory, dict(variables), step.scenario

    @activity.defn(name=PLAN_ACTIVITY)
    async def plan(self, step: PlanInput) -> PlanResult:
        self._check_plan_fault(step)
        env_values, scrub, secret_vars = self._passthrough(step.env_passthrough)
        tf_directory, variables, scenario = self._resolve(step)
        try:
            work = self.runner.prepare(step.workspace, tf_directory, variables, scenario)
            env = self.runner.env(env_values)
            with _timed("init"):
                await self.runner.init(work, env, scrub)
            plan_path = self.runner.plans_dir(step.workspace) / f"{step.plan_id}.tfplan"
            self.runner.discard_plans(step.workspace)
            with _timed("plan"):
                document = await self.runner.plan(work, plan_path, env, scrub, destroy=step.destroy)
        except TerraformError as exc:
            raise _app_error(exc) from None
        redacted = redact_plan_document(document, scrub, secret_vars)
        summary = summarize_plan(redacted)
        return PlanResult(
            plan_id=step.plan_id,
            plan_path=str(plan_path),
            plan_sha256=sha256_file(plan_path),
            tf_directory=tf_directory,
            summary=summary,
            plan_text=scrub(render_plan_text(redacted)),
            plan_document=redacted,
        )

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

    @activity.defn(name=APPLY_ACTIVITY)
    async def apply(self, step: ApplyInput) -> ApplyResult:
        info = activity.info()
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
        if info.attempt <= step.faults.apply_failures:
            raise ApplicationError(
                f"simulated cloud API failure (attempt {info.attempt} of "
                f"{step.faults.apply_failures} that fail)",
                type="SimulatedApiFailure",
            )
        env_values, scrub, _ = self._passthrough(step.env_passthrough)
        work = self.runner.workspace_dir(step.workspace)
        env = self.runner.env(env_values)
        last_line = {"text": "starting apply"}

        def on_line(line: str) -> None:
            if line.strip():
                last_line["text"] = scrub(line.strip())[:200]

        async def heartbeat() -> None:
            activity.heartbeat(last_line["text"])

        try:
            with _timed("apply"):
                tail = await self.runner.apply(
                    work, plan_path, env, scrub, on_line=on_line, heartbeat=heartbeat
                )
            with _timed("output"):
                outputs = await self.runner.outputs(work, env, scrub)
        except TerraformError as exc:
            raise _app_error(exc) from None
        except asyncio.CancelledError:
            log.warning("apply of workspace %s cancelled; terraform stopped", step.workspace)
            raise
        plan_path.unlink(missing_ok=True)
        outputs = {k: scrub(v) if isinstance(v, str) else v for k, v in outputs.items()}
        return ApplyResult(outputs=outputs, log_tail=tail)
