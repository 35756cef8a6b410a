"""Workspace ownership: a workspace belongs to the stack and the owners of its first run.

Before every plan the workflow asks `claim_workspace` whether its run may touch the workspace.
The record lives with the workspace (`<workspaces>/<name>/owner.json` on one worker; a shared
store implements the same two methods).
"""

from __future__ import annotations

import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from temporalio import activity
from temporalio.exceptions import ApplicationError

from workflows.contracts import CLAIM_WORKSPACE_ACTIVITY
from workflows.models import ClaimInput, WorkspaceRecord

REFUSED = "WorkspaceRefused"


class WorkspaceRecords(Protocol):
    def read(self, workspace: str) -> WorkspaceRecord | None: ...

    def write(self, record: WorkspaceRecord) -> None: ...


class FileWorkspaceRecords:
    """One JSON file per workspace, written atomically."""

    def __init__(self, workspaces_dir: Path) -> None:
        self.root = workspaces_dir.resolve()

    def _path(self, workspace: str) -> Path:
        folder = (self.root / workspace).resolve()
        if folder.parent != self.root:
            raise ApplicationError(
                f"workspace {workspace!r} escapes the data folder", type=REFUSED, non_retryable=True
            )
        return folder / "owner.json"

    def read(self, workspace: str) -> WorkspaceRecord | None:
        path = self._path(workspace)
        if not path.exists():
            return None
        return WorkspaceRecord.model_validate_json(path.read_text())

    def write(self, record: WorkspaceRecord) -> None:
        path = self._path(record.workspace)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".owner-")
        with os.fdopen(fd, "w") as out:
            out.write(record.model_dump_json(indent=2))
        os.replace(tmp, path)


def claim_refusal(record: WorkspaceRecord | None, claim: ClaimInput) -> str | None:
    """Why this run may not touch the workspace, or None.

    - a workspace belongs to one stack: runs of another stack never touch it (operators too:
      its state was made by another configuration);
    - a chat user runs on a workspace only as one of its owners, and destroys it only as an
      owner, an approver or one of the stack's destroyers; operators (Temporal or CLI access)
      may act on any workspace of the right stack.
    """
    if record is None:
        return None
    if claim.stack and record.stack and claim.stack != record.stack:
        return (
            f"workspace {record.workspace} belongs to stack {record.stack}; "
            f"a run of stack {claim.stack} cannot touch it"
        )
    requester = claim.requester
    if requester.kind != "slack":
        return None
    owners = ", ".join(record.owners) or "nobody"
    if claim.destroy:
        allowed = set(record.owners) | set(claim.approvers or ()) | set(claim.destroyers or ())
        if requester.is_in(allowed):
            return None
        return (
            f"only the owners of workspace {record.workspace} ({owners}), its stack's "
            "approvers or destroyers can destroy it"
        )
    if requester.is_in(record.owners):
        return None
    return f"workspace {record.workspace} belongs to {owners}; choose another --workspace"


class WorkspaceActivities:
    def __init__(self, records: WorkspaceRecords) -> None:
        self.records = records

    @activity.defn(name=CLAIM_WORKSPACE_ACTIVITY)
    async def claim_workspace(self, claim: ClaimInput) -> WorkspaceRecord:
        record = self.records.read(claim.workspace)
        problem = claim_refusal(record, claim)
        if problem:
            raise ApplicationError(problem, type=REFUSED, non_retryable=True)
        if record is None:
            record = WorkspaceRecord(
                workspace=claim.workspace,
                stack=claim.stack,
                owners=claim.owners or [claim.requester.id],
                created_by=claim.requester,
                created_at=datetime.now(UTC),
            )
            if not claim.destroy:
                self.records.write(record)
        elif record.stack is None and claim.stack and not claim.destroy:
            # A workspace from before stacks: its next run names its stack.
            record = record.model_copy(update={"stack": claim.stack})
            self.records.write(record)
        return record
