"""Durable per-workspace records of applies: which plan's apply began, how it ended, its result.

`WorkspaceStore` is the narrow interface the apply activity needs; `FileWorkspaceStore` keeps one
JSON file per plan under the workspace's data folder. A shared (PostgreSQL) store implements the
same two methods.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, Protocol

from pydantic import BaseModel, Field

ApplyPhase = Literal["begun", "succeeded", "failed"]


class ApplyRecord(BaseModel):
    """One plan's apply. `begun` is written before terraform starts, the outcome after it exits."""

    plan_id: str
    plan_sha256: str
    phase: ApplyPhase
    attempt: int = 1
    started_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    finished_at: datetime | None = None
    exit_code: int | None = None
    outputs: dict = Field(default_factory=dict)
    log_tail: str = ""
    error: str | None = None
    # How the outcome was learnt: from terraform's exit ("exit") or from the state ("state").
    settled_by: Literal["exit", "state"] | None = None


class WorkspaceStore(Protocol):
    def load_apply(self, workspace: str, plan_id: str) -> ApplyRecord | None: ...

    def save_apply(self, workspace: str, record: ApplyRecord) -> None: ...


class FileWorkspaceStore:
    """`<workspace>/applies/<plan_id>.json`, replaced atomically and fsynced."""

    def __init__(self, workspace_dir: Callable[[str], Path]) -> None:
        self._workspace_dir = workspace_dir

    def _path(self, workspace: str, plan_id: str) -> Path:
        if "/" in plan_id or plan_id.startswith("."):
            raise ValueError(f"plan id {plan_id!r} is not a file name")
        return self._workspace_dir(workspace) / "applies" / f"{plan_id}.json"

    def load_apply(self, workspace: str, plan_id: str) -> ApplyRecord | None:
        path = self._path(workspace, plan_id)
        if not path.exists():
            return None
        return ApplyRecord.model_validate(json.loads(path.read_text()))

    def save_apply(self, workspace: str, record: ApplyRecord) -> None:
        path = self._path(workspace, record.plan_id)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_suffix(".json.tmp")
        with tmp.open("w") as fh:
            fh.write(record.model_dump_json(indent=2))
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(path)
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
