"""Codec server: lets the Temporal UI and `temporal --codec-endpoint` show encrypted payloads."""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable, Sequence

from aiohttp import web
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.converter import PayloadCodec

from codec import PayloadCodecError
from codec.compression import CompressionCodec
from codec.converter import build_codec
from codec.keys import KeyRing

logger = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024
ALLOWED_HEADERS = "Content-Type, Authorization, X-Namespace"
ALLOWED_METHODS = "POST, GET, OPTIONS"
PREFLIGHT_MAX_AGE = "600"
_MAX_ERROR_CHARS = 200

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class _BadRequest(Exception):
    """A client error: `message` goes back to the client, `log_text` (default: the same) to the log.

    They differ when the message quotes parser output, which stays out of the log to be safe.
    """

    def __init__(self, status: int, message: str, log_text: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.log_text = log_text or message


def build_codec_app(
    *,
    key_ring: KeyRing | None,
    compress: bool,
    cors_origins: Sequence[str],
    auth_token: str | None,
    allowed_namespaces: Sequence[str] | None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> web.Application:
    """The codec server app: POST `<prefix>/encode` and `<prefix>/decode`, plus GET `/healthz`.

    Prefixes `/encryption_codec`, `/default` and the bare root run the configured chain, the same
    one workers use, so they decode anything workers wrote; `/encryption_codec` answers 404 when
    there are no keys, rather than silently passing ciphertext through. `/compression_codec` only
    (de)compresses.
    """
    configured = build_codec(key_ring=key_ring, encrypt=key_ring is not None, compress=compress)
    # Even with nothing configured, decoding undoes compression a previous setup may have applied.
    default_codec = configured or CompressionCodec(compress=False)
    origins = frozenset(cors_origins)
    namespaces = frozenset(allowed_namespaces) if allowed_namespaces is not None else None
    token = auth_token.encode() if auth_token else None

    app = web.Application(
        client_max_size=max_body_bytes,
        middlewares=[
            _cors_middleware(origins),
            _error_middleware(),
            _access_middleware(token, namespaces, max_body_bytes),
        ],
    )
    for prefix, codec in (
        ("", default_codec),
        ("/default", default_codec),
        ("/encryption_codec", configured if key_ring is not None else None),
        ("/compression_codec", CompressionCodec()),
    ):
        app.router.add_post(f"{prefix}/encode", _codec_handler(codec, encode=True))
        app.router.add_post(f"{prefix}/decode", _codec_handler(codec, encode=False))
    app.router.add_get("/healthz", _healthz)
    return app


async def run_codec_server(app: web.Application, host: str, port: int) -> web.AppRunner:
    """Start serving `app`; the caller stops it with `await runner.cleanup()`.

    With port 0 the bound port is in `runner.addresses`.
    """
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    logger.info("codec server listening on %s", ", ".join(map(str, runner.addresses)))
    return runner


def _codec_handler(codec: PayloadCodec | None, *, encode: bool) -> Handler:
    action = "encode" if encode else "decode"

    async def handle(request: web.Request) -> web.Response:
        if codec is None:
            raise _BadRequest(404, "encryption is not configured on this codec server (no keys)")
        payloads = _parse_payloads(await request.read())
        try:
            out = await (codec.encode(payloads) if encode else codec.decode(payloads))
        except PayloadCodecError as exc:
            raise _BadRequest(400, f"cannot {action} payloads: {exc}") from None
        return web.json_response({"payloads": [json_format.MessageToDict(p) for p in out]})

    return handle


async def _healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def _parse_payloads(body: bytes) -> list[Payload]:
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        raise _BadRequest(400, "body is not valid JSON") from None
    if not isinstance(document, dict):
        raise _BadRequest(400, 'body must be a JSON object like {"payloads": [...]}')
    message = Payloads()
    try:
        json_format.ParseDict(document, message)
    except (json_format.ParseError, ValueError, TypeError, RecursionError) as exc:
        raise _BadRequest(
            400,
            f"body is not a Payloads message: {_one_line(exc)}",
            log_text=f"body is not a Payloads message ({type(exc).__name__})",
        ) from None
    return list(message.payloads)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= _MAX_ERROR_CHARS else text[: _MAX_ERROR_CHARS - 3] + "..."


def _error_response(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _cors_middleware(origins: frozenset[str]) -> Callable[..., Awaitable[web.StreamResponse]]:
    allow_any = "*" in origins

    @web.middleware
    async def cors(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        allowed = origin is not None and (allow_any or origin in origins)
        if request.method == "OPTIONS":
            # Preflight carries no credentials by design, so it is answered before auth.
            if origin is not None and not allowed:
                logger.warning("codec server: preflight from origin %r refused", origin[:200])
                response: web.StreamResponse = _error_response(403, "origin not allowed")
            else:
                response = web.Response(status=204)
                response.headers["Access-Control-Allow-Methods"] = ALLOWED_METHODS
                response.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
                response.headers["Access-Control-Max-Age"] = PREFLIGHT_MAX_AGE
        elif origin is not None and not allowed:
            # A browser page from elsewhere must not use this server's keys, even blind.
            logger.warning("codec server: request from origin %r refused", origin[:200])
            response = _error_response(403, "origin not allowed")
        else:
            response = await handler(request)
        if allowed and origin is not None:
            # Echo the origin rather than '*': the UI sends credentials, which forbid a wildcard.
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Allow-Credentials"] = "true"
        response.headers.add("Vary", "Origin")
        return response

    return cors


def _error_middleware() -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except _BadRequest as exc:
            log = logger.warning if exc.status in (400, 401, 403, 413) else logger.info
            log(
                "codec server: %s %s -> %d: %s",
                request.method,
                request.path,
                exc.status,
                exc.log_text,
            )
            response = _error_response(exc.status, exc.message)
            if exc.status == 401:
                response.headers["WWW-Authenticate"] = "Bearer"
            return response
        except web.HTTPException as exc:
            if exc.status == 413:
                logger.warning("codec server: %s body too large", request.path)
                return _error_response(413, "request body too large")
            return _error_response(exc.status, exc.reason)
        except Exception as exc:
            # Whatever broke, the client gets one line and no stack; payloads stay out of the log.
            logger.warning(
                "codec server: %s %s failed: %s", request.method, request.path, type(exc).__name__
            )
            return _error_response(400, f"cannot process request: {type(exc).__name__}")

    return errors


def _access_middleware(
    token: bytes | None, namespaces: frozenset[str] | None, max_body_bytes: int
) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def access(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path == "/healthz":
            return await handler(request)
        if token is not None and not _token_matches(request.headers.get("Authorization"), token):
            raise _BadRequest(401, "missing or wrong bearer token")
        if namespaces is not None:
            namespace = request.headers.get("X-Namespace")
            if namespace is None:
                raise _BadRequest(403, "X-Namespace header required")
            if namespace not in namespaces:
                raise _BadRequest(403, f"namespace {namespace[:100]!r} is not allowed")
        if request.content_length is not None and request.content_length > max_body_bytes:
            raise _BadRequest(413, f"request body over {max_body_bytes} bytes")
        return await handler(request)

    return access


def _token_matches(header: str | None, token: bytes) -> bool:
    scheme, _, presented = (header or "").partition(" ")
    # compare_digest runs even on a wrong scheme so timing says nothing about which part failed.
    same = hmac.compare_digest(presented.strip().encode("utf-8", "surrogateescape"), token)
    return same and scheme.lower() == "bearer"
