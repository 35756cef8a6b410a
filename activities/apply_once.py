"""Applies a saved plan at most once, whatever crashes where.

Before terraform starts, the workspace store records that the plan's apply has begun; terraform's
exit code reaches a file even when the worker dies (activities/terraform_process.py); after it
exits the outcome and outputs are recorded. A retry returns a recorded success, settles an apply
whose outcome the crash left unknown from its exit code or, failing that, from the state (lineage
and serial against those the plan was made on), and applies only a plan that never changed it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from activities.plan_document import Scrubber
from activities.terraform import (
    CommandResult,
    TerraformError,
    TerraformRunner,
    plan_state_identity,
    tail,
)
from activities.workspace_store import ApplyRecord, WorkspaceStore
from workflows.models import ApplyResult

log = logging.getLogger(__name__)

APPLY_COMPLETE = "Apply complete!"
# The plan must not be applied again: its apply changed the state. The workflow replans, and
# knows that this run changed the infrastructure whatever the new plan says.
PARTLY_APPLIED = "PartlyApplied"


@dataclass
class ApplyJob:
    workspace: str
    plan_id: str
    plan_path: Path
    plan_sha256: str
    attempt: int
    env: Mapping[str, str]
    scrub: Scrubber
    on_line: Callable[[str], None] | None = None
    # A destroy plan (settling an interrupted apply compares with a fresh plan of the same kind).
    destroy: bool = False


def _result(record: ApplyRecord) -> ApplyResult:
    return ApplyResult(outputs=dict(record.outputs), log_tail=record.log_tail)


class ApplyOnce:
    def __init__(
        self,
        runner: TerraformRunner,
        store: WorkspaceStore,
        timed: Callable[[str], AbstractContextManager] = lambda step: contextlib.nullcontext(),
    ) -> None:
        self.runner = runner
        self.store = store
        # Times each terraform step on the worker's meter.
        self.timed = timed

    def recorded_success(self, job: ApplyJob) -> ApplyResult | None:
        record = self.store.load_apply(job.workspace, job.plan_id)
        if record is None or record.phase != "succeeded":
            return None
        log.warning(
            "plan %s was applied already (attempt %s): returning its recorded result",
            job.plan_id,
            record.attempt,
        )
        return _result(record)

    def has_record(self, job: ApplyJob) -> bool:
        return self.store.load_apply(job.workspace, job.plan_id) is not None

    async def apply(self, job: ApplyJob) -> ApplyResult:
        """Call with the workspace lock held, so no terraform of a dead attempt still runs."""
        done = self.recorded_success(job)
        if done is not None:
            return done
        record = self.store.load_apply(job.workspace, job.plan_id)
        if record is not None and record.phase == "begun":
            settled = await self._settle(job, record)
            if settled is not None:
                return settled
        record = ApplyRecord(
            plan_id=job.plan_id, plan_sha256=job.plan_sha256, phase="begun", attempt=job.attempt
        )
        self.store.save_apply(job.workspace, record)
        work = self.runner.workspace_dir(job.workspace)
        files = self.runner.apply_files(job.workspace, job.plan_id)
        with self.timed("apply"):
            result = await self.runner.apply(
                work, job.plan_path, job.env, files=files, on_line=job.on_line
            )
        self.runner.fault_points.reach("after-apply-exit")
        return await self._finish(job, record, result, settled_by="exit")

    async def _settle(self, job: ApplyJob, record: ApplyRecord) -> ApplyResult | None:
        """An earlier attempt began this apply and never recorded how it ended."""
        files = self.runner.apply_files(job.workspace, job.plan_id)
        output = files.output()
        code = files.exit_code()
        if code is not None:
            log.warning("plan %s: attempt %s's apply exited %s", job.plan_id, record.attempt, code)
            return await self._finish(job, record, CommandResult(["apply"], code, output), "exit")
        if self.runner.state_backend is not None and not files.log.exists():
            return await self._settle_from_elsewhere(job, record)
        if not await self._state_moved(job):
            log.warning("plan %s: the interrupted apply changed nothing; applying", job.plan_id)
            return None
        if APPLY_COMPLETE in output:
            log.warning("plan %s: the interrupted apply completed (state moved on)", job.plan_id)
            return await self._finish(job, record, CommandResult(["apply"], 0, output), "state")
        error = TerraformError(
            "an interrupted apply of this plan changed the state and its outcome is unknown: "
            "replan to see what is left",
            kind=PARTLY_APPLIED,
            retryable=False,
        )
        self._record_failure(job, record, None, error)
        raise error

    async def _settle_from_elsewhere(
        self, job: ApplyJob, record: ApplyRecord
    ) -> ApplyResult | None:
        """The interrupted attempt ran on another worker: its log and exit code are there, its
        terraform may even still run. A fresh plan waits for that terraform's state lock; then
        an unmoved state means apply, and a moved one with nothing left to do means it applied."""
        work = self.runner.workspace_dir(job.workspace)
        pending = await self.runner.pending_changes(work, job.env, destroy=job.destroy)
        if not await self._state_moved(job):
            log.warning("plan %s: the apply begun elsewhere changed nothing; applying", job.plan_id)
            return None
        if not pending:
            log.warning("plan %s: the apply begun elsewhere completed (state moved)", job.plan_id)
            done = CommandResult(["apply"], 0, f"{APPLY_COMPLETE} (settled from the state)")
            return await self._finish(job, record, done, "state")
        error = TerraformError(
            "an apply of this plan interrupted on another worker changed the state and left "
            "changes undone: replan to see what is left",
            kind="StalePlan",
            retryable=False,
        )
        self._record_failure(job, record, None, error)
        raise error

    async def _state_moved(self, job: ApplyJob) -> bool:
        work = self.runner.workspace_dir(job.workspace)
        now = await self.runner.state_identity(work, job.env)
        return now != plan_state_identity(job.plan_path)

    async def _finish(
        self, job: ApplyJob, record: ApplyRecord, result: CommandResult, settled_by: str
    ) -> ApplyResult:
        error = self.runner.apply_error(result, job.scrub)
        if error is not None:
            if error.kind != "StalePlan" and await self._state_moved(job):
                # A plan made on an empty state passes terraform's own staleness check.
                error = TerraformError(
                    f"{error}\nThe failed apply changed the state: replan to see what is left",
                    kind=PARTLY_APPLIED,
                    retryable=False,
                )
            self._record_failure(job, record, result.returncode, error)
            raise error
        work = self.runner.workspace_dir(job.workspace)
        with self.timed("output"):
            outputs = await self.runner.outputs(work, job.env, job.scrub)
        outputs = {k: job.scrub(v) if isinstance(v, str) else v for k, v in outputs.items()}
        done = record.model_copy(
            update={
                "phase": "succeeded",
                "exit_code": result.returncode,
                "outputs": outputs,
                "log_tail": job.scrub(tail(result.output, 15)),
                "finished_at": datetime.now(UTC),
                "settled_by": settled_by,
            }
        )
        self.store.save_apply(job.workspace, done)
        self.runner.fault_points.reach("after-apply-recorded")
        job.plan_path.unlink(missing_ok=True)
        return _result(done)

    def _record_failure(
        self, job: ApplyJob, record: ApplyRecord, code: int | None, error: TerraformError
    ) -> None:
        failed = record.model_copy(
            update={
                "phase": "failed",
                "exit_code": code,
                "error": job.scrub(str(error))[:2000],
                "finished_at": datetime.now(UTC),
            }
        )
        self.store.save_apply(job.workspace, failed)
