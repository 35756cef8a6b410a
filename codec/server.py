"""Codec server: lets the Temporal UI and `temporal --codec-endpoint` show encrypted payloads."""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import re
from collections.abc import Awaitable, Callable, Sequence

from aiohttp import web
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads

from codec import PayloadCodecError, PayloadTooLarge
from codec.compression import CompressionCodec
from codec.encryption import KEY_ID_METADATA, EncryptionCodec
from codec.keys import KeyRing

logger = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024
# Total payload bytes in one request, and again in one response: decoding may inflate (zlib), so
# the body limit alone does not bound what a request makes this server hold.
DEFAULT_MAX_DECODED_BYTES = 16 * 1024 * 1024
# The UI and the CLI send one event's payloads at a time; a body of empty payloads by the million
# costs memory out of proportion to its size.
DEFAULT_MAX_PAYLOADS = 10_000
ALLOWED_HEADERS = "Content-Type, Authorization, X-Namespace"
ALLOWED_METHODS = "POST, GET, OPTIONS"
PREFLIGHT_MAX_AGE = "600"
_MAX_ERROR_CHARS = 200

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_TOKEN_SET = web.AppKey("codec_token_set", bool)
_BASE64 = re.compile(r"[A-Za-z0-9+/]*")
_BASE64_URLSAFE = re.compile(r"[A-Za-z0-9_-]*")


class InsecureListenError(ValueError):
    """The codec server was asked to listen beyond loopback without a bearer token."""


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
    max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES,
    max_payloads: int = DEFAULT_MAX_PAYLOADS,
) -> web.Application:
    """The codec server app: POST `<prefix>/encode` and `<prefix>/decode`, plus GET `/healthz`.

    Prefixes `/encryption_codec`, `/default` and the bare root run the configured chain, the same
    one workers use, so they decode anything workers wrote; `/encryption_codec` answers 404 when
    there are no keys, rather than silently passing ciphertext through. `/compression_codec` only
    (de)compresses. A request's payloads and a response's payloads are each held to
    `max_decoded_bytes` in total (413 beyond).
    """
    limits = _Limits(max_decoded_bytes=max_decoded_bytes, max_payloads=max_payloads)
    # Even with nothing configured, decoding undoes compression a previous setup may have applied.
    configured = _Route(key_ring, compress=compress, limits=limits)
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
    app[_TOKEN_SET] = token is not None
    for prefix, route in (
        ("", configured),
        ("/default", configured),
        ("/encryption_codec", configured if key_ring is not None else None),
        ("/compression_codec", _Route(None, compress=True, limits=limits)),
    ):
        app.router.add_post(f"{prefix}/encode", _codec_handler(route, limits, encode=True))
        app.router.add_post(f"{prefix}/decode", _codec_handler(route, limits, encode=False))
    app.router.add_get("/healthz", _healthz)
    return app


def check_listen_address(host: str | None, *, has_token: bool) -> None:
    """Refuse to serve beyond loopback without a token: anyone who reaches it can decrypt."""
    if has_token or _is_loopback(host):
        return
    shown = host or "all interfaces"
    raise InsecureListenError(
        f"codec server: refusing to listen on {shown} without a bearer token; anyone who can "
        "reach it could decrypt with its keys. Set PROVISION_CODEC_AUTH_TOKEN (clients then send "
        "`Authorization: Bearer <token>`, e.g. `temporal --codec-auth`), or listen on 127.0.0.1."
    )


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


async def run_codec_server(app: web.Application, host: str, port: int) -> web.AppRunner:
    """Start serving `app`; the caller stops it with `await runner.cleanup()`.

    With port 0 the bound port is in `runner.addresses`. Raises `InsecureListenError` for a host
    beyond loopback when the app has no token.
    """
    check_listen_address(host, has_token=app.get(_TOKEN_SET, False))
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


class _Limits:
    __slots__ = ("max_decoded_bytes", "max_payloads")

    def __init__(self, *, max_decoded_bytes: int, max_payloads: int) -> None:
        self.max_decoded_bytes = max_decoded_bytes
        self.max_payloads = max_payloads

    def too_large(self, what: str) -> _BadRequest:
        return _BadRequest(413, f"{what} over {self.max_decoded_bytes} bytes of payloads in total")


class _Route:
    """One route's codec, run payload by payload so the response's size is bounded as it grows.

    Errors are worded here rather than passed on from the codecs: theirs name key ids, which a
    client of the codec server has no business learning.
    """

    def __init__(self, key_ring: KeyRing | None, *, compress: bool, limits: _Limits) -> None:
        self._ring = key_ring
        self._encryption = EncryptionCodec(key_ring) if key_ring is not None else None
        self._compression = CompressionCodec(compress=compress) if compress else None
        self._limits = limits

    def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        out: list[Payload] = []
        budget = self._limits.max_decoded_bytes
        for payload in payloads:
            if self._compression is not None:
                payload = self._compression.compress_payload(payload)
            if self._encryption is not None:
                payload = self._encryption.encrypt_payload(payload)
            budget -= payload.ByteSize()
            if budget < 0:
                raise self._limits.too_large("response")
            out.append(payload)
        return out

    def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        out: list[Payload] = []
        budget = self._limits.max_decoded_bytes
        for index, payload in enumerate(payloads):
            if self._encryption is not None:
                payload = self._decrypt(index, payload)
            # Inflation stops at what is left of the budget: a bomb costs this much and no more.
            inflater = CompressionCodec(compress=False, max_decoded_bytes=max(budget, 0))
            try:
                payload = inflater.decompress_payload(payload)
            except PayloadTooLarge:
                raise self._limits.too_large("decoded response") from None
            except PayloadCodecError as exc:
                raise _BadRequest(400, f"cannot decode payload {index}: {exc}") from None
            budget -= payload.ByteSize()
            if budget < 0:
                raise self._limits.too_large("decoded response")
            out.append(payload)
        return out

    def _decrypt(self, index: int, payload: Payload) -> Payload:
        assert self._encryption is not None and self._ring is not None
        try:
            return self._encryption.decrypt_payload(payload)
        except PayloadCodecError:
            raw_id = payload.metadata.get(KEY_ID_METADATA, b"")
            if raw_id.decode("utf-8", "replace") not in self._ring:
                message = (
                    f"cannot decode payload {index}: it was encrypted with a key this codec "
                    "server does not hold"
                )
            else:
                message = (
                    f"cannot decode payload {index}: it failed authentication (altered, "
                    "truncated, or sealed with another key under the same id)"
                )
            raise _BadRequest(400, message) from None


def _codec_handler(route: _Route | None, limits: _Limits, *, encode: bool) -> Handler:
    async def handle(request: web.Request) -> web.Response:
        if route is None:
            raise _BadRequest(404, "encryption is not configured on this codec server (no keys)")
        payloads = _parse_payloads(await request.read(), limits)
        out = route.encode(payloads) if encode else route.decode(payloads)
        return web.json_response({"payloads": [json_format.MessageToDict(p) for p in out]})

    return handle


async def _healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def _parse_payloads(body: bytes, limits: _Limits) -> list[Payload]:
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        raise _BadRequest(400, "body is not valid JSON") from None
    if not isinstance(document, dict):
        raise _BadRequest(400, 'body must be a JSON object like {"payloads": [...]}')
    unknown = [key for key in document if key != "payloads"]
    if unknown:
        raise _BadRequest(400, f"unknown field {unknown[0][:60]!r}; the body holds only payloads")
    _check_payload_fields(document.get("payloads"), limits)
    message = Payloads()
    try:
        json_format.ParseDict(document, message)
    # upb raises SystemError on some invalid text (a lone surrogate in a field name).
    except (json_format.ParseError, ValueError, TypeError, RecursionError, SystemError) as exc:
        raise _BadRequest(
            400,
            f"body is not a Payloads message: {_one_line(exc)}",
            log_text=f"body is not a Payloads message ({type(exc).__name__})",
        ) from None
    return list(message.payloads)


def _check_payload_fields(items: object, limits: _Limits) -> None:
    """Strict base64 in every bytes field, and the request's decoded total within the limit.

    protobuf's JSON parser decodes base64 leniently (it drops characters it does not know), so a
    corrupted payload would be decoded into something else instead of being refused.
    """
    if items is None:
        return
    if not isinstance(items, list):
        raise _BadRequest(400, '"payloads" must be a list')
    if len(items) > limits.max_payloads:
        raise _BadRequest(413, f"more than {limits.max_payloads} payloads in one request")
    total = 0
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise _BadRequest(400, f"payload {index} must be a JSON object")
        metadata = item.get("metadata")
        if metadata is not None:
            if not isinstance(metadata, dict):
                raise _BadRequest(400, f"payload {index}: metadata must be a JSON object")
            for value in metadata.values():
                total += _base64_size(value, f"payload {index}: a metadata value")
        total += _base64_size(item.get("data"), f"payload {index}: data")
        if total > limits.max_decoded_bytes:
            raise limits.too_large("request")


def _base64_size(value: object, where: str) -> int:
    """The decoded size of strict base64 (standard or URL-safe alphabet, padding optional)."""
    if value is None:
        return 0
    if not isinstance(value, str):
        raise _BadRequest(400, f"{where} must be a base64 string")
    digits = value.rstrip("=")
    padding = len(value) - len(digits)
    valid = (
        (_BASE64.fullmatch(digits) or _BASE64_URLSAFE.fullmatch(digits))
        and len(digits) % 4 != 1
        and padding <= 2
        and (padding == 0 or len(value) % 4 == 0)
    )
    if not valid:
        raise _BadRequest(400, f"{where} is not valid base64")
    return len(digits) * 3 // 4


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
