"""TerraformRunner: drives the terraform CLI in one working directory per workspace."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import re
import shutil
import signal
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from workflows.models import PlanSummary, TfValue

log = logging.getLogger(__name__)

REDACTED = "(sensitive)"
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
_STALE_MARKERS = ("Saved plan is stale", "plan file", "Failed to load")


class TerraformError(Exception):
    """terraform exited non-zero. `kind` is the ApplicationError type the activity raises."""

    def __init__(self, message: str, *, kind: str = "TerraformError", retryable: bool = True):
        super().__init__(message)
        self.kind = kind
        self.retryable = retryable


@dataclass
class CommandResult:
    args: list[str]
    returncode: int
    output: str


@dataclass
class Scrubber:
    """Replaces known secret values in any text that leaves the worker."""

    secrets: list[str] = field(default_factory=list)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            if secret:
                text = text.replace(secret, "(redacted)")
        return text


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
    ):
        self.binary = binary
        self.terraform_root = terraform_root.resolve()
        self.workspaces_dir = workspaces_dir.resolve()
        self.cli_config_file = cli_config_file
        self.path_prefix = tuple(path_prefix)
        self.base_env = dict(os.environ if base_env is None else base_env)
        self.kill_grace_seconds = kill_grace_seconds

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
        path = self.record_path(workspace)
        if not path.exists():
            return None
        return json.loads(path.read_text())

    def prepare(
        self, workspace: str, tf_directory: str, variables: Mapping[str, TfValue], scenario: str
    ) -> Path:
        """Copy the configuration into the workspace and write its (non-secret) variables."""
        source = self.config_dir(tf_directory)
        work = self.workspace_dir(workspace)
        work.mkdir(parents=True, exist_ok=True, mode=0o700)
        wanted = {
            p.name for p in source.iterdir() if p.is_file() and p.name.endswith(CONFIG_SUFFIXES)
        }
        for existing in work.iterdir():
            if existing.is_file() and existing.name.endswith(CONFIG_SUFFIXES):
                if existing.name not in wanted:
                    existing.unlink()
        for name in wanted:
            src, dst = source / name, work / name
            data = src.read_bytes()
            if not dst.exists() or dst.read_bytes() != data:
                dst.write_bytes(data)
        (work / "terraform.tfvars.json").write_text(json.dumps(dict(variables), sort_keys=True))
        record = {
            "workspace": workspace,
            "tf_directory": tf_directory,
            "variables": dict(variables),
            "scenario": scenario,
        }
        self.record_path(workspace).write_text(json.dumps(record, sort_keys=True, indent=2))
        return work

    def _init_stamp(self, work: Path) -> str:
        digest = hashlib.sha256()
        for path in sorted(work.iterdir()):
            if path.is_file() and path.name.endswith(CONFIG_SUFFIXES):
                digest.update(path.name.encode())
                digest.update(path.read_bytes())
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
        return env

    async def run(
        self,
        args: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        on_line: Callable[[str], None] | None = None,
        heartbeat: Callable[[], Awaitable[None]] | None = None,
    ) -> CommandResult:
        """Run terraform; on cancellation stop it (SIGINT, then SIGKILL) and re-raise."""
        argv = [self.binary, *args]
        proc = await asyncio.create_subprocess_exec(
            *argv,
            cwd=str(cwd),
            env=dict(env),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
        chunks: list[str] = []

        async def pump() -> None:
            assert proc.stdout is not None
            async for raw in proc.stdout:
                line = raw.decode(errors="replace")
                chunks.append(line)
                if on_line:
                    on_line(line.rstrip("\n"))

        async def beat() -> None:
            while heartbeat is not None:
                await heartbeat()
                await asyncio.sleep(2)

        beater = asyncio.create_task(beat()) if heartbeat else None
        try:
            await pump()
            returncode = await proc.wait()
        except asyncio.CancelledError:
            await self._stop(proc)
            raise
        finally:
            if beater:
                beater.cancel()
        return CommandResult(list(args), returncode, "".join(chunks))

    async def _stop(self, proc: asyncio.subprocess.Process) -> None:
        if proc.returncode is not None:
            return
        log.warning("stopping terraform (pid %s): SIGINT", proc.pid)
        try:
            os.killpg(proc.pid, signal.SIGINT)
        except ProcessLookupError:
            return
        try:
            await asyncio.wait_for(asyncio.shield(proc.wait()), self.kill_grace_seconds)
        except TimeoutError:
            log.warning("terraform (pid %s) ignored SIGINT: SIGKILL", proc.pid)
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                return
            await proc.wait()

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
        result = await self.run(["init", "-input=false", "-no-color"], cwd=work, env=env)
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
    ) -> dict:
        """`plan -out` once, then `show -json` of that file. Returns the raw plan document."""
        plan_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        args = ["plan", "-input=false", "-no-color", f"-out={plan_path}"]
        if destroy:
            args.append("-destroy")
        result = await self.run(args, cwd=work, env=env)
        self._raise_for("plan", result, scrub)
        shown = await self.run(["show", "-json", "-no-color", str(plan_path)], cwd=work, env=env)
        self._raise_for("show", shown, scrub)
        return json.loads(shown.output)

    async def apply(
        self,
        work: Path,
        plan_path: Path,
        env: Mapping[str, str],
        scrub: Scrubber,
        *,
        on_line: Callable[[str], None] | None = None,
        heartbeat: Callable[[], Awaitable[None]] | None = None,
    ) -> str:
        result = await self.run(
            ["apply", "-input=false", "-no-color", str(plan_path)],
            cwd=work,
            env=env,
            on_line=on_line,
            heartbeat=heartbeat,
        )
        if result.returncode != 0 and any(m in result.output for m in _STALE_MARKERS[:1]):
            raise TerraformError(
                "the saved plan is stale: the state changed since it was made",
                kind="StalePlan",
                retryable=False,
            )
        self._raise_for("apply", result, scrub)
        return scrub(_tail(result.output, 15))

    async def outputs(self, work: Path, env: Mapping[str, str], scrub: Scrubber) -> dict:
        result = await self.run(["output", "-json", "-no-color"], cwd=work, env=env)
        self._raise_for("output", result, scrub)
        raw = json.loads(result.output or "{}")
        return {
            name: REDACTED if spec.get("sensitive") else spec.get("value")
            for name, spec in sorted(raw.items())
        }

    def discard_plans(self, workspace: str, keep: Path | None = None) -> None:
        plans = self.plans_dir(workspace)
        if not plans.is_dir():
            return
        for path in plans.iterdir():
            if keep is None or path != keep:
                path.unlink(missing_ok=True)

    def remove_workspace(self, workspace: str) -> None:
        shutil.rmtree(self.workspace_dir(workspace), ignore_errors=True)


# Plan documents ---------------------------------------------------------------------------


def _redact(value: object, sensitive: object) -> object:
    """Replace the parts of `value` that terraform's sensitivity mask marks as sensitive."""
    if sensitive is True:
        return REDACTED if value is not None else None
    if isinstance(value, dict) and isinstance(sensitive, dict):
        return {k: _redact(v, sensitive.get(k, False)) for k, v in value.items()}
    if isinstance(value, list) and isinstance(sensitive, list):
        return [
            _redact(v, sensitive[i] if i < len(sensitive) else False) for i, v in enumerate(value)
        ]
    return value


def _sensitive_variables(document: dict) -> set[str]:
    variables = document.get("configuration", {}).get("root_module", {}).get("variables", {})
    return {name for name, spec in variables.items() if spec.get("sensitive")}


def redact_plan_document(document: dict, scrub: Scrubber, extra_sensitive: set[str]) -> dict:
    """The parts of a `terraform show -json` plan that policies need, with no secret in them."""
    secret_vars = _sensitive_variables(document) | extra_sensitive
    variables = {
        name: {"value": REDACTED if name in secret_vars else spec.get("value")}
        for name, spec in document.get("variables", {}).items()
    }
    changes = []
    for rc in document.get("resource_changes", []):
        change = rc.get("change", {})
        changes.append(
            {
                **{k: v for k, v in rc.items() if k != "change"},
                "change": {
                    "actions": change.get("actions", []),
                    "before": _redact(change.get("before"), change.get("before_sensitive", False)),
                    "after": _redact(change.get("after"), change.get("after_sensitive", False)),
                    "after_unknown": change.get("after_unknown", {}),
                },
            }
        )
    outputs = {}
    for name, oc in document.get("output_changes", {}).items():
        outputs[name] = {
            "actions": oc.get("actions", []),
            "before": _redact(oc.get("before"), oc.get("before_sensitive", False)),
            "after": _redact(oc.get("after"), oc.get("after_sensitive", False)),
        }
    redacted = {
        "format_version": document.get("format_version"),
        "terraform_version": document.get("terraform_version"),
        "variables": variables,
        "resource_changes": changes,
        "output_changes": outputs,
    }
    # Belt and braces: no known secret value survives, whatever the configuration declared.
    return json.loads(scrub(json.dumps(redacted)))


def summarize_plan(document: dict, max_resources: int = 50) -> PlanSummary:
    summary = PlanSummary()
    for rc in document.get("resource_changes", []):
        actions = rc.get("change", {}).get("actions", [])
        if actions in (["no-op"], ["read"]):
            continue
        if "create" in actions:
            summary.add += 1
        if "delete" in actions:
            summary.destroy += 1
        if actions == ["update"]:
            summary.change += 1
        if len(summary.resources) < max_resources:
            summary.resources.append(f"{_symbol(actions)} {rc.get('address')}")
    return summary


def _symbol(actions: list[str]) -> str:
    if actions == ["create"]:
        return "+"
    if actions == ["delete"]:
        return "-"
    if actions == ["update"]:
        return "~"
    if "create" in actions and "delete" in actions:
        return "-/+"
    return "?"


_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def _flatten(prefix: str, value: object, out: list[tuple[str, object]]) -> None:
    if isinstance(value, dict) and value:
        for key in sorted(value):
            name = key if _IDENT.match(key) else json.dumps(key)
            _flatten(f"{prefix}.{name}" if prefix else name, value[key], out)
    else:
        out.append((prefix, value))


def render_plan_text(redacted: dict, max_lines: int = 400) -> str:
    """A terraform-like, human-readable plan from the redacted document."""
    lines: list[str] = []
    summary = summarize_plan(redacted)
    for rc in redacted.get("resource_changes", []):
        change = rc["change"]
        actions = change["actions"]
        if actions in (["no-op"], ["read"]):
            continue
        lines.append(f"{_symbol(actions)} {rc['address']}")
        attrs: list[tuple[str, object]] = []
        _flatten(
            "", change.get("after") if "delete" != actions[-1] else change.get("before"), attrs
        )
        for name, value in attrs:
            if name in ("", "id"):
                continue
            shown = "(known after apply)" if value is None else json.dumps(value)
            lines.append(f"    {name} = {shown}")
    outputs = redacted.get("output_changes", {})
    changed_outputs = {k: v for k, v in outputs.items() if v.get("actions") != ["no-op"]}
    if changed_outputs:
        lines.append("")
        lines.append("Changes to Outputs:")
        for name, oc in sorted(changed_outputs.items()):
            after = oc.get("after")
            shown = "(known after apply)" if after is None else json.dumps(after)
            lines.append(f"  {_symbol(oc.get('actions', []))} {name} = {shown}")
    lines.append("")
    if summary.has_changes:
        lines.append(
            f"Plan: {summary.add} to add, {summary.change} to change, {summary.destroy} to destroy."
        )
    else:
        lines.append("No changes. Your infrastructure matches the configuration.")
    if len(lines) > max_lines:
        lines = lines[: max_lines - 1] + [f"... ({len(lines) - max_lines + 1} more lines)"]
    return "\n".join(lines)
