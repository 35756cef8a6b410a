"""The decision modal (Approve / Deny with a reason) and the notices that replace it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from slack_sdk.models.blocks import (
    ContextBlock,
    InputBlock,
    MarkdownTextObject,
    PlainTextInputElement,
    SectionBlock,
)
from slack_sdk.models.views import View

from bot.blocks import RunRef, clip, escape

DECISION_CALLBACK = "run_decision"
REASON_BLOCK = "reason"
REASON_INPUT = "reason_input"
# The update's validator refuses longer reasons; the Slack client enforces this before sending.
REASON_MAX_LENGTH = 2000


@dataclass(frozen=True)
class DecisionContext:
    """Everything a modal submission needs, carried in the view's private_metadata."""

    ref: RunRef
    approve: bool
    channel: str
    message_ts: str
    workspace: str

    def encode(self) -> str:
        return json.dumps(
            {
                "ref": self.ref.encode(),
                "approve": self.approve,
                "channel": self.channel,
                "ts": self.message_ts,
                "workspace": self.workspace,
            },
            separators=(",", ":"),
        )

    @classmethod
    def decode(cls, metadata: str) -> DecisionContext:
        try:
            data = json.loads(metadata)
            return cls(
                ref=RunRef.decode(data["ref"]),
                approve=bool(data["approve"]),
                channel=str(data["channel"]),
                message_ts=str(data["ts"]),
                workspace=str(data.get("workspace") or ""),
            )
        except (ValueError, KeyError, TypeError):
            raise ValueError("not a decision modal's metadata") from None


def decision_modal(context: DecisionContext) -> dict[str, Any]:
    verb = "Approve" if context.approve else "Deny"
    if context.approve:
        explain = (
            f"Approving applies the saved plan of *{escape(context.workspace)}* exactly as "
            "planned. Say why; your reason is recorded with the run."
        )
        label, placeholder = "Why do you approve?", "e.g. reviewed the grant with the team"
    else:
        explain = f"Denying ends the run of *{escape(context.workspace)}*; nothing is applied."
        # Slack adds " (optional)" to an optional input's label itself.
        label, placeholder = "Why do you deny?", "e.g. grant is too broad"
    view = View(
        type="modal",
        callback_id=DECISION_CALLBACK,
        private_metadata=context.encode(),
        title=f"{verb} plan",
        submit=verb,
        close="Cancel",
        blocks=[
            SectionBlock(text=MarkdownTextObject(text=clip(explain, 3000))),
            InputBlock(
                block_id=REASON_BLOCK,
                label=label,
                optional=not context.approve,
                element=PlainTextInputElement(
                    action_id=REASON_INPUT,
                    multiline=True,
                    max_length=REASON_MAX_LENGTH,
                    placeholder=placeholder,
                ),
            ),
            ContextBlock(
                elements=[MarkdownTextObject(text=f"Run `{escape(context.ref.workflow_id)}`")]
            ),
        ],
    )
    return view.to_dict()


def notice_modal(title: str, text: str) -> dict[str, Any]:
    """A modal with nothing to submit: what happened to the user's decision."""
    view = View(
        type="modal",
        title=clip(title, 24, "…"),
        close="Close",
        blocks=[SectionBlock(text=MarkdownTextObject(text=clip(text, 3000)))],
    )
    return view.to_dict()


def submitted_reason(view: dict[str, Any]) -> str:
    state = (view.get("state") or {}).get("values") or {}
    value = (state.get(REASON_BLOCK) or {}).get(REASON_INPUT) or {}
    return str(value.get("value") or "")
