"""Plan rendering: the summary and the terraform-like text people read, from a redacted plan."""

from __future__ import annotations

import json
import re

from workflows.models import PlanSummary

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def _skipped(actions: list[str]) -> bool:
    return actions in (["no-op"], ["read"])


def summarize_plan(document: dict, max_resources: int = 50) -> PlanSummary:
    summary = PlanSummary()
    for rc in document.get("resource_changes", []):
        actions = rc.get("change", {}).get("actions", [])
        if _skipped(actions):
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


def _flatten(prefix: str, value: object, out: list[tuple[str, object]]) -> None:
    if isinstance(value, dict) and value:
        for key in sorted(value):
            name = key if _IDENT.match(key) else json.dumps(key)
            _flatten(f"{prefix}.{name}" if prefix else name, value[key], out)
    else:
        out.append((prefix, value))


def _shown(value: object) -> str:
    return "(known after apply)" if value is None else json.dumps(value)


def _resource_lines(redacted: dict) -> list[str]:
    lines: list[str] = []
    for rc in redacted.get("resource_changes", []):
        change = rc["change"]
        actions = change["actions"]
        if _skipped(actions):
            continue
        lines.append(f"{_symbol(actions)} {rc['address']}")
        attrs: list[tuple[str, object]] = []
        _flatten(
            "", change.get("after") if actions[-1] != "delete" else change.get("before"), attrs
        )
        lines += [
            f"    {name} = {_shown(value)}" for name, value in attrs if name not in ("", "id")
        ]
    return lines


def _output_lines(redacted: dict) -> list[str]:
    outputs = redacted.get("output_changes", {})
    changed = {k: v for k, v in outputs.items() if v.get("actions") != ["no-op"]}
    if not changed:
        return []
    lines = ["", "Changes to Outputs:"]
    for name, oc in sorted(changed.items()):
        lines.append(f"  {_symbol(oc.get('actions', []))} {name} = {_shown(oc.get('after'))}")
    return lines


def render_plan_text(redacted: dict, max_lines: int = 400) -> str:
    """A terraform-like, human-readable plan from the redacted document."""
    summary = summarize_plan(redacted)
    lines = _resource_lines(redacted) + _output_lines(redacted) + [""]
    if summary.has_changes:
        lines.append(
            f"Plan: {summary.add} to add, {summary.change} to change, {summary.destroy} to destroy."
        )
    else:
        lines.append("No changes. Your infrastructure matches the configuration.")
    if len(lines) > max_lines:
        lines = lines[: max_lines - 1] + [f"... ({len(lines) - max_lines + 1} more lines)"]
    return "\n".join(lines)
