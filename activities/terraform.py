"""TerraformRunner: drives the terraform CLI in one working directory per workspace.

Running the process lives in activities/terraform_process.py, plan document redaction in
activities/plan_document.py and plan rendering in activities/plan_rendering.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import shutil
import uuid
import zipfile
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from activities.fault_points import FaultPoints
from activities.plan_document import REDACTED, Scrubber, redact_plan_document
from activities.plan_rendering import render_plan_text, summarize_plan
from activities.shared_store import PgStateBackend, declares_backend
from activities.terraform_process import (
    CommandFiles,
    CommandResult,
    ProcessRunner,
    WorkspaceLock,
)
from workflows.models import TfValue

log = logging.getLogger(__name__)

__all__ = [
    "REDACTED",
    "CommandFiles",
    "CommandResult",
    "Scrubber",
    "StateIdentity",
    "TerraformError",
    "TerraformRunner",
    "redact_plan_document",
    "render_plan_text",
    "sha256_file",
    "summarize_plan",
]

# How long terraform waits for the state lock a dead attempt's terraform may still hold.
LOCK_TIMEOUT = "-lock-timeout=300s"
_CURRENT_LOCK: ContextVar[WorkspaceLock | None] = ContextVar("workspace_lock", default=None)
CONFIG_SUFFIXES = (".tf", ".tf.json", ".tftpl")
# Errors that no retry can fix: the configuration or its inputs are wrong.
_CONFIG_ERROR_MARKERS = (
    "Invalid value for variable",
    "Unsupported argument",
    "Missing required argument",
    "Reference to undeclared",
    "Unsupported block type",
    "Argument or block definition required",
    "Invalid expression",
    "No value for required variable",
    "Invalid reference",
    "Error: Invalid",
)
_STALE_MARKER = "Saved plan is stale"
# Written into a workspace whose configuration declares no backend, when state is shared.
BACKEND_OVERRIDE = "provision_backend_override.tf"
_BACKEND_OVERRIDE_TEXT = (
    "# Written by provision: this workspace's state lives in the shared database.\n"
    'terraform {\n  backend "pg" {}\n}\n'
)


class TargetRecords(Protocol):
    """Where a workspace's configuration record (folder, variables, stack, revision) lives."""

    def read_target(self, workspace: str) -> dict | None: ...

    def write_target(self, workspace: str, target: dict) -> None: ...


class TerraformError(Exception):
    """terraform exited non-zero. `kind` is the ApplicationError type the activity raises."""

    def __init__(self, message: str, *, kind: str = "TerraformError", retryable: bool = True):
        super().__init__(message)
        self.kind = kind
        self.retryable = retryable


@dataclass(frozen=True)
class StateIdentity:
    """Which state a plan was made against, or what a workspace holds now."""

    lineage: str
    serial: int

    @classmethod
    def of(cls, document: Mapping) -> StateIdentity | None:
        lineage = document.get("lineage") or ""
        return cls(lineage, int(document.get("serial") or 0)) if lineage else None


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _first_error(output: str) -> str:
    for line in output.splitlines():
        if line.strip().startswith("Error:"):
            return line.strip()
    return _tail(output, 3).replace("\n", " ")


class TerraformRunner:
    """One object per worker; each call names the workspace it works in.

    A workspace directory holds a copy of the configuration folder, the local state, the
    provider lock and the saved plans, so runs of different workspaces never share state.
    """

    def __init__(
        self,
        *,
        binary: str,
        terraform_root: Path,
        workspaces_dir: Path,
        cli_config_file: Path | None = None,
        path_prefix: Sequence[str] = (),
        base_env: Mapping[str, str] | None = None,
        kill_grace_seconds: float = 10.0,
        fault_points: FaultPoints | None = None,
        state_backend: PgStateBackend | None = None,
        target_records: TargetRecords | None = None,
        max_concurrent: int | None = None,
        nice: int = 0,
    ):
        self.binary = binary
        # At most this many workspaces run terraform at once on this worker (None: no bound);
        # the others wait in `locked`, heartbeating, so a burst of runs queues instead of
        # starving the worker's workflow tasks of CPU.
        self._slots = asyncio.Semaphore(max_concurrent) if max_concurrent else None
        # Shared state (PROVISION_DATABASE_URL): terraform state in the pg backend and the
        # configuration records in the database; None keeps both in the workspace folder.
        self.state_backend = state_backend
        self.target_records = target_records
        self.terraform_root = terraform_root.resolve()
        self.workspaces_dir = workspaces_dir.resolve()
        self.cli_config_file = cli_config_file
        self.path_prefix = tuple(path_prefix)
        self.base_env = dict(os.environ if base_env is None else base_env)
        self.kill_grace_seconds = kill_grace_seconds
        self.fault_points = fault_points or FaultPoints.from_env(self.base_env)
        self.process = ProcessRunner(
            kill_grace_seconds=kill_grace_seconds, faults=self.fault_points, nice=nice
        )

    # Layout -----------------------------------------------------------------------------

    def workspace_dir(self, workspace: str) -> Path:
        path = (self.workspaces_dir / workspace).resolve()
        if path.parent != self.workspaces_dir:
            raise TerraformError(
                f"workspace {workspace!r} escapes the data folder", retryable=False
            )
        return path

    def plans_dir(self, workspace: str) -> Path:
        return self.workspace_dir(workspace) / "plans"

    def config_dir(self, tf_directory: str) -> Path:
        path = (self.terraform_root / tf_directory).resolve()
        if path.parent != self.terraform_root or not path.is_dir():
            raise TerraformError(
                f"no terraform configuration {tf_directory!r} under {self.terraform_root}",
                kind="TerraformConfigError",
                retryable=False,
            )
        return path

    def record_path(self, workspace: str) -> Path:
        return self.workspace_dir(workspace) / "workspace.json"

    def read_record(self, workspace: str) -> dict | None:
        if self.target_records is not None:
            return self.target_records.read_target(workspace)
        path = self.record_path(workspace)
        if not path.exists():
            return None
        return json.loads(path.read_text())

    def apply_files(self, workspace: str, plan_id: str) -> CommandFiles:
        """The apply's output and exit code, kept beside the workspace's apply records."""
        applies = self.workspace_dir(workspace) / "applies"
        return CommandFiles(applies / f"{plan_id}.log", applies / f"{plan_id}.exit")

    @contextlib.asynccontextmanager
    async def locked(self, workspace: str, *, reap: bool) -> AsyncIterator[WorkspaceLock]:
        """Hold the workspace's lock; every terraform started meanwhile inherits it.

        `reap` stops an orphaned terraform of a dead attempt (never an apply, which is awaited).
        The terraform slot is taken after the workspace lock, so no slot idles while a retry
        waits for an orphan.
        """
        work = self.workspace_dir(workspace)
        work.mkdir(parents=True, exist_ok=True, mode=0o700)
        lock = WorkspaceLock(work)
        await lock.acquire(reap=reap, grace_seconds=self.kill_grace_seconds)
        try:
            async with self._slots or contextlib.nullcontext():
                token = _CURRENT_LOCK.set(lock)
                try:
                    yield lock
                finally:
                    _CURRENT_LOCK.reset(token)
        finally:
            lock.release()

    def prepare(
        self,
        workspace: str,
        tf_directory: str,
        variables: Mapping[str, TfValue],
        scenario: str,
        *,
        source: Path | None = None,
        stack: str | None = None,
        revision: str | None = None,
    ) -> Path:
        """Copy the configuration into the workspace and write its (non-secret) variables.

        `source` is a declared stack's folder (its subfolders, local modules, come along);
        without it `tf_directory` names a built-in folder under the terraform root.
        """
        folder = source or self.config_dir(tf_directory)
        work = self.workspace_dir(workspace)
        work.mkdir(parents=True, exist_ok=True, mode=0o700)
        _sync_config(folder, work, subfolders=source is not None)
        self._configure_backend(workspace, work)
        (work / "terraform.tfvars.json").write_text(json.dumps(dict(variables), sort_keys=True))
        record = {
            "workspace": workspace,
            "tf_directory": tf_directory,
            "variables": dict(variables),
            "scenario": scenario,
            "stack": stack,
            "source_revision": revision,
        }
        self.record_path(workspace).write_text(json.dumps(record, sort_keys=True, indent=2))
        if self.target_records is not None:
            self.target_records.write_target(workspace, record)
        return work

    def backend_config_file(self, work: Path) -> Path:
        return work / ".provision" / "backend.hcl"

    def _configure_backend(self, workspace: str, work: Path) -> None:
        """With shared state, a configuration without a backend of its own gets the pg one."""
        config_file = self.backend_config_file(work)
        override = work / BACKEND_OVERRIDE
        if self.state_backend is None:
            config_file.unlink(missing_ok=True)
            return
        texts = {
            p.name: p.read_text(errors="replace")
            for p in work.iterdir()
            if p.is_file() and p.name.endswith((".tf", ".tf.json")) and p.name != BACKEND_OVERRIDE
        }
        if declares_backend(texts):
            override.unlink(missing_ok=True)
            config_file.unlink(missing_ok=True)
            return
        override.write_text(_BACKEND_OVERRIDE_TEXT)
        config_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(config_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(self.state_backend.backend_config(workspace))

    def _init_stamp(self, work: Path) -> str:
        digest = hashlib.sha256()
        for path in sorted(work.iterdir()):
            if path.is_file() and path.name.endswith(CONFIG_SUFFIXES):
                digest.update(path.name.encode())
                digest.update(path.read_bytes())
        backend_config = self.backend_config_file(work)
        if backend_config.exists():
            digest.update(backend_config.read_bytes())
        digest.update(self.binary.encode())
        return digest.hexdigest()

    # Running terraform ------------------------------------------------------------------

    def env(self, passthrough: Mapping[str, str]) -> dict[str, str]:
        env = dict(self.base_env)
        env.update(passthrough)
        env["TF_IN_AUTOMATION"] = "1"
        env["TF_INPUT"] = "0"
        env["NO_COLOR"] = "1"
        env["CHECKPOINT_DISABLE"] = "1"
        if self.cli_config_file:
            env["TF_CLI_CONFIG_FILE"] = str(self.cli_config_file)
        if self.path_prefix:
            env["PATH"] = os.pathsep.join([*self.path_prefix, env.get("PATH", "")])
        if self.state_backend is not None:
            env.update(self.state_backend.env)
        return env

    async def run(
        self,
        args: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        on_line: Callable[[str], None] | None = None,
        heartbeat: Callable[[], Awaitable[None]] | None = None,
        files: CommandFiles | None = None,
    ) -> CommandResult:
        """Run terraform; on cancellation stop it (SIGINT, then SIGKILL) and re-raise."""
        if files is None:
            scratch = cwd / ".provision"
            files = CommandFiles(scratch / f"{args[0]}.log", scratch / f"{args[0]}.exit")
            files.log.unlink(missing_ok=True)
        lock = _CURRENT_LOCK.get()
        return await self.process.run(
            [self.binary, *args],
            cwd=cwd,
            env=env,
            files=files,
            lock=lock if lock is not None and lock.work == cwd else None,
            on_line=on_line,
            heartbeat=heartbeat,
        )

    def _raise_for(self, step: str, result: CommandResult, scrub: Scrubber) -> None:
        if result.returncode == 0:
            return
        output = scrub(result.output)
        if any(marker in output for marker in _CONFIG_ERROR_MARKERS):
            raise TerraformError(
                f"terraform {step} failed: {_first_error(output)}\n{_tail(output)}",
                kind="TerraformConfigError",
                retryable=False,
            )
        raise TerraformError(f"terraform {step} failed: {_first_error(output)}\n{_tail(output)}")

    async def init(self, work: Path, env: Mapping[str, str], scrub: Scrubber) -> bool:
        """`terraform init`, skipped when this exact configuration was initialised already."""
        stamp_file = work / ".terraform" / "provision-init-stamp"
        stamp = self._init_stamp(work)
        if stamp_file.exists() and stamp_file.read_text() == stamp:
            return False
        args = ["init", "-input=false", "-no-color"]
        backend_config = self.backend_config_file(work)
        if backend_config.exists():
            args.append(f"-backend-config={backend_config}")
        result = await self.run(args, cwd=work, env=env)
        self._raise_for("init", result, scrub)
        stamp_file.write_text(stamp)
        return True

    async def plan(
        self,
        work: Path,
        plan_path: Path,
        env: Mapping[str, str],
        scrub: Scrubber,
        *,
        destroy: bool = False,
    ) -> tuple[dict, str]:
        """`plan -out` once, then `show -json` of that file. Returns the raw plan document and
        terraform's own plan text (what every Terraform user reads; not yet scrubbed)."""
        plan_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        args = ["plan", "-input=false", "-no-color", LOCK_TIMEOUT, f"-out={plan_path}"]
        if destroy:
            args.append("-destroy")
        result = await self.run(args, cwd=work, env=env)
        self._raise_for("plan", result, scrub)
        shown = await self.run(["show", "-json", "-no-color", str(plan_path)], cwd=work, env=env)
        self._raise_for("show", shown, scrub)
        return json.loads(shown.output), terraform_plan_text(result.output)

    async def apply(
        self,
        work: Path,
        plan_path: Path,
        env: Mapping[str, str],
        *,
        files: CommandFiles,
        on_line: Callable[[str], None] | None = None,
    ) -> CommandResult:
        """`terraform apply` of a saved plan; the caller judges the result (`apply_error`)."""
        return await self.run(
            ["apply", "-input=false", "-no-color", LOCK_TIMEOUT, str(plan_path)],
            cwd=work,
            env=env,
            on_line=on_line,
            files=files,
        )

    def apply_error(self, result: CommandResult, scrub: Scrubber) -> TerraformError | None:
        if result.returncode == 0:
            return None
        if _STALE_MARKER in result.output:
            return TerraformError(
                "the saved plan is stale: the state changed since it was made",
                kind="StalePlan",
                retryable=False,
            )
        try:
            self._raise_for("apply", result, scrub)
        except TerraformError as exc:
            return exc
        return None

    async def state_identity(self, work: Path, env: Mapping[str, str]) -> StateIdentity | None:
        """The workspace's current state (`state pull` works with any backend)."""
        result = await self.run(["state", "pull"], cwd=work, env=env)
        if result.returncode != 0:
            raise TerraformError(f"terraform state pull failed: {_first_error(result.output)}")
        text = result.output.strip()
        return StateIdentity.of(json.loads(text)) if text.startswith("{") else None

    async def ensure_state(self, work: Path, env: Mapping[str, str]) -> None:
        """Give a new workspace an empty state with a lineage before its first plan.

        Terraform refuses a saved plan whose state has moved on ("Saved plan is stale"), but a
        plan made against *no* state carries nothing to compare, so a second apply of it (a
        terraform a dead worker left running on another host, racing a retry) would create
        everything again. With a lineage from the start, terraform itself refuses that apply.
        """
        if await self.state_identity(work, env) is not None:
            return
        initial = work / ".provision" / "initial.tfstate"
        initial.parent.mkdir(parents=True, exist_ok=True)
        initial.write_text(
            json.dumps(
                {
                    "version": 4,
                    "terraform_version": "1.0.0",
                    "serial": 1,
                    "lineage": str(uuid.uuid4()),
                    "outputs": {},
                    "resources": [],
                }
            )
        )
        result = await self.run(
            ["state", "push", "-no-color", LOCK_TIMEOUT, str(initial)], cwd=work, env=env
        )
        if result.returncode != 0:
            raise TerraformError(f"terraform state push failed: {_first_error(result.output)}")

    async def pending_changes(
        self, work: Path, env: Mapping[str, str], *, destroy: bool = False
    ) -> bool:
        """Whether a fresh plan would change anything. It takes the state lock, so it waits for
        a terraform still running on this workspace (one a dead worker on another host left)."""
        args = ["plan", "-input=false", "-no-color", LOCK_TIMEOUT, "-detailed-exitcode"]
        if destroy:
            args.append("-destroy")
        result = await self.run(args, cwd=work, env=env)
        if result.returncode in (0, 2):
            return result.returncode == 2
        raise TerraformError(f"terraform plan failed: {_first_error(result.output)}")

    async def outputs(self, work: Path, env: Mapping[str, str], scrub: Scrubber) -> dict:
        result = await self.run(["output", "-json", "-no-color"], cwd=work, env=env)
        self._raise_for("output", result, scrub)
        raw = json.loads(result.output or "{}")
        return {
            name: REDACTED if spec.get("sensitive") else spec.get("value")
            for name, spec in sorted(raw.items())
        }

    def discard_plans(self, workspace: str) -> None:
        plans = self.plans_dir(workspace)
        if not plans.is_dir():
            return
        for path in plans.iterdir():
            path.unlink(missing_ok=True)


# What terraform keeps in a workspace folder of its own; never overwritten from a source.
_WORKSPACE_OWN = frozenset({".terraform", "plans", "applies", "terraform.tfstate.d"})


def _sync_config(source: Path, work: Path, *, subfolders: bool) -> None:
    """Make the workspace's configuration files those of `source`, keeping its state."""
    wanted = {p.name for p in source.iterdir() if p.is_file() and p.name.endswith(CONFIG_SUFFIXES)}
    for existing in work.iterdir():
        if existing.is_file() and existing.name.endswith(CONFIG_SUFFIXES):
            if existing.name not in wanted:
                existing.unlink()
    for name in wanted:
        src, dst = source / name, work / name
        data = src.read_bytes()
        if not dst.exists() or dst.read_bytes() != data:
            dst.write_bytes(data)
    if not subfolders:
        return
    for folder in source.iterdir():
        if (
            folder.is_dir()
            and not folder.name.startswith(".")
            and folder.name not in _WORKSPACE_OWN
        ):
            target = work / folder.name
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(folder, target, symlinks=False)


def plan_state_identity(plan_path: Path) -> StateIdentity | None:
    """The state a saved plan was made against: the plan file is a zip holding it."""
    with zipfile.ZipFile(plan_path) as archive:
        return StateIdentity.of(json.loads(archive.read("tfstate")))


def tail(text: str, lines: int = 25) -> str:
    return _tail(text, lines)


# Where terraform's own account of a plan starts, and where its advice about the saved file begins.
_PLAN_STARTS = (
    "Terraform used the selected providers",
    "Terraform will perform",
    "No changes.",
    "Changes to Outputs:",
)
_PLAN_ENDS = ("Saved the plan to:", "─────", "Note: You didn't use the -out option")
TERRAFORM_TEXT_LIMIT = 200_000


def terraform_plan_text(output: str, limit: int = TERRAFORM_TEXT_LIMIT) -> str:
    """Terraform's own plan text from `terraform plan` output: without the refresh lines before
    it and the note about the saved file after it; bounded (it travels in the run's history)."""
    lines = output.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith(_PLAN_STARTS)), 0)
    end = next(
        (i for i, line in enumerate(lines) if i > start and line.startswith(_PLAN_ENDS)),
        len(lines),
    )
    text = "\n".join(lines[start:end]).strip("\n") + "\n"
    if len(text) > limit:
        text = text[:limit].rsplit("\n", 1)[0] + "\n… (truncated: the plan is longer)\n"
    return text
