"""What a stack is: the schema of one entry of the stacks file, validated with pydantic.

A stack is a Terraform configuration a platform team declares once: where its source is, the
variables it always gets, the inputs a run may set (typed and bounded), the secret names passed
through, who may run, approve and destroy, how many approvals a plan needs, and its TTL bounds.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from workflows.models import ENV_NAME_PATTERN, NAME_PATTERN, TfValue

# Slack ids: users (U…, W… on Enterprise Grid) and user groups (S…).
SLACK_ID_PATTERN = re.compile(r"^[UWS][A-Z0-9]{2,20}$")
CHANNEL_PATTERN = re.compile(r"^[CG][A-Z0-9]{2,20}$")
# Terraform variable names we pass on; `workspace` is set by the runner for every stack.
INPUT_NAME_PATTERN = re.compile(r"^[a-z_][a-z0-9_]{0,63}$")
RESERVED_INPUTS = frozenset({"workspace"})
# Words of the grammar: a stack may not be called like one.
RESERVED_STACK_NAMES = frozenset(
    {"run", "plan", "status", "approve", "deny", "replan", "destroy", "list", "stacks", "help"}
)
MAX_STRING_INPUT = 256
DEFAULT_MAX_TTL = 30 * 24 * 3600
_DURATION = re.compile(r"^\s*(\d{1,9})\s*([smhd]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: object) -> int:
    """`90`, `"90s"`, `"15m"`, `"2h"`, `"7d"` → seconds."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a text like 15m, 2h, 7d")
    if isinstance(value, int):
        seconds = value
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(
                f"{value!r} is not a duration: use seconds or a number with s, m, h or d"
            )
        seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds < 1:
        raise ValueError("a duration must be at least one second")
    return seconds


Duration = Annotated[int, Field(ge=1, le=365 * 24 * 3600)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GitSource(_Strict):
    git: str = Field(min_length=1, max_length=2000)
    ref: str = Field(default="HEAD", min_length=1, max_length=255)
    path: str = Field(default="", max_length=1000)

    @field_validator("ref")
    @classmethod
    def _ref(cls, v: str) -> str:
        if v.startswith("-") or any(c in v for c in " \t\n\\~^:?*[") or ".." in v:
            raise ValueError(f"ref {v!r} is not a branch, tag or commit")
        return v

    @field_validator("path")
    @classmethod
    def _path(cls, v: str) -> str:
        parts = [p for p in v.strip("/").split("/") if p not in ("", ".")]
        if any(p == ".." for p in parts) or v.startswith("/"):
            raise ValueError(f"path {v!r} must be a folder inside the repository")
        return "/".join(parts)

    @field_validator("git")
    @classmethod
    def _url(cls, v: str) -> str:
        if v.startswith("-") or "\n" in v:
            raise ValueError(f"git {v!r} is not a repository address")
        return v


class InputSpec(_Strict):
    """One input a run may set with `--var name=value`."""

    type: Literal["string", "number", "bool"] = "string"
    description: str = Field(default="", max_length=500)
    default: TfValue | None = None
    choices: list[str | int | float] | None = Field(default=None, min_length=1, max_length=100)
    pattern: str | None = Field(default=None, max_length=500)
    min: float | None = None
    max: float | None = None

    @field_validator("pattern")
    @classmethod
    def _pattern(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as exc:
                raise ValueError(f"pattern {v!r} is not a regular expression: {exc}") from None
        return v

    @model_validator(mode="after")
    def _consistent(self) -> InputSpec:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min:g} is above max {self.max:g}")
        if self.type == "bool" and (self.choices or self.pattern or self.min or self.max):
            raise ValueError("a bool input takes no choices, pattern, min or max")
        if self.type == "number" and self.pattern:
            raise ValueError("a number input takes min/max, not a pattern")
        if self.default is not None:
            self.coerce(self.default)
        return self

    @property
    def required(self) -> bool:
        return self.default is None

    def allowed(self) -> str:
        """What this input accepts, in a few words, for error messages and listings."""
        if self.choices:
            return "one of " + ", ".join(str(c) for c in self.choices)
        if self.type == "bool":
            return "true or false"
        if self.type == "number":
            low = f"{self.min:g}" if self.min is not None else None
            high = f"{self.max:g}" if self.max is not None else None
            if low and high:
                return f"a number from {low} to {high}"
            if low:
                return f"a number of at least {low}"
            if high:
                return f"a number of at most {high}"
            return "a number"
        if self.pattern:
            return f"text matching {self.pattern}"
        return f"text of at most {MAX_STRING_INPUT} characters"

    def coerce(self, raw: object) -> TfValue:
        """A value given on the command line (text) or in the file → its typed value.

        Raises ValueError with a message saying what is allowed.
        """
        value = self._typed(raw)
        if self.choices and value not in self.choices:
            raise ValueError(f"{raw!r} is not allowed: {self.allowed()}")
        if isinstance(value, int | float) and not isinstance(value, bool):
            if (self.min is not None and value < self.min) or (
                self.max is not None and value > self.max
            ):
                raise ValueError(f"{raw!r} is out of range: {self.allowed()}")
        if isinstance(value, str):
            if len(value) > MAX_STRING_INPUT or (
                self.pattern and not re.fullmatch(self.pattern, value)
            ):
                raise ValueError(f"{raw!r} is not allowed: {self.allowed()}")
        return value

    def _typed(self, raw: object) -> TfValue:
        if self.type == "bool":
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("true", "yes", "on", "1"):
                return True
            if text in ("false", "no", "off", "0"):
                return False
            raise ValueError(f"{raw!r} is not true or false")
        if self.type == "number":
            if isinstance(raw, bool):
                raise ValueError(f"{raw!r} is not a number")
            if isinstance(raw, int | float):
                number: float = raw
            else:
                text = str(raw).strip()
                if len(text) > 40:
                    raise ValueError("that number is too long")
                try:
                    number = float(text)
                except ValueError:
                    raise ValueError(f"{raw!r} is not {self.allowed()}") from None
            if number != number or number in (float("inf"), float("-inf")):
                raise ValueError(f"{raw!r} is not {self.allowed()}")
            return int(number) if float(number).is_integer() and abs(number) < 2**53 else number
        if isinstance(raw, bool | int | float):
            return str(raw).lower() if isinstance(raw, bool) else str(raw)
        text = str(raw)
        if any(0xD800 <= ord(c) <= 0xDFFF or ord(c) < 0x20 for c in text):
            raise ValueError("text with control characters or lone surrogates is not allowed")
        return text


class Permissions(_Strict):
    """Who may do what. `None` means the default of the table in the README."""

    run: list[str] | None = Field(default=None, max_length=500)
    approve: list[str] | None = Field(default=None, max_length=500)
    destroy: list[str] | None = Field(default=None, max_length=500)

    @field_validator("run", "approve", "destroy")
    @classmethod
    def _ids(cls, v: list[str] | None) -> list[str] | None:
        for item in v or ():
            if not SLACK_ID_PATTERN.match(item):
                raise ValueError(f"{item!r} is not a Slack user id (U…, W…) or user-group id (S…)")
        return v


class TtlSpec(_Strict):
    default: Duration | None = None
    max: Duration = DEFAULT_MAX_TTL

    @field_validator("default", "max", mode="before")
    @classmethod
    def _duration(cls, v: object) -> object:
        return None if v is None else parse_duration(v)

    @model_validator(mode="after")
    def _bounded(self) -> TtlSpec:
        if self.default is not None and self.default > self.max:
            raise ValueError(f"default {self.default}s is above max {self.max}s")
        return self


class Stack(_Strict):
    """One entry under `stacks:`. Built-in stacks carry their scenario's switches too."""

    name: str
    description: str = Field(default="", max_length=500)
    source: str | GitSource
    variables: dict[str, TfValue] = Field(default_factory=dict)
    secrets: list[str] = Field(default_factory=list, max_length=100)
    inputs: dict[str, InputSpec] = Field(default_factory=dict)
    permissions: Permissions = Field(default_factory=Permissions)
    approvals: int = Field(default=1, ge=1, le=10)
    self_approval: bool = False
    auto_apply: bool = True
    channel: str | None = None
    ttl: TtlSpec = Field(default_factory=TtlSpec)
    approval_channel: Literal["update", "signal"] = "update"
    # Set for the nine scenarios of the original demo; never in a stacks file.
    builtin: bool = Field(default=False, exclude=True)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not NAME_PATTERN.match(v):
            raise ValueError(
                f"stack name {v!r}: use 1-31 lowercase letters, digits or '-', "
                "starting with a letter or digit"
            )
        return v

    @field_validator("variables")
    @classmethod
    def _variables(cls, v: dict[str, TfValue]) -> dict[str, TfValue]:
        for key in v:
            if not INPUT_NAME_PATTERN.match(key) or key in RESERVED_INPUTS:
                raise ValueError(f"variable name {key!r} is not allowed")
        return v

    @field_validator("inputs")
    @classmethod
    def _inputs(cls, v: dict[str, InputSpec]) -> dict[str, InputSpec]:
        for key in v:
            if not INPUT_NAME_PATTERN.match(key) or key in RESERVED_INPUTS:
                raise ValueError(
                    f"input name {key!r}: use lowercase letters, digits and '_' "
                    "(and not 'workspace', which every run gets)"
                )
        return v

    @field_validator("secrets")
    @classmethod
    def _secrets(cls, v: list[str]) -> list[str]:
        for name in v:
            if not ENV_NAME_PATTERN.match(name):
                raise ValueError(f"secret {name!r} is not an environment variable name")
        return v

    @field_validator("channel")
    @classmethod
    def _channel(cls, v: str | None) -> str | None:
        if v is not None and not CHANNEL_PATTERN.match(v):
            raise ValueError(f"channel {v!r} is not a Slack channel id (C…)")
        return v

    @model_validator(mode="after")
    def _no_overlap(self) -> Stack:
        both = sorted(set(self.variables) & set(self.inputs))
        if both:
            raise ValueError(f"{', '.join(both)} is both a fixed variable and an input")
        return self

    @property
    def source_label(self) -> str:
        if isinstance(self.source, GitSource):
            where = f"{self.source.git}@{self.source.ref}"
            return f"{where}:{self.source.path}" if self.source.path else where
        return self.source

    def input_values(self, given: dict[str, str]) -> dict[str, TfValue]:
        """`--var` values → typed values, defaults filled in. Raises ValueError, one line."""
        unknown = sorted(set(given) - set(self.inputs))
        if unknown:
            known = ", ".join(self.inputs) or "none"
            raise ValueError(f"stack {self.name} has no input {unknown[0]!r} (its inputs: {known})")
        values: dict[str, TfValue] = {}
        for name, spec in self.inputs.items():
            if name in given:
                try:
                    values[name] = spec.coerce(given[name])
                except ValueError as exc:
                    raise ValueError(f"--var {name}: {exc}") from None
            elif spec.default is not None:
                values[name] = spec.coerce(spec.default)
            else:
                raise ValueError(f"stack {self.name} needs --var {name}=… ({spec.allowed()})")
        return values


class StacksFile(_Strict):
    """The whole file: `stacks:` keyed by name, and whether the built-in stacks stay listed."""

    stacks: dict[str, dict] = Field(default_factory=dict)
    builtin: bool = True
