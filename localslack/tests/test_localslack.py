"""LocalSlack against the real slack_sdk and slack_bolt clients, over HTTP and Socket Mode."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from localslack import AckTimeout, ElementNotFound, InputRejected, LocalSlack

ALICE, BOB = "U0ALICE", "U0BOB"
INFRA = "C0INFRA"


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def button(action_id: str, value: str, label: str = "Approve") -> dict[str, Any]:
    return {
        "type": "button",
        "action_id": action_id,
        "value": value,
        "text": {"type": "plain_text", "text": label},
    }


APPROVE_MODAL_INPUT = {
    "type": "input",
    "block_id": "reason",
    # Optional so that an empty submission reaches the app; Slack's client would block it
    # otherwise (test_required_input_is_checked_by_the_client).
    "optional": True,
    "label": {"type": "plain_text", "text": "Why?"},
    "element": {"type": "plain_text_input", "action_id": "reason_input"},
}


def retrying_client(token: str, slack: LocalSlack) -> AsyncWebClient:
    return AsyncWebClient(
        token=token,
        base_url=slack.api_url,
        retry_handlers=[
            AsyncRateLimitErrorRetryHandler(max_retry_count=3),
            AsyncServerErrorRetryHandler(max_retry_count=3),
        ],
    )


@pytest_asyncio.fixture
async def slack() -> AsyncIterator[LocalSlack]:
    server = LocalSlack()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest_asyncio.fixture
async def web(slack: LocalSlack) -> AsyncWebClient:
    return retrying_client(slack.bot_token, slack)


@dataclass
class BoltBot:
    """A real Bolt app with the provision flow's shape: command -> button -> modal -> update."""

    app: AsyncApp
    handler: AsyncSocketModeHandler
    commands: list[dict[str, Any]] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)
    submissions: list[dict[str, Any]] = field(default_factory=list)


def build_bot(slack: LocalSlack) -> BoltBot:
    # Bolt takes the token from the client it is given; a token argument would be ignored.
    app = AsyncApp(client=retrying_client(slack.bot_token, slack))
    bot = BoltBot(app, AsyncSocketModeHandler(app, slack.app_token))

    @app.command("/provision")
    async def on_command(ack, body, client):
        await ack(text=f"Planning {body['text']}...")
        bot.commands.append(body)
        await client.chat_postMessage(
            channel=body["channel_id"],
            text=f"Plan for {body['text']}",
            blocks=[
                section(f"*Plan* for `{body['text']}`: 1 to add"),
                {"type": "actions", "elements": [button("approve", body["text"])]},
            ],
        )

    @app.action("approve")
    async def on_approve(ack, body, client):
        await ack()
        bot.actions.append(body)
        metadata = {"channel": body["channel"]["id"], "ts": body["message"]["ts"]}
        await client.views_open(
            trigger_id=body["trigger_id"],
            view={
                "type": "modal",
                "callback_id": "approve_modal",
                "private_metadata": json.dumps(metadata),
                "title": {"type": "plain_text", "text": "Approve plan"},
                "submit": {"type": "plain_text", "text": "Approve"},
                "blocks": [APPROVE_MODAL_INPUT],
            },
        )

    @app.view("approve_modal")
    async def on_submit(ack, view, client):
        bot.submissions.append(view)
        reason = view["state"]["values"]["reason"]["reason_input"]["value"]
        if not (reason or "").strip():
            await ack(response_action="errors", errors={"reason": "Say why you approve"})
            return
        await ack()
        metadata = json.loads(view["private_metadata"])
        await client.chat_update(
            channel=metadata["channel"],
            ts=metadata["ts"],
            text=f"Approved: {reason}",
            blocks=[section(f"Approved: {reason}")],
        )

    @app.event("app_mention")
    async def on_mention(event, say):
        await say(text="status: idle", thread_ts=event["ts"])

    return bot


@pytest_asyncio.fixture
async def bot(slack: LocalSlack) -> AsyncIterator[BoltBot]:
    bot = build_bot(slack)
    await bot.handler.connect_async()
    try:
        await slack.wait_for(lambda s: s.connections == 1, timeout=10)
        yield bot
    finally:
        await bot.handler.close_async()


class RawSocketApp:
    """A bare WebSocket client, for checking the wire protocol byte by byte."""

    def __init__(self, slack: LocalSlack) -> None:
        self.slack = slack
        self.session = aiohttp.ClientSession()
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.hello: dict[str, Any] = {}

    async def connect(self) -> RawSocketApp:
        client = AsyncWebClient(base_url=self.slack.api_url)
        opened = await client.apps_connections_open(app_token=self.slack.app_token)
        self.url = opened["url"]
        self.ws = await self.session.ws_connect(self.url, autoping=False)
        self.hello = await self.ws.receive_json(timeout=5)
        return self

    async def envelope(self) -> dict[str, Any]:
        assert self.ws is not None
        return await self.ws.receive_json(timeout=5)

    async def ack(self, envelope_id: str, payload: dict[str, Any] | None = None) -> None:
        assert self.ws is not None
        body: dict[str, Any] = {"envelope_id": envelope_id}
        if payload is not None:
            body["payload"] = payload
        await self.ws.send_json(body)

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        await self.session.close()


@pytest_asyncio.fixture
async def raw(slack: LocalSlack) -> AsyncIterator[RawSocketApp]:
    app = RawSocketApp(slack)
    try:
        yield await app.connect()
    finally:
        await app.close()


# -- end to end with Bolt -------------------------------------------------------------------


async def test_command_button_modal_flow_end_to_end(slack: LocalSlack, bot: BoltBot) -> None:
    ack = await slack.slash_command(ALICE, "network")
    assert ack.latency < slack.ack_timeout and ack.deliveries == 1

    command = bot.commands[0]
    assert command["command"] == "/provision" and command["text"] == "network"
    assert command["user_id"] == ALICE and command["user_name"] == "alice"
    assert command["channel_id"] == INFRA and command["channel_name"] == "infra"
    assert command["response_url"].startswith(slack.url) and command["trigger_id"]
    # The ack's text is shown to the user only, as Slack does.
    assert [e["text"] for e in slack.ephemerals(ALICE)] == ["Planning network..."]
    assert slack.ephemerals(BOB) == []

    [plan] = await slack.wait_for(lambda s: s.messages(INFRA), timeout=10)
    assert plan["bot_id"] and plan["text"] == "Plan for network"
    assert [b["type"] for b in plan["blocks"]] == ["section", "actions"]

    await slack.click_button(BOB, INFRA, plan["ts"], "approve")
    action = bot.actions[0]
    assert action["type"] == "block_actions" and action["user"]["id"] == BOB
    assert action["actions"][0]["action_id"] == "approve"
    assert action["actions"][0]["value"] == "network"
    assert action["actions"][0]["block_id"] == plan["blocks"][1]["block_id"]
    assert action["container"] == {
        "type": "message",
        "message_ts": plan["ts"],
        "channel_id": INFRA,
        "is_ephemeral": False,
    }
    [modal] = await slack.wait_for(lambda s: s.views(BOB), timeout=10)
    assert modal["callback_id"] == "approve_modal"

    empty = await slack.submit_view(BOB, modal["id"], {"reason": {"reason_input": ""}})
    assert empty.response_action == "errors"
    assert empty.errors == {"reason": "Say why you approve"}
    assert not empty.closed and slack.views(BOB)[0]["id"] == modal["id"]

    # The SDK must ride out a rate limit and a server error on the way to the update.
    slack.fail_next("chat.update", status=429, retry_after=1)
    slack.fail_next("chat.update", status=500)
    done = await slack.submit_view(BOB, modal["id"], {"reason": {"reason_input": "lgtm"}})
    assert done.response_action is None and done.closed and done.view is None
    assert slack.views(BOB) == []
    submitted = bot.submissions[-1]["state"]["values"]["reason"]["reason_input"]
    assert submitted == {"type": "plain_text_input", "value": "lgtm"}

    updated = await slack.wait_for(
        lambda s: (
            s.message(INFRA, plan["ts"])["text"] == "Approved: lgtm"
            and s.message(INFRA, plan["ts"])
        ),
        timeout=15,
    )
    assert "edited" in updated
    assert [c.status for c in slack.calls_to("chat.update")] == [429, 500, 200]
    slack.assert_no_validation_failures()


async def test_mention_reaches_the_app_as_an_events_api_envelope(
    slack: LocalSlack, bot: BoltBot
) -> None:
    said = await slack.post_message(ALICE, INFRA, "<@U0BOT> status?")
    thread = await slack.wait_for(
        lambda s: len(s.thread(INFRA, said["ts"])) == 2 and s.thread(INFRA, said["ts"]),
        timeout=10,
    )
    assert thread[1]["text"] == "status: idle" and thread[1]["bot_id"]
    [envelope] = [e for e in slack.envelopes if e.type == "events_api"]
    assert envelope.payload["event"]["type"] == "app_mention"
    await slack.wait_for(lambda s: envelope.acked_at is not None, timeout=5)


async def test_clicking_a_button_that_is_gone_is_an_error(
    slack: LocalSlack, web: AsyncWebClient
) -> None:
    posted = await web.chat_postMessage(
        channel=INFRA, text="x", blocks=[{"type": "actions", "elements": [button("go", "1")]}]
    )
    await web.chat_update(channel=INFRA, ts=posted["ts"], text="done", blocks=[section("done")])
    with pytest.raises(ElementNotFound):
        await slack.click_button(ALICE, INFRA, posted["ts"], "go")


async def test_disconnect_reconnects_and_delivers_exactly_once(
    slack: LocalSlack, bot: BoltBot
) -> None:
    assert slack.connections_opened == 1
    assert await slack.disconnect_all() == 1
    # Sent while the client is reconnecting: it must wait for the new connection, not vanish.
    during = await slack.slash_command(ALICE, "during")
    await slack.wait_for(lambda s: s.connections_opened == 2 and s.connections == 1, timeout=10)
    after = await slack.slash_command(ALICE, "after")

    assert [c["text"] for c in bot.commands] == ["during", "after"]
    assert during.deliveries == 1 and during.retry_attempt == 0
    assert after.deliveries == 1
    assert all(e.duplicate_acks == 0 for e in slack.envelopes)
    assert len(slack.calls_to("apps.connections.open")) == 2


async def test_dropped_connection_is_redialed_and_commands_still_arrive(
    slack: LocalSlack, bot: BoltBot
) -> None:
    assert await slack.drop_connections() == 1
    ack = await slack.slash_command(ALICE, "after-drop", timeout=10)
    assert ack.deliveries == 1
    assert [c["text"] for c in bot.commands] == ["after-drop"]
    assert slack.connections_opened == 2


# -- Web API with the SDK -------------------------------------------------------------------


async def test_rate_limit_retry_after_and_server_error_are_retried(
    slack: LocalSlack, web: AsyncWebClient
) -> None:
    posted = await web.chat_postMessage(channel=INFRA, text="v1")
    slack.fail_next("chat.update", times=1, status=429, retry_after=1)
    started = time.monotonic()
    await web.chat_update(channel=INFRA, ts=posted["ts"], text="v2")
    assert time.monotonic() - started >= 1.0  # the SDK honoured Retry-After
    slack.fail_next("chat.update", times=2, status=500)
    await web.chat_update(channel=INFRA, ts=posted["ts"], text="v3")
    assert slack.message(INFRA, posted["ts"])["text"] == "v3"
    assert [c.status for c in slack.calls_to("chat.update")] == [429, 200, 500, 500, 200]

    bare = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
    slack.fail_next("chat.update", status=429, retry_after=7)
    with pytest.raises(SlackApiError) as raised:
        await bare.chat_update(channel=INFRA, ts=posted["ts"], text="v4")
    assert raised.value.response.status_code == 429
    assert raised.value.response["error"] == "ratelimited"
    assert raised.value.response.headers["Retry-After"] == "7"

    # An outage of unknown length: every call fails until it is over.
    slack.fail_next("chat.update", times=1_000_000, status=503)
    with pytest.raises(SlackApiError):
        await bare.chat_update(channel=INFRA, ts=posted["ts"], text="v5")
    slack.recover("chat.update")
    await bare.chat_update(channel=INFRA, ts=posted["ts"], text="v6")
    assert slack.message(INFRA, posted["ts"])["text"] == "v6"


async def test_invalid_blocks_are_rejected_and_recorded(
    slack: LocalSlack, web: AsyncWebClient
) -> None:
    too_many = [section(f"row {i}") for i in range(51)]
    long_header = [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}]
    long_section = [section("s" * 3001)]
    bare_string = [{"type": "section", "text": "not an object"}]
    for blocks in (too_many, long_header, long_section, bare_string):
        with pytest.raises(SlackApiError) as raised:
            await web.chat_postMessage(channel=INFRA, text="x", blocks=blocks)
        assert raised.value.response["error"] == "invalid_blocks"
        assert raised.value.response["errors"]
    with pytest.raises(SlackApiError) as raised:
        await web.chat_postMessage(channel=INFRA, text="t" * 40_001)
    assert raised.value.response["error"] == "msg_too_long"
    assert len(slack.validation_failures) == 5
    assert slack.messages(INFRA) == []
    with pytest.raises(AssertionError, match="Slack would have rejected"):
        slack.assert_no_validation_failures()

    # 50 blocks and a 150-character header are fine.
    await web.chat_postMessage(channel=INFRA, text="x", blocks=[section("r")] * 50)
    await web.chat_postMessage(
        channel=INFRA,
        text="x",
        blocks=[{"type": "header", "text": {"type": "plain_text", "text": "h" * 150}}],
    )


async def test_invalid_view_is_rejected(slack: LocalSlack, web: AsyncWebClient) -> None:
    with pytest.raises(SlackApiError) as raised:
        await web.views_open(
            trigger_id="whatever",
            view={
                "type": "modal",
                "title": {"type": "plain_text", "text": "t" * 25},
                "blocks": [section("hi")],
            },
        )
    assert raised.value.response["error"] == "invalid_arguments"
    assert "title" in raised.value.response["errors"][0]
    with pytest.raises(SlackApiError) as raised:
        await web.views_open(
            trigger_id="whatever",
            view={
                "type": "modal",
                "title": {"type": "plain_text", "text": "t"},
                "blocks": [section("b")] * 101,
            },
        )
    assert raised.value.response["error"] == "invalid_arguments"
    assert [f.source for f in slack.validation_failures] == ["views.open", "views.open"]


async def test_tokens_are_checked(slack: LocalSlack) -> None:
    cases = [
        (AsyncWebClient(token="xoxb-wrong", base_url=slack.api_url), "invalid_auth"),
        (AsyncWebClient(base_url=slack.api_url), "not_authed"),
        (AsyncWebClient(token=slack.app_token, base_url=slack.api_url), "not_allowed_token_type"),
    ]
    for client, error in cases:
        with pytest.raises(SlackApiError) as raised:
            await client.chat_postMessage(channel=INFRA, text="hi")
        assert raised.value.response["error"] == error
    with pytest.raises(SlackApiError) as raised:
        await AsyncWebClient(base_url=slack.api_url).apps_connections_open(
            app_token=slack.bot_token
        )
    assert raised.value.response["error"] == "not_allowed_token_type"
    auth = await AsyncWebClient(token=slack.bot_token, base_url=slack.api_url).auth_test()
    assert auth["user_id"] == "U0BOT" and auth["bot_id"] and auth["team_id"] == "T0LOCAL"


async def test_directory_history_threads_and_permalinks(
    slack: LocalSlack, web: AsyncWebClient
) -> None:
    assert (await web.usergroups_users_list(usergroup="S0APPROVERS"))["users"] == [ALICE, BOB]
    assert (await web.users_info(user=ALICE))["user"]["name"] == "alice"
    assert (await web.conversations_info(channel=INFRA))["channel"]["name"] == "infra"
    with pytest.raises(SlackApiError, match="channel_not_found"):
        await web.conversations_info(channel="C0NOPE")

    parent = await web.chat_postMessage(channel="#infra", text="parent")
    assert parent["channel"] == INFRA
    reply = await web.chat_postMessage(channel=INFRA, text="reply", thread_ts=parent["ts"])
    later = await web.chat_postMessage(channel=INFRA, text="later")
    history = await web.conversations_history(channel=INFRA)
    assert [m["text"] for m in history["messages"]] == ["later", "parent"]
    assert history["messages"][1]["reply_count"] == 1
    replies = await web.conversations_replies(channel=INFRA, ts=parent["ts"])
    assert [m["text"] for m in replies["messages"]] == ["parent", "reply"]
    assert [m["text"] for m in slack.thread(INFRA, parent["ts"])] == ["parent", "reply"]
    assert slack.message(INFRA, reply["ts"])["thread_ts"] == parent["ts"]
    paged = await web.conversations_history(channel=INFRA, limit=1)
    assert paged["has_more"] and paged["messages"][0]["ts"] == later["ts"]

    link = (await web.chat_getPermalink(channel=INFRA, message_ts=parent["ts"]))["permalink"]
    async with aiohttp.ClientSession() as session, session.get(link) as response:
        assert (await response.json())["message"]["text"] == "parent"

    with pytest.raises(SlackApiError, match="message_not_found"):
        await web.chat_update(channel=INFRA, ts="1.000001", text="nope")
    with pytest.raises(SlackApiError, match="thread_not_found"):
        await web.chat_postMessage(channel=INFRA, text="x", thread_ts="1.000001")

    sent = await web.chat_postEphemeral(channel=INFRA, user=BOB, text="psst")
    assert [e["ts"] for e in slack.ephemerals(BOB)] == [sent["message_ts"]]
    assert slack.ephemerals(ALICE) == []


async def test_files_upload_v2_lands_in_the_thread(slack: LocalSlack, web: AsyncWebClient) -> None:
    parent = await web.chat_postMessage(channel=INFRA, text="plan ready")
    uploaded = await web.files_upload_v2(
        channel=INFRA,
        thread_ts=parent["ts"],
        filename="plan.txt",
        content="+ null_resource.x",
        initial_comment="full plan attached",
    )
    file_id = uploaded["file"]["id"]
    assert slack.file_content(file_id) == b"+ null_resource.x"
    thread = await slack.wait_for(
        lambda s: len(s.thread(INFRA, parent["ts"])) == 2 and s.thread(INFRA, parent["ts"]),
        timeout=5,
    )
    shared = thread[1]
    assert shared["text"] == "full plan attached"
    assert shared["files"][0]["id"] == file_id and shared["files"][0]["name"] == "plan.txt"
    assert [c.method for c in slack.calls][-2:] == [
        "files.getUploadURLExternal",
        "files.completeUploadExternal",
    ]
    info = await web.files_info(file=file_id)
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            info["file"]["url_private"], headers={"Authorization": f"Bearer {slack.bot_token}"}
        ) as response,
    ):
        assert await response.read() == b"+ null_resource.x"

    with pytest.warns(UserWarning, match="files_upload_v2"):
        legacy = await web.files_upload(
            channels=INFRA, content="v1 body", filename="old.txt", thread_ts=parent["ts"]
        )
    assert slack.file_content(legacy["file"]["id"]) == b"v1 body"
    assert len(slack.thread(INFRA, parent["ts"])) == 3


# -- Socket Mode wire protocol --------------------------------------------------------------


async def test_hello_ping_and_single_use_tickets(slack: LocalSlack, raw: RawSocketApp) -> None:
    assert raw.hello["type"] == "hello"
    assert raw.hello["num_connections"] == 1
    assert raw.hello["connection_info"] == {"app_id": "A0LOCAL"}
    assert "approximate_connection_time" in raw.hello["debug_info"]
    assert raw.ws is not None
    await raw.ws.ping(b"sdk-ping-pong:123.4")
    pong = await raw.ws.receive(timeout=5)
    assert pong.type == aiohttp.WSMsgType.PONG and pong.data == b"sdk-ping-pong:123.4"

    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError):
            await session.ws_connect(raw.url)  # the ticket was used by `raw`


async def test_envelope_shape_ack_payload_and_timeout(slack: LocalSlack, raw: RawSocketApp) -> None:
    command = asyncio.create_task(slack.slash_command(ALICE, "x"))
    envelope = await raw.envelope()
    assert envelope["type"] == "slash_commands"
    assert envelope["accepts_response_payload"] is True
    assert envelope["retry_attempt"] == 0 and envelope["retry_reason"] == ""
    assert set(envelope["payload"]) >= {
        "token",
        "team_id",
        "channel_id",
        "channel_name",
        "user_id",
        "user_name",
        "command",
        "text",
        "response_url",
        "trigger_id",
        "api_app_id",
    }
    await raw.ack(envelope["envelope_id"], {"response_type": "in_channel", "text": "on it"})
    ack = await command
    assert ack.payload == {"response_type": "in_channel", "text": "on it"}
    assert [m["text"] for m in slack.messages(INFRA)] == ["on it"]

    with pytest.raises(AckTimeout):
        await slack.slash_command(ALICE, "ignored", timeout=0.2)
    assert "operation_timeout" in slack.ephemerals(ALICE)[-1]["text"]


async def test_unacked_envelope_is_redelivered_on_the_next_connection(
    slack: LocalSlack, raw: RawSocketApp
) -> None:
    slack.hub.redelivery_delay = 0.05
    command = asyncio.create_task(slack.slash_command(ALICE, "x", timeout=10))
    first = await raw.envelope()
    await raw.close()  # dies before acking
    second_app = await RawSocketApp(slack).connect()
    try:
        second = await second_app.envelope()
        assert second["envelope_id"] == first["envelope_id"]
        assert second["retry_attempt"] == 1 and second["retry_reason"] == "connection_failed"
        await second_app.ack(second["envelope_id"])
        ack = await command
        assert ack.deliveries == 2 and ack.retry_attempt == 1
    finally:
        await second_app.close()


async def test_response_url_ephemeral_in_channel_replace_and_delete(
    slack: LocalSlack, raw: RawSocketApp, web: AsyncWebClient
) -> None:
    command = asyncio.create_task(slack.slash_command(ALICE, "x"))
    envelope = await raw.envelope()
    await raw.ack(envelope["envelope_id"])
    await command
    hook = AsyncWebhookClient(envelope["payload"]["response_url"])
    assert (await hook.send(text="only you")).status_code == 200
    assert (await hook.send(text="everyone", response_type="in_channel")).status_code == 200
    bad = await hook.send(text="x", blocks=[section("s" * 3001)])
    assert bad.status_code == 400 and bad.body == "invalid_blocks"
    assert [e["text"] for e in slack.ephemerals(ALICE)] == ["only you"]
    [message] = slack.messages(INFRA)
    assert message["text"] == "everyone"

    posted = await web.chat_postMessage(
        channel=INFRA, text="q", blocks=[{"type": "actions", "elements": [button("ok", "1")]}]
    )
    click = asyncio.create_task(slack.click_button(ALICE, INFRA, posted["ts"], "ok"))
    action = await raw.envelope()
    assert action["accepts_response_payload"] is False
    await raw.ack(action["envelope_id"])
    await click
    hook = AsyncWebhookClient(action["payload"]["response_url"])
    await hook.send(text="replaced", replace_original=True)
    assert slack.message(INFRA, posted["ts"])["text"] == "replaced"
    await hook.send(delete_original=True)
    with pytest.raises(KeyError):
        slack.message(INFRA, posted["ts"])


async def test_view_stack_push_update_and_close(
    slack: LocalSlack, raw: RawSocketApp, web: AsyncWebClient
) -> None:
    posted = await web.chat_postMessage(
        channel=INFRA, text="q", blocks=[{"type": "actions", "elements": [button("open", "1")]}]
    )
    click = asyncio.create_task(slack.click_button(ALICE, INFRA, posted["ts"], "open"))
    action = await raw.envelope()
    await raw.ack(action["envelope_id"])
    await click
    trigger = action["payload"]["trigger_id"]
    modal = {
        "type": "modal",
        "notify_on_close": True,
        "title": {"type": "plain_text", "text": "One"},
        "submit": {"type": "plain_text", "text": "Next"},
        "blocks": [APPROVE_MODAL_INPUT],
    }
    opened = (await web.views_open(trigger_id=trigger, view=modal))["view"]
    with pytest.raises(SlackApiError, match="exchanged_trigger_id"):
        await web.views_open(trigger_id=trigger, view=modal)
    with pytest.raises(SlackApiError, match="hash_conflict"):
        await web.views_update(view_id=opened["id"], hash="stale", view=modal)
    renamed = {**modal, "title": {"type": "plain_text", "text": "Renamed"}}
    updated = await web.views_update(view_id=opened["id"], hash=opened["hash"], view=renamed)
    assert slack.views(ALICE)[0]["title"]["text"] == "Renamed"
    assert updated["view"]["hash"] != opened["hash"]

    second = {**modal, "title": {"type": "plain_text", "text": "Two"}}
    submit = asyncio.create_task(
        slack.submit_view(ALICE, opened["id"], {"reason": {"reason_input": "first"}})
    )
    envelope = await raw.envelope()
    assert envelope["payload"]["type"] == "view_submission"
    await raw.ack(envelope["envelope_id"], {"response_action": "push", "view": second})
    pushed = await submit
    assert pushed.view is not None and pushed.view["title"]["text"] == "Two"
    assert pushed.view["previous_view_id"] == opened["id"]
    assert [v["title"]["text"] for v in slack.views(ALICE)] == ["Renamed", "Two"]

    close = asyncio.create_task(slack.close_view(ALICE, pushed.view["id"], clear=True))
    closed = await raw.envelope()
    assert closed["payload"]["type"] == "view_closed" and closed["payload"]["is_cleared"] is True
    await raw.ack(closed["envelope_id"])
    await close
    assert slack.views(ALICE) == []
    slack.assert_no_validation_failures()


async def test_required_input_is_checked_by_the_client(
    slack: LocalSlack, raw: RawSocketApp, web: AsyncWebClient
) -> None:
    posted = await web.chat_postMessage(
        channel=INFRA, text="q", blocks=[{"type": "actions", "elements": [button("open", "1")]}]
    )
    click = asyncio.create_task(slack.click_button(ALICE, INFRA, posted["ts"], "open"))
    action = await raw.envelope()
    await raw.ack(action["envelope_id"])
    await click
    required = {**APPROVE_MODAL_INPUT, "optional": False}
    opened = (
        await web.views_open(
            trigger_id=action["payload"]["trigger_id"],
            view={
                "type": "modal",
                "title": {"type": "plain_text", "text": "Approve"},
                "submit": {"type": "plain_text", "text": "Go"},
                "blocks": [required],
            },
        )
    )["view"]
    with pytest.raises(InputRejected) as rejected:
        await slack.submit_view(ALICE, opened["id"], {})
    assert set(rejected.value.errors) == {"reason"}
    assert not [e for e in slack.envelopes if e.payload.get("type") == "view_submission"]


async def test_events_stream_and_wait_for(slack: LocalSlack, web: AsyncWebClient) -> None:
    async with slack.subscribe(kinds={"message.posted", "message.updated"}) as events:
        posted = await web.chat_postMessage(channel=INFRA, text="hello")
        await web.chat_update(channel=INFRA, ts=posted["ts"], text="edited")
        first, second = await events.get(timeout=5), await events.get(timeout=5)
    assert (first.kind, first.data["message"]["text"]) == ("message.posted", "hello")
    assert (second.kind, second.data["message"]["text"]) == ("message.updated", "edited")

    waiter = asyncio.create_task(
        slack.wait_for(lambda s: s.message(INFRA, "9999999999.000001"), timeout=0.2)
    )
    with pytest.raises(TimeoutError):
        await waiter
