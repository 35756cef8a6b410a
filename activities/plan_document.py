"""Plan documents: the redacted `terraform show -json` that policies read, with no secret in it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

REDACTED = "(sensitive)"


@dataclass
class Scrubber:
    """Replaces known secret values in any text that leaves the worker."""

    secrets: list[str] = field(default_factory=list)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            if secret:
                text = text.replace(secret, "(redacted)")
        return text


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


def _redacted_change(change: dict) -> dict:
    return {
        "actions": change.get("actions", []),
        "before": _redact(change.get("before"), change.get("before_sensitive", False)),
        "after": _redact(change.get("after"), change.get("after_sensitive", False)),
    }


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
        redacted_change = _redacted_change(change)
        redacted_change["after_unknown"] = change.get("after_unknown", {})
        changes.append(
            {**{k: v for k, v in rc.items() if k != "change"}, "change": redacted_change}
        )
    outputs = {
        name: _redacted_change(oc) for name, oc in document.get("output_changes", {}).items()
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
