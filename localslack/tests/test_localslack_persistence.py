"""A workspace with a data file keeps its channels across a restart: messages, threads, files and
buttons come back, and new messages sort after the old ones."""

from __future__ import annotations

import json
from pathlib import Path

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from localslack import LocalSlack

INFRA = "C0INFRA"
BUTTONS = {
    "type": "actions",
    "block_id": "decide",
    "elements": [
        {
            "type": "button",
            "action_id": "approve",
            "value": "run-1",
            "text": {"type": "plain_text", "text": "Approve"},
        }
    ],
}


def web(slack: LocalSlack) -> AsyncWebClient:
    return AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)


async def test_a_restart_keeps_messages_threads_files_and_buttons(tmp_path: Path) -> None:
    data_file = tmp_path / "data" / "local-slack.json"
    first = LocalSlack(data_file=data_file)
    await first.start()
    try:
        client = web(first)
        posted = await client.chat_postMessage(channel=INFRA, text="run 1", blocks=[BUTTONS])
        ts = posted["ts"]
        await client.chat_postMessage(channel=INFRA, thread_ts=ts, text="the plan")
        await client.files_upload_v2(
            channel=INFRA, thread_ts=ts, content="+ null_resource.x", filename="plan.txt"
        )
        await client.chat_update(channel=INFRA, ts=ts, text="run 1: awaiting approval")
        gone = await client.chat_postMessage(channel=INFRA, text="deleted before the restart")
        await client.chat_delete(channel=INFRA, ts=gone["ts"])
    finally:
        await first.stop()
    assert json.loads(data_file.read_text())["version"] == 1

    second = LocalSlack(data_file=data_file)
    await second.start()
    try:
        [message] = second.messages(INFRA)
        assert message["ts"] == ts and message["text"] == "run 1: awaiting approval"
        assert message["blocks"][0]["elements"][0]["action_id"] == "approve"
        assert message["reply_count"] == 2
        thread = second.thread(INFRA, ts)
        assert thread[1]["text"] == "the plan"
        [shared] = thread[2]["files"]
        assert second.file_content(shared["id"]) == b"+ null_resource.x"
        client = web(second)
        # The bot can still update the message it posted before the restart…
        await client.chat_update(channel=INFRA, ts=ts, text="run 1: applied")
        assert second.message(INFRA, ts)["text"] == "run 1: applied"
        # …and what it posts now sorts after everything that came back.
        newer = await client.chat_postMessage(channel=INFRA, text="run 2")
        assert [m["ts"] for m in second.messages(INFRA)] == [ts, newer["ts"]]
        try:
            await client.chat_update(channel=INFRA, ts=gone["ts"], text="x")
            raise AssertionError("a deleted message came back")
        except SlackApiError as exc:
            assert exc.response["error"] == "message_not_found"
    finally:
        await second.stop()


async def test_without_a_data_file_nothing_is_kept(tmp_path: Path) -> None:
    slack = LocalSlack()
    await slack.start()
    try:
        await web(slack).chat_postMessage(channel=INFRA, text="gone at stop")
    finally:
        await slack.stop()
    assert list(tmp_path.iterdir()) == []
    again = LocalSlack()
    await again.start()
    try:
        assert again.messages(INFRA) == []
    finally:
        await again.stop()


async def test_an_unreadable_data_file_is_set_aside(tmp_path: Path) -> None:
    data_file = tmp_path / "local-slack.json"
    data_file.write_text("{not json")
    slack = LocalSlack(data_file=data_file)
    await slack.start()
    try:
        assert slack.messages(INFRA) == []
        assert (tmp_path / "local-slack.json.unreadable").read_text() == "{not json"
    finally:
        await slack.stop()
