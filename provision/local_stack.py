"""What a running `provision dev` tells the other processes of its data folder (a second
terminal's `provision run …`): its payload codec settings, in `<data>/dev-stack.json`.

So `ENCRYPT_PAYLOADS=true make demo` and then a plain `provision run …` next to it encrypt
alike, with nothing set by hand. The file lives as long as the stack; a stale one (the stack was
killed) is ignored because its process is gone.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

STACK_FILE_NAME = "dev-stack.json"


def stack_file(data_dir: Path) -> Path:
    return data_dir / STACK_FILE_NAME


def announce(data_dir: Path, *, temporal_address: str, encrypt: bool, compress: bool) -> Path:
    path = stack_file(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {
        "pid": os.getpid(),
        "temporal_address": temporal_address,
        "encrypt_payloads": encrypt,
        "compress_payloads": compress,
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(body) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def withdraw(data_dir: Path) -> None:
    path = stack_file(data_dir)
    running = _read(path)
    # Only the stack that wrote it takes it away.
    if running is not None and running.get("pid") == os.getpid():
        path.unlink(missing_ok=True)


def running_stack(data_dir: Path) -> dict[str, Any] | None:
    """The running stack's announcement, or None (no stack, or its process is gone)."""
    running = _read(stack_file(data_dir))
    if running is None or not isinstance(running.get("pid"), int):
        return None
    try:
        os.kill(running["pid"], 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, another user's
    return running


def _read(path: Path) -> dict[str, Any] | None:
    with contextlib.suppress(OSError, ValueError):
        value = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(value, dict):
            return value
    return None
