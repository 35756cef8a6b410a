"""Running terraform so that a dying worker loses nothing: output and exit code go to files that
outlive it, and a per-workspace lock that its orphaned terraform keeps holding."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import shutil
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from activities.fault_points import FaultPoints

log = logging.getLogger(__name__)

# $0 of the wrapper: how a retry recognises an orphaned terraform of a dead worker in /proc.
WRAPPER_NAME = "provision-terraform"
# The wrapper stays terraform's parent so the exit code reaches disk even when the worker is gone.
_WRAPPER = (
    'exit_file=$1; shift; "$@"; code=$?; '
    'printf "%s\\n" "$code" >"$exit_file.tmp" && mv -f "$exit_file.tmp" "$exit_file"; '
    'exit "$code"'
)
_POLL_SECONDS = 0.2


@dataclass
class CommandResult:
    args: list[str]
    returncode: int
    output: str


@dataclass(frozen=True)
class CommandFiles:
    """Where one command's output is appended and its exit code written."""

    log: Path
    exit: Path

    def exit_code(self) -> int | None:
        try:
            return int(self.exit.read_text().strip())
        except (OSError, ValueError):
            return None

    def output(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


class WorkspaceLock:
    """An exclusive flock on a workspace's lock file.

    Every terraform child inherits the descriptor (`pass_fds`), so after its worker dies an
    orphaned terraform holds the lock until it exits: no retry starts a second one beside it.
    """

    def __init__(self, work: Path) -> None:
        self.work = work
        self.path = work / ".provision" / "lock"
        self.running_path = work / ".provision" / "running.json"
        self.fd: int | None = None

    async def acquire(self, *, reap: bool, grace_seconds: float) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        waited, signalled = 0.0, None
        try:
            while not _try_lock(fd):
                if waited == 0.0:
                    log.warning("workspace %s is busy (%s): waiting", self.work.name, self.holder())
                if reap:
                    signalled = self._reap(signalled, waited, grace_seconds)
                await asyncio.sleep(_POLL_SECONDS)
                waited += _POLL_SECONDS
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def holder(self) -> dict | None:
        """The wrapper process that last ran in this workspace, if it is still alive."""
        try:
            running = json.loads(self.running_path.read_text())
            cmdline = Path(f"/proc/{running['pid']}/cmdline").read_bytes()
        except (OSError, ValueError, KeyError):
            return None
        return running if WRAPPER_NAME.encode() in cmdline else None

    def note_running(self, pid: int, command: str) -> None:
        self.running_path.write_text(json.dumps({"pid": pid, "command": command}))

    def _reap(self, signalled: float | None, waited: float, grace: float) -> float | None:
        """Stop an orphaned terraform that is safe to stop (anything but an apply)."""
        holder = self.holder()
        if holder is None or holder["command"] == "apply":
            return signalled
        if signalled is None or waited - signalled >= grace:
            sig = signal.SIGINT if signalled is None else signal.SIGKILL
            log.warning("stopping orphaned terraform %s (pid %s): %s", holder, holder["pid"], sig)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(holder["pid"], sig)
            return waited
        return signalled


@contextlib.asynccontextmanager
async def heartbeating(beat: Callable[[], None], every: float = 2.0) -> AsyncIterator[None]:
    """Call `beat` now and every `every` seconds while the body runs."""

    async def loop() -> None:
        while True:
            beat()
            await asyncio.sleep(every)

    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class _Tail:
    """Reads what a command appended to its log since it started, line by line."""

    def __init__(self, path: Path, offset: int, on_line: Callable[[str], None] | None) -> None:
        self.fh = path.open("rb")
        self.fh.seek(offset)
        self.on_line = on_line
        self.chunks: list[str] = []
        self.partial = ""

    def drain(self, final: bool = False) -> list[str]:
        text = self.partial + self.fh.read().decode(errors="replace")
        lines = text.split("\n")
        self.partial = "" if final else lines.pop()
        complete = [line for line in lines if line or not final]
        self.chunks += [f"{line}\n" for line in complete]
        if self.on_line:
            for line in complete:
                self.on_line(line)
        return complete

    def close(self) -> str:
        self.drain(final=True)
        self.fh.close()
        return "".join(self.chunks)


class ProcessRunner:
    """Starts commands in their own session through the exit-code wrapper and supervises them."""

    def __init__(self, *, kill_grace_seconds: float, faults: FaultPoints, nice: int = 0) -> None:
        self.kill_grace_seconds = kill_grace_seconds
        self.faults = faults
        # `nice` (coreutils) execs terraform at a lower CPU priority, inherited by its providers
        # and provisioners, so the worker's workflow tasks win the CPU. Not preexec_fn: the
        # worker has threads, and Python code between fork and exec may deadlock there.
        nice_binary = shutil.which("nice") if nice > 0 else None
        self.prefix = (nice_binary, "-n", str(nice)) if nice_binary else ()

    async def run(
        self,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        files: CommandFiles,
        lock: WorkspaceLock | None,
        on_line: Callable[[str], None] | None = None,
        heartbeat: Callable[[], Awaitable[None]] | None = None,
    ) -> CommandResult:
        """Run `argv`; on cancellation stop it (SIGINT, then SIGKILL) and re-raise."""
        files.log.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        files.exit.unlink(missing_ok=True)
        with files.log.open("ab") as out:
            offset = out.seek(0, os.SEEK_END)
            proc = await asyncio.create_subprocess_exec(
                *["/bin/sh", "-c", _WRAPPER, WRAPPER_NAME, str(files.exit), *self.prefix, *argv],
                cwd=str(cwd),
                env=dict(env),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
                pass_fds=(lock.fd,) if lock and lock.fd is not None else (),
            )
        command = argv[1] if len(argv) > 1 else argv[0]
        if lock:
            lock.note_running(proc.pid, command)
        if command == "plan":
            self.faults.reach("plan-running")
        tail = _Tail(files.log, offset, on_line)
        try:
            await self._supervise(proc, tail, command, heartbeat)
        except asyncio.CancelledError:
            await self._stop(proc)
            raise
        finally:
            output = tail.close()
        return CommandResult(list(argv[1:]), proc.returncode or 0, output)

    async def _supervise(
        self,
        proc: asyncio.subprocess.Process,
        tail: _Tail,
        command: str,
        heartbeat: Callable[[], Awaitable[None]] | None,
    ) -> None:
        exited = asyncio.ensure_future(proc.wait())
        beat_at = 0.0
        loop = asyncio.get_running_loop()
        try:
            while not exited.done():
                await asyncio.wait({exited}, timeout=_POLL_SECONDS)
                lines = tail.drain()
                if command == "apply" and any(" complete after " in line for line in lines):
                    self.faults.reach("apply-running")
                if heartbeat and loop.time() - beat_at >= 2:
                    beat_at = loop.time()
                    await heartbeat()
        finally:
            if not exited.done():
                exited.cancel()

    async def _stop(self, proc: asyncio.subprocess.Process) -> None:
        if proc.returncode is not None:
            return
        log.warning("stopping terraform (pid %s): SIGINT", proc.pid)
        try:
            os.killpg(proc.pid, signal.SIGINT)
        except ProcessLookupError:
            return
        try:
            await asyncio.wait_for(asyncio.shield(proc.wait()), self.kill_grace_seconds)
        except TimeoutError:
            log.warning("terraform (pid %s) ignored SIGINT: SIGKILL", proc.pid)
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                return
            await proc.wait()
