"""Payload encryption and compression for Temporal, plus the codec server the UI and CLI call."""


class PayloadCodecError(ValueError):
    """A payload could not be decoded: unknown key id, tampered or truncated data, bad framing.

    Messages name key ids and sizes only, never key material or payload contents, so they are safe
    to log and to return from the codec server.
    """


class PayloadTooLarge(PayloadCodecError):
    """A payload would decode past the size its reader allows (a decompression bomb, say)."""
