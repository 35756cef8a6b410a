"""Payload codec throughput against bare AES-GCM on the same bytes (run: python bench/codec.py)."""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    # Run as a script, this folder leads sys.path and this file's name shadows the codec package.
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: E402
from temporalio.api.common.v1 import Payload  # noqa: E402

from codec.converter import build_codec  # noqa: E402
from codec.keys import KeyRing  # noqa: E402

SIZES = (1024, 64 * 1024, 1024 * 1024)
TARGET_RATIO = 1.3
# Enough operations per timed batch that timer resolution is noise, few enough to interleave often.
BATCH_BYTES = 4 * 1024 * 1024


def random_payload(size: int) -> Payload:
    return Payload(metadata={"encoding": b"binary/plain"}, data=os.urandom(size))


def plan_like_payload(size: int) -> Payload:
    """JSON shaped like `terraform show -json` output: repetitive keys, varied values."""
    rng = random.Random(size)
    rows, length = [], 0
    while length < size:
        row = {
            "address": f"module.app.null_resource.item[{len(rows)}]",
            "mode": "managed",
            "type": "null_resource",
            "change": {"actions": ["create"], "after": {"triggers": {"v": rng.randbytes(6).hex()}}},
        }
        rows.append(row)
        length += len(json.dumps(row)) + 2
    data = json.dumps({"resource_changes": rows}).encode()[:size]
    return Payload(metadata={"encoding": b"json/plain"}, data=data)


def timed(op: Callable[[], object], count: int) -> float:
    start = time.perf_counter()
    for _ in range(count):
        op()
    return (time.perf_counter() - start) / count


def run_codec_once(codec: object, payload: Payload) -> Callable[[], object]:
    # The codec methods are coroutines that never suspend; driving them by hand measures the codec,
    # not the event loop.
    def once() -> object:
        encoded = _drive(codec.encode([payload]))  # type: ignore[attr-defined]
        return _drive(codec.decode(encoded))  # type: ignore[attr-defined]

    return once


def _drive(coroutine: object) -> object:
    try:
        coroutine.send(None)  # type: ignore[attr-defined]
    except StopIteration as done:
        return done.value
    raise RuntimeError("codec coroutine suspended")


def raw_once(aead: AESGCM, data: bytes) -> Callable[[], object]:
    def once() -> object:
        nonce = os.urandom(12)
        return aead.decrypt(nonce, aead.encrypt(nonce, data, None), None)

    return once


def floor_once(aead: AESGCM, payload: Payload) -> Callable[[], object]:
    """Bare AES plus the copies any payload codec must make: read .data, build a new Payload."""

    def once() -> object:
        nonce = os.urandom(12)
        sealed = Payload(data=aead.encrypt(nonce, payload.data, None))
        return Payload(data=aead.decrypt(nonce, sealed.data, None))

    return once


def measure(ops: dict[str, Callable[[], object]], size: int, rounds: int) -> dict[str, float]:
    count = max(3, BATCH_BYTES // size)
    samples: dict[str, list[float]] = {name: [] for name in ops}
    names = list(ops)
    for op in ops.values():
        timed(op, count)
    for round_number in range(rounds):
        # Rotate the order each round so drift (turbo, neighbours, GC) hits every variant alike.
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(timed(ops[name], count))
    return {name: statistics.median(values) for name, values in samples.items()}


def show(size: int, medians: dict[str, float], ratios: list[tuple[str, str]]) -> str:
    cells = [f"{_size_label(size):>8}"]
    for name, seconds in medians.items():
        cells.append(f"{name} {seconds * 1e6:8.1f} us ({size / seconds / 1e6:5.0f} MB/s)")
    quotients = [f"{top}/{bottom} {medians[top] / medians[bottom]:.2f}" for top, bottom in ratios]
    return "  ".join(cells) + "  |  " + "  ".join(quotients)


def _size_label(size: int) -> str:
    return f"{size // 1024 // 1024} MiB" if size >= 1024 * 1024 else f"{size // 1024} KiB"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=25, help="interleaved rounds per size")
    args = parser.parse_args()

    ring = KeyRing.generate("bench")
    aead = AESGCM(ring.key("bench"))
    encrypt_only = build_codec(key_ring=ring, encrypt=True, compress=False)
    compress_encrypt = build_codec(key_ring=ring, encrypt=True, compress=True)

    print("Random bytes, compression off: codec encode+decode vs bare AES-GCM encrypt+decrypt")
    print("(floor = bare AES + reading payload.data + building a Payload, in each direction)")
    verdicts = []
    for size in SIZES:
        payload = random_payload(size)
        medians = measure(
            {
                "codec": run_codec_once(encrypt_only, payload),
                "raw": raw_once(aead, payload.data),
                "floor": floor_once(aead, payload),
            },
            size,
            args.rounds,
        )
        print(show(size, medians, [("codec", "raw"), ("floor", "raw"), ("codec", "floor")]))
        if size >= 64 * 1024:
            verdicts.append((size, medians["codec"] / medians["raw"]))

    print()
    print("Plan-like JSON: compress+encrypt codec vs encrypt-only codec vs bare AES (same bytes)")
    for size in SIZES:
        payload = plan_like_payload(size)
        [sealed] = _drive(compress_encrypt.encode([payload]))  # type: ignore[union-attr, misc]
        medians = measure(
            {
                "zlib+aes": run_codec_once(compress_encrypt, payload),
                "aes-codec": run_codec_once(encrypt_only, payload),
                "raw": raw_once(aead, payload.data),
            },
            size,
            args.rounds,
        )
        line = show(size, medians, [("zlib+aes", "raw"), ("aes-codec", "raw")])
        print(f"{line}  |  stored {sealed.ByteSize() / size:.0%} of input")

    print()
    for size, ratio in verdicts:
        status = "met" if ratio <= TARGET_RATIO else "NOT met"
        print(f"target codec/raw <= {TARGET_RATIO} at {_size_label(size)}: {ratio:.2f} ({status})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
