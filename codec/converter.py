"""The one data converter every client and worker uses: pydantic JSON, then compress, then encrypt."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import (
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    PayloadCodec,
)

from codec.compression import CompressionCodec
from codec.encryption import EncryptionCodec
from codec.keys import KeyRing

NO_KEY_MESSAGE = (
    "ENCRYPT_PAYLOADS=true needs a key: set PROVISION_CODEC_KEYS or PROVISION_CODEC_KEY_FILE"
)


class CodecChain(PayloadCodec):
    """Runs codecs in order on encode and in reverse on decode (the SDK has no composite codec)."""

    def __init__(self, codecs: Sequence[PayloadCodec]) -> None:
        self.codecs = tuple(codecs)
        self._reversed = self.codecs[::-1]

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        out: Sequence[Payload] = payloads
        for codec in self.codecs:
            out = await codec.encode(out)
        return list(out)

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        out: Sequence[Payload] = payloads
        for codec in self._reversed:
            out = await codec.decode(out)
        return list(out)


def build_codec(
    *, key_ring: KeyRing | None = None, encrypt: bool = False, compress: bool = False
) -> PayloadCodec | None:
    """The payload codec for these settings, or None when payloads go out as plain JSON.

    Compression runs before encryption, since ciphertext does not compress. Decoding always
    undoes both whenever a key ring is given, so switching either off later does not strand runs
    whose history was written with it on.
    """
    if encrypt and key_ring is None:
        raise ValueError(NO_KEY_MESSAGE)
    if key_ring is None:
        return CompressionCodec() if compress else None
    return CodecChain(
        [CompressionCodec(compress=compress), EncryptionCodec(key_ring, encrypt=encrypt)]
    )


def build_data_converter(
    *, key_ring: KeyRing | None = None, encrypt: bool = False, compress: bool = False
) -> DataConverter:
    """The pydantic data converter with the codec for these settings.

    When encrypting, failure messages and stack traces move into an encoded payload too: they
    often quote the very values (plan output, resource names) encryption is meant to hide.
    """
    codec = build_codec(key_ring=key_ring, encrypt=encrypt, compress=compress)
    if codec is None:
        return pydantic_data_converter
    changes: dict[str, object] = {"payload_codec": codec}
    if encrypt:
        changes["failure_converter_class"] = DefaultFailureConverterWithEncodedAttributes
    return dataclasses.replace(pydantic_data_converter, **changes)
