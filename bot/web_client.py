"""The bot's Slack Web API client: the SDK's retry handlers, one shared HTTP session, and every
error (retried or final) counted by method and error code."""

from __future__ import annotations

from collections.abc import Callable
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


class CountingWebClient(AsyncWebClient):
    """An AsyncWebClient that reports every error that reaches the caller."""

    def __init__(self, *args: Any, on_error: ErrorCounter, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._on_error = on_error

    async def api_call(  # type: ignore[override]
        self, api_method: str, **kwargs: Any
    ) -> AsyncSlackResponse:
        try:
            return await super().api_call(api_method, **kwargs)
        except SlackApiError as exc:
            self._on_error(api_method, str(exc.response.get("error") or exc.response.status_code))
            raise


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
