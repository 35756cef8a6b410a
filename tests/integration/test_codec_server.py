"""The codec server over HTTP, and through the real `temporal` CLI against a dev server's history."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import random
import subprocess
import sys
import uuid
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import test_utils, web
from pydantic import BaseModel
from temporalio import activity, workflow
from temporalio.api.common.v1 import Payload
from temporalio.client import Client
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from codec.compression import CompressionCodec
from codec.converter import build_codec, build_data_converter
from codec.encryption import EncryptionCodec
from codec.keys import KeyRing
from codec.server import (
    InsecureListenError,
    build_codec_app,
    check_listen_address,
    run_codec_server,
)

TEMPORAL_CLI = str(Path(sys.executable).parent / "temporal")
UI_ORIGIN = "http://localhost:8233"
TOKEN = "s3cret-token-4f1a"
MARKER = "codec-marker-91c2"
KEY_B64 = base64.b64encode(bytes(range(32))).decode()
RING = KeyRing.parse(f"k1={KEY_B64}")
ALL_PREFIXES = ("", "/default", "/encryption_codec", "/compression_codec")

ClientFactory = Callable[..., Awaitable[test_utils.TestClient]]


def json_payload(value: object) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(value).encode())


def big_payload() -> Payload:
    return json_payload([{"note": MARKER, "i": i} for i in range(200)])


def to_wire(payloads: list[Payload]) -> dict[str, Any]:
    return {
        "payloads": [
            {
                "metadata": {k: base64.b64encode(v).decode() for k, v in p.metadata.items()},
                "data": base64.b64encode(p.data).decode(),
            }
            for p in payloads
        ]
    }


def from_wire(document: dict[str, Any]) -> list[Payload]:
    return [
        Payload(
            metadata={k: base64.b64decode(v) for k, v in item.get("metadata", {}).items()},
            data=base64.b64decode(item.get("data", "")),
        )
        for item in document["payloads"]
    ]


@pytest_asyncio.fixture
async def make_client() -> AsyncIterator[ClientFactory]:
    clients: list[test_utils.TestClient] = []

    async def factory(**overrides: Any) -> test_utils.TestClient:
        options: dict[str, Any] = {
            "key_ring": RING,
            "compress": True,
            "cors_origins": [UI_ORIGIN],
            "auth_token": None,
            "allowed_namespaces": None,
        }
        options.update(overrides)
        client = test_utils.TestClient(test_utils.TestServer(build_codec_app(**options)))
        await client.start_server()
        clients.append(client)
        return client

    yield factory
    for client in clients:
        await client.close()


async def post(client: test_utils.TestClient, path: str, body: Any, **kwargs: Any) -> Any:
    return await client.post(path, data=json.dumps(body), **kwargs)


# ---------------------------------------------------------------- routes


@pytest.mark.parametrize("prefix", ALL_PREFIXES)
async def test_every_route_round_trips(make_client: ClientFactory, prefix: str) -> None:
    client = await make_client()
    originals = [big_payload(), json_payload("small"), Payload()]
    encoded = await post(client, f"{prefix}/encode", to_wire(originals))
    assert encoded.status == 200, await encoded.text()
    assert encoded.content_type == "application/json"
    encoded_payloads = from_wire(await encoded.json())
    expected = b"binary/zlib" if prefix == "/compression_codec" else b"binary/encrypted"
    assert encoded_payloads[0].metadata["encoding"] == expected
    decoded = await post(client, f"{prefix}/decode", await encoded.json())
    assert decoded.status == 200, await decoded.text()
    assert from_wire(await decoded.json()) == originals


@pytest.mark.parametrize("prefix", ["", "/default", "/encryption_codec"])
async def test_configured_routes_decode_what_workers_write(
    make_client: ClientFactory, prefix: str
) -> None:
    client = await make_client()
    worker_codec = build_codec(key_ring=RING, encrypt=True, compress=True)
    assert worker_codec is not None
    written = await worker_codec.encode([big_payload(), json_payload(MARKER)])
    response = await post(client, f"{prefix}/decode", to_wire(written))
    assert response.status == 200
    assert from_wire(await response.json()) == [big_payload(), json_payload(MARKER)]


async def test_compression_route_leaves_encrypted_payloads_alone(
    make_client: ClientFactory,
) -> None:
    client = await make_client()
    sealed = await EncryptionCodec(RING).encode([json_payload(MARKER)])
    response = await post(client, "/compression_codec/decode", to_wire(sealed))
    assert from_wire(await response.json()) == sealed


async def test_encryption_route_without_keys_is_404(make_client: ClientFactory) -> None:
    client = await make_client(key_ring=None, compress=False)
    response = await post(client, "/encryption_codec/decode", {"payloads": []})
    assert response.status == 404
    assert "no keys" in (await response.json())["error"]
    # The default chain still works: it undoes compression and passes everything else through.
    packed = await CompressionCodec().encode([big_payload()])
    response = await post(client, "/decode", to_wire(packed))
    assert from_wire(await response.json()) == [big_payload()]


async def test_empty_object_and_empty_list(make_client: ClientFactory) -> None:
    client = await make_client()
    for body in ({}, {"payloads": []}):
        response = await post(client, "/decode", body)
        assert response.status == 200
        assert await response.json() == {"payloads": []}


async def test_healthz(make_client: ClientFactory) -> None:
    client = await make_client(auth_token=TOKEN, allowed_namespaces=["prod"])
    response = await client.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok"}


async def test_unknown_paths_and_methods_get_json_errors(make_client: ClientFactory) -> None:
    client = await make_client()
    response = await client.post("/nope/decode", data="{}")
    assert response.status == 404
    assert "error" in await response.json()
    response = await client.get("/decode")
    assert response.status == 405
    assert "error" in await response.json()


# ---------------------------------------------------------------- CORS


async def test_preflight_for_allowed_origin(make_client: ClientFactory) -> None:
    client = await make_client(auth_token=TOKEN)
    response = await client.options(
        "/encryption_codec/decode",
        headers={
            "Origin": UI_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,authorization,x-namespace",
        },
    )
    assert response.status == 204
    headers = response.headers
    assert headers["Access-Control-Allow-Origin"] == UI_ORIGIN
    assert headers["Access-Control-Allow-Credentials"] == "true"
    allowed = {h.strip().lower() for h in headers["Access-Control-Allow-Headers"].split(",")}
    assert {"content-type", "authorization", "x-namespace"} <= allowed
    assert "POST" in headers["Access-Control-Allow-Methods"]
    assert "Origin" in headers.getall("Vary")


async def test_preflight_for_other_origin_is_refused(make_client: ClientFactory) -> None:
    client = await make_client()
    response = await client.options(
        "/decode",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert response.status == 403
    assert "Access-Control-Allow-Origin" not in response.headers


async def test_cors_headers_on_responses(make_client: ClientFactory) -> None:
    client = await make_client(auth_token=TOKEN)
    ok = await post(
        client,
        "/decode",
        {"payloads": []},
        headers={"Origin": UI_ORIGIN, "Authorization": f"Bearer {TOKEN}"},
    )
    assert ok.status == 200
    assert ok.headers["Access-Control-Allow-Origin"] == UI_ORIGIN
    # Errors carry CORS headers too, or the UI could not show why it failed.
    denied = await post(client, "/decode", {}, headers={"Origin": UI_ORIGIN})
    assert denied.status == 401
    assert denied.headers["Access-Control-Allow-Origin"] == UI_ORIGIN
    no_origin = await post(client, "/decode", {}, headers={"Authorization": f"Bearer {TOKEN}"})
    assert no_origin.status == 200
    assert "Access-Control-Allow-Origin" not in no_origin.headers
    other = await post(
        client,
        "/decode",
        {},
        headers={"Origin": "https://evil.example", "Authorization": f"Bearer {TOKEN}"},
    )
    assert other.status == 403
    assert "Access-Control-Allow-Origin" not in other.headers


async def test_wildcard_origin_echoes_the_caller(make_client: ClientFactory) -> None:
    client = await make_client(cors_origins=["*"])
    response = await post(client, "/decode", {}, headers={"Origin": "https://any.example"})
    assert response.headers["Access-Control-Allow-Origin"] == "https://any.example"


# ---------------------------------------------------------------- auth, namespaces, size


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer wrong", f"Basic {TOKEN}", f"Bearer {TOKEN}x", TOKEN],
)
async def test_missing_or_wrong_token_is_401(
    make_client: ClientFactory, authorization: str | None
) -> None:
    client = await make_client(auth_token=TOKEN)
    headers = {} if authorization is None else {"Authorization": authorization}
    response = await post(client, "/encryption_codec/decode", {"payloads": []}, headers=headers)
    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    body = await response.json()
    assert body == {"error": "missing or wrong bearer token"}


async def test_right_token_passes(make_client: ClientFactory) -> None:
    client = await make_client(auth_token=TOKEN)
    for scheme in ("Bearer", "bearer"):
        response = await post(
            client, "/decode", {"payloads": []}, headers={"Authorization": f"{scheme} {TOKEN}"}
        )
        assert response.status == 200


async def test_namespace_allow_list(make_client: ClientFactory) -> None:
    client = await make_client(allowed_namespaces=["default", "prod"])
    for namespace, status in (("default", 200), ("prod", 200), ("staging", 403), (None, 403)):
        headers = {} if namespace is None else {"X-Namespace": namespace}
        response = await post(client, "/decode", {"payloads": []}, headers=headers)
        assert response.status == status, namespace
        if status == 403:
            assert "error" in await response.json()


async def test_body_size_limit(make_client: ClientFactory) -> None:
    client = await make_client(max_body_bytes=2048)
    big = to_wire([Payload(data=b"x" * 4096)])
    response = await post(client, "/encode", big)
    assert response.status == 413
    assert "error" in await response.json()

    async def chunks() -> AsyncIterator[bytes]:
        # No Content-Length: the limit has to hold while reading, too.
        for _ in range(8):
            yield b" " * 1024

    response = await client.post("/encode", data=chunks())
    assert response.status == 413
    small = await post(client, "/encode", to_wire([json_payload(1)]))
    assert small.status == 200


# ---------------------------------------------------------------- garbage never gives a 500


def garbage_bodies() -> Iterator[bytes]:
    rng = random.Random(1234)
    sealed = Payload(
        metadata={"encoding": b"binary/encrypted", "encryption-key-id": b"k1"}, data=b"\0" * 40
    )
    fixed: list[Any] = [
        b"",
        b"null",
        b"[]",
        b'"payloads"',
        b"{",
        b"\xff\xfe\x00",
        b"[" * 50_000,
        b'{"payloads": ' + b"[" * 50_000,
        b'{"payloads": NaN}',
        {"payloads": 1},
        {"payloads": "x"},
        {"payloads": [1]},
        {"payloads": [None]},
        {"payloads": [{"data": "!!!"}]},
        {"payloads": [{"data": 5}]},
        {"payloads": [{"metadata": []}]},
        {"payloads": [{"metadata": {"encoding": "%%%"}}]},
        {"payloads": [{"metadata": {"encoding": 7}}]},
        {"payloads": [{"unknown": True}]},
        {"other": []},
        {"payloads": [{"data": "A" * 10 + "="}]},
        to_wire([sealed]),
        to_wire([Payload(metadata={"encoding": b"binary/encrypted", "encryption-key-id": b"zz"})]),
        to_wire([Payload(metadata={"encoding": b"binary/encrypted"}, data=b"short")]),
        to_wire([Payload(metadata={"encoding": b"binary/zlib"}, data=b"not zlib")]),
        {"payloads": [{"metadata": {"encoding": base64.b64encode(b"binary/zlib").decode()}}]},
        b'{"\\ud800": 1}',
        b'{"payloads": [{"metadata": {"\\ud800": "QQ=="}}]}',
        b'{"payloads": [{"data": "\\udfff"}]}',
        b'{"payloads": [{"\\ud800": "QQ=="}]}',
    ]
    for item in fixed:
        yield item if isinstance(item, bytes) else json.dumps(item).encode()
    for _ in range(20):
        yield rng.randbytes(rng.randint(1, 300))
    alphabet = '{}[]":,0123456789abcdefpayloadsmetadata \\'
    for _ in range(20):
        yield "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 80))).encode()


async def test_garbage_bodies_get_one_line_errors_never_500(
    make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    client = await make_client()
    caplog.set_level(logging.DEBUG)
    bodies = list(garbage_bodies())
    assert len(bodies) >= 60
    statuses = set()
    for body in bodies:
        for prefix in ALL_PREFIXES:
            for action in ("encode", "decode"):
                response = await client.post(
                    f"{prefix}/{action}", data=body, headers={"Content-Type": "application/json"}
                )
                text = await response.text()
                statuses.add(response.status)
                assert response.status in (200, 400), (body[:60], response.status, text[:200])
                if response.status == 400:
                    error = json.loads(text)["error"]
                    assert "\n" not in error and "Traceback" not in error
                    assert len(error) < 400
                    # Every malformed input has its own message, not the catch-all.
                    assert not error.startswith("cannot process request"), (body[:60], error)
    assert 400 in statuses
    assert "Traceback" not in caplog.text


async def test_wrong_key_and_tampering_are_400_with_clear_messages(
    make_client: ClientFactory,
) -> None:
    client = await make_client()
    other = await EncryptionCodec(KeyRing.generate("other")).encode([json_payload(MARKER)])
    response = await post(client, "/decode", to_wire(other))
    assert response.status == 400
    assert "a key this codec server does not hold" in (await response.json())["error"]

    [sealed] = await EncryptionCodec(RING).encode([json_payload(MARKER)])
    tampered = Payload(metadata=sealed.metadata, data=sealed.data[:-1] + b"\0")
    response = await post(client, "/encryption_codec/decode", to_wire([tampered]))
    assert response.status == 400
    assert "failed authentication" in (await response.json())["error"]


async def test_logs_hold_no_secrets(
    make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = await make_client(auth_token=TOKEN, allowed_namespaces=["default"])
    auth = {"Authorization": f"Bearer {TOKEN}", "X-Namespace": "default"}
    sealed = await EncryptionCodec(RING).encode([json_payload(MARKER)])
    tampered = Payload(metadata=sealed[0].metadata, data=sealed[0].data[:-1] + b"\0")
    await post(client, "/encode", to_wire([json_payload(MARKER)]), headers=auth)
    await post(client, "/decode", to_wire(sealed), headers=auth)
    await post(client, "/decode", to_wire([tampered]), headers=auth)
    await post(client, "/decode", {"payloads": [{"data": MARKER}]}, headers=auth)
    await post(client, "/decode", {}, headers={"Authorization": f"Bearer {TOKEN}-wrong"})
    assert caplog.records, "the refusals should be logged"
    for secret in (TOKEN, KEY_B64, MARKER, base64.b64encode(json.dumps(MARKER).encode()).decode()):
        assert secret not in caplog.text


async def test_errors_name_no_key_ids(make_client: ClientFactory) -> None:
    ring = KeyRing([("ring-alpha-7", bytes(range(32))), ("ring-beta-9", bytes(32))])
    client = await make_client(key_ring=ring)
    foreign = await EncryptionCodec(KeyRing.generate("foreign-id-3")).encode([json_payload(1)])
    [sealed] = await EncryptionCodec(ring).encode([json_payload(MARKER)])
    tampered = Payload(metadata=sealed.metadata, data=sealed.data[:-1] + b"\0")
    truncated = Payload(metadata=sealed.metadata, data=b"short")
    for payload in (*foreign, tampered, truncated):
        for prefix in ("", "/encryption_codec"):
            response = await post(client, f"{prefix}/decode", to_wire([payload]))
            assert response.status == 400
            error = (await response.json())["error"]
            assert error.startswith("cannot decode payload 0: ")
            for key_id in ("ring-alpha-7", "ring-beta-9", "foreign-id-3"):
                assert key_id not in error


@pytest.mark.parametrize(
    "data",
    ["AAA!", "AA=A", "A===", "AAAAA", "AB+-", "AA AA", "QUJD\n", "QUJDRA=", "=", "QQ==="],
)
async def test_malformed_base64_is_400(make_client: ClientFactory, data: str) -> None:
    client = await make_client()
    for field in ({"data": data}, {"metadata": {"encoding": data}}):
        for path in ("/decode", "/encode", "/compression_codec/decode"):
            response = await post(client, path, {"payloads": [field]})
            assert response.status == 400, (path, field)
            assert "not valid base64" in (await response.json())["error"]


@pytest.mark.parametrize("data", ["", "QUJD", "QUJDRA==", "QUJDRA", "-_-_", "+/+/"])
async def test_well_formed_base64_passes(make_client: ClientFactory, data: str) -> None:
    client = await make_client(key_ring=None, compress=False)
    response = await post(client, "/decode", {"payloads": [{"data": data}]})
    assert response.status == 200, await response.text()
    [payload] = from_wire(await response.json())
    assert payload.data == base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


def zlib_bomb(inflated_bytes: int) -> Payload:
    inner = Payload(metadata={"encoding": b"json/plain"}, data=b"0" * inflated_bytes)
    return Payload(
        metadata={"encoding": b"binary/zlib"}, data=zlib.compress(inner.SerializeToString(), 9)
    )


async def test_decompression_bombs_are_413(make_client: ClientFactory) -> None:
    # The measured case: a 79 KiB request that inflated to 80 MiB, now refused at the default cap.
    bomb = zlib_bomb(40 * 1024 * 1024)
    body = to_wire([bomb, bomb])
    assert len(json.dumps(body)) < 200 * 1024
    client = await make_client()
    sealed = await EncryptionCodec(RING).encode([bomb])
    for path, payloads in (
        ("/decode", body),
        ("/compression_codec/decode", body),
        ("/encryption_codec/decode", to_wire(sealed * 2)),
    ):
        response = await post(client, path, payloads)
        assert response.status == 413, (path, await response.text())
        assert "over 16777216 bytes" in (await response.json())["error"]

    # Each payload under the cap, together over it: the cap is on the response, not per payload.
    small = await make_client(max_decoded_bytes=1024 * 1024)
    part = zlib_bomb(400 * 1024)
    response = await post(small, "/decode", to_wire([part, part]))
    assert response.status == 200
    response = await post(small, "/decode", to_wire([part, part, part]))
    assert response.status == 413


async def test_decoded_request_and_encoded_response_are_capped(
    make_client: ClientFactory,
) -> None:
    client = await make_client(max_decoded_bytes=4096, max_payloads=50)
    response = await post(client, "/encode", to_wire([Payload(data=b"x" * 5000)]))
    assert response.status == 413
    assert "request over 4096 bytes" in (await response.json())["error"]
    # Empty payloads grow by the encryption envelope: the response is what exceeds the cap.
    response = await post(client, "/encode", {"payloads": [{}] * 50})
    assert response.status == 413
    assert "response over 4096 bytes" in (await response.json())["error"]
    response = await post(client, "/decode", {"payloads": [{}] * 51})
    assert response.status == 413
    assert "more than 50 payloads" in (await response.json())["error"]
    response = await post(client, "/encode", {"payloads": [{}] * 10})
    assert response.status == 200


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"])
def test_loopback_needs_no_token(host: str) -> None:
    check_listen_address(host, has_token=False)


@pytest.mark.parametrize("host", ["0.0.0.0", "", None, "::", "10.1.2.3", "codec.example"])
def test_beyond_loopback_needs_a_token(host: str | None) -> None:
    with pytest.raises(InsecureListenError, match="PROVISION_CODEC_AUTH_TOKEN"):
        check_listen_address(host, has_token=False)
    check_listen_address(host, has_token=True)


async def test_server_refuses_to_listen_beyond_loopback_without_token() -> None:
    options: dict[str, Any] = {
        "key_ring": RING,
        "compress": False,
        "cors_origins": [],
        "allowed_namespaces": None,
    }
    with pytest.raises(InsecureListenError, match="refusing to listen on 0.0.0.0"):
        await run_codec_server(build_codec_app(auth_token=None, **options), "0.0.0.0", 0)
    runner = await run_codec_server(build_codec_app(auth_token=TOKEN, **options), "0.0.0.0", 0)
    try:
        port = runner.addresses[0][1]
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                assert response.status == 200
    finally:
        await runner.cleanup()


def test_cli_codec_server_beyond_loopback_without_token_exits_2() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVISION_CODEC")}
    result = subprocess.run(
        [str(Path(sys.executable).parent / "provision"), "codec-server", "--host", "0.0.0.0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert "refusing to listen on 0.0.0.0 without a bearer token" in result.stderr
    assert "Traceback" not in result.stderr


# ---------------------------------------------------------------- real port, real CLI, real server


class Note(BaseModel):
    text: str


@activity.defn
async def stamp_note(note: Note) -> Note:
    if activity.info().attempt == 1 and note.text.startswith("fail-once"):
        # The retry's ActivityTaskStarted event records this failure, message and stack trace.
        raise ApplicationError(f"transient failure for {note.text}")
    return Note(text=f"{note.text}:stamped")


@workflow.defn
class StampWorkflow:
    def __init__(self) -> None:
        self._finish: Note | None = None
        self._stage = "starting"

    @workflow.run
    async def run(self, note: Note) -> Note:
        first = await self._stamp(note)
        if not note.text.endswith("wait"):
            return first
        self._stage = "waiting"
        await workflow.wait_condition(lambda: self._finish is not None)
        assert self._finish is not None
        second = await self._stamp(self._finish)
        return Note(text=f"{first.text}|{second.text}")

    @workflow.signal
    def finish(self, note: Note) -> None:
        self._finish = note

    @workflow.query
    def stage(self) -> str:
        return self._stage

    async def _stamp(self, note: Note) -> Note:
        return await workflow.execute_activity(
            stamp_note,
            note,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=50)),
        )


def encrypted_client_worker(client: Client, task_queue: str) -> Worker:
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[StampWorkflow],
        activities=[stamp_note],
        # The workflow lives in this test module, which imports far more than the sandbox allows.
        workflow_runner=UnsandboxedWorkflowRunner(),
    )


async def encrypted_client(address: str, ring: KeyRing) -> Client:
    converter = build_data_converter(key_ring=ring, encrypt=True, compress=True)
    return await Client.connect(address, data_converter=converter)


async def show_history(address: str, workflow_id: str, *extra: str) -> tuple[int, str, str]:
    # Not subprocess.run: the codec server answering the CLI runs on this very event loop.
    process = await asyncio.create_subprocess_exec(
        TEMPORAL_CLI,
        "workflow",
        "show",
        "--workflow-id",
        workflow_id,
        "--address",
        address,
        "--output",
        "json",
        *extra,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    return process.returncode or 0, out.decode(), err.decode()


def payloads_in(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if isinstance(node.get("metadata"), dict) and set(node) <= {
            "metadata",
            "data",
            "externalPayloads",
        }:
            yield node
        for value in node.values():
            yield from payloads_in(value)
    elif isinstance(node, list):
        for value in node:
            yield from payloads_in(value)


def readable_texts(history: dict[str, Any]) -> list[str]:
    """Every payload's data, base64-decoded: where a decoded marker shows up."""
    return [
        base64.b64decode(p.get("data", "")).decode("utf-8", "replace") for p in payloads_in(history)
    ]


def encodings(history: dict[str, Any]) -> set[bytes]:
    return {base64.b64decode(p["metadata"].get("encoding", "")) for p in payloads_in(history)}


def key_ids(history: dict[str, Any]) -> set[bytes]:
    return {
        base64.b64decode(p["metadata"]["encryption-key-id"])
        for p in payloads_in(history)
        if "encryption-key-id" in p["metadata"]
    }


@pytest_asyncio.fixture
async def codec_server() -> AsyncIterator[Callable[..., Awaitable[str]]]:
    runners: list[web.AppRunner] = []

    async def start(ring: KeyRing, auth_token: str | None = None) -> str:
        app = build_codec_app(
            key_ring=ring,
            compress=True,
            cors_origins=[UI_ORIGIN],
            auth_token=auth_token,
            allowed_namespaces=["default"],
        )
        runner = await run_codec_server(app, "127.0.0.1", 0)
        runners.append(runner)
        host, port = runner.addresses[0][:2]
        return f"http://{host}:{port}"

    yield start
    for runner in runners:
        await runner.cleanup()


async def test_cli_shows_history_decoded_only_through_the_codec_server(
    temporal_env: Any,
    temporal_address: str,
    task_queue: str,
    codec_server: Callable[..., Awaitable[str]],
) -> None:
    ring = KeyRing.generate("cli1")
    client = await encrypted_client(temporal_address, ring)
    workflow_id = f"codec-cli-{uuid.uuid4()}"
    note = Note(text=f"fail-once-{MARKER}")
    async with encrypted_client_worker(client, task_queue):
        result = await client.execute_workflow(
            StampWorkflow.run, note, id=workflow_id, task_queue=task_queue
        )
    assert result == Note(text=f"{note.text}:stamped")

    rc, raw, err = await show_history(temporal_address, workflow_id)
    assert rc == 0, err
    raw_history = json.loads(raw)
    assert MARKER not in raw
    assert not any(MARKER in text for text in readable_texts(raw_history))
    assert encodings(raw_history) == {b"binary/encrypted"}
    assert key_ids(raw_history) == {b"cli1"}
    # The activity failure (message and stack) reached history, but only as an encoded payload.
    assert "Encoded failure" in raw and "transient failure" not in raw

    base = await codec_server(ring)
    rc, decoded, err = await show_history(
        temporal_address, workflow_id, "--codec-endpoint", f"{base}/encryption_codec"
    )
    assert rc == 0, err
    decoded_history = json.loads(decoded)
    texts = readable_texts(decoded_history)
    assert any(f'"text":"{note.text}"' in text for text in texts)
    assert any(f'"text":"{note.text}:stamped"' in text for text in texts)
    assert any(f"transient failure for {note.text}" in text for text in texts)
    assert b"binary/encrypted" not in encodings(decoded_history)


async def test_cli_needs_the_token_when_the_server_has_one(
    temporal_env: Any,
    temporal_address: str,
    task_queue: str,
    codec_server: Callable[..., Awaitable[str]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="codec.server")
    ring = KeyRing.generate("auth1")
    client = await encrypted_client(temporal_address, ring)
    workflow_id = f"codec-auth-{uuid.uuid4()}"
    async with encrypted_client_worker(client, task_queue):
        await client.execute_workflow(
            StampWorkflow.run, Note(text=MARKER), id=workflow_id, task_queue=task_queue
        )
    base = await codec_server(ring, auth_token=TOKEN)
    endpoint = f"{base}/encryption_codec"

    rc, out, err = await show_history(
        temporal_address,
        workflow_id,
        "--codec-endpoint",
        endpoint,
        "--codec-auth",
        f"Bearer {TOKEN}",
    )
    assert rc == 0, err
    assert any(MARKER in text for text in readable_texts(json.loads(out)))

    rc, out, err = await show_history(
        temporal_address,
        workflow_id,
        "--codec-endpoint",
        endpoint,
        "--codec-auth",
        "Bearer wrong",
        "--command-timeout",
        "3s",
    )
    # The CLI retries a 401 until its deadline, so the server's log says why it failed.
    assert rc != 0
    assert MARKER not in out
    assert "-> 401: missing or wrong bearer token" in caplog.text


async def test_running_workflow_survives_key_rotation(
    temporal_env: Any,
    temporal_address: str,
    task_queue: str,
    codec_server: Callable[..., Awaitable[str]],
) -> None:
    old_ring = KeyRing.generate("old")
    new_ring = old_ring.rotated("new")
    workflow_id = f"codec-rotate-{uuid.uuid4()}"
    before, after = f"before-{MARKER}-wait", f"after-{MARKER}"

    old_client = await encrypted_client(temporal_address, old_ring)
    async with encrypted_client_worker(old_client, task_queue):
        handle = await old_client.start_workflow(
            StampWorkflow.run, Note(text=before), id=workflow_id, task_queue=task_queue
        )
        for _ in range(200):
            if await handle.query(StampWorkflow.stage) == "waiting":
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail("the workflow never reached its signal wait")

    # A fresh worker has no cached state: it replays the old-key history with the rotated ring.
    new_client = await encrypted_client(temporal_address, new_ring)
    async with encrypted_client_worker(new_client, task_queue):
        new_handle = new_client.get_workflow_handle_for(StampWorkflow.run, workflow_id)
        await new_handle.signal(StampWorkflow.finish, Note(text=after))
        result = await new_handle.result()
    assert result == Note(text=f"{before}:stamped|{after}:stamped")

    rc, raw, err = await show_history(temporal_address, workflow_id)
    assert rc == 0, err
    assert key_ids(json.loads(raw)) == {b"old", b"new"}
    assert MARKER not in raw

    base = await codec_server(new_ring)
    rc, decoded, err = await show_history(
        temporal_address, workflow_id, "--codec-endpoint", f"{base}/encryption_codec"
    )
    assert rc == 0, err
    texts = readable_texts(json.loads(decoded))
    assert any(before in text for text in texts)
    assert any(after in text for text in texts)
