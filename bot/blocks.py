"""Block Kit rendering of a run: the one run message the bot posts and the notify activity keeps
current, its buttons' ids and values, and the bot's other replies. Pure: no Slack or Temporal I/O.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import quote

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from workflows.models import (
    Actor,
    ApprovalChannel,
    DecisionRecord,
    PolicyFinding,
    PolicyLevel,
    RunState,
    RunStatus,
)

log = logging.getLogger(__name__)

# Slack's limits. slack_sdk checks most of them when a block is serialised; the block count and
# the fallback text it does not, so they are kept by construction here.
MAX_BLOCKS = 50
SECTION_TEXT_LIMIT = 3000
FIELD_TEXT_LIMIT = 2000
CONTEXT_TEXT_LIMIT = 2000
HEADER_TEXT_LIMIT = 150
# Slack accepts 40 000 characters, but the fallback text is what notifications show.
FALLBACK_TEXT_LIMIT = 3000
MAX_RESOURCES = 20
MAX_FINDINGS = 15
MAX_OUTPUTS = 20
MAX_DECISIONS = 10
ITEM_TEXT_LIMIT = 300

# Button action ids: the bot's listeners match on these.
APPROVE = "run_approve"
DENY = "run_deny"
REPLAN = "run_replan"
DESTROY_NOW = "run_destroy_now"
EXTEND_TTL = "run_extend_ttl"
EXTEND_SECONDS = 3600
ACTIONS_BLOCK_ID = "run_actions"

_STATE_LOOK: dict[RunState, tuple[str, str]] = {
    RunState.PENDING: (":hourglass_flowing_sand:", "starting"),
    RunState.INITIALIZING: (":gear:", "initializing"),
    RunState.PLANNING: (":memo:", "planning"),
    RunState.CHECKING_POLICY: (":mag:", "checking policy"),
    RunState.AWAITING_APPROVAL: (":raising_hand:", "awaiting approval"),
    RunState.APPROVED: (":white_check_mark:", "approved"),
    RunState.APPLYING: (":hammer_and_wrench:", "applying"),
    RunState.APPLIED: (":large_green_circle:", "applied"),
    RunState.EPHEMERAL_WAIT: (":stopwatch:", "applied, waiting out its TTL"),
    RunState.DESTROYING: (":wastebasket:", "destroying"),
    RunState.DESTROYED: (":white_circle:", "destroyed"),
    RunState.NO_CHANGES: (":large_green_circle:", "no changes"),
    RunState.REJECTED: (":no_entry_sign:", "rejected"),
    RunState.EXPIRED: (":alarm_clock:", "expired"),
    RunState.POLICY_FAILED: (":no_entry:", "blocked by policy"),
    RunState.FAILED: (":red_circle:", "failed"),
    RunState.REPLANNING: (":arrows_counterclockwise:", "replanning"),
}
_LEVEL_ICON = {
    PolicyLevel.HARD: ":no_entry:",
    PolicyLevel.SOFT: ":warning:",
    PolicyLevel.ADVISORY: ":information_source:",
}


@dataclass(frozen=True)
class RunRef:
    """What a button carries: the run it acts on, by id, and nothing else. Whatever else a click
    needs (who asked, how decisions are sent, where the run message is) the bot reads from the
    run's own state when the click arrives: a client can edit a button's value."""

    workflow_id: str
    run_id: str

    def encode(self) -> str:
        return json.dumps({"w": self.workflow_id, "r": self.run_id}, separators=(",", ":"))

    @classmethod
    def decode(cls, value: str | None) -> RunRef:
        """Messages posted by older versions carried more keys; only the ids are read."""
        try:
            data = json.loads(value or "")
            workflow_id, run_id = data["w"], data["r"]
        except (ValueError, KeyError, TypeError):
            raise ValueError(f"not a run reference: {value!r}") from None
        if not isinstance(workflow_id, str) or not isinstance(run_id, str):
            raise ValueError(f"not a run reference: {value!r}")
        if not 0 < len(workflow_id) <= 300 or len(run_id) > 100:
            raise ValueError(f"not a run reference: {value!r}")
        if not (workflow_id + run_id).isprintable() or not _utf8(workflow_id + run_id):
            raise ValueError(f"not a run reference: {value!r}")
        return cls(workflow_id, run_id)

    @classmethod
    def of(cls, status: RunStatus) -> RunRef:
        return cls(status.workflow_id, status.run_id)


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: protobuf would raise on it
        return False
    return True


# -- text helpers ---------------------------------------------------------------------------


def escape(text: str) -> str:
    """Escape Slack's control characters, so that terraform output can't ping `<!channel>`."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int, note: str = "… (truncated)") -> str:
    if len(text) <= limit:
        return text
    return text[: max(0, limit - len(note))].rstrip() + note


def _bounded_lines(lines: Sequence[str], limit: int, more: str) -> str:
    """Join lines until `limit` characters, then say how many were left out."""
    kept: list[str] = []
    used = 0
    for index, line in enumerate(lines):
        rest = len(lines) - index
        tail = f"\n_… and {rest} more {more}_"
        if used + len(line) + 1 + len(tail) > limit:
            kept.append(tail.strip("\n"))
            return "\n".join(kept)
        kept.append(line)
        used += len(line) + 1
    return "\n".join(kept)


def mention(actor: Actor) -> str:
    if actor.kind == "slack" and actor.id:
        return f"<@{escape(actor.id)}>"
    # "operator (via Temporal)" already says how it was authenticated; "bob" does not.
    suffix = "" if actor.kind == "slack" or actor.kind in actor.display else f" ({actor.kind})"
    return escape(actor.display) + suffix


def decision_ack(approved: bool, message: str) -> str:
    """The private line that tells a user what became of their decision."""
    return f"{':white_check_mark:' if approved else ':x:'} {escape(message)}"


def plan_counts(add: int, change: int, destroy: int) -> str:
    """`+1 to add · −2 to destroy`: zero counts left out, `no changes` when all are zero."""
    parts = [
        f"{sign}{count} to {verb}"
        for sign, count, verb in (
            ("+", add, "add"),
            ("~", change, "change"),
            ("−", destroy, "destroy"),
        )
        if count
    ]
    return " · ".join(parts) or "no changes"


def slack_date(moment: datetime, style: str = "{date_short_pretty} {time}") -> str:
    """A date every reader sees in their own time zone, with a UTC fallback."""
    return f"<!date^{int(moment.timestamp())}^{style}|{moment:%Y-%m-%d %H:%M} UTC>"


def state_label(state: RunState) -> str:
    icon, label = _STATE_LOOK.get(state, (":grey_question:", str(state)))
    return f"{icon} {label}"


def progress_bar(progress: int, cells: int = 10) -> str:
    filled = max(0, min(cells, round(progress * cells / 100)))
    return "▰" * filled + "▱" * (cells - filled)


def run_url(status: RunStatus, namespace: str) -> str | None:
    if not status.ui_url or not status.run_id:
        return None
    base = status.ui_url.rstrip("/")
    workflow = quote(status.workflow_id, safe="")
    namespace = quote(namespace, safe="")
    return f"{base}/namespaces/{namespace}/workflows/{workflow}/{status.run_id}/history"


def _section(text: str, block_id: str | None = None) -> SectionBlock:
    return SectionBlock(
        text=MarkdownTextObject(text=clip(text, SECTION_TEXT_LIMIT)), block_id=block_id
    )


def _context(text: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=clip(text, CONTEXT_TEXT_LIMIT))])


def _field(title: str, value: str) -> MarkdownTextObject:
    return MarkdownTextObject(text=clip(f"*{title}*\n{value}", FIELD_TEXT_LIMIT))


def _to_dicts(blocks: Iterable[Block]) -> list[dict[str, Any]]:
    # to_dict() runs slack_sdk's validators: a limit we missed raises here, not at Slack.
    return [block.to_dict() for block in blocks]


# -- the run message ------------------------------------------------------------------------


def _plan_section(status: RunStatus, in_thread: bool) -> SectionBlock | None:
    summary = status.plan_summary
    if summary is None:
        return None
    head = f"*Plan*  {plan_counts(summary.add, summary.change, summary.destroy)}"
    if not summary.resources:
        return _section(head)
    addresses = [clip(escape(a), 200) for a in summary.resources[:MAX_RESOURCES]]
    hidden = len(summary.resources) - len(addresses)
    body = _bounded_lines(addresses, SECTION_TEXT_LIMIT - len(head) - 120, "resources")
    text = f"{head}\n```{body}```"
    if hidden:
        where = _plan_pointer(status, in_thread)
        text += f"\n_… and {hidden} more resources" + (f": {where}_" if where else "_")
    return _section(text)


def _plan_pointer(status: RunStatus, in_thread: bool) -> str | None:
    """Where the full plan is: this message's thread, or for a private reply (which has no
    thread) the run message's, in its channel."""
    if in_thread:
        return "the full plan is in this message's thread"
    if status.slack is not None:
        return f"the full plan is in the thread of the run message in <#{escape(status.slack.channel)}>"
    return None


def _finding_line(finding: PolicyFinding) -> str:
    icon = _LEVEL_ICON.get(finding.level, ":grey_question:")
    line = f"{icon} {finding.level.value} `{escape(finding.rule)}`: {escape(finding.message)}"
    return clip(line, ITEM_TEXT_LIMIT)


def _policy_section(status: RunStatus) -> SectionBlock | None:
    if status.policy is None:
        return None
    findings = status.policy.findings
    if not findings:
        return _section("*Policy*  :white_check_mark: no findings")
    order = {PolicyLevel.HARD: 0, PolicyLevel.SOFT: 1, PolicyLevel.ADVISORY: 2}
    ranked = sorted(findings, key=lambda f: order.get(f.level, 3))
    lines = [_finding_line(f) for f in ranked[:MAX_FINDINGS]]
    hidden = len(findings) - len(lines)
    head = f"*Policy*  {len(findings)} finding{'s' if len(findings) != 1 else ''}"
    text = head + "\n" + _bounded_lines(lines, SECTION_TEXT_LIMIT - len(head) - 80, "findings")
    if hidden:
        text += f"\n_… and {hidden} more findings_"
    return _section(text)


def _outputs_section(status: RunStatus) -> SectionBlock | None:
    if not status.outputs:
        return None
    lines = []
    for name, value in list(status.outputs.items())[:MAX_OUTPUTS]:
        shown = value if isinstance(value, str) else json.dumps(value, default=str)
        lines.append(f"`{escape(clip(str(name), 80))}` = `{escape(clip(shown, 200))}`")
    hidden = len(status.outputs) - len(lines)
    head = "*Outputs*"
    text = head + "\n" + _bounded_lines(lines, SECTION_TEXT_LIMIT - 80, "outputs")
    if hidden:
        text += f"\n_… and {hidden} more outputs_"
    return _section(text)


def _decision_line(decision: DecisionRecord) -> str:
    icon, verdict = (
        (":white_check_mark:", "approved") if decision.is_approved else (":x:", "denied")
    )
    reason = escape(clip(decision.reason, ITEM_TEXT_LIMIT)) if decision.reason else ""
    line = f"{icon} {verdict} by {mention(decision.actor)} · {slack_date(decision.at)}"
    return line + (f": {reason}" if reason else "")


def _decisions_section(status: RunStatus) -> SectionBlock | None:
    if not status.decisions:
        return None
    shown = status.decisions[-MAX_DECISIONS:]
    lines = [_decision_line(d) for d in shown]
    hidden = len(status.decisions) - len(shown)
    text = "*Decisions*\n" + _bounded_lines(lines, SECTION_TEXT_LIMIT - 80, "decisions")
    if hidden:
        text += f"\n_… and {hidden} earlier decisions_"
    return _section(text)


def _situation(status: RunStatus) -> str | None:
    """One line saying what happens next, or why it ended."""
    if status.state == RunState.AWAITING_APPROVAL and status.plan_only:
        return ":memo: Planned only: Apply applies this plan exactly as shown; Deny ends the run"
    if status.state == RunState.AWAITING_APPROVAL:
        approvals = sum(1 for d in status.decisions if d.is_approved)
        needed = status.required_approvals - approvals
        line = (
            f":raising_hand: Policy asks a human: {needed} more approval"
            f"{'s' if needed != 1 else ''} needed from an approver"
        )
        if status.expires_at:
            line += f", by {slack_date(status.expires_at)}"
        if status.approval_channel == ApprovalChannel.SIGNAL:
            line += " (decisions are sent as signals)"
        return line
    if status.state == RunState.EPHEMERAL_WAIT and status.ttl_deadline:
        return f":stopwatch: Destroyed automatically at {slack_date(status.ttl_deadline)}"
    if status.error:
        return f"*Error*: {escape(status.error)}"
    if status.reason and (status.state.is_final or status.state == RunState.REPLANNING):
        return f"*Reason*: {escape(status.reason)}"
    return None


def _button(
    text: str,
    action_id: str,
    value: str,
    style: str | None = None,
    confirm: ConfirmObject | None = None,
) -> ButtonElement:
    return ButtonElement(text=text, action_id=action_id, value=value, style=style, confirm=confirm)


def _actions(status: RunStatus) -> ActionsBlock | None:
    value = RunRef.of(status).encode()
    if status.state == RunState.AWAITING_APPROVAL:
        return ActionsBlock(
            block_id=ACTIONS_BLOCK_ID,
            elements=[
                # A `plan` waits for its Apply: the same decision, named for what it does.
                _button("Apply" if status.plan_only else "Approve", APPROVE, value, "primary"),
                _button("Deny", DENY, value, "danger"),
                _button("Replan", REPLAN, value),
            ],
        )
    if status.state == RunState.EPHEMERAL_WAIT:
        confirm = ConfirmObject(
            title="Destroy now?",
            text=f"Destroy what {clip(status.workspace, 100)} applied, now rather than at its TTL.",
            confirm="Destroy",
            deny="Keep it",
            style="danger",
        )
        return ActionsBlock(
            block_id=ACTIONS_BLOCK_ID,
            elements=[
                _button(f"Extend +{EXTEND_SECONDS // 3600}h", EXTEND_TTL, value),
                _button("Destroy now", DESTROY_NOW, value, "danger", confirm),
            ],
        )
    return None


def fallback_text(status: RunStatus) -> str:
    _, label = _STATE_LOOK.get(status.state, ("", str(status.state)))
    text = f"{status.scenario} on {status.workspace}: {label}"
    if status.reason and status.state.is_final:
        text += f" ({status.reason})"
    return clip(escape(text), FALLBACK_TEXT_LIMIT)


def _run_blocks(status: RunStatus, namespace: str, interactive: bool) -> list[Block]:
    header = HeaderBlock(
        text=PlainTextObject(
            text=clip(f"{status.scenario} · {status.workspace}", HEADER_TEXT_LIMIT), emoji=True
        )
    )
    url = run_url(status, namespace)
    workflow = escape(status.workflow_id)
    run_link = f"<{url}|{workflow}>" if url else f"`{workflow}`"
    facts = SectionBlock(
        fields=[
            _field("Requested by", mention(status.requester)),
            _field("State", state_label(status.state)),
            _field("Run", run_link),
            _field("Progress", f"`{progress_bar(status.progress)}` {status.progress}%"),
        ]
    )
    details = [f"{'destroy' if status.workflow_type.startswith('Deprovision') else 'provision'}"]
    if status.tf_directory:
        details.append(f"configuration `{escape(status.tf_directory)}`")
    if status.run_id:
        details.append(f"run `{escape(status.run_id)}`")
    if status.replan_count:
        details.append(f"replan {status.replan_count}")
    if status.updated_at:
        details.append(f"updated {slack_date(status.updated_at, '{time_secs}')}")
    blocks: list[Block | None] = [header, facts, _context(" · ".join(details))]
    situation = _situation(status)
    if situation:
        blocks.append(_section(situation))
    body = [
        _plan_section(status, in_thread=interactive),
        _policy_section(status),
        _outputs_section(status),
        _decisions_section(status),
    ]
    if any(body):
        blocks.append(DividerBlock())
        blocks.extend(body)
    if interactive:
        blocks.append(_actions(status))
    if status.plan_text:
        where = _plan_pointer(status, in_thread=interactive)
        if where:
            blocks.append(_context(f":page_facing_up: {where[0].upper()}{where[1:]}."))
    kept = [b for b in blocks if b is not None]
    if len(kept) > MAX_BLOCKS:
        kept = [*kept[: MAX_BLOCKS - 1], _context("_… more detail than a message can hold_")]
    return kept


def render_run_message(
    status: RunStatus, *, namespace: str = "default", interactive: bool = True
) -> tuple[str, list[dict[str, Any]]]:
    """The run message for `status`: fallback text and blocks, always within Slack's limits.

    `interactive=False` leaves the buttons out (for `status` replies). Never raises on content:
    anything the limits refuse is truncated with a note, and a last-resort message stands in
    should slack_sdk refuse the whole layout.
    """
    text = fallback_text(status)
    try:
        return text, _to_dicts(_run_blocks(status, namespace, interactive))
    except SlackObjectFormationError as exc:
        log.warning(
            "run message of %s did not render (%s); sending a short one", status.workflow_id, exc
        )
        return text, _to_dicts(
            [
                _section(f"*{escape(clip(status.workspace, 200))}*: {state_label(status.state)}"),
                _context("Details did not fit in a Slack message; see `provision status`."),
            ]
        )


# -- the bot's other replies ----------------------------------------------------------------


def render_start_failure(
    scenario: str, workspace: str, requester: Actor, reason: str
) -> tuple[str, list[dict[str, Any]]]:
    """What the run message becomes when the workflow could not be started."""
    text = clip(escape(f"{scenario} on {workspace}: not started ({reason})"), FALLBACK_TEXT_LIMIT)
    return text, _to_dicts(
        [
            HeaderBlock(text=clip(f"{scenario} · {workspace}", HEADER_TEXT_LIMIT)),
            _section(f":no_entry_sign: Not started: {escape(reason)}"),
            _context(f"Requested by {mention(requester)}"),
        ]
    )


def render_help(problem: str | None, help_text: str) -> str:
    """Help as mrkdwn; the problem, when there is one, comes first."""
    body = f"```{escape(help_text)}```"
    if problem:
        return f":warning: {escape(problem)}\n{body}"
    return body


class RunListing(Protocol):
    workflow_id: str
    run_id: str
    status: str
    scenario: str | None
    execution_status: str
    start_time: str | None


def render_run_list(
    runs: Sequence[RunListing], state: str | None = None
) -> tuple[str, list[dict[str, Any]]]:
    """Recent runs, a line each, bounded to one message."""
    title = f"Runs in state {state}" if state else "Recent runs"
    if not runs:
        return f"{title}: none", _to_dicts([_section(f"*{escape(title)}*: none")])
    # A replanned or rerun workspace lists one line per execution: the run id tells them apart.
    counts = Counter(r.workflow_id for r in runs)
    repeated = {workflow_id for workflow_id, count in counts.items() if count > 1}
    lines = [
        f"`{escape(r.workflow_id)}`"
        + (f" run `{escape(r.run_id)}`" if r.workflow_id in repeated else "")
        + f" {escape(r.status or r.execution_status)}"
        f" · {escape(r.scenario or '?')}"
        + (f" · started {escape(r.start_time[:19].replace('T', ' '))} UTC" if r.start_time else "")
        for r in runs
    ]
    sections: list[Block] = [_section(f"*{escape(title)}* ({len(runs)})")]
    chunk: list[str] = []
    size = 0
    for line in lines:
        if size + len(line) + 1 > SECTION_TEXT_LIMIT - 100 and chunk:
            sections.append(_section("\n".join(chunk)))
            chunk, size = [], 0
        chunk.append(clip(line, ITEM_TEXT_LIMIT))
        size += len(chunk[-1]) + 1
    if chunk:
        sections.append(_section("\n".join(chunk)))
    if len(sections) > MAX_BLOCKS:
        note = _context("_… more runs than a message can hold_")
        sections = [*sections[: MAX_BLOCKS - 1], note]
    return f"{title}: {len(runs)}", _to_dicts(sections)
