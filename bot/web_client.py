"""The bot's Slack Web API client: the SDK's retry handlers, one shared HTTP session, and every
error (retried or final) counted by method and error code."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

ErrorCounter = Callable[[str, str], None]


def _method_of(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0]


class _Counted:
    """Mixin for a retry handler: counts each response it decides to retry."""

    on_error: ErrorCounter

    async def _can_retry_async(self, *, state, request, response=None, error=None) -> bool:
        retry = await super()._can_retry_async(  # type: ignore[misc]
            state=state, request=request, response=response, error=error
        )
        if retry:
            code = f"http_{response.status_code}" if response is not None else type(error).__name__
            if response is not None and response.status_code == 429:
                code = "ratelimited"
            self.on_error(_method_of(request.url), code)
        return retry


class CountedRateLimitRetry(_Counted, AsyncRateLimitErrorRetryHandler):
    def __init__(self, on_error: ErrorCounter, max_retry_count: int = 2):
        super().__init__(max_retry_count=max_retry_count)
        self.on_error = on_error


class CountedServerErrorRetry(_Counted, AsyncServerErrorRetryHandler):
    def __init__(self, on_error: ErrorCounter, max_retry_count: int = 2):
        super().__init__(max_retry_count=max_retry_count)
        self.on_error = on_error


class CountedConnectionRetry(_Counted, AsyncConnectionErrorRetryHandler):
    def __init__(self, on_error: ErrorCounter, max_retry_count: int = 2):
        super().__init__(max_retry_count=max_retry_count)
        self.on_error = on_error


# The error code a body Slack's API would never send becomes: a proxy's HTML page, plain text,
# bytes that are not UTF-8.
UNREADABLE_RESPONSE = "invalid_response"


def slack_error_code(exc: SlackApiError) -> str:
    """The `error` of a Slack API failure, or `http_<status>`, whatever the response holds."""
    response = exc.response
    data = getattr(response, "data", None)
    if isinstance(data, dict) and isinstance(data.get("error"), str) and data["error"]:
        return data["error"]
    status = getattr(response, "status_code", None) or getattr(response, "status", None)
    return f"http_{status}" if isinstance(status, int) else UNREADABLE_RESPONSE


class CountingWebClient(AsyncWebClient):
    """An AsyncWebClient that reports every error that reaches the caller, and whose errors
    always carry a readable response (`exc.response.get("error")` works on every one)."""

    def __init__(self, *args: Any, on_error: ErrorCounter, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._on_error = on_error

    async def _request(self, *, http_verb: str, api_url: str, req_args: dict) -> dict[str, Any]:
        # The SDK raises a SlackApiError holding the raw aiohttp response for a non-JSON body,
        # lets UnicodeDecodeError out for invalid text, and hands back a str for text/plain: each
        # turns into the one shape callers read, `{"ok": false, "error": ...}`.
        try:
            response = await super()._request(
                http_verb=http_verb, api_url=api_url, req_args=req_args
            )
        except SlackApiError as exc:
            if isinstance(exc.response, AsyncSlackResponse):
                raise
            return _unreadable(
                getattr(exc.response, "status", 0), getattr(exc.response, "headers", {})
            )
        except UnicodeDecodeError:
            return _unreadable(0, {})
        if isinstance(response.get("data"), str):
            return _unreadable(response.get("status_code", 0), response.get("headers", {}))
        return response

    async def api_call(  # type: ignore[override]
        self, api_method: str, **kwargs: Any
    ) -> AsyncSlackResponse:
        try:
            return await super().api_call(api_method, **kwargs)
        except SlackApiError as exc:
            self._on_error(api_method, slack_error_code(exc))
            raise


def _unreadable(status: object, headers: object) -> dict[str, Any]:
    # Status 200 with an unreadable body still fails validation: `ok` is false.
    return {
        "data": {"ok": False, "error": UNREADABLE_RESPONSE},
        "headers": dict(headers) if isinstance(headers, Mapping) else {},
        "status_code": status if isinstance(status, int) else 0,
    }


def build_web_client(
    token: str,
    base_url: str,
    *,
    on_error: ErrorCounter,
    session: aiohttp.ClientSession | None = None,
    timeout: int = 10,
) -> CountingWebClient:
    handlers: list[AsyncRetryHandler] = [
        CountedConnectionRetry(on_error),
        CountedRateLimitRetry(on_error),
        CountedServerErrorRetry(on_error),
    ]
    return CountingWebClient(
        token=token,
        base_url=base_url,
        session=session,
        timeout=timeout,
        retry_handlers=handlers,
        on_error=on_error,
    )
