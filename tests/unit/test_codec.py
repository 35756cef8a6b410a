"""Key rings, the encryption and compression codecs, and the data converter built from them."""

from __future__ import annotations

import base64
import json
import os
import random
import stat
import zlib
from pathlib import Path

import pytest
from pydantic import BaseModel
from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import Failure
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DefaultFailureConverterWithEncodedAttributes
from temporalio.exceptions import ApplicationError

from codec import PayloadCodecError
from codec.compression import CompressionCodec
from codec.converter import CodecChain, build_codec, build_data_converter
from codec.encryption import EncryptionCodec
from codec.keys import KEY_ID_PATTERN, KeyRing, load_key_ring, write_new_key_file

KEY_A = bytes(range(32))
KEY_B = bytes(range(100, 132))
B64_A = base64.b64encode(KEY_A).decode()
B64_B = base64.b64encode(KEY_B).decode()
MARKER = "marker-7d1e0c"


class Plan(BaseModel):
    workspace: str
    summary: str
    resources: list[str] = []


def json_payload(value: object) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(value).encode())


def big_json_payload() -> Payload:
    rows = [
        {"address": f"null_resource.r{i}", "action": "create", "note": MARKER} for i in range(300)
    ]
    return json_payload(rows)


# ---------------------------------------------------------------- key rings


def test_parse_orders_keys_and_first_is_active() -> None:
    ring = KeyRing.parse(f" new = {B64_B} , old={B64_A},")
    assert ring.active_key_id == "new"
    assert ring.key_ids == ("new", "old")
    assert ring.key("old") == KEY_A
    assert "old" in ring and "missing" not in ring
    assert KeyRing.parse(ring.to_spec()) == ring


def test_parse_accepts_urlsafe_and_unpadded_base64() -> None:
    key = b"\xfb\xff" * 16
    urlsafe = base64.urlsafe_b64encode(key).decode().rstrip("=")
    assert KeyRing.parse(f"k={urlsafe}").key("k") == key


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("", "empty"),
        (" , ,", "empty"),
        (f"k1={B64_A[:-4]}!!!!", "not valid base64"),
        (f"k1={base64.b64encode(KEY_A[:16]).decode()}", "16 bytes, AES-256 needs 32"),
        (f"k1={base64.b64encode(KEY_A + b'x').decode()}", "33 bytes"),
        (f"k1={B64_A},k1={B64_B}", "duplicate key id 'k1'"),
        (f"bad id={B64_A}", "key id must match"),
        (f"{'x' * 65}={B64_A}", "key id must match"),
        (f"k/1={B64_A}", "key id must match"),
        (B64_A.rstrip("="), "expected id=base64key"),
        ("k1=", "key is empty"),
    ],
)
def test_parse_errors_are_clear_and_never_echo_key_material(spec: str, expected: str) -> None:
    with pytest.raises(ValueError) as caught:
        KeyRing.parse(spec)
    message = str(caught.value)
    assert expected in message
    for secret in (B64_A, B64_B, B64_A[:12], B64_A[-12:], B64_B[:12]):
        assert secret not in message


def test_bare_keys_without_ids_never_leak() -> None:
    # A bare key's text before its '=' padding can pass as a key id; it must not be echoed either.
    rng = random.Random(7)
    bare_keys = [base64.b64encode(rng.randbytes(size)).decode() for size in (31, 32, 33, 16) * 20]
    assert any(KEY_ID_PATTERN.fullmatch(key.split("=")[0]) for key in bare_keys)
    for key in bare_keys:
        for spec in (key, f"k1={B64_A},{key}", f"{key},k1={B64_A}"):
            with pytest.raises(ValueError) as caught:
                KeyRing.parse(spec)
            assert key.split("=")[0][:10] not in str(caught.value)


def test_ring_repr_shows_ids_only() -> None:
    ring = KeyRing.parse(f"k1={B64_A}")
    assert B64_A not in repr(ring) and B64_A not in str(ring)
    assert KEY_A.hex() not in repr(ring)
    assert "k1" in repr(ring)


def test_from_file_reads_lines_commas_and_comments(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text(f"# rotated 2024\nnew={B64_B}  # active\n\n old={B64_A}, \n")
    ring = KeyRing.from_file(path)
    assert ring.key_ids == ("new", "old")


def test_from_file_errors_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text(f"k1={B64_A}\nk2={B64_B[:-6]}\n")
    with pytest.raises(ValueError, match=r"keys line 2: key is \d+ bytes") as caught:
        KeyRing.from_file(path)
    assert B64_B[:12] not in str(caught.value)
    path.write_text("# nothing here\n")
    with pytest.raises(ValueError, match="holds no keys"):
        KeyRing.from_file(path)
    with pytest.raises(ValueError, match="does not exist"):
        KeyRing.from_file(tmp_path / "absent")


def test_write_new_key_file_is_private_and_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "codec.key"
    ring = write_new_key_file(path, key_id="dev1")
    assert ring.key_ids == ("dev1",)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert KeyRing.from_file(path) == ring
    again = write_new_key_file(path, key_id="other")
    assert again == ring
    assert KeyRing.from_file(path) == ring


def test_write_new_key_file_refuses_to_replace_a_broken_file(tmp_path: Path) -> None:
    path = tmp_path / "codec.key"
    path.write_text("not a key\n")
    with pytest.raises(ValueError):
        write_new_key_file(path)
    assert path.read_text() == "not a key\n"


def test_shared_key_file_is_warned_about_without_quoting_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "keys"
    path.write_text(f"k1={B64_A}\n")
    path.chmod(0o644)
    KeyRing.from_file(path)
    assert "chmod 600" in caplog.text
    assert B64_A not in caplog.text


def test_write_new_key_file_default_id_is_valid(tmp_path: Path) -> None:
    ring = write_new_key_file(tmp_path / "k")
    assert ring.active_key_id.startswith("k")


def test_load_key_ring(tmp_path: Path) -> None:
    assert load_key_ring(None, None) is None
    assert load_key_ring("  ", None) is None
    assert load_key_ring(f"a={B64_A}", None).key_ids == ("a",)  # type: ignore[union-attr]
    path = tmp_path / "keys"
    path.write_text(f"b={B64_B}\n")
    assert load_key_ring(None, path).key_ids == ("b",)  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="not both"):
        load_key_ring(f"a={B64_A}", path)


def test_rotated_puts_new_key_first() -> None:
    ring = KeyRing.parse(f"old={B64_A}")
    rotated = ring.rotated("new")
    assert rotated.key_ids == ("new", "old")
    assert rotated.key("old") == KEY_A
    with pytest.raises(ValueError, match="duplicate"):
        ring.rotated("old")


# ---------------------------------------------------------------- encryption


async def test_encrypt_round_trip_protects_metadata_and_data() -> None:
    codec = EncryptionCodec(KeyRing.parse(f"k1={B64_A}"))
    original = Payload(
        metadata={"encoding": b"json/plain", "messageType": b"secret-type"},
        data=json.dumps({"note": MARKER}).encode(),
    )
    [encoded] = await codec.encode([original])
    assert dict(encoded.metadata) == {"encoding": b"binary/encrypted", "encryption-key-id": b"k1"}
    wire = encoded.SerializeToString()
    assert MARKER.encode() not in wire and b"secret-type" not in wire and b"json/plain" not in wire
    [decoded] = await codec.decode([encoded])
    assert decoded == original


async def test_each_encoding_uses_a_fresh_nonce() -> None:
    codec = EncryptionCodec(KeyRing.parse(f"k1={B64_A}"))
    payload = json_payload(MARKER)
    first, second = await codec.encode([payload, payload])
    assert first.data[:12] != second.data[:12]
    assert first.data != second.data


async def test_empty_and_large_payloads_round_trip() -> None:
    codec = EncryptionCodec(KeyRing.generate("k"))
    payloads = [Payload(), Payload(data=os.urandom(3 * 1024 * 1024))]
    assert await codec.decode(await codec.encode(payloads)) == payloads


async def test_decode_passes_other_encodings_through() -> None:
    codec = EncryptionCodec(KeyRing.generate("k"))
    plain = [json_payload(1), Payload(metadata={"encoding": b"binary/zlib"}, data=b"x"), Payload()]
    assert await codec.decode(plain) == plain


async def test_rotation_old_history_decodes_and_new_payloads_use_new_key() -> None:
    old_ring = KeyRing.parse(f"old={B64_A}")
    history = await EncryptionCodec(old_ring).encode([json_payload(MARKER), big_json_payload()])
    rotated = EncryptionCodec(old_ring.rotated("new"))
    assert await rotated.decode(history) == [json_payload(MARKER), big_json_payload()]
    [fresh] = await rotated.encode([json_payload("after rotation")])
    assert fresh.metadata["encryption-key-id"] == b"new"
    # Mixed histories (some events before the rotation, some after) decode in one call.
    assert len(await rotated.decode([*history, fresh])) == 3


async def test_unknown_key_id_is_named() -> None:
    history = await EncryptionCodec(KeyRing.parse(f"old={B64_A}")).encode([json_payload(1)])
    only_new = EncryptionCodec(KeyRing.parse(f"new={B64_B}"))
    with pytest.raises(PayloadCodecError, match="key id 'old'.*it holds new"):
        await only_new.decode(history)


@pytest.mark.parametrize("position", [0, 5, 11, 12, 20, -16, -1])
async def test_tampered_data_is_detected(position: int) -> None:
    codec = EncryptionCodec(KeyRing.parse(f"k1={B64_A}"))
    [encoded] = await codec.encode([json_payload({"note": MARKER, "pad": "x" * 40})])
    data = bytearray(encoded.data)
    data[position] ^= 0x01
    tampered = Payload(metadata=encoded.metadata, data=bytes(data))
    with pytest.raises(PayloadCodecError, match="failed authentication") as caught:
        await codec.decode([tampered])
    assert MARKER not in str(caught.value)


async def test_relabelled_key_id_and_truncation_are_detected() -> None:
    # Same key material under two ids: only the authenticated key id can tell them apart.
    codec = EncryptionCodec(KeyRing([("a", KEY_A), ("b", KEY_A)]))
    [encoded] = await codec.encode([json_payload(1)])
    relabelled = Payload()
    relabelled.CopyFrom(encoded)
    relabelled.metadata["encryption-key-id"] = b"b"
    with pytest.raises(PayloadCodecError, match="key id 'b'.*failed authentication"):
        await codec.decode([relabelled])
    truncated = Payload(metadata=encoded.metadata, data=encoded.data[:20])
    with pytest.raises(PayloadCodecError, match="truncated"):
        await codec.decode([truncated])
    missing_id = Payload(metadata={"encoding": b"binary/encrypted"}, data=encoded.data)
    with pytest.raises(PayloadCodecError, match=r"key id \(none\)"):
        await codec.decode([missing_id])


async def test_decrypt_only_mode_leaves_new_payloads_plain() -> None:
    ring = KeyRing.generate("k")
    history = await EncryptionCodec(ring).encode([json_payload(MARKER)])
    codec = EncryptionCodec(ring, encrypt=False)
    assert await codec.encode([json_payload(2)]) == [json_payload(2)]
    assert await codec.decode(history) == [json_payload(MARKER)]


# ---------------------------------------------------------------- compression


async def test_compression_only_when_it_shrinks() -> None:
    codec = CompressionCodec()
    compressible = big_json_payload()
    incompressible = Payload(metadata={"encoding": b"binary/plain"}, data=os.urandom(4096))
    tiny = json_payload("hi")
    packed, random_out, tiny_out = await codec.encode([compressible, incompressible, tiny])
    assert packed.metadata["encoding"] == b"binary/zlib"
    assert packed.ByteSize() < compressible.ByteSize() / 5
    assert random_out == incompressible
    assert tiny_out == tiny
    assert await codec.decode([packed, random_out, tiny_out]) == [
        compressible,
        incompressible,
        tiny,
    ]


async def test_compression_never_grows_a_payload_near_the_threshold() -> None:
    codec = CompressionCodec(min_size=0)
    for size in range(0, 300, 7):
        payload = Payload(metadata={"encoding": b"binary/plain"}, data=os.urandom(size))
        [out] = await codec.encode([payload])
        assert out.ByteSize() <= payload.ByteSize()


async def test_decompression_refuses_bombs_and_garbage() -> None:
    codec = CompressionCodec(max_decoded_bytes=1024 * 1024)
    bomb_source = Payload(data=bytes(8 * 1024 * 1024)).SerializeToString()
    bomb = Payload(metadata={"encoding": b"binary/zlib"}, data=zlib.compress(bomb_source, 9))
    assert bomb.ByteSize() < 20_000
    with pytest.raises(PayloadCodecError, match="inflates past"):
        await codec.decode([bomb])
    with pytest.raises(PayloadCodecError, match="not valid zlib"):
        await codec.decode([Payload(metadata={"encoding": b"binary/zlib"}, data=b"nope")])
    truncated = zlib.compress(big_json_payload().SerializeToString())[:-10]
    with pytest.raises(PayloadCodecError, match="truncated"):
        await codec.decode([Payload(metadata={"encoding": b"binary/zlib"}, data=truncated)])


async def test_decompress_only_mode() -> None:
    packed = await CompressionCodec().encode([big_json_payload()])
    codec = CompressionCodec(compress=False)
    assert await codec.encode([big_json_payload()]) == [big_json_payload()]
    assert await codec.decode(packed) == [big_json_payload()]


# ---------------------------------------------------------------- chain and converter


async def test_chain_compresses_then_encrypts() -> None:
    ring = KeyRing.generate("k")
    chain = build_codec(key_ring=ring, encrypt=True, compress=True)
    assert isinstance(chain, CodecChain)
    original = big_json_payload()
    [encoded] = await chain.encode([original])
    assert encoded.metadata["encoding"] == b"binary/encrypted"
    # Encryption is the outer layer: peeling it alone shows the compressed payload.
    [inner] = await EncryptionCodec(ring).decode([encoded])
    assert inner.metadata["encoding"] == b"binary/zlib"
    assert encoded.ByteSize() < original.ByteSize() / 5
    assert await chain.decode([encoded]) == [original]


async def test_chain_decodes_whatever_an_earlier_configuration_wrote() -> None:
    ring = KeyRing.generate("k")
    both = build_codec(key_ring=ring, encrypt=True, compress=True)
    assert both is not None
    written = [
        *(await CompressionCodec().encode([big_json_payload()])),
        *(await EncryptionCodec(ring).encode([json_payload(1)])),
        *(await both.encode([big_json_payload()])),
        json_payload(2),
    ]
    expected = [big_json_payload(), json_payload(1), big_json_payload(), json_payload(2)]
    for encrypt in (True, False):
        for compress in (True, False):
            codec = build_codec(key_ring=ring, encrypt=encrypt, compress=compress)
            assert codec is not None
            assert await codec.decode(written) == expected


def test_build_codec_variants() -> None:
    assert build_codec() is None
    assert isinstance(build_codec(compress=True), CompressionCodec)
    with pytest.raises(ValueError) as caught:
        build_codec(encrypt=True)
    assert str(caught.value) == (
        "ENCRYPT_PAYLOADS=true needs a key: set PROVISION_CODEC_KEYS or PROVISION_CODEC_KEY_FILE"
    )


def test_build_data_converter_refuses_encryption_without_key() -> None:
    with pytest.raises(ValueError, match="ENCRYPT_PAYLOADS=true needs a key"):
        build_data_converter(encrypt=True)
    with pytest.raises(ValueError, match="needs a key"):
        build_data_converter(encrypt=True, compress=True)


def test_build_data_converter_without_codec_is_the_pydantic_one() -> None:
    assert build_data_converter() is pydantic_data_converter


async def test_data_converter_round_trips_pydantic_models_encrypted() -> None:
    converter = build_data_converter(key_ring=KeyRing.generate("k"), encrypt=True, compress=True)
    assert converter.payload_converter_class is pydantic_data_converter.payload_converter_class
    assert converter.failure_converter_class is DefaultFailureConverterWithEncodedAttributes
    plan = Plan(workspace="ws", summary=MARKER, resources=[f"r{i}" for i in range(200)])
    payloads = await converter.encode([plan, "text", 3])
    for payload in payloads:
        assert payload.metadata["encoding"] == b"binary/encrypted"
        assert MARKER.encode() not in payload.SerializeToString()
    assert await converter.decode(payloads, [Plan, str, int]) == [plan, "text", 3]


async def test_failure_messages_and_stack_traces_are_encrypted() -> None:
    converter = build_data_converter(key_ring=KeyRing.generate("k"), encrypt=True)
    try:
        raise ApplicationError(f"apply failed: {MARKER}", Plan(workspace="w", summary=MARKER))
    except ApplicationError as error:
        failure = Failure()
        await converter.encode_failure(error, failure)
    wire = failure.SerializeToString()
    assert MARKER.encode() not in wire
    assert b"test_codec.py" not in wire
    decoded = await converter.decode_failure(failure)
    assert isinstance(decoded, ApplicationError)
    assert decoded.message == f"apply failed: {MARKER}"


async def test_compression_only_converter_keeps_failure_messages_readable() -> None:
    converter = build_data_converter(compress=True)
    assert converter.failure_converter_class is pydantic_data_converter.failure_converter_class
