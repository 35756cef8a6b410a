"""AES-256 key rings: the first key encrypts, every key decrypts, so keys rotate safely."""

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
import stat
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

logger = logging.getLogger(__name__)

KEY_BYTES = 32
KEY_ID_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class KeyRing:
    """An ordered set of AES-256 keys by id; the first one is active.

    The repr and str show key ids only: a ring ends up in log lines and tracebacks.
    """

    __slots__ = ("_keys",)

    def __init__(self, keys: Iterable[tuple[str, bytes]]) -> None:
        ordered: dict[str, bytes] = {}
        for position, (key_id, key) in enumerate(keys, start=1):
            where = f"key ring entry {position}"
            _check_key_id(key_id, where)
            if key_id in ordered:
                raise ValueError(f"{where}: duplicate key id {key_id!r}")
            if not isinstance(key, bytes | bytearray) or len(key) != KEY_BYTES:
                raise ValueError(f"{where} (key id {key_id!r}): key must be {KEY_BYTES} bytes")
            ordered[key_id] = bytes(key)
        if not ordered:
            raise ValueError("key ring is empty: give at least one id=base64key")
        self._keys = ordered

    @classmethod
    def generate(cls, key_id: str) -> KeyRing:
        """A ring holding one fresh random key."""
        return cls([(key_id, os.urandom(KEY_BYTES))])

    @classmethod
    def parse(cls, spec: str) -> KeyRing:
        """Parse `id=base64key,id2=base64key2`; the first key is active."""
        return cls(_parse_entries((item, None) for item in spec.split(",")))

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> KeyRing:
        """Read a key file: `id=base64key` pairs, one a line or comma separated, `#` comments."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ValueError(f"key file {path} does not exist") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"key file {path} cannot be read: {type(exc).__name__}") from None
        _warn_if_shared(path)
        items: list[tuple[str, str | None]] = []
        for number, line in enumerate(text.splitlines(), start=1):
            # Neither base64 nor key ids contain '#', so a comment can start anywhere on a line.
            content = line.split("#", 1)[0]
            items.extend((item, f"{path} line {number}") for item in content.split(","))
        entries = _parse_entries(items)
        if not entries:
            raise ValueError(f"key file {path} holds no keys")
        return cls(entries)

    def rotated(self, key_id: str, key: bytes | None = None) -> KeyRing:
        """A ring with a new active key in front of every key of this one."""
        return KeyRing([(key_id, key if key is not None else os.urandom(KEY_BYTES)), *self.items()])

    @property
    def active_key_id(self) -> str:
        return next(iter(self._keys))

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(self._keys)

    def key(self, key_id: str) -> bytes:
        return self._keys[key_id]

    def items(self) -> Iterator[tuple[str, bytes]]:
        return iter(self._keys.items())

    def to_spec(self) -> str:
        """The `id=base64key,...` form `parse` reads; it holds the key material."""
        return ",".join(f"{kid}={base64.b64encode(key).decode()}" for kid, key in self.items())

    def __contains__(self, key_id: object) -> bool:
        return key_id in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, KeyRing):
            return NotImplemented
        return list(self._keys.items()) == list(other._keys.items())

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"KeyRing(active={self.active_key_id!r}, key_ids={list(self._keys)!r})"


def default_key_id() -> str:
    """A key id that sorts by creation time, so rotated keys get distinct ids without thought."""
    return f"k{datetime.now(UTC):%Y%m%dT%H%M%SZ}"


def write_new_key_file(path: str | os.PathLike[str], key_id: str | None = None) -> KeyRing:
    """Create a key file holding one random key, readable by its owner only, and return its ring.

    An existing file is never overwritten: it is loaded instead, so calling this on every start is
    safe and keeps the key payloads were encrypted with.
    """
    path = Path(path)
    key_id = key_id or default_key_id()
    ring = KeyRing.generate(key_id)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        # O_EXCL: two processes starting together must not both write, one would lose its key.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        logger.info("key file %s exists; loading it instead of writing a new key", path)
        return KeyRing.from_file(path)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(
            "# Payload encryption keys: id=base64key, the first one encrypts, all decrypt.\n"
            "# To rotate, put a new key first; keep old ones while histories hold their payloads.\n"
            f"{ring.to_spec()}\n"
        )
    logger.info("wrote a new payload encryption key %r to %s", key_id, path)
    return ring


def load_key_ring(spec: str | None, key_file: Path | None) -> KeyRing | None:
    """The ring from an inline spec or a key file, or None when neither is set."""
    spec = spec.strip() if spec else ""
    if spec and key_file is not None:
        raise ValueError("set PROVISION_CODEC_KEYS or PROVISION_CODEC_KEY_FILE, not both")
    if spec:
        return KeyRing.parse(spec)
    if key_file is not None:
        return KeyRing.from_file(key_file)
    return None


def _parse_entries(items: Iterable[tuple[str, str | None]]) -> list[tuple[str, bytes]]:
    entries: list[tuple[str, bytes]] = []
    count = 0
    for raw, source in items:
        item = raw.strip()
        if not item:
            continue
        count += 1
        where = source or f"key ring entry {count}"
        key_id, sep, encoded = item.partition("=")
        key_id = key_id.strip()
        if not sep:
            # The item is never echoed: a bare key pasted without its id would land in the logs.
            raise ValueError(f"{where}: expected id=base64key")
        _check_key_id(key_id, where)
        # The id is left out of key errors too: for a bare key pasted without one, the text before
        # its '=' padding passes as an id.
        entries.append((key_id, _decode_key(encoded.strip(), where)))
    return entries


def _check_key_id(key_id: str, where: str) -> None:
    if not isinstance(key_id, str) or not KEY_ID_PATTERN.fullmatch(key_id):
        # Not echoed: when the '=' is misplaced the "id" is really part of the key.
        raise ValueError(f"{where}: key id must match {KEY_ID_PATTERN.pattern}")


def _decode_key(encoded: str, where: str) -> bytes:
    if not encoded:
        raise ValueError(f"{where}: key is empty")
    # Accept the URL-safe alphabet too: keys get pasted from tools that emit either.
    normalized = encoded.replace("-", "+").replace("_", "/")
    normalized += "=" * (-len(normalized) % 4)
    try:
        key = base64.b64decode(normalized, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{where}: key is not valid base64") from None
    if len(key) != KEY_BYTES:
        raise ValueError(
            f"{where}: key is {len(key)} bytes, AES-256 needs {KEY_BYTES} "
            "(generate one with: openssl rand -base64 32)"
        )
    return key


def _warn_if_shared(path: Path) -> None:
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        logger.warning("key file %s is accessible by group or others; chmod 600 it", path)
