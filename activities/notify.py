"""The notify activity: re-renders a run's Slack message at each state change, and puts the full
plan in the message's thread once per plan. A message that is gone is posted again (its new ts is
returned, so the workflow updates that one from then on). Slack trouble never fails a run."""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient
from temporalio import activity
from temporalio.exceptions import ApplicationError

from bot.blocks import escape, render_run_message
from workflows.models import (
    NOTIFY_ACTIVITY,
    NotifyInput,
    NotifyResult,
    RunStatus,
    SlackMessageRef,
)

log = logging.getLogger(__name__)

# A plan that fits in one section (3000 characters) goes in the thread as a code block anyone
# can read inline; a longer one goes as a file.
INLINE_PLAN_LIMIT = 3000
_SHARED_PLANS_REMEMBERED = 2000
# Slack errors no retry can fix: the message, channel or token is gone or wrong.
_RETRYABLE_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)


def notifier_web_client(token: str, base_url: str) -> AsyncWebClient:
    """A Web API client that rides out rate limits and server errors a few times itself; the
    activity's retry policy is the next line of defence."""
    return AsyncWebClient(
        token=token,
        base_url=base_url,
        timeout=10,
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(max_retry_count=2),
            AsyncRateLimitErrorRetryHandler(max_retry_count=2),
            AsyncServerErrorRetryHandler(max_retry_count=2),
        ],
    )


def plan_marker(plan_text: str) -> str:
    """A short content hash that names a plan in its thread, so it is shared once."""
    return "plan " + hashlib.sha256(plan_text.encode()).hexdigest()[:12]


# chat.update's answers for a message that is no longer there to update.
_GONE_ERRORS = frozenset({"message_not_found", "cant_update_message"})


def _slack_error(exc: SlackApiError) -> tuple[str | None, int]:
    """(Slack's error code, HTTP status) of a failed call. A proxy or a load balancer may answer
    with an HTML page, or with a body that claims to be JSON and is not: then slack_sdk hands over
    no dict (or the raw HTTP response), and there is no error code, only a status."""
    response = exc.response
    status = getattr(response, "status_code", None) or getattr(response, "status", None) or 200
    data = getattr(response, "data", None)
    code = data.get("error") if isinstance(data, dict) else None
    return (code if isinstance(code, str) else None), int(status)


def _is_retryable(exc: SlackApiError) -> bool:
    code, status = _slack_error(exc)
    return status == 429 or status >= 500 or code in _RETRYABLE_ERRORS


class SlackNotifier:
    """Built with the Slack client it uses (None: Slack is not configured, notify is a no-op)."""

    def __init__(self, client: AsyncWebClient | None = None) -> None:
        self.client = client
        self._said_unconfigured = False
        # (channel, thread ts, marker) of plans already in a thread, to skip the thread search.
        self._shared: OrderedDict[tuple[str, str, str], None] = OrderedDict()

    @activity.defn(name=NOTIFY_ACTIVITY)
    async def notify(self, input: NotifyInput) -> NotifyResult:
        status = input.status
        if status.slack is None:
            return NotifyResult()
        if self.client is None:
            if not self._said_unconfigured:
                self._said_unconfigured = True
                log.info(
                    "Slack is not configured (SLACK_BOT_TOKEN unset): run messages are not updated"
                )
            return NotifyResult()
        namespace = activity.info().workflow_namespace
        text, blocks = render_run_message(status, namespace=namespace)
        reposted: SlackMessageRef | None = None
        try:
            # chat.update of the same content is harmless, so retries need no bookkeeping.
            await self.client.chat_update(
                channel=status.slack.channel, ts=status.slack.ts, text=text, blocks=blocks
            )
        except SlackApiError as exc:
            if _slack_error(exc)[0] not in _GONE_ERRORS:
                raise self._failure("chat.update", exc) from None
            reposted = await self._repost(status.slack, text, blocks)
            status = status.model_copy(update={"slack": reposted})
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise ApplicationError(f"Slack unreachable: {exc}", type="SlackUnreachable") from None
        if status.plan_text:
            try:
                await self._share_plan(status)
            except ApplicationError:
                if reposted is None:
                    raise
                # A retry would find the old message gone again and post a second one: report
                # the new message now; the next notification shares the plan in its thread.
                log.warning("plan not shared under the reposted run message; next time")
        return NotifyResult(reposted=reposted)

    async def _repost(self, gone: SlackMessageRef, text: str, blocks: list) -> SlackMessageRef:
        """Post the run message again where the gone one was (its thread, if it was a reply): a
        run waiting for approval must keep its buttons."""
        assert self.client is not None
        in_thread = gone.thread_ts if gone.thread_ts and gone.thread_ts != gone.ts else None
        log.warning("run message %s in %s is gone; posting it again", gone.ts, gone.channel)
        try:
            posted = await self.client.chat_postMessage(
                channel=gone.channel, thread_ts=in_thread, text=text, blocks=blocks
            )
        except SlackApiError as exc:
            raise self._failure("chat.postMessage", exc) from None
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise ApplicationError(f"Slack unreachable: {exc}", type="SlackUnreachable") from None
        return SlackMessageRef(channel=gone.channel, ts=posted["ts"], thread_ts=in_thread)

    def _failure(self, method: str, exc: SlackApiError) -> ApplicationError:
        code, status = _slack_error(exc)
        error = code or f"http {status}"
        retryable = _is_retryable(exc)
        log.warning(
            "Slack %s failed: %s (%s)",
            method,
            error,
            "will retry" if retryable else "not retryable",
        )
        return ApplicationError(
            f"Slack {method} failed: {error}", type="SlackApiError", non_retryable=not retryable
        )

    async def _share_plan(self, status: RunStatus) -> None:
        assert status.slack is not None and self.client is not None
        channel, thread_ts = status.slack.channel, status.slack.thread_ts or status.slack.ts
        marker = plan_marker(status.plan_text)
        key = (channel, thread_ts, marker)
        if key in self._shared:
            return
        try:
            if not await self._in_thread(channel, thread_ts, marker):
                await self._post_plan(status, channel, thread_ts, marker)
        except SlackApiError as exc:
            failure = self._failure("plan sharing", exc)
            if not failure.non_retryable:
                raise failure from None
            # The message itself is current; a plan that cannot be shared (scope, size) must
            # not hold the run's later notifications back in retries.
            return
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise ApplicationError(f"Slack unreachable: {exc}", type="SlackUnreachable") from None
        self._shared[key] = None
        while len(self._shared) > _SHARED_PLANS_REMEMBERED:
            self._shared.popitem(last=False)

    async def _in_thread(self, channel: str, thread_ts: str, marker: str) -> bool:
        """Whether a worker (this one before a restart, or another) already shared this plan."""
        assert self.client is not None
        cursor = None
        while True:
            page = await self.client.conversations_replies(
                channel=channel, ts=thread_ts, cursor=cursor, limit=200
            )
            for message in page.get("messages") or []:
                names = [f.get("title") or f.get("name") or "" for f in message.get("files") or []]
                if marker in (message.get("text") or "") or any(marker in n for n in names):
                    return True
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return False

    async def _post_plan(
        self, status: RunStatus, channel: str, thread_ts: str, marker: str
    ) -> None:
        assert self.client is not None
        lines = status.plan_text.count("\n") + 1
        title = f"Full plan of {status.workspace} ({marker}, {lines} lines)"
        inline = f"```{escape(status.plan_text)}```"
        if len(inline) <= INLINE_PLAN_LIMIT:
            await self.client.chat_postMessage(
                channel=channel,
                thread_ts=thread_ts,
                text=title,
                blocks=[
                    {"type": "section", "text": {"type": "mrkdwn", "text": f"*{escape(title)}*"}},
                    {"type": "section", "text": {"type": "mrkdwn", "text": inline}},
                ],
            )
            return
        await self.client.files_upload_v2(
            channel=channel,
            thread_ts=thread_ts,
            content=status.plan_text,
            filename=f"{status.workspace}-{marker.replace(' ', '-')}.txt",
            title=title,
            initial_comment=title,
            snippet_type="text",
        )
