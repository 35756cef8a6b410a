"""The container image, checked without a Docker engine: the Dockerfile read instruction by
instruction, its healthcheck run for real, and the package built from exactly the files the image's
build stage copies (with .dockerignore applied)."""

from __future__ import annotations

import asyncio
import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web

from provision.settings import Settings, load_settings

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str
    line: int

    def exec_form(self) -> list[str] | None:
        try:
            value = json.loads(self.args)
        except json.JSONDecodeError:
            return None
        return value if isinstance(value, list) else None


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions with continuation lines joined and comments dropped (Docker's own rules)."""
    instructions: list[Instruction] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not pending):
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        pending += stripped
        keyword, _, args = pending.partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip(), start))
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    return instructions


INSTRUCTIONS = parse_dockerfile(DOCKERFILE.read_text())


def global_args() -> dict[str, str]:
    """ARGs declared before the first FROM, with their defaults (usable in FROM lines)."""
    values: dict[str, str] = {}
    for ins in INSTRUCTIONS:
        if ins.keyword == "FROM":
            break
        if ins.keyword == "ARG":
            name, _, default = ins.args.partition("=")
            values[name] = default
    return values


def stages() -> list[tuple[str, list[Instruction]]]:
    """(image reference with ARGs resolved, instructions) of each stage, in order."""
    args = global_args()
    found: list[tuple[str, list[Instruction]]] = []
    for ins in INSTRUCTIONS:
        if ins.keyword == "FROM":
            words = [w for w in ins.args.split() if not w.startswith("--")]
            image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], words[0])
            found.append((image, []))
        elif found:
            found[-1][1].append(ins)
    return found


def final_stage() -> list[Instruction]:
    return stages()[-1][1]


def last(keyword: str) -> Instruction:
    matching = [i for i in final_stage() if i.keyword == keyword]
    assert matching, f"the final stage has no {keyword}"
    return matching[-1]


def env_of_final_stage() -> dict[str, str]:
    env: dict[str, str] = {}
    for ins in final_stage():
        if ins.keyword == "ENV":
            for pair in shlex.split(ins.args):
                name, _, value = pair.partition("=")
                env[name] = value
    return env


def dockerignore_patterns() -> list[str]:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def ignored(relative: str) -> bool:
    """Whether .dockerignore keeps a path out of the build context (no `!` rules are used)."""
    patterns = dockerignore_patterns()
    assert not any(p.startswith("!") for p in patterns), "extend ignored() for exceptions"
    parts = relative.split("/")
    for pattern in patterns:
        pattern = pattern.rstrip("/")
        if pattern.startswith("**/"):
            if any(fnmatch.fnmatchcase(part, pattern[3:]) for part in parts):
                return True
        # A pattern that matches a folder excludes everything under it.
        for depth in range(1, len(parts) + 1):
            if fnmatch.fnmatchcase("/".join(parts[:depth]), pattern):
                return True
    return False


def copy_sources(stage: list[Instruction]) -> list[tuple[list[str], str]]:
    """(sources, destination) of each COPY from the build context (not --from another stage)."""
    copies = []
    for ins in stage:
        if ins.keyword != "COPY" or "--from=" in ins.args:
            continue
        words = [w for w in ins.args.split() if not w.startswith("--")]
        copies.append((words[:-1], words[-1]))
    return copies


def test_every_stage_starts_from_a_pinned_python_311() -> None:
    found = stages()
    assert len(found) >= 2, "a multi-stage build: the runtime stage leaves the build tools behind"
    for image, _ in found:
        # The terraform and null-provider wheels are cp311 x86_64 builds.
        assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", image), image
    froms = [i.args for i in INSTRUCTIONS if i.keyword == "FROM"]
    assert all("--platform=linux/amd64" in f for f in froms), froms


def test_the_image_runs_as_a_non_root_user_it_creates() -> None:
    stage = final_stage()
    user = last("USER")
    assert user.args.split(":")[0] not in ("root", "0")
    created = " ".join(i.args for i in stage if i.keyword == "RUN")
    assert "useradd" in created and user.args.split(":")[0] in created
    entry = last("ENTRYPOINT")
    assert user.line < entry.line, "USER must come before the entrypoint"
    # The data folder is the one place it writes: it must own it.
    assert f"chown {user.args}:{user.args} /data" in created
    assert env_of_final_stage()["PROVISION_DATA_DIR"] == "/data"


def test_entrypoint_is_provision_and_the_default_command_the_worker() -> None:
    assert last("ENTRYPOINT").exec_form() == ["provision"]
    assert last("CMD").exec_form() == ["worker"]
    assert "provision" in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]


def test_copy_sources_exist_and_are_in_the_build_context() -> None:
    for _, stage in stages():
        for sources, _ in copy_sources(stage):
            for source in sources:
                path = REPO / source
                assert path.exists(), f"COPY {source}: not in the repo"
                assert not ignored(source), f"COPY {source}: excluded by .dockerignore"


def test_every_python_package_is_copied_into_the_build() -> None:
    find = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    packages = {p.rstrip("*") for p in find["find"]["include"]}
    build = stages()[0][1]
    copied = {source for sources, _ in copy_sources(build) for source in sources}
    assert packages <= copied, packages - copied
    assert {"pyproject.toml", "README.md"} <= copied
    # The dependency layer builds against empty stand-ins of the very same packages.
    stubs = next(i.args for i in build if i.keyword == "RUN" and "mkdir" in i.args)
    assert all(f"{p}/__init__.py" in stubs for p in packages), stubs


def test_terraform_configurations_are_in_the_image_where_settings_look() -> None:
    copies = copy_sources(final_stage())
    root = env_of_final_stage()["PROVISION_TERRAFORM_ROOT"]
    assert (["terraform"], root) in copies
    assert (REPO / "terraform" / "policies").is_dir()
    # COPY keeps symlinks as links: each must stay inside terraform/ to resolve in the image.
    links = [p for p in (REPO / "terraform").rglob("*") if p.is_symlink()]
    assert links, "local_admin_user shares the namespace files by symlink"
    for link in links:
        target = os.readlink(link)
        assert not os.path.isabs(target), f"{link}: absolute link {target}"
        resolved = link.resolve()
        assert resolved.is_relative_to((REPO / "terraform").resolve()), link
        assert resolved.exists() and not ignored(str(resolved.relative_to(REPO))), link


def test_the_image_environment_is_valid_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    env = env_of_final_stage()
    for name, value in env.items():
        if name.startswith("PROVISION_"):
            monkeypatch.setenv(name, value)
    settings = load_settings()
    # Inside a container the endpoints must listen beyond loopback to be scraped or probed.
    assert settings.worker_metrics_address == "0.0.0.0:9000"
    assert settings.bot_health_address == "0.0.0.0:8090"
    assert settings.terraform_root == Path("/app/terraform")
    exposed = {int(port) for port in last("EXPOSE").args.split()}
    defaults = Settings.model_fields
    assert exposed == {9000, 8090, int(defaults["codec_port"].default)}
    assert env["PROVISION_HEALTHCHECK_URL"] == "http://127.0.0.1:9000/metrics"


def healthcheck_argv() -> list[str]:
    check = last("HEALTHCHECK")
    options, _, command = check.args.partition("CMD ")
    assert "--timeout=" in options and "--interval=" in options
    argv = json.loads(command)
    assert argv[0] == "python", "the image's venv python; no curl in a slim image"
    return [sys.executable, *argv[1:]]


async def run_healthcheck(url: str) -> int:
    proc = await asyncio.create_subprocess_exec(
        *healthcheck_argv(),
        env={"PATH": os.environ.get("PATH", ""), "PROVISION_HEALTHCHECK_URL": url},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    return await asyncio.wait_for(proc.wait(), 30)


async def test_healthcheck_passes_on_200_and_fails_otherwise() -> None:
    async def metrics(_: web.Request) -> web.Response:
        return web.Response(text="temporal_worker_start 1\n")

    async def unhealthy(_: web.Request) -> web.Response:
        # What the bot's /healthz answers while its Socket Mode connection is down.
        return web.json_response({"ok": False}, status=503)

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", unhealthy)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        assert await run_healthcheck(f"http://127.0.0.1:{port}/metrics") == 0
        assert await run_healthcheck(f"http://127.0.0.1:{port}/healthz") != 0
    finally:
        await runner.cleanup()
    # Nothing listening any more: a dead process fails too.
    assert await run_healthcheck(f"http://127.0.0.1:{port}/metrics") != 0


def test_the_package_builds_from_exactly_what_the_image_copies(tmp_path: Path) -> None:
    """`pip install .` of the build stage, minus the dependencies (those need the network)."""
    context = tmp_path / "context"
    context.mkdir()
    for sources, _ in copy_sources(stages()[0][1]):
        for source in sources:
            path = REPO / source
            if path.is_file():
                shutil.copy2(path, context / source)
                continue
            for file in path.rglob("*"):
                relative = str(file.relative_to(REPO))
                if file.is_file() and not ignored(relative):
                    (context / relative).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(file, context / relative)
    data_files = {
        str(f.relative_to(context))
        for f in context.rglob("*")
        if f.is_file() and f.suffix != ".py" and f.parent != context
    }
    out = tmp_path / "wheels"
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "-w",
            str(out),
            str(context),
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = out.glob("provision-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for module in (
        "provision/cli.py",
        "provision/worker.py",
        "bot/app.py",
        "workflows/provision.py",
        "workflows/metrics.py",
        "activities/provisioning.py",
        "codec/server.py",
    ):
        assert module in names, module
    # Data files (the bot's manifest) come along.
    assert data_files and data_files <= names, data_files - names
    # The local Slack workspace is a package of its own, for `provision dev` and the tests only.
    assert not [n for n in names if "localslack" in n]
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert (
        "provision = provision.cli:entrypoint" in zipfile.ZipFile(wheel).read(entry_points).decode()
    )
