"""zlib payload codec: shrinks large JSON payloads (plans, logs) and leaves the rest alone."""

from __future__ import annotations

import zlib
from collections.abc import Sequence

from google.protobuf.message import DecodeError
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

from codec import PayloadCodecError, PayloadTooLarge

ENCODING = b"binary/zlib"
# Below this a payload cannot win back the ~30 bytes of metadata a compressed payload carries, and
# setting up a zlib stream costs more than the bytes are worth.
DEFAULT_MIN_SIZE = 128
# Temporal refuses payloads over a few MiB, so anything inflating far past that is a zip bomb
# (the codec server decodes whatever clients send).
DEFAULT_MAX_DECODED_BYTES = 64 * 1024 * 1024


class CompressionCodec(PayloadCodec):
    """Compresses a payload's serialized form (metadata included) when that makes it smaller.

    With `compress=False` the codec only decompresses, so turning compression off leaves runs with
    compressed history readable.
    """

    def __init__(
        self,
        *,
        compress: bool = True,
        level: int = 6,
        min_size: int = DEFAULT_MIN_SIZE,
        max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES,
    ) -> None:
        self._compress = compress
        self._level = level
        self._min_size = min_size
        self._max_decoded_bytes = max_decoded_bytes

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        if not self._compress:
            return list(payloads)
        return [self.compress_payload(payload) for payload in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decompress_payload(payload) for payload in payloads]

    def compress_payload(self, payload: Payload) -> Payload:
        if payload.ByteSize() < self._min_size:
            return payload
        plain = payload.SerializeToString()
        packed = Payload(metadata={"encoding": ENCODING}, data=zlib.compress(plain, self._level))
        return packed if packed.ByteSize() < len(plain) else payload

    def decompress_payload(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        inflater = zlib.decompressobj()
        try:
            plain = inflater.decompress(payload.data, self._max_decoded_bytes)
        except zlib.error:
            raise PayloadCodecError("compressed payload is not valid zlib data") from None
        if inflater.unconsumed_tail:
            raise PayloadTooLarge(
                f"compressed payload inflates past {self._max_decoded_bytes} bytes; refusing it"
            )
        if not inflater.eof:
            raise PayloadCodecError("compressed payload is truncated")
        try:
            return Payload.FromString(plain)
        except DecodeError:
            raise PayloadCodecError(
                "compressed payload does not hold a serialized Payload"
            ) from None
