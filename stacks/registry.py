"""The stacks a front door or worker knows: the built-in ones and those of the stacks file.

`load_stacks()` reads `PROVISION_STACKS_FILE` (or `stacks.yaml` in the working directory when it
exists), validates every entry and reports every error with its line, so `provision stacks check`
can print them all at once.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import ValidationError

from stacks.model import RESERVED_STACK_NAMES, GitSource, InputSpec, Stack, StacksFile
from workflows.scenarios import SCENARIOS, Scenario

DEFAULT_STACKS_FILE = "stacks.yaml"
MAX_STACKS_FILE_BYTES = 1024 * 1024
# Built-in configurations whose namespace takes a retention a run may choose.
_RETENTION_INPUT = {"local_namespace", "local_admin_user"}


class StacksFileError(ValueError):
    """The stacks file is unreadable or invalid; `errors` has one line per problem."""

    def __init__(self, path: Path, errors: list[str]):
        self.path = path
        self.errors = errors
        super().__init__(f"{path}: {len(errors)} error(s): " + "; ".join(errors[:3]))


def builtin_stack(scenario: Scenario) -> Stack:
    inputs: dict[str, InputSpec] = {}
    variables = dict(scenario.variables)
    if scenario.tf_directory in _RETENTION_INPUT and not scenario.deprovision:
        default = variables.pop("retention_days", 7)
        inputs["retention_days"] = InputSpec(
            type="number",
            description="days the namespace keeps closed workflows",
            default=default,
            min=1,
            max=3650,
        )
    return Stack(
        name=scenario.name,
        description=scenario.summary,
        source=scenario.tf_directory,
        variables=variables,
        inputs=inputs,
        approval_channel=scenario.approval_channel.value,
        builtin=True,
    )


BUILTIN_STACKS: dict[str, Stack] = {s.name: builtin_stack(s) for s in SCENARIOS.values()}


@dataclass(frozen=True)
class Stacks:
    """Every stack by name, built-in ones first. `path` is the file the others came from."""

    by_name: dict[str, Stack]
    path: Path | None = None

    def __iter__(self) -> Iterator[Stack]:
        return iter(self.by_name.values())

    def __contains__(self, name: object) -> bool:
        return name in self.by_name

    def names(self) -> list[str]:
        return list(self.by_name)

    def get(self, name: str) -> Stack:
        try:
            return self.by_name[name]
        except KeyError:
            runnable = ", ".join(n for n in self.by_name if n != "destroy")
            raise LookupError(f"unknown stack {name!r}; stacks: {runnable}") from None

    def scenario_of(self, stack: Stack) -> Scenario | None:
        return SCENARIOS.get(stack.name) if stack.builtin else None


BUILTIN = Stacks(dict(BUILTIN_STACKS))


def stacks_file_path(configured: str | os.PathLike | None) -> Path | None:
    """The configured file, or `stacks.yaml` here when it exists, or none."""
    if configured:
        return Path(configured)
    default = Path(DEFAULT_STACKS_FILE)
    return default if default.is_file() else None


def load_stacks(configured: str | os.PathLike | None = None) -> Stacks:
    path = stacks_file_path(configured)
    if path is None:
        return BUILTIN
    return parse_stacks_file(path)


def parse_stacks_file(path: Path) -> Stacks:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise StacksFileError(
            path, [f"{path}: cannot read the stacks file: {exc.strerror}"]
        ) from None
    if len(raw) > MAX_STACKS_FILE_BYTES:
        raise StacksFileError(path, [f"{path}: larger than {MAX_STACKS_FILE_BYTES} bytes"])
    try:
        text = raw.decode("utf-8")
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except UnicodeDecodeError:
        raise StacksFileError(path, [f"{path}: not UTF-8 text"]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise StacksFileError(path, [f"{where}: not valid YAML: {problem}"]) from None
    errors: list[str] = []
    stacks = _validate(path, root, data, errors)
    if errors:
        raise StacksFileError(path, errors)
    return stacks


def _validate(path: Path, root: yaml.Node | None, data: object, errors: list[str]) -> Stacks:
    def report(loc: Iterable[object], message: str) -> None:
        loc = tuple(loc)
        where = ".".join(str(p) for p in loc)
        line = _line_of(root, loc)
        prefix = f"{path}:{line}" if line else str(path)
        errors.append(f"{prefix}: {where}: {message}" if where else f"{prefix}: {message}")

    if data is None:
        data = {}
    try:
        top = StacksFile.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            report(err["loc"], _message(err))
        return BUILTIN
    _duplicate_keys(root, report)
    by_name = dict(BUILTIN_STACKS) if top.builtin else {}
    for name, entry in top.stacks.items():
        if name in BUILTIN_STACKS and top.builtin:
            report(
                ("stacks", name),
                "is a built-in stack; pick another name, or set `builtin: false` to hide them",
            )
            continue
        if name in RESERVED_STACK_NAMES:
            report(("stacks", name), "is a command word; choose another name")
            continue
        try:
            stack = Stack.model_validate({**entry, "name": name})
        except ValidationError as exc:
            for err in exc.errors():
                loc = ("stacks", name, *err["loc"]) if err["loc"] != ("name",) else ("stacks", name)
                report(loc, _message(err))
            continue
        stack = _resolve_folder(path, stack, lambda m, n=name: report(("stacks", n, "source"), m))
        if stack is not None:
            by_name[name] = stack
    return Stacks(by_name, path.resolve())


def _resolve_folder(path: Path, stack: Stack, report) -> Stack | None:
    if isinstance(stack.source, GitSource):
        return stack
    folder = (path.parent / stack.source).resolve()
    if not folder.is_dir():
        report(f"folder {stack.source!r} does not exist (relative to {path.parent})")
        return None
    if not any(folder.glob("*.tf")) and not any(folder.glob("*.tf.json")):
        report(f"folder {stack.source!r} holds no Terraform configuration (*.tf)")
        return None
    return stack.model_copy(update={"source": str(folder)})


def _message(err: dict) -> str:
    message = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
    if err.get("type") == "extra_forbidden":
        return "unknown setting"
    if err.get("type") == "missing":
        return "is required"
    return message


def _line_of(root: yaml.Node | None, loc: tuple[object, ...]) -> int | None:
    """The 1-based line of the deepest node the location reaches."""
    node, line = root, None
    for part in loc:
        if node is None:
            break
        if line is None:
            line = node.start_mark.line + 1
        nxt = None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == str(part):
                    nxt, line = value, key.start_mark.line + 1
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if 0 <= part < len(node.value):
                nxt = node.value[part]
                line = nxt.start_mark.line + 1
        node = nxt
    if node is not None:
        line = line or node.start_mark.line + 1
    return line


def _duplicate_keys(root: yaml.Node | None, report) -> None:
    def walk(node: yaml.Node, loc: tuple[str, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key, value in node.value:
                if key.value in seen:
                    report((*loc, key.value), f"appears twice (line {key.start_mark.line + 1})")
                seen.add(key.value)
                walk(value, (*loc, key.value))
        elif isinstance(node, yaml.SequenceNode):
            for item in node.value:
                walk(item, loc)

    if root is not None:
        walk(root, ())
