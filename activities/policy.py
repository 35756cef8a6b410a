"""Evaluates the Rego policies in a folder over a `terraform show -json` plan document."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any

import regopy
from pydantic import ValidationError
from regopy.rego_shared import rego_node_value

from workflows.models import PolicyFinding, PolicyLevel, PolicyReport

# Every package under data.provision.rules that defines `findings` contributes, so a new .rego
# file is picked up without touching this module.
FINDINGS_QUERY = "findings := [f | some name; some f in data.provision.rules[name].findings]"

_LEVEL_ORDER = {PolicyLevel.HARD: 0, PolicyLevel.SOFT: 1, PolicyLevel.ADVISORY: 2}

# rego-cpp reports a located error as `(error <n>:<module name>|<byte offset>|<length>` followed
# by `(errormsg <n>:<text>)`; the <n> prefixes are byte lengths, so names and texts may hold any
# character.
_ERROR_HEAD = re.compile(rb"\(error (\d+):")
_ERROR_SPAN = re.compile(rb"\|(\d+)\|(\d+)")
_ERROR_MSG = re.compile(rb"\(errormsg (\d+):")


class PolicySyntaxError(Exception):
    """A policy module does not compile."""

    def __init__(self, file: str, line: int | None, column: int | None, detail: str) -> None:
        self.file = file
        self.line = line
        self.column = column
        self.detail = detail
        location = file if line is None else f"{file}:{line}:{column}"
        super().__init__(f"{location}: {detail}")


class PolicyError(Exception):
    """The policies could not be evaluated, or produced something that is not a finding."""


class PolicyEvaluator:
    """Compiles every .rego file of a folder once, then evaluates plans against them."""

    def __init__(self, policy_dir: Path, config: dict | None = None) -> None:
        self.policy_dir = Path(policy_dir)
        self.config = dict(config or {})
        paths = sorted(self.policy_dir.glob("*.rego"))
        if not paths:
            raise PolicyError(f"no .rego files in {self.policy_dir}")
        self.policies = [p.name for p in paths]
        try:
            self._sources = {p.name: p.read_text(encoding="utf-8") for p in paths}
        except (OSError, UnicodeDecodeError) as exc:
            raise PolicyError(f"cannot read the policies in {self.policy_dir}: {exc}") from exc
        # Input and query are two calls on one interpreter's state, so evaluations take turns.
        self._lock = threading.Lock()
        self._interpreter = self._interpreter_for(self._sources)
        try:
            self._interpreter.add_data({"provision": {"config": self.config}})
        except (regopy.RegoError, TypeError, ValueError) as exc:
            raise PolicyError(f"policy config is not valid data: {exc}") from exc
        self._bundle = self._build(self._interpreter)
        # Some compile errors (wrong arity, unknown functions) only surface on the first query;
        # an empty plan finds them now, when the worker starts, rather than on a user's plan.
        with self._lock:
            self._query({})

    def evaluate(self, plan_document: dict) -> PolicyReport:
        """All findings of all rule packages over one plan, most severe first."""
        with self._lock:
            raw = self._query(plan_document)
        findings = [self._finding(item) for item in raw]
        findings.sort(key=lambda f: (_LEVEL_ORDER[f.level], f.rule, f.resource or "", f.message))
        return PolicyReport(findings=findings, policies=list(self.policies))

    def _interpreter_for(self, sources: dict[str, str]) -> regopy.Interpreter:
        interpreter = regopy.Interpreter()
        # Otherwise the C library prints its own rendering of every error to stdout.
        interpreter.log_level = regopy.LogLevel.NONE
        for name, source in sources.items():
            try:
                interpreter.add_module(name, source)
            except regopy.RegoError as exc:
                raise self._located_error(name, str(exc)) from exc
        return interpreter

    def _build(self, interpreter: regopy.Interpreter) -> regopy.Bundle:
        try:
            bundle = interpreter.build(FINDINGS_QUERY)
        except regopy.RegoError as exc:
            raise self._located_error(None, str(exc)) from exc
        if not bundle.ok():
            raise PolicyError(f"policies in {self.policy_dir} did not build")
        return bundle

    def _query(self, plan_document: dict) -> list[Any]:
        try:
            self._interpreter.set_input(plan_document)
        except (regopy.RegoError, TypeError, ValueError) as exc:
            raise PolicyError(f"plan document is not valid policy input: {exc}") from exc
        try:
            output = self._interpreter.query_bundle(self._bundle)
        except json.JSONDecodeError as exc:
            # rego-cpp reports some compile errors (a call to a function no module defines) as a
            # successful result whose text is an error rendering, which regopy fails to parse.
            raise self._unparsable_result(exc.doc, plan_document) from exc
        except (regopy.RegoError, ValueError) as exc:
            raise PolicyError(f"policy evaluation failed: {exc}") from exc
        if not output.ok():
            raise self._query_error(output, plan_document)
        try:
            return json.loads(output.binding("findings").json())
        except (ValueError, regopy.RegoError) as exc:
            raise PolicyError(f"policy result could not be read: {exc}") from exc

    def _finding(self, item: Any) -> PolicyFinding:
        if not isinstance(item, dict):
            raise PolicyError(f"a rule produced {item!r}, not a finding object")
        try:
            return PolicyFinding(
                rule=item["id"],
                level=item["level"],
                message=item["message"],
                resource=item.get("resource"),
            )
        except KeyError as exc:
            raise PolicyError(f"a rule produced a finding without {exc}: {item!r}") from exc
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()
            )
            raise PolicyError(f"a rule produced a malformed finding {item!r}: {problems}") from exc

    def _query_error(self, output: regopy.Output, plan_document: dict) -> Exception:
        errors = _error_messages(output.node())
        # The same error is often reported once per rule body that hits it.
        unique = dict.fromkeys(
            f"{code}: {message}" if code else message for code, message in errors
        )
        detail = "; ".join(unique)
        # Anything but an evaluation error is the compiler speaking, i.e. a broken policy file.
        if errors and not all(code.startswith("eval_") for code, _ in errors):
            return PolicySyntaxError(self._culprit(plan_document), None, None, detail)
        return PolicyError(f"policy evaluation failed: {detail or 'unknown error'}")

    def _unparsable_result(self, text: str, plan_document: dict) -> Exception:
        if not text.lstrip().startswith("(error"):
            return PolicyError(f"policy result could not be read: {text[:200]!r}")
        raw = text.encode("utf-8")
        message = _ERROR_MSG.search(raw)
        detail = _length_prefixed(raw, message) if message else text.strip().splitlines()[0]
        return PolicySyntaxError(self._culprit(plan_document), None, None, detail)

    def _culprit(self, plan_document: dict) -> str:
        """The first file without which the plan evaluates; rego-cpp does not say at query time."""
        # Only reached on a broken policy set, so rebuilding once per file is affordable.
        for name in self.policies:
            rest = {n: s for n, s in self._sources.items() if n != name}
            if not rest:
                break
            try:
                interpreter = self._interpreter_for(rest)
                interpreter.add_data({"provision": {"config": self.config}})
                interpreter.set_input(plan_document)
                if interpreter.query_bundle(self._build(interpreter)).ok():
                    return str(self.policy_dir / name)
            except (PolicySyntaxError, PolicyError, regopy.RegoError, ValueError):
                continue
        return str(self.policy_dir)

    def _located_error(self, name: str | None, text: str) -> Exception:
        raw = text.encode("utf-8")
        head = _ERROR_HEAD.search(raw)
        if not head:
            return PolicyError(f"policies in {self.policy_dir} failed to compile: {text.strip()}")
        module = _length_prefixed(raw, head)
        module = module if module in self._sources else (name or module)
        rest = raw[head.end() + int(head.group(1)) :]
        span = _ERROR_SPAN.match(rest)
        message = _ERROR_MSG.search(rest)
        detail = _length_prefixed(rest, message) if message else "syntax error"
        line = column = None
        if span and module in self._sources:
            line, column = _line_column(self._sources[module], int(span.group(1)))
        return PolicySyntaxError(str(self.policy_dir / module), line, column, detail)


def _length_prefixed(raw: bytes, prefix: re.Match[bytes]) -> str:
    """The text after a `<n>:` prefix match, n bytes long."""
    return raw[prefix.end() : prefix.end() + int(prefix.group(1))].decode("utf-8", "replace")


def _line_column(source: str, byte_offset: int) -> tuple[int, int]:
    """1-based line and character column of a byte offset into a module's UTF-8 text."""
    before = source.encode("utf-8")[:byte_offset]
    line_start = before.rfind(b"\n") + 1
    return before.count(b"\n") + 1, len(before[line_start:].decode("utf-8", "replace")) + 1


def _error_messages(node: regopy.Node) -> list[tuple[str, str]]:
    """(code, message) of each error in an error-sequence result node."""
    errors: list[tuple[str, str]] = []
    if node.kind != regopy.NodeKind.ErrorSeq:
        return errors
    for i in range(len(node)):
        error = node.at(i)
        code = message = ""
        for j in range(len(error)):
            part = error.at(j)
            # Error parts carry text but are not value kinds, so Node.value refuses them.
            if part.kind == regopy.NodeKind.ErrorMessage:
                message = rego_node_value(part._impl)
            elif part.kind == regopy.NodeKind.ErrorCode:
                code = rego_node_value(part._impl)
        errors.append((code, message))
    return errors
