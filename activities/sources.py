"""Where a stack's Terraform comes from, on the worker: a built-in folder, a folder of the stacks
file, or a git repository fetched at plan time and pinned to the commit it planned.

The worker resolves a stack by name from its own stacks file, never from a path in the request,
so a run can only use configurations the platform team declared.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path

from activities.terraform import TerraformError
from stacks.model import GitSource
from stacks.registry import Stacks

SHA_PATTERN = re.compile(r"^[0-9a-f]{40}$")
GIT_TIMEOUT_SECONDS = 300.0


@dataclass(frozen=True)
class ResolvedSource:
    folder: Path
    # The 40-hex commit of a git source; None for folders.
    revision: str | None = None


def _config_error(message: str) -> TerraformError:
    return TerraformError(message, kind="TerraformConfigError", retryable=False)


class SourceResolver:
    def __init__(self, stacks: Stacks, cache_dir: Path, *, git: str = "git") -> None:
        self.stacks = stacks
        self.cache_dir = cache_dir.resolve()
        self.git = git
        self._locks: dict[str, asyncio.Lock] = {}

    def declared(self, stack_name: str | None) -> bool:
        """True when the stack is one of the stacks file's (not a built-in folder)."""
        return (
            bool(stack_name) and stack_name in self.stacks and not self._stack(stack_name).builtin
        )

    def _stack(self, name: str):
        try:
            return self.stacks.get(name)
        except LookupError:
            raise _config_error(
                f"stack {name!r} is not declared in this worker's stacks file "
                "(PROVISION_STACKS_FILE); the worker runs only declared stacks"
            ) from None

    async def resolve(self, stack_name: str, revision: str | None = None) -> ResolvedSource:
        """The folder to copy into the workspace. `revision` pins a git source (a destroy uses
        the commit the workspace was applied from)."""
        stack = self._stack(stack_name)
        if not isinstance(stack.source, GitSource):
            folder = Path(stack.source)
            if not folder.is_dir():
                raise _config_error(
                    f"stack {stack_name}: folder {folder} is missing on this worker"
                )
            return ResolvedSource(folder)
        return await self._git(stack_name, stack.source, revision)

    async def _git(self, name: str, source: GitSource, revision: str | None) -> ResolvedSource:
        key = hashlib.sha256(source.git.encode()).hexdigest()[:16]
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            mirror = self.cache_dir / "git" / f"{key}.git"
            if not (mirror / "HEAD").exists():
                mirror.parent.mkdir(parents=True, exist_ok=True)
                await self._run("init", "--bare", "--quiet", str(mirror))
            wanted = revision or source.ref
            refspecs = ["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"]
            if SHA_PATTERN.match(wanted):
                refspecs.append(wanted)
            await self._run(
                "--git-dir", str(mirror), "fetch", "--quiet", "--force", "--", source.git,
                *refspecs, what=f"stack {name}: cannot fetch {source.git}",
            )  # fmt: skip
            sha = (
                await self._run(
                    "--git-dir",
                    str(mirror),
                    "rev-parse",
                    "--verify",
                    "--quiet",
                    f"{wanted}^{{commit}}",
                    what=f"stack {name}: no commit {wanted!r} in {source.git}",
                )  # fmt: skip
            ).strip()
            if not SHA_PATTERN.match(sha):
                raise _config_error(f"stack {name}: {wanted!r} did not resolve to a commit")
            checkout = self.cache_dir / "checkouts" / sha / (source.path or ".")
            if not checkout.is_dir():
                await self._extract(name, mirror, sha, source.path)
            return ResolvedSource(checkout.resolve(), sha)

    async def _extract(self, name: str, mirror: Path, sha: str, path: str) -> None:
        """The commit's files (under `path`) into checkouts/<sha>, atomically."""
        treeish = f"{sha}:{path}" if path else sha
        archive = await self._run(
            "--git-dir", str(mirror), "archive", "--format=tar", treeish,
            what=f"stack {name}: no folder {path!r} at {sha}", binary=True,
        )  # fmt: skip
        root = self.cache_dir / "checkouts" / sha
        staging = root.with_name(f".{sha}.{os.getpid()}")
        target = staging / path if path else staging
        target.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(target, filter="data")
        if root.exists():  # another worker task got there first
            return
        staging.rename(root)

    async def _run(self, *args: str, what: str = "git failed", binary: bool = False):
        env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "/bin/false"}
        try:
            proc = await asyncio.create_subprocess_exec(
                self.git,
                *args,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=env,
            )
        except FileNotFoundError:
            raise _config_error("git is not installed on this worker") from None
        try:
            out, err = await asyncio.wait_for(proc.communicate(), GIT_TIMEOUT_SECONDS)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise TerraformError(f"{what}: git took longer than {GIT_TIMEOUT_SECONDS:g}s") from None
        if proc.returncode != 0:
            detail = err.decode(errors="replace").strip().splitlines()
            # A fetch may fail for a moment (network); a missing ref or folder will not heal.
            retryable = args[2:3] == ("fetch",)
            raise TerraformError(
                f"{what}: {detail[-1] if detail else 'exit ' + str(proc.returncode)}",
                kind="TerraformConfigError" if not retryable else "SourceFetchError",
                retryable=retryable,
            )
        return out if binary else out.decode()
