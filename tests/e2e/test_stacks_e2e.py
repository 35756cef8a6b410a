"""A platform team's own stacks, end to end: a stacks file outside the repository, a real worker
that reads it, the CLI with `--var`, real terraform, and a git source from a local bare repo."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from tests.support.processes import VENV_BIN, Stack, run_process, wait_until

pytestmark = pytest.mark.e2e

CONFIG = textwrap.dedent(
    """\
    terraform {
      required_providers {
        null = {
          source  = "hashicorp/null"
          version = "2.1.2"
        }
      }
    }

    variable "size" {
      type = number
    }

    variable "tier" {
      type    = string
      default = "web"
    }

    variable "workspace" {
      type    = string
      default = ""
    }

    resource "null_resource" "servers" {
      triggers = {
        size = var.size
        tier = var.tier
      }
    }

    output "servers" {
      value = "${var.workspace}: ${var.size} x ${var.tier}"
    }
    """
)


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


def make_git_source(root: Path) -> tuple[Path, str]:
    """A bare repository whose `main` holds the configuration under `infra/`."""
    work = root / "git-work"
    (work / "infra").mkdir(parents=True)
    (work / "infra" / "main.tf").write_text(CONFIG)
    git("init", "--quiet", "--initial-branch=main", cwd=work)
    git("add", ".", cwd=work)
    git(
        "-c", "user.name=t", "-c", "user.email=t@example.com",
        "commit", "--quiet", "-m", "servers", cwd=work,
    )  # fmt: skip
    sha = git("rev-parse", "HEAD", cwd=work)
    bare = root / "servers.git"
    git("clone", "--quiet", "--bare", str(work), str(bare), cwd=root)
    return bare, sha


@pytest_asyncio.fixture(scope="module")
async def team(temporal_env: WorkflowEnvironment, tmp_path_factory) -> AsyncIterator[Stack]:
    """A worker and CLI that read a stacks file from a folder outside the repository."""
    outside = tmp_path_factory.mktemp("platform-team")
    (outside / "servers").mkdir()
    (outside / "servers" / "main.tf").write_text(CONFIG)
    bare, sha = make_git_source(outside)
    (outside / "stacks.yaml").write_text(
        textwrap.dedent(
            f"""\
            stacks:
              servers:
                description: a few servers
                source: ./servers
                variables: {{tier: api}}
                inputs:
                  size: {{type: number, min: 1, max: 5, default: 1}}
              servers-git:
                description: the same, from git
                source: {{git: "{bare}", ref: main, path: infra}}
                inputs:
                  size: {{type: number, min: 1, max: 5, default: 2}}
            """
        )
    )
    address = temporal_env.client.service_client.config.target_host
    stack = Stack(address, tmp_path_factory.mktemp("team-data"), f"tq-{uuid.uuid4()}")
    stack.env["PROVISION_STACKS_FILE"] = str(outside / "stacks.yaml")
    stack.git_sha = sha  # type: ignore[attr-defined]
    await stack.start_worker()
    try:
        yield stack
    finally:
        await stack.stop_worker()


def state_file(stack: Stack, workspace: str) -> Path:
    return stack.data_dir / "workspaces" / workspace / "terraform.tfstate"


async def test_a_folder_stack_applies_with_its_inputs(team: Stack) -> None:
    listed = await team.run("stacks", "--json")
    assert listed.returncode == 0, listed
    servers = next(s for s in listed.json() if s["name"] == "servers")
    assert servers["inputs"]["size"]["max"] == 5 and not servers["builtin"]

    run = await team.run("run", "servers", "--var", "size=3", "--prefix", "t", "--wait", "--json")
    assert run.returncode == 0, run
    data = run.json()
    assert data["status"] == "applied" and data["stack"] == "servers"
    assert data["outputs"]["servers"] == "t-servers: 3 x api"
    assert data["inputs"] == {"size": 3}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--var", "size=9"), "--var size: '9' is out of range: a number from 1 to 5"),
        (("--var", "colour=red"), "stack servers has no input 'colour' (its inputs: size)"),
        (("--var", "size=lots"), "--var size: 'lots' is not a number from 1 to 5"),
    ],
)
async def test_bad_vars_are_refused_before_anything_starts(
    team: Stack, args: tuple[str, ...], message: str
) -> None:
    run = await team.run("run", "servers", *args, "--prefix", "bad")
    assert run.returncode == 2, run
    assert message in run.stderr and run.stderr.count("\n") == 1
    listed = await team.run("list", "--json")
    assert "provision-bad-servers" not in [r["workflow_id"] for r in listed.json()]


async def test_plan_leaves_the_state_untouched_until_apply(team: Stack) -> None:
    started = await team.run("plan", "servers", "--var", "size=2", "--workspace", "planned")
    assert started.returncode == 0, started

    async def waiting() -> bool:
        status = await team.run("status", "planned", "--json")
        return status.returncode == 0 and status.json()["status"] == "awaiting_approval"

    await wait_until(waiting, what="the plan to wait for Apply")
    status = (await team.run("status", "planned", "--json")).json()
    assert status["plan_only"] and status["plan_summary"]["add"] == 1
    assert not state_file(team, "planned").exists() or not json.loads(
        state_file(team, "planned").read_text()
    ).get("resources")
    applied = await team.run("approve", "planned", "--reason", "apply the plan")
    assert applied.returncode == 0, applied

    async def done() -> bool:
        return (await team.run("status", "planned", "--json")).json()["status"] == "applied"

    await wait_until(done, what="applied after Apply")
    resources = json.loads(state_file(team, "planned").read_text())["resources"]
    assert [r["type"] for r in resources] == ["null_resource"]


async def test_a_git_stack_records_the_commit_it_applied(team: Stack) -> None:
    run = await team.run("run", "servers-git", "--prefix", "g", "--wait", "--json")
    assert run.returncode == 0, run
    data = run.json()
    assert data["status"] == "applied"
    assert data["source_revision"] == team.git_sha  # type: ignore[attr-defined]
    assert data["outputs"]["servers"] == "g-servers-git: 2 x web"
    status = await team.run("status", "g-servers-git")
    assert team.git_sha in status.stdout  # type: ignore[attr-defined]
    destroyed = await team.run("destroy", "g-servers-git", "--wait", "--json")
    assert destroyed.returncode == 0, destroyed
    assert destroyed.json()["status"] == "destroyed"


async def test_a_workspace_belongs_to_its_stack(team: Stack) -> None:
    first = await team.run("run", "servers", "--workspace", "shared", "--wait", "--json")
    assert first.returncode == 0, first
    other = await team.run("run", "servers-git", "--workspace", "shared", "--wait", "--json")
    assert other.returncode == 1, other
    data = other.json()
    assert data["status"] == "failed"
    assert "workspace shared belongs to stack servers" in data["reason"]


async def test_stacks_check_prints_every_error_with_its_line(team: Stack, tmp_path: Path) -> None:
    broken = tmp_path / "stacks.yaml"
    broken.write_text("stacks:\n  a:\n    source: ./nowhere\n  b:\n    colour: red\n")
    check = await team.run("stacks", "check", env={"PROVISION_STACKS_FILE": str(broken)})
    assert check.returncode == 2, check
    lines = check.stderr.strip().splitlines()
    assert f"{broken}:3: stacks.a.source: folder './nowhere' does not exist" in lines[0]
    assert any(f"{broken}:5: stacks.b.colour: unknown setting" in line for line in lines)
    assert any(f"{broken}:4: stacks.b.source: is required" in line for line in lines)
    ok = await team.run("stacks", "check")
    assert ok.returncode == 0 and "ok, 11 stacks" in ok.stdout


# -- the README's example ---------------------------------------------------------------------

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "stacks.yaml"


def test_the_readme_shows_the_example_file_as_it_is() -> None:
    readme = (EXAMPLE.parent.parent / "README.md").read_text()
    assert f"```yaml\n{EXAMPLE.read_text()}```" in readme


async def test_a_bad_stacks_file_stops_the_worker_before_it_connects(tmp_path: Path) -> None:
    bad = tmp_path / "stacks.yaml"
    bad.write_text("stacks:\n  web:\n    source: ./web\n    approvals: 99\n")
    result = await run_process(
        [str(VENV_BIN / "provision"), "worker"],
        env={**os.environ, "PROVISION_STACKS_FILE": str(bad), "TEMPORAL_ADDRESS": "127.0.0.1:1"},
        timeout=60,
    )
    assert result.returncode == 2, result
    assert f"{bad}:4: stacks.web.approvals" in result.stderr and "Traceback" not in result.stderr


@pytest_asyncio.fixture(scope="module")
async def example(temporal_env: WorkflowEnvironment, tmp_path_factory) -> AsyncIterator[Stack]:
    address = temporal_env.client.service_client.config.target_host
    stack = Stack(address, tmp_path_factory.mktemp("example-data"), f"tq-{uuid.uuid4()}")
    stack.env["PROVISION_STACKS_FILE"] = str(EXAMPLE)
    await stack.start_worker()
    try:
        yield stack
    finally:
        await stack.stop_worker()


async def test_the_example_stack_plans_applies_and_destroys(example: Stack) -> None:
    checked = await example.run("stacks", "check")
    assert checked.returncode == 0, checked
    run = await example.run(
        "plan", "servers", "--var", "size=3", "--var", "environment=staging",
        "--prefix", "demo", "--json",
    )  # fmt: skip
    assert run.returncode == 0, run

    async def waiting() -> bool:
        status = await example.run("status", "demo-servers", "--json")
        return status.returncode == 0 and status.json()["status"] == "awaiting_approval"

    await wait_until(waiting, timeout=120, what="the plan to wait for Apply")
    approved = await example.run("approve", "provision-demo-servers", "--reason", "looks right")
    assert approved.returncode == 0, approved

    async def applied() -> dict | None:
        status = (await example.run("status", "demo-servers", "--json")).json()
        return status if status["status"] == "applied" else None

    status = await wait_until(applied, timeout=120, what="applied")
    assert status["outputs"]["servers"] == ["demo-servers-0", "demo-servers-1", "demo-servers-2"]
    refused = await example.run("run", "servers", "--var", "environment=qa", "--prefix", "demo")
    assert refused.returncode == 2 and "environment" in refused.stderr
    destroyed = await example.run("destroy", "demo-servers", "--wait", "--json")
    assert destroyed.returncode == 0, destroyed
    assert destroyed.json()["status"] == "destroyed"
