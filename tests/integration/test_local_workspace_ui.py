"""The local workspace's browser routes, without a browser: what the page reads and what its
clicks do, through a real Bolt app over Socket Mode. Also `provision dev`'s local-Slack wiring."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.grammar import VERBS
from localslack import LocalSlack
from provision.dev_workspace import provision_command_hints, start_local_slack
from provision.settings import ConfigurationError, Settings, load_settings
from tests.support.processes import free_port
from workflows.scenarios import SCENARIOS

ALICE, BOB, CAROL = "U0ALICE", "U0BOB", "U0CAROL"
INFRA = "C0INFRA"
JSON_HEADERS = {"Content-Type": "application/json"}


def approve_modal(channel: str, ts: str) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": "approve_modal",
        "private_metadata": json.dumps({"channel": channel, "ts": ts}),
        "title": {"type": "plain_text", "text": "Approve plan"},
        "submit": {"type": "plain_text", "text": "Approve"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {
                "type": "input",
                "block_id": "reason",
                "label": {"type": "plain_text", "text": "Why?"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": "reason_input",
                    "multiline": True,
                },
            }
        ],
    }


@pytest_asyncio.fixture
async def slack() -> AsyncIterator[LocalSlack]:
    server = LocalSlack()
    server.ui.hints = [provision_command_hints()]
    server.ui.user_notes = {ALICE: "requester", BOB: "approver", CAROL: "not an approver"}
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest_asyncio.fixture
async def bolt(slack: LocalSlack) -> AsyncIterator[AsyncApp]:
    """A small app with the provision flow's shape: command → message with buttons → modal."""
    app = AsyncApp(client=AsyncWebClient(token=slack.bot_token, base_url=slack.api_url))

    @app.command("/provision")
    async def on_command(ack, body, client):
        await ack(text=f"Planning {body['text']}…")
        await client.chat_postMessage(
            channel=body["channel_id"],
            text=f"plan for {body['text']}",
            blocks=[
                {"type": "section", "text": {"type": "mrkdwn", "text": "*Plan* 1 to add"}},
                {
                    "type": "actions",
                    "block_id": "run_actions",
                    "elements": [
                        {
                            "type": "button",
                            "action_id": "approve",
                            "value": "run-1",
                            "style": "primary",
                            "text": {"type": "plain_text", "text": "Approve"},
                        }
                    ],
                },
            ],
        )

    @app.action("approve")
    async def on_approve(ack, body, client):
        await ack()
        if body["user"]["id"] == ALICE:
            await client.chat_postEphemeral(
                channel=body["channel"]["id"],
                user=ALICE,
                text="Four eyes: someone else has to approve",
            )
            return
        await client.views_open(
            trigger_id=body["trigger_id"],
            view=approve_modal(body["channel"]["id"], body["message"]["ts"]),
        )

    @app.view("approve_modal")
    async def on_submit(ack, view, client):
        reason = view["state"]["values"]["reason"]["reason_input"]["value"] or ""
        if not reason.strip():
            await ack(response_action="errors", errors={"reason": "Say why you approve"})
            return
        await ack()
        where = json.loads(view["private_metadata"])
        await client.chat_update(
            channel=where["channel"], ts=where["ts"], text=f"approved: {reason}"
        )

    handler = AsyncSocketModeHandler(app, slack.app_token)
    await handler.connect_async()
    try:
        await slack.wait_for(lambda s: s.connections == 1, timeout=10)
        yield app
    finally:
        await handler.close_async()


@pytest_asyncio.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def post(
    http: aiohttp.ClientSession, slack: LocalSlack, path: str, body: dict[str, Any], **headers: str
) -> tuple[int, dict[str, Any]]:
    async with http.post(
        slack.url + path.lstrip("/"), data=json.dumps(body), headers={**JSON_HEADERS, **headers}
    ) as response:
        return response.status, await response.json()


async def state(http: aiohttp.ClientSession, slack: LocalSlack, user: str) -> dict[str, Any]:
    async with http.get(f"{slack.url}ui/state", params={"user": user}) as response:
        assert response.status == 200
        return await response.json()


# -- the page and what it reads -------------------------------------------------------------


async def test_root_serves_the_page_to_browsers_and_json_to_api_clients(
    slack: LocalSlack, http: aiohttp.ClientSession
) -> None:
    async with http.get(slack.url, headers={"Accept": "text/html,*/*"}) as response:
        assert response.status == 200 and response.content_type == "text/html"
        page = await response.text()
        csp = response.headers["Content-Security-Policy"]
    assert '<script type="module" src="/ui/static/app.js">' in page
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("style-src")[0]
    async with http.get(slack.url) as response:
        assert (await response.json())["api_url"] == slack.api_url


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("app.js", "text/javascript"),
        ("blocks.js", "text/javascript"),
        ("mrkdwn.js", "text/javascript"),
        ("style.css", "text/css"),
        ("index.html", "text/html"),
    ],
)
async def test_static_files_are_served_with_their_type(
    slack: LocalSlack, http: aiohttp.ClientSession, name: str, content_type: str
) -> None:
    async with http.get(f"{slack.url}ui/static/{name}") as response:
        assert response.status == 200 and response.content_type == content_type
        assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("name", ["..%2Fserver.py", "server.py", "ui.py", "missing.js", "a.exe"])
async def test_nothing_but_the_web_files_is_served(
    slack: LocalSlack, http: aiohttp.ClientSession, name: str
) -> None:
    async with http.get(f"{slack.url}ui/static/{name}") as response:
        assert response.status == 404


async def test_config_names_users_with_their_roles_and_the_command_completions(
    slack: LocalSlack, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{slack.url}ui/config") as response:
        config = await response.json()
    notes = {u["name"]: u["note"] for u in config["users"] if not u["is_bot"]}
    assert notes == {"alice": "requester", "bob": "approver", "carol": "not an approver"}
    assert config["default_user"] == ALICE and config["channels"] == [
        {"id": INFRA, "name": "infra"}
    ]
    [provision] = config["commands"]
    assert provision["command"] == "/provision"
    first = {s["value"]: s for s in provision["first"]}
    assert set(VERBS) <= set(first)
    assert {name for name in SCENARIOS if name not in VERBS} <= set(first)
    assert first["human-in-the-loop-update"]["description"] == (
        SCENARIOS["human-in-the-loop-update"].summary
    )
    options = {k: [o["value"] for o in v] for k, v in provision["options"].items()}
    assert options["human-in-the-loop-update"] == [
        "--var",
        "--owner",
        "--prefix",
        "--ttl",
        "--workspace",
        "--pace",
    ]
    assert options["approve"] == ["--reason"]


def test_hints_follow_the_grammar_and_the_scenario_table() -> None:
    hints = provision_command_hints()
    verbs = [s.value for s in hints.first if s.kind == "verb"]
    scenarios = [s.value for s in hints.first if s.kind == "scenario"]
    assert verbs == list(VERBS)
    # "destroy" is a verb first: `/provision destroy` never means the destroy scenario.
    assert scenarios == [name for name in SCENARIOS if name not in VERBS]
    assert all(s.description for s in hints.first if s.value != "help")


# -- what the page does ---------------------------------------------------------------------


async def test_command_click_modal_errors_and_update_through_the_ui_routes(
    slack: LocalSlack, bolt: AsyncApp, http: aiohttp.ClientSession
) -> None:
    status, body = await post(
        http, slack, "/ui/command", {"user": ALICE, "text": "/provision happy-path"}
    )
    assert status == 200 and body["known"] is True
    plan = await slack.wait_for(lambda s: s.messages(INFRA), timeout=10)
    ts = plan[0]["ts"]
    seen = await state(http, slack, ALICE)
    assert [m["ts"] for m in seen["messages"]] == [ts] and seen["app"]["connected"]
    # The ack's text went to alice only.
    assert [e["text"] for e in seen["ephemerals"]] == ["Planning happy-path…"]
    assert (await state(http, slack, BOB))["ephemerals"] == []

    click = {
        "channel": INFRA,
        "ts": ts,
        "action_id": "approve",
        "value": "run-1",
        "block_id": "run_actions",
    }
    status, _ = await post(http, slack, "/ui/click", {"user": ALICE, **click})
    assert status == 200
    await slack.wait_for(lambda s: len(s.ephemerals(ALICE)) == 2, timeout=10)
    assert (await state(http, slack, ALICE))["views"] == []

    status, _ = await post(http, slack, "/ui/click", {"user": BOB, **click})
    assert status == 200
    [modal] = await slack.wait_for(lambda s: s.views(BOB), timeout=10)
    assert (await state(http, slack, ALICE))["views"] == []

    # Empty: Slack's client refuses it before the app hears of it.
    submit = {"user": BOB, "view_id": modal["id"]}
    status, body = await post(
        http, slack, "/ui/view/submit", {**submit, "values": {"reason": {"reason_input": ""}}}
    )
    assert status == 422 and body["errors"] == {"reason": "Please complete this required field."}
    # Blank: the app refuses it inline; the page reads the error from the state.
    status, body = await post(
        http, slack, "/ui/view/submit", {**submit, "values": {"reason": {"reason_input": "  "}}}
    )
    assert status == 200 and body["response_action"] == "errors" and not body["closed"]
    [shown] = (await state(http, slack, BOB))["views"]
    assert shown["errors"] == {"reason": "Say why you approve"}

    status, body = await post(
        http, slack, "/ui/view/submit", {**submit, "values": {"reason": {"reason_input": "lgtm"}}}
    )
    assert status == 200 and body["closed"]
    updated = await slack.wait_for(
        lambda s: (m := s.message(INFRA, ts))["text"] == "approved: lgtm" and m, timeout=10
    )
    assert "edited" in updated
    assert (await state(http, slack, BOB))["views"] == []
    slack.assert_no_validation_failures()


async def test_closing_a_modal_and_dismissing_an_ephemeral(
    slack: LocalSlack, bolt: AsyncApp, http: aiohttp.ClientSession
) -> None:
    await post(http, slack, "/ui/command", {"user": BOB, "text": "/provision x"})
    [plan] = await slack.wait_for(lambda s: s.messages(INFRA), timeout=10)
    await post(
        http,
        slack,
        "/ui/click",
        {"user": BOB, "channel": INFRA, "ts": plan["ts"], "action_id": "approve"},
    )
    [modal] = await slack.wait_for(lambda s: s.views(BOB), timeout=10)
    status, _ = await post(http, slack, "/ui/view/close", {"user": BOB, "view_id": modal["id"]})
    assert status == 200 and slack.views(BOB) == []

    [ack] = slack.ephemerals(BOB)
    dismiss = {"user": BOB, "channel": INFRA, "ts": ack["ts"]}
    assert (await post(http, slack, "/ui/ephemeral/dismiss", dismiss))[0] == 200
    assert slack.ephemerals(BOB) == []
    # Twice is what a double click does: still fine.
    assert (await post(http, slack, "/ui/ephemeral/dismiss", dismiss))[0] == 200


async def test_unknown_command_is_answered_by_slackbot_and_never_reaches_the_app(
    slack: LocalSlack, bolt: AsyncApp, http: aiohttp.ClientSession
) -> None:
    status, body = await post(http, slack, "/ui/command", {"user": CAROL, "text": "/deploy x"})
    assert status == 200 and body["known"] is False
    [told] = slack.ephemerals(CAROL)
    assert told["user"] == "USLACKBOT" and "`/deploy` is not a valid command" in told["text"]
    assert slack.envelopes == []


async def test_plain_text_is_posted_as_the_user(
    slack: LocalSlack, http: aiohttp.ClientSession
) -> None:
    status, _ = await post(http, slack, "/ui/command", {"user": CAROL, "text": "hello *all*"})
    assert status == 200
    [message] = slack.messages(INFRA)
    assert message["user"] == CAROL and message["text"] == "hello *all*"


async def test_the_app_not_answering_is_a_504_and_slack_says_so(
    slack: LocalSlack, http: aiohttp.ClientSession
) -> None:
    slack.ack_timeout = 0.2
    status, body = await post(http, slack, "/ui/command", {"user": ALICE, "text": "/provision x"})
    assert status == 504 and body["error"] == "app_did_not_respond"
    assert "operation_timeout" in slack.ephemerals(ALICE)[0]["text"]


@pytest.mark.parametrize(
    ("path", "body", "status", "error"),
    [
        ("/ui/command", {"user": "U0NOBODY", "text": "/provision"}, 400, "user_not_found"),
        ("/ui/command", {"user": "U0BOT", "text": "hi"}, 400, "user_not_found"),
        ("/ui/command", {"user": ALICE, "text": "   "}, 400, "no_text"),
        ("/ui/command", {"user": ALICE}, 400, "invalid_arguments"),
        (
            "/ui/click",
            {"user": ALICE, "channel": INFRA, "ts": "1.000001", "action_id": "x"},
            409,
            "not_on_screen",
        ),
        ("/ui/view/submit", {"user": ALICE, "view_id": "V0NOPE"}, 409, "not_on_screen"),
        (
            "/ui/view/submit",
            {"user": ALICE, "view_id": "V0NOPE", "values": []},
            400,
            "invalid_arguments",
        ),
        (
            "/ui/command",
            {"user": ALICE, "text": "x", "channel": "nowhere"},
            400,
            "channel_not_found",
        ),
    ],
)
async def test_bad_requests_get_a_one_word_error(
    slack: LocalSlack, http: aiohttp.ClientSession, path: str, body: dict, status: int, error: str
) -> None:
    got, answer = await post(http, slack, path, body)
    assert (got, answer["error"]) == (status, error)


async def test_other_sites_cannot_drive_the_workspace(
    slack: LocalSlack, http: aiohttp.ClientSession
) -> None:
    body = {"user": ALICE, "text": "hello"}
    # A form post from another page (no preflight possible without JSON).
    async with http.post(f"{slack.url}ui/command", data={"user": ALICE, "text": "hi"}) as r:
        assert r.status == 415
    status, answer = await post(http, slack, "/ui/command", body, Origin="https://evil.example")
    assert (status, answer["error"]) == (403, "forbidden_origin")
    # DNS rebinding: a foreign name pointed at 127.0.0.1 may neither read nor write.
    status, answer = await post(http, slack, "/ui/command", body, Host="evil.example")
    assert (status, answer["error"]) == (403, "forbidden_host")
    async with http.get(
        f"{slack.url}ui/state", params={"user": ALICE}, headers={"Host": "evil.example:80"}
    ) as response:
        assert response.status == 403
    assert slack.messages(INFRA) == []
    status, _ = await post(http, slack, "/ui/command", body, Origin=slack.url.rstrip("/"))
    assert status == 200


async def test_uploaded_files_are_shown_as_text_never_as_a_page(
    slack: LocalSlack, http: aiohttp.ClientSession
) -> None:
    web = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
    await web.files_upload_v2(
        channel=INFRA, content="<script>alert(1)</script>", filename="evil.html", title="evil"
    )
    [shared] = slack.files
    async with http.get(f"{slack.url}ui/files/{shared['id']}") as response:
        assert response.status == 200 and response.content_type == "text/plain"
        assert "sandbox" in response.headers["Content-Security-Policy"]
        assert await response.text() == "<script>alert(1)</script>"
    async with http.get(f"{slack.url}ui/files/F0NOPE") as response:
        assert response.status == 404


async def next_change(events: aiohttp.StreamReader, timeout: float = 5.0) -> dict[str, Any]:
    """The next `change` event of an SSE stream."""

    async def read() -> dict[str, Any]:
        kind = None
        while True:
            line = (await events.readline()).decode().rstrip("\n")
            if line.startswith("event: "):
                kind = line.removeprefix("event: ")
            elif line.startswith("data: ") and kind == "change":
                return json.loads(line.removeprefix("data: "))

    return await asyncio.wait_for(read(), timeout)


async def test_event_stream_tells_each_user_only_what_they_can_see(
    slack: LocalSlack, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{slack.url}ui/events", params={"user": BOB}) as response:
        assert response.headers["Content-Type"] == "text/event-stream"
        assert await response.content.readline() == b"retry: 1000\n"
        web = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
        await web.chat_postEphemeral(channel=INFRA, user=ALICE, text="for alice")
        await web.chat_postMessage(channel=INFRA, text="for everyone")
        # Alice's ephemeral (and the API calls) are not bob's business: his next change is
        # the public message.
        assert (await next_change(response.content))["kind"] == "message.posted"
        await web.chat_postEphemeral(channel=INFRA, user=BOB, text="for bob")
        assert (await next_change(response.content))["kind"] == "ephemeral.posted"


async def test_state_of_unknown_users_and_channels_is_refused(
    slack: LocalSlack, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{slack.url}ui/state", params={"user": "U0X"}) as response:
        assert response.status == 400
    async with http.get(
        f"{slack.url}ui/state", params={"user": ALICE, "channel": "nowhere"}
    ) as response:
        assert response.status == 404
    async with http.get(f"{slack.url}ui/events", params={"user": "U0X"}) as response:
        assert response.status == 400


# -- provision dev's wiring -----------------------------------------------------------------


def test_local_slack_port_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().local_slack_port == 3000
    monkeypatch.setenv("PROVISION_LOCAL_SLACK_PORT", "3210")
    assert load_settings().local_slack_port == 3210
    monkeypatch.setenv("PROVISION_LOCAL_SLACK_PORT", "70000")
    with pytest.raises(ConfigurationError, match="PROVISION_LOCAL_SLACK_PORT"):
        load_settings()


async def test_start_local_slack_points_bot_and_worker_at_it(
    http: aiohttp.ClientSession,
) -> None:
    port = free_port()
    slack, settings = await start_local_slack(Settings(local_slack_port=port))
    try:
        assert slack.url == f"http://127.0.0.1:{port}/"
        assert settings.slack_configured and settings.slack_api_url == slack.api_url
        assert settings.slack_bot_token.get_secret_value() == slack.bot_token
        assert settings.slack_app_token.get_secret_value() == slack.app_token
        # The demo's cast: alice and bob approve (S0APPROVERS), carol does not.
        assert settings.slack_approvers == ["S0APPROVERS"]
        async with http.get(f"{slack.url}ui/config") as response:
            config = await response.json()
        notes = {u["name"]: u["note"] for u in config["users"] if not u["is_bot"]}
        assert notes == {
            "alice": "requester · approver",
            "bob": "approver",
            "carol": "not an approver",
        }
        assert config["commands"][0]["command"] == "/provision"
        with pytest.raises(ConfigurationError, match=f"PROVISION_LOCAL_SLACK_PORT: port {port}"):
            await start_local_slack(Settings(local_slack_port=port))
    finally:
        await slack.stop()


async def test_start_local_slack_keeps_configured_approvers() -> None:
    slack, settings = await start_local_slack(
        Settings(local_slack_port=0, slack_approvers=["U0CAROL"])
    )
    try:
        assert settings.slack_approvers == ["U0CAROL"]
        assert slack.ui.user_notes == {
            ALICE: "requester · not an approver",
            BOB: "not an approver",
            CAROL: "approver",
        }
    finally:
        await slack.stop()
