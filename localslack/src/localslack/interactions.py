"""What a user's actions look like to the app (payloads), and how the app's answers land."""

from __future__ import annotations

import copy
import time
from typing import Any

from .errors import ElementNotFound, SlackApiError
from .model import ResponseUrl
from .store import Workspace
from .validation import MAX_MESSAGE_BLOCKS, block_errors, interactive_elements, message_text_errors

VERIFICATION_TOKEN = "localslack-verification-token"

# Element type -> key of the value in view.state.values, for elements holding one value.
_SINGLE_VALUE_KEYS = {
    "plain_text_input": "value",
    "number_input": "value",
    "email_text_input": "value",
    "url_text_input": "value",
    "rich_text_input": "rich_text_value",
    "datepicker": "selected_date",
    "timepicker": "selected_time",
    "datetimepicker": "selected_date_time",
    "users_select": "selected_user",
    "conversations_select": "selected_conversation",
    "channels_select": "selected_channel",
    "multi_users_select": "selected_users",
    "multi_conversations_select": "selected_conversations",
    "multi_channels_select": "selected_channels",
}
# Element type -> key under which its *_initial_* value is declared.
_INITIAL_KEYS = {
    "plain_text_input": "initial_value",
    "number_input": "initial_value",
    "email_text_input": "initial_value",
    "url_text_input": "initial_value",
    "rich_text_input": "initial_value",
    "datepicker": "initial_date",
    "timepicker": "initial_time",
    "datetimepicker": "initial_date_time",
    "users_select": "initial_user",
    "conversations_select": "initial_conversation",
    "channels_select": "initial_channel",
    "multi_users_select": "initial_users",
    "multi_conversations_select": "initial_conversations",
    "multi_channels_select": "initial_channels",
}
_ONE_OPTION = {"static_select", "external_select", "radio_buttons"}
_MANY_OPTIONS = {"multi_static_select", "multi_external_select", "checkboxes"}


def _now_ts() -> str:
    return f"{time.time():.6f}"


def user_ref(ws: Workspace, user_id: str) -> dict[str, Any]:
    user = ws.user(user_id)
    return {"id": user.id, "username": user.name, "name": user.name, "team_id": ws.team_id}


def team_ref(ws: Workspace) -> dict[str, Any]:
    return {"id": ws.team_id, "domain": ws.team_domain}


# -- payloads -------------------------------------------------------------------------------


def slash_command_payload(
    ws: Workspace,
    *,
    user_id: str,
    channel_id: str,
    command: str,
    text: str,
    response_url: str,
    trigger_id: str,
) -> dict[str, Any]:
    # Slash command payloads are form fields, so every value is a string.
    channel = ws.channel(channel_id)
    return {
        "token": VERIFICATION_TOKEN,
        "team_id": ws.team_id,
        "team_domain": ws.team_domain,
        "channel_id": channel.id,
        "channel_name": "directmessage" if channel.is_im else channel.name,
        "user_id": user_id,
        "user_name": ws.user(user_id).name,
        "command": command,
        "text": text,
        "api_app_id": ws.app_id,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id,
    }


def find_element(
    blocks: list[dict[str, Any]],
    *,
    action_id: str,
    block_id: str | None = None,
    value: str | None = None,
    element_type: str | None = "button",
) -> tuple[str, dict[str, Any]]:
    """The (block_id, element) a user could click; ElementNotFound when it is not on screen."""
    matches = [
        (block["block_id"], element)
        for block in blocks
        for element in interactive_elements(block)
        if element.get("action_id") == action_id
        and (block_id is None or block["block_id"] == block_id)
        and (value is None or element.get("value") == value)
        and (element_type is None or element.get("type") == element_type)
    ]
    if not matches:
        raise ElementNotFound(
            f"no {element_type or 'element'} with action_id {action_id!r}"
            + (f" and value {value!r}" if value is not None else "")
        )
    if len(matches) > 1:
        raise ElementNotFound(
            f"{len(matches)} elements have action_id {action_id!r}; pass block_id or value"
        )
    return matches[0]


def button_action(block_id: str, element: dict[str, Any]) -> dict[str, Any]:
    action: dict[str, Any] = {
        "action_id": element["action_id"],
        "block_id": block_id,
        "text": copy.deepcopy(element.get("text")),
        "type": "button",
        "action_ts": _now_ts(),
    }
    for key in ("value", "style", "url"):
        if key in element:
            action[key] = element[key]
    return action


def block_actions_payload(
    ws: Workspace,
    *,
    user_id: str,
    action: dict[str, Any],
    container: dict[str, Any],
    trigger_id: str,
    state_values: dict[str, Any],
    channel_id: str | None = None,
    message: dict[str, Any] | None = None,
    view: dict[str, Any] | None = None,
    response_url: str | None = None,
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": user_ref(ws, user_id),
        "api_app_id": ws.app_id,
        "token": VERIFICATION_TOKEN,
        "container": container,
        "trigger_id": trigger_id,
        "team": team_ref(ws),
        "enterprise": None,
        "is_enterprise_install": False,
        "state": {"values": state_values},
        "actions": [action],
    }
    if channel_id is not None:
        channel = ws.channel(channel_id)
        payload["channel"] = {
            "id": channel.id,
            "name": "directmessage" if channel.is_im else channel.name,
        }
    if message is not None:
        payload["message"] = message
    if view is not None:
        payload["view"] = view
    if response_url is not None:
        payload["response_url"] = response_url
    return payload


def view_submission_payload(
    ws: Workspace, *, user_id: str, view: dict[str, Any], trigger_id: str
) -> dict[str, Any]:
    return {
        "type": "view_submission",
        "team": team_ref(ws),
        "user": user_ref(ws, user_id),
        "api_app_id": ws.app_id,
        "token": VERIFICATION_TOKEN,
        "trigger_id": trigger_id,
        "view": view,
        "response_urls": [],
        "is_enterprise_install": False,
        "enterprise": None,
    }


def view_closed_payload(
    ws: Workspace, *, user_id: str, view: dict[str, Any], is_cleared: bool
) -> dict[str, Any]:
    return {
        "type": "view_closed",
        "team": team_ref(ws),
        "user": user_ref(ws, user_id),
        "api_app_id": ws.app_id,
        "token": VERIFICATION_TOKEN,
        "view": view,
        "is_cleared": is_cleared,
        "is_enterprise_install": False,
        "enterprise": None,
    }


def events_api_payload(ws: Workspace, event: dict[str, Any]) -> dict[str, Any]:
    return {
        "token": VERIFICATION_TOKEN,
        "team_id": ws.team_id,
        "api_app_id": ws.app_id,
        "event": event,
        "type": "event_callback",
        "event_id": "Ev" + str(time.time_ns())[-10:],
        "event_time": int(time.time()),
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": ws.team_id,
                "user_id": ws.bot_user.id,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": f"local-{ws.team_id}-{ws.app_id}",
    }


# -- state of inputs ------------------------------------------------------------------------


def _options(element: dict[str, Any]) -> list[dict[str, Any]]:
    options = list(element.get("options") or [])
    for group in element.get("option_groups") or []:
        options.extend(group.get("options") or [])
    return options


def _option(element: dict[str, Any], value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    for option in _options(element):
        if option.get("value") == value:
            return copy.deepcopy(option)
    if element.get("type", "").startswith(("external_select", "multi_external_select")):
        return {"text": {"type": "plain_text", "text": str(value)}, "value": value}
    raise ElementNotFound(f"option {value!r} is not offered by {element.get('action_id')!r}")


def element_state(
    element: dict[str, Any], value: Any = None, *, initial: bool = False
) -> dict[str, Any]:
    """One element's entry in state.values; `initial` reads the element's declared defaults."""
    kind = element.get("type", "")
    state: dict[str, Any] = {"type": kind}
    if kind in _SINGLE_VALUE_KEYS:
        key = _SINGLE_VALUE_KEYS[kind]
        state[key] = copy.deepcopy(element.get(_INITIAL_KEYS[kind])) if initial else value
        if kind == "number_input" and state[key] is not None:
            state[key] = str(state[key])
    elif kind in _ONE_OPTION:
        chosen = element.get("initial_option") if initial else value
        state["selected_option"] = _option(element, chosen) if chosen is not None else None
    elif kind in _MANY_OPTIONS:
        chosen = element.get("initial_options") if initial else value
        state["selected_options"] = [_option(element, v) for v in chosen or []]
    elif isinstance(value, dict):
        state.update(value)
    return state


def _is_empty(state: dict[str, Any]) -> bool:
    values = [v for k, v in state.items() if k != "type"]
    return all(v in (None, "", [], {}) for v in values)


def build_state_values(
    blocks: list[dict[str, Any]],
    stored: dict[str, dict[str, Any]],
    provided: dict[str, dict[str, Any]],
) -> dict[str, dict[str, Any]]:
    """state.values as Slack sends it: every stateful element, typed or defaulted."""
    known = {
        (block["block_id"], element["action_id"]): element
        for block in blocks
        for element in interactive_elements(block)
        if element.get("type") != "button"
    }
    for block_id, actions in provided.items():
        for action_id in actions:
            if (block_id, action_id) not in known:
                raise ElementNotFound(f"no input {block_id!r}/{action_id!r} in this view")
    values: dict[str, dict[str, Any]] = {}
    for (block_id, action_id), element in known.items():
        if action_id in provided.get(block_id, {}):
            raw = provided[block_id][action_id]
            state = raw if isinstance(raw, dict) and "type" in raw else element_state(element, raw)
        elif action_id in stored.get(block_id, {}):
            state = copy.deepcopy(stored[block_id][action_id])
        else:
            state = element_state(element, initial=True)
        values.setdefault(block_id, {})[action_id] = state
    return values


def client_side_errors(
    blocks: list[dict[str, Any]], values: dict[str, dict[str, Any]]
) -> dict[str, str]:
    """What Slack's client checks before it lets a user submit: required fields and lengths."""
    errors: dict[str, str] = {}
    for block in blocks:
        if block.get("type") != "input" or not isinstance(block.get("element"), dict):
            continue
        element = block["element"]
        state = values.get(block["block_id"], {}).get(element["action_id"], {})
        if _is_empty(state):
            if not block.get("optional", False):
                errors[block["block_id"]] = "Please complete this required field."
            continue
        text = state.get("value")
        if isinstance(text, str):
            if "min_length" in element and len(text) < element["min_length"]:
                errors[block["block_id"]] = f"Use at least {element['min_length']} characters."
            if "max_length" in element and len(text) > element["max_length"]:
                errors[block["block_id"]] = f"Use at most {element['max_length']} characters."
    return errors


# -- the app's answers ----------------------------------------------------------------------


def _checked_blocks(ws: Workspace, body: dict[str, Any], source: str) -> list[dict[str, Any]]:
    blocks = body.get("blocks")
    errors = message_text_errors(body.get("text"))
    if blocks is not None:
        errors += block_errors(blocks, limit=MAX_MESSAGE_BLOCKS)
    if errors:
        ws.record_validation_failure(source, errors, body)
        raise SlackApiError("invalid_blocks", status=400, errors=errors)
    return list(blocks or [])


def deliver_response(
    ws: Workspace, target: ResponseUrl, body: dict[str, Any], *, source: str
) -> None:
    """Apply an app's answer to an interaction (ack payload or response_url POST) as Slack does."""
    if body.get("delete_original"):
        _delete_original(ws, target)
        return
    blocks = _checked_blocks(ws, body, source)
    text = body.get("text") or ""
    if not text and not blocks:
        raise SlackApiError("no_text", status=400)
    if body.get("replace_original") and target.message_ts is not None:
        if target.message_is_ephemeral:
            original = ws.ephemeral(target.user, target.channel, target.message_ts)
            ws.replace_ephemeral(original, text=text, blocks=blocks)
        else:
            ws.update_message(target.channel, target.message_ts, text=text, blocks=blocks)
        return
    thread_ts = body.get("thread_ts")
    if body.get("response_type") == "in_channel":
        ws.post_message(
            target.channel, user=ws.bot_user.id, text=text, blocks=blocks, thread_ts=thread_ts
        )
    else:
        ws.post_ephemeral(
            target.channel,
            target.user,
            text=text,
            blocks=blocks,
            thread_ts=thread_ts,
            source=source,
        )


def _delete_original(ws: Workspace, target: ResponseUrl) -> None:
    if target.message_ts is None:
        raise SlackApiError("message_not_found", status=404)
    if target.message_is_ephemeral:
        ws.delete_ephemeral(ws.ephemeral(target.user, target.channel, target.message_ts))
    else:
        ws.delete_message(target.channel, target.message_ts)
