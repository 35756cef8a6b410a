"""Block Kit and message validation, as strict as Slack's servers where slack_sdk knows the rules."""

from __future__ import annotations

from typing import Any

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_MESSAGE_TEXT = 40_000
MAX_SECTION_TEXT = 3_000
MAX_HEADER_TEXT = 150
MAX_BLOCK_ID = 255
MAX_ACTION_ID = 255

# Keys of a block that hold interactive elements; slack_sdk parses unknown element types to None
# and only logs, whereas Slack rejects the whole payload.
_ELEMENT_KEYS = ("elements", "accessory", "element")


def _pointer_error(message: str, pointer: str) -> str:
    # Slack's own wording: "<problem> [json-pointer:/blocks/3/text]".
    return f"{message} [json-pointer:{pointer}]"


def block_errors(blocks: Any, *, limit: int, pointer: str = "/blocks") -> list[str]:
    """Problems with a list of blocks, empty when Slack would accept it."""
    if not isinstance(blocks, list):
        return [_pointer_error("must be an array of blocks", pointer)]
    errors: list[str] = []
    if len(blocks) > limit:
        errors.append(_pointer_error(f"must contain no more than {limit} blocks", pointer))
    seen_block_ids: set[str] = set()
    for index, raw in enumerate(blocks):
        where = f"{pointer}/{index}"
        errors.extend(_one_block_errors(raw, where))
        block_id = raw.get("block_id") if isinstance(raw, dict) else None
        if isinstance(block_id, str):
            if block_id in seen_block_ids:
                errors.append(_pointer_error(f"duplicate block_id '{block_id}'", where))
            seen_block_ids.add(block_id)
    return errors


def _one_block_errors(raw: Any, where: str) -> list[str]:
    if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
        return [_pointer_error("a block must be an object with a type", where)]
    try:
        block = Block.parse(dict(raw))
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        return [_pointer_error(f"malformed {raw['type']} block: {exc}", where)]
    if block is None:
        return [_pointer_error(f"unsupported block type '{raw['type']}'", where)]
    errors: list[str] = []
    try:
        # to_dict() validates recursively (text objects, elements); validate_json() alone does not.
        block.to_dict()
    except SlackObjectFormationError as exc:
        errors.append(_pointer_error(str(exc), where))
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        errors.append(_pointer_error(f"malformed {raw['type']} block: {exc}", where))
    for key in _ELEMENT_KEYS:
        if key not in raw:
            continue
        parsed = getattr(block, key, None)
        if parsed is None or (isinstance(parsed, list) and any(e is None for e in parsed)):
            errors.append(_pointer_error(f"unsupported element in {key}", f"{where}/{key}"))
    if not errors:
        errors.extend(_length_errors(raw, where))
    if raw["type"] in _STRICT_TEXT_BLOCKS:
        errors.extend(_bare_string_errors(raw, where))
    errors.extend(_id_errors(raw, where))
    return errors


# slack_sdk turns a bare string into a text object, so it would let `"text": "hi"` through where
# Slack requires {"type": ..., "text": ...}. Only blocks whose schema is certain are walked.
_STRICT_TEXT_BLOCKS = frozenset(
    {"section", "header", "context", "actions", "input", "image", "video", "file"}
)
_TEXT_OBJECT_KEYS = frozenset(
    {"text", "label", "placeholder", "hint", "title", "description", "confirm", "deny"}
)
_TEXT_OBJECT_TYPES = frozenset({"plain_text", "mrkdwn"})


def _bare_string_errors(node: Any, where: str) -> list[str]:
    errors: list[str] = []
    if isinstance(node, list):
        for index, item in enumerate(node):
            errors.extend(_bare_string_errors(item, f"{where}/{index}"))
    elif isinstance(node, dict) and node.get("type") not in _TEXT_OBJECT_TYPES:
        for key, value in node.items():
            if key in _TEXT_OBJECT_KEYS and isinstance(value, str):
                errors.append(_pointer_error("must provide an object", f"{where}/{key}"))
            elif isinstance(value, (dict, list)):
                errors.extend(_bare_string_errors(value, f"{where}/{key}"))
    return errors


def _text_of(value: Any) -> str:
    if isinstance(value, dict):
        text = value.get("text")
        return text if isinstance(text, str) else ""
    return value if isinstance(value, str) else ""


def _length_errors(raw: dict[str, Any], where: str) -> list[str]:
    # slack_sdk enforces these too; checked again here so the rule holds whatever its version.
    kind = raw["type"]
    text = _text_of(raw.get("text"))
    if kind == "section" and len(text) > MAX_SECTION_TEXT:
        return [
            _pointer_error(
                f"must be less than {MAX_SECTION_TEXT + 1} characters", f"{where}/text/text"
            )
        ]
    if kind == "header" and len(text) > MAX_HEADER_TEXT:
        return [
            _pointer_error(
                f"must be less than {MAX_HEADER_TEXT + 1} characters", f"{where}/text/text"
            )
        ]
    return []


def interactive_elements(block: dict[str, Any]) -> list[dict[str, Any]]:
    """Elements of a block that may carry an action_id (buttons, selects, inputs...)."""
    kind = block.get("type")
    found: list[dict[str, Any]] = []
    if kind in ("actions", "context_actions"):
        found = [e for e in block.get("elements") or [] if isinstance(e, dict)]
    elif kind == "section":
        accessory = block.get("accessory")
        if isinstance(accessory, dict) and accessory.get("type") != "image":
            found = [accessory]
    elif kind == "input":
        element = block.get("element")
        if isinstance(element, dict):
            found = [element]
    return found


def _id_errors(raw: dict[str, Any], where: str) -> list[str]:
    errors: list[str] = []
    block_id = raw.get("block_id")
    if block_id is not None and (not isinstance(block_id, str) or len(block_id) > MAX_BLOCK_ID):
        errors.append(
            _pointer_error(
                "block_id must be a string of at most 255 characters", f"{where}/block_id"
            )
        )
    seen: set[str] = set()
    for element in interactive_elements(raw):
        action_id = element.get("action_id")
        if action_id is None:
            continue
        if not isinstance(action_id, str) or len(action_id) > MAX_ACTION_ID:
            errors.append(
                _pointer_error("action_id must be a string of at most 255 characters", where)
            )
        elif action_id in seen:
            errors.append(_pointer_error(f"duplicate action_id '{action_id}' in block", where))
        seen.add(action_id)
    return errors


def view_errors(view: Any, *, pointer: str = "/view") -> list[str]:
    """Problems with a modal or home view, empty when Slack would accept it."""
    if not isinstance(view, dict):
        return [_pointer_error("view must be an object", pointer)]
    errors: list[str] = []
    kind = view.get("type")
    if kind not in ("modal", "home"):
        errors.append(_pointer_error("type must be 'modal' or 'home'", f"{pointer}/type"))
    blocks = view.get("blocks")
    if blocks is None:
        errors.append(_pointer_error("blocks is required", f"{pointer}/blocks"))
    else:
        errors.extend(block_errors(blocks, limit=MAX_VIEW_BLOCKS, pointer=f"{pointer}/blocks"))
    if kind == "modal":
        if not _text_of(view.get("title")):
            errors.append(_pointer_error("a modal needs a title", f"{pointer}/title"))
        has_input = isinstance(blocks, list) and any(
            isinstance(b, dict) and b.get("type") == "input" for b in blocks
        )
        if has_input and not view.get("submit"):
            errors.append(
                _pointer_error("a modal with input blocks needs submit", f"{pointer}/submit")
            )
    try:
        # Only the View's own validators (title/submit/close/metadata); blocks were checked above.
        View(**view).validate_json()
    except SlackObjectFormationError as exc:
        too_many = isinstance(blocks, list) and len(blocks) > MAX_VIEW_BLOCKS
        if not (too_many and "blocks" in str(exc)):
            errors.append(_pointer_error(str(exc), pointer))
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        if not errors:
            errors.append(_pointer_error(f"malformed view: {exc}", pointer))
    return errors


def message_text_errors(text: Any) -> list[str]:
    if text is None:
        return []
    if not isinstance(text, str):
        return ["text must be a string"]
    if len(text) > MAX_MESSAGE_TEXT:
        return [f"text must be at most {MAX_MESSAGE_TEXT} characters (got {len(text)})"]
    return []
