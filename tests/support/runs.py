"""A run's state as the bot and the notifier see it, for tests that render or act on one."""

from __future__ import annotations

from datetime import UTC, datetime

from workflows.models import (
    Actor,
    ApprovalChannel,
    RunState,
    RunStatus,
    SlackMessageRef,
)

ALICE = Actor(id="U0ALICE", name="alice", kind="slack")
AT = datetime(2026, 5, 4, 12, 30, tzinfo=UTC)
MESSAGE = SlackMessageRef(channel="C0INFRA", ts="1700000000.000100")


def awaiting_status(workspace: str, **changes: object) -> RunStatus:
    """Alice's update-channel run of `workspace`, waiting for one approval, with its message."""
    base = RunStatus(
        workflow_type="ProvisionInfraWorkflow",
        workflow_id=str(changes.pop("workflow_id", f"provision-{workspace}")),
        run_id="0196-run",
        scenario="human-in-the-loop-update",
        workspace=workspace,
        tf_directory="local_admin_user",
        state=RunState.AWAITING_APPROVAL,
        progress=50,
        requester=ALICE,
        approval_channel=ApprovalChannel.UPDATE,
        required_approvals=1,
        slack=MESSAGE,
        updated_at=AT,
    )
    return base.model_copy(update=changes)
