"""The bot's Slack client against a real HTTP server answering what Slack never would: proxy pages,
plain text, bytes that are not UTF-8. Every failure is a SlackApiError whose response reads."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from aiohttp import test_utils, web
from slack_sdk.errors import SlackApiError

from bot.web_client import UNREADABLE_RESPONSE, build_web_client, slack_error_code

BODIES: dict[str, tuple[int, str, bytes]] = {
    "html-500": (500, "text/html", b"<html><body>502 Bad Gateway</body></html>"),
    "html-as-json": (200, "application/json", b"<html>proxy says no</html>"),
    "html-as-json-503": (503, "application/json", b"<html>maintenance</html>"),
    "plain-text": (200, "text/plain", b"oops"),
    "invalid-utf8-json": (200, "application/json", b'{"ok": true, "x": "\xff\xfe"}'),
    "invalid-utf8-text": (400, "text/plain", b"\xff\xfe\xfd"),
    "empty": (200, "application/json", b""),
    "slack-error": (200, "application/json", b'{"ok": false, "error": "channel_not_found"}'),
}


@pytest_asyncio.fixture
async def odd_slack() -> AsyncIterator[str]:
    async def answer(request: web.Request) -> web.Response:
        status, content_type, body = BODIES[request.match_info["case"]]
        return web.Response(status=status, body=body, headers={"Content-Type": content_type})

    app = web.Application()
    app.router.add_post("/{case}/api/{method}", answer)
    server = test_utils.TestServer(app)
    await server.start_server()
    try:
        yield str(server.make_url("/"))
    finally:
        await server.close()


@pytest.mark.parametrize("case", sorted(BODIES))
async def test_unreadable_slack_answers_are_slack_api_errors(odd_slack: str, case: str) -> None:
    errors: list[tuple[str, str]] = []
    client = build_web_client(
        "xoxb-test",
        f"{odd_slack}{case}/api/",
        on_error=lambda method, code: errors.append((method, code)),
        timeout=5,
    )
    with pytest.raises(SlackApiError) as caught:
        await client.chat_postMessage(channel="C1", text="hello")
    response = caught.value.response
    # What every caller in the bot does with a failure: none of these may raise.
    error = response.get("error")
    assert error is None or isinstance(error, str)
    assert isinstance(response.status_code, int)
    code = slack_error_code(caught.value)
    assert errors and errors[-1] == ("chat.postMessage", code)
    if case == "slack-error":
        assert code == "channel_not_found"
    elif case in ("html-500",):
        assert code == "http_500"
    else:
        assert code in (UNREADABLE_RESPONSE, "http_200", "http_400", "http_503"), code
