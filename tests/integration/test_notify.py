"""The notify activity when Slack lost the run message (deleted, or a local workspace restarted
without it) or answers with something that is not Slack's JSON (a proxy's HTML error page)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
import pytest_asyncio
from aiohttp import web
from temporalio import workflow
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from activities.notify import SlackNotifier, notifier_web_client, plan_marker
from bot.blocks import APPROVE
from localslack import LocalSlack
from tests.integration.test_bot_units import waiting_status
from workflows.models import NotifyInput, RunStatus, SlackMessageRef
from workflows.notifier import RunNotifier

INFRA = "C0INFRA"


@pytest_asyncio.fixture
async def slack() -> AsyncIterator[LocalSlack]:
    server = LocalSlack()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def action_ids(message: dict) -> list[str]:
    return [
        element.get("action_id")
        for block in message.get("blocks", [])
        for element in block.get("elements", [])
        if isinstance(element, dict)
    ]


async def test_a_gone_message_is_posted_again_with_its_buttons_and_plan(
    slack: LocalSlack,
) -> None:
    web_client = notifier_web_client(slack.bot_token, slack.api_url)
    posted = await web_client.chat_postMessage(channel=INFRA, text="starting")
    await web_client.chat_delete(channel=INFRA, ts=posted["ts"])
    status = waiting_status(slack=SlackMessageRef(channel=INFRA, ts=posted["ts"]))

    result = await ActivityEnvironment().run(
        SlackNotifier(web_client).notify, NotifyInput(status=status)
    )

    assert result.reposted is not None and result.reposted.ts != posted["ts"]
    [message] = slack.messages(INFRA)
    assert message["ts"] == result.reposted.ts
    assert message["text"].endswith("awaiting approval")
    assert APPROVE in action_ids(message)
    thread = slack.thread(INFRA, message["ts"])
    assert plan_marker(status.plan_text) in thread[1]["text"]
    slack.assert_no_validation_failures()


async def test_a_current_message_is_updated_not_reposted(slack: LocalSlack) -> None:
    web_client = notifier_web_client(slack.bot_token, slack.api_url)
    posted = await web_client.chat_postMessage(channel=INFRA, text="starting")
    status = waiting_status(slack=SlackMessageRef(channel=INFRA, ts=posted["ts"]), plan_text="")
    result = await ActivityEnvironment().run(
        SlackNotifier(web_client).notify, NotifyInput(status=status)
    )
    assert result.reposted is None
    assert [m["ts"] for m in slack.messages(INFRA)] == [posted["ts"]]


@workflow.defn(name="RunNotifierProbe")
class RunNotifierProbe:
    """Three state changes, with the run message deleted by hand after the first."""

    def __init__(self) -> None:
        self._deleted = False
        self._step = 0

    @workflow.signal
    def message_deleted(self) -> None:
        self._deleted = True

    @workflow.run
    async def run(self, status: RunStatus) -> str:
        def current() -> RunStatus:
            return status.model_copy(update={"reason": f"step {self._step}"})

        notifier = RunNotifier(current, enabled=True)
        notifier.start()
        for step in range(3):
            self._step = step
            notifier.changed()
            await notifier.flush()
            if step == 0:
                await workflow.wait_condition(lambda: self._deleted)
        assert notifier.moved_to is not None
        return notifier.moved_to.ts


async def test_the_workflow_updates_the_reposted_message_from_then_on(
    slack: LocalSlack, temporal_address: str
) -> None:
    client = await Client.connect(temporal_address, data_converter=pydantic_data_converter)
    web_client = notifier_web_client(slack.bot_token, slack.api_url)
    posted = await web_client.chat_postMessage(channel=INFRA, text="starting")
    status = waiting_status(slack=SlackMessageRef(channel=INFRA, ts=posted["ts"]), plan_text="")
    task_queue = f"tq-{uuid.uuid4()}"
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[RunNotifierProbe],
        activities=[SlackNotifier(web_client).notify],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        handle = await client.start_workflow(
            RunNotifierProbe.run,
            status,
            id=f"notifier-{uuid.uuid4()}",
            task_queue=task_queue,
            execution_timeout=timedelta(minutes=2),
        )
        await slack.wait_for(lambda s: s.message(INFRA, posted["ts"]).get("edited"), timeout=30)
        await web_client.chat_delete(channel=INFRA, ts=posted["ts"])
        await handle.signal(RunNotifierProbe.message_deleted)
        new_ts = await handle.result()
    # One message, posted once more and then updated in place: no third message.
    [message] = slack.messages(INFRA)
    assert message["ts"] == new_ts
    assert message.get("edited") and APPROVE in action_ids(message)
    reposts = [c for c in slack.calls_to("chat.postMessage") if not c.params.get("thread_ts")]
    assert len(reposts) == 2  # the test's own first post, and notify's repost


async def serve(handler) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_route("*", "/api/{method}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}/api/"


PROXY_PAGE = "<html><body><h1>502 Bad Gateway</h1></body></html>"


@pytest.mark.parametrize("content_type", ["text/html", "application/json"])
async def test_a_proxys_html_error_page_is_a_retryable_failure(content_type: str) -> None:
    async def proxy(_: web.Request) -> web.Response:
        # Some proxies even label their error page JSON.
        return web.Response(status=500, text=PROXY_PAGE, content_type=content_type)

    runner, url = await serve(proxy)
    try:
        notifier = SlackNotifier(notifier_web_client("xoxb-test", url))
        status = waiting_status(slack=SlackMessageRef(channel=INFRA, ts="1.000001"))
        with pytest.raises(ApplicationError) as raised:
            await ActivityEnvironment().run(notifier.notify, NotifyInput(status=status))
    finally:
        await runner.cleanup()
    assert raised.value.type == "SlackApiError" and not raised.value.non_retryable
    assert "http 500" in str(raised.value)
