"""The decision modal (Approve / Deny with a reason) and the notices that replace it."""

from __future__ import annotations

import hashlib
import hmac
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
    """What the decision modal shows and its submission names: the run (by id) and the verdict.
    The workspace is for display only; the submission re-reads everything else from the run."""

    ref: RunRef
    approve: bool
    workspace: str


class MetadataSeal:
    """The modal's private_metadata, authenticated: the run's ids and the verdict, bound to the
    user the modal was opened for, under an HMAC-SHA256 with a key derived from the bot's token.
    An edited or transplanted form is refused; nothing else in it is trusted anyway."""

    def __init__(self, secret: str) -> None:
        self._key = hashlib.sha256(b"provision-modal-metadata:" + secret.encode()).digest()

    def _tag(self, user_id: str, workflow_id: str, run_id: str, approve: bool) -> str:
        text = "\n".join((user_id, workflow_id, run_id, "1" if approve else "0"))
        mac = hmac.new(self._key, text.encode("utf-8", "surrogatepass"), hashlib.sha256)
        return mac.hexdigest()

    def seal(self, context: DecisionContext, user_id: str) -> str:
        ref = context.ref
        data = {
            "w": ref.workflow_id,
            "r": ref.run_id,
            "a": context.approve,
            "m": self._tag(user_id, ref.workflow_id, ref.run_id, context.approve),
        }
        return json.dumps(data, separators=(",", ":"))

    def open(self, metadata: str, user_id: str) -> tuple[RunRef, bool]:
        """The run and the verdict of a form opened for `user_id`; ValueError otherwise."""
        try:
            data = json.loads(metadata)
            ref = RunRef.decode(json.dumps({"w": data["w"], "r": data["r"]}))
            approve, tag = data["a"], data["m"]
        except (ValueError, KeyError, TypeError):
            raise ValueError("not a decision modal's metadata") from None
        if not isinstance(approve, bool) or not isinstance(tag, str):
            raise ValueError("not a decision modal's metadata")
        expected = self._tag(user_id, ref.workflow_id, ref.run_id, approve)
        if not hmac.compare_digest(expected, tag):
            raise ValueError("the decision form's metadata is not this bot's")
        return ref, approve


def decision_modal(context: DecisionContext, private_metadata: str) -> dict[str, Any]:
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
        private_metadata=private_metadata,
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
