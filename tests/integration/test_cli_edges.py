"""The `provision` CLI at its edges: help for a terminal, exit codes, closed pipes, bad text, the
listing of closed runs, and decisions answered with the run's state after them."""

from __future__ import annotations

import asyncio
import json
import os
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.client import Client

from bot.grammar import VERBS as GRAMMAR_VERBS
from bot.grammar import Command
from codec.converter import build_data_converter
from provision import cli
from provision.runs import InvalidText, RunService, effective_status
from provision.settings import load_settings
from tests.support.processes import VENV_BIN, CompletedRun, Stack, run_process, wait_until
from workflows.models import ApplyDecision, RunState

PROVISION = str(VENV_BIN / "provision")
ENV = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp")}


async def provision(*args: str, env: dict[str, str] | None = None) -> CompletedRun:
    return await run_process([PROVISION, *args], env=env or ENV, timeout=60)


async def with_closed_stdout(argv: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run with stdout a pipe whose reader has gone, as `… | head -3` leaves it."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    process = await asyncio.create_subprocess_exec(
        *argv, env=env, stdout=write_end, stderr=asyncio.subprocess.PIPE
    )
    os.close(write_end)
    _, err = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode or 0, err.decode()


# ---------------------------------------------------------------- the verb table and help


def test_every_grammar_verb_has_one_function_and_a_help_entry() -> None:
    assert set(cli.VERBS) == set(GRAMMAR_VERBS)
    assert set(cli.VERB_HELP) == set(GRAMMAR_VERBS)


async def test_help_is_written_for_a_terminal() -> None:
    result = await provision("help")
    assert result.returncode == 0, result
    assert result.stdout.startswith("usage: provision <command>")
    assert "/provision" not in result.stdout
    for needle in ("run <stack>", "list [--status S]", "codec-server", "Exit codes: 0"):
        assert needle in result.stdout
    assert max(len(line) for line in result.stdout.splitlines()) <= 110


@pytest.mark.parametrize(
    ("argv", "first_line"),
    [
        (["help", "run"], "usage: provision run <stack>"),
        (["help", "list"], "usage: provision list [--status S] [--json]"),
        (["help", "deny"], "usage: provision deny <id> [--reason R] [--json]"),
        (["help", "codec-server"], "usage: provision codec-server"),
        (["list", "--help"], "usage: provision list"),
        (["worker", "--help"], "usage: provision worker"),
        (["help", "ephemeral"], "ephemeral: create a namespace"),
    ],
)
async def test_help_for_one_command(argv: list[str], first_line: str) -> None:
    result = await provision(*argv)
    assert result.returncode == 0, result
    assert result.stdout.startswith(first_line), result.stdout
    assert result.stderr == ""


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["help", "bogus"], "no help for 'bogus'"),
        (["help", "run", "list"], "help takes one command at most"),
        (["list", "--status", "bogus"], "unknown status 'bogus'; one of: pending"),
        (["approve", "x"], "the following arguments are required: --reason"),
        (["status"], "the following arguments are required: target"),
        (["frobnicate"], "unknown command or stack 'frobnicate'"),
    ],
)
async def test_usage_errors_exit_2_with_one_line(argv: list[str], message: str) -> None:
    # TEMPORAL_ADDRESS points nowhere: a usage error must be found before any connection.
    result = await provision(*argv, env={**ENV, "TEMPORAL_ADDRESS": "127.0.0.1:1"})
    assert result.returncode == 2, result
    assert message in result.stderr
    assert result.stderr.startswith("provision: ") and result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr


async def test_undecodable_arguments_are_usage_errors() -> None:
    result = await run_process(
        [PROVISION.encode(), b"status", b"ws-\xff\xfe"],  # type: ignore[list-item]
        env=ENV,
    )
    assert result.returncode == 2, result
    assert "argument 2 is not valid text" in result.stderr
    assert "Traceback" not in result.stderr


async def test_a_closed_stdout_prints_no_traceback() -> None:
    code, err = await with_closed_stdout([PROVISION, "help"], ENV)
    assert code == cli.EXIT_BROKEN_PIPE
    assert err == ""


def test_lone_surrogates_are_refused_before_protobuf() -> None:
    service = RunService(client=None, task_queue="unused")  # type: ignore[arg-type]
    with pytest.raises(InvalidText, match="the run id holds characters that are not valid text"):
        service.handle("ws-\ud800")
    with pytest.raises(InvalidText, match="the reason"):
        asyncio.run(
            service.send_decision(
                "provision-x",
                None,
                ApplyDecision(is_approved=False, reason="\udfff"),
                by_signal=True,
            )
        )


@pytest.mark.parametrize(
    ("provision_status", "execution_status", "shown"),
    [
        ("awaiting_approval", "running", "awaiting_approval"),
        ("awaiting_approval", "terminated", "terminated"),
        ("awaiting_approval", "continued_as_new", "continued_as_new"),
        ("applying", "timed_out", "timed_out"),
        ("applied", "completed", "applied"),
        ("failed", "failed", "failed"),
        ("", "running", "pending"),
    ],
)
def test_listing_status_says_how_a_closed_run_closed(
    provision_status: str, execution_status: str, shown: str
) -> None:
    assert effective_status(provision_status, execution_status) == shown


# ---------------------------------------------------------------- against a real worker


async def _state(stack: Stack, workflow_id: str) -> str | None:
    result = await stack.run("status", workflow_id, "--json")
    return result.json()["status"] if result.returncode == 0 else None  # type: ignore[index]


async def _awaiting(stack: Stack, prefix: str) -> str:
    workflow_id = f"provision-{prefix}-human-in-the-loop-update"
    started = await stack.run("run", "human-in-the-loop-update", "--prefix", prefix)
    assert started.returncode == 0, started

    async def waiting() -> bool:
        return await _state(stack, workflow_id) == "awaiting_approval"

    await wait_until(waiting, what=f"{workflow_id} awaiting approval")
    return workflow_id


async def test_deny_reports_the_state_after_the_decision(stack: Stack) -> None:
    workflow_id = await _awaiting(stack, "edeny")
    denied = await stack.run("deny", workflow_id, "--reason", "not today", "--json")
    assert denied.returncode == 0, denied
    data = denied.json()
    assert data["state"] == "rejected", data  # type: ignore[index]
    assert data["message"].startswith("denied by")  # type: ignore[index]


async def test_approve_reports_the_state_after_the_decision(stack: Stack) -> None:
    workflow_id = await _awaiting(stack, "eappr")
    approved = await stack.run("approve", workflow_id, "--reason", "looks right")
    assert approved.returncode == 0, approved
    state = approved.stdout.strip().rsplit("the run is ", 1)[1]
    assert state in ("approved", "applying", "applied"), approved.stdout

    async def applied() -> bool:
        return await _state(stack, workflow_id) == "applied"

    await wait_until(applied, what="applied")
    assert (await stack.run("destroy", "eappr-human-in-the-loop-update", "--wait")).returncode == 0


async def test_list_has_a_header_aligned_columns_run_ids_and_closed_runs(stack: Stack) -> None:
    workflow_id = await _awaiting(stack, "elist")
    first = (await stack.run("status", workflow_id, "--json")).json()["run_id"]  # type: ignore[index]
    assert (await stack.run("replan", workflow_id)).returncode == 0

    async def replanned() -> str | None:
        status = (await stack.run("status", workflow_id, "--json")).json()
        fresh = status["run_id"] != first and status["status"] == "awaiting_approval"  # type: ignore[index]
        return status["run_id"] if fresh else None  # type: ignore[index]

    second = await wait_until(replanned, what="a second run after the replan")
    terminated = await stack.temporal("workflow", "terminate", "--workflow-id", workflow_id)
    assert terminated.returncode == 0, terminated

    async def listed() -> list[str] | None:
        result = await stack.run("list")
        lines = [line for line in result.stdout.splitlines() if workflow_id in line]
        return (
            result.stdout.splitlines()
            if len(lines) == 2 and "terminated" in "".join(lines)
            else None
        )

    lines = await wait_until(listed, what="both runs listed, the second terminated")
    header = lines[0]
    assert header.split() == ["WORKFLOW", "ID", "RUN", "ID", "STATUS", "SCENARIO", "STARTED"]
    rows = {line.split()[1]: line for line in lines[1:] if workflow_id in line}
    assert set(rows) == {first, second}
    assert rows[first].split()[2] == "continued_as_new"
    assert rows[second].split()[2] == "terminated"
    for line in lines[1:]:
        # Every column starts where its header does, whatever the width of the status.
        for title in ("RUN ID", "STATUS", "SCENARIO", "STARTED"):
            column = header.index(title)
            assert line[column - 2 : column] == "  " and line[column] != " ", (title, line)

    code, err = await with_closed_stdout([PROVISION, "list"], stack.env)
    assert code == cli.EXIT_BROKEN_PIPE and "Traceback" not in err and err == ""
    code, err = await with_closed_stdout([PROVISION, "status", workflow_id], stack.env)
    assert code == cli.EXIT_BROKEN_PIPE and err == ""

    awaiting = (await stack.run("list", "--status", "awaiting_approval", "--json")).json()
    assert workflow_id not in [r["workflow_id"] for r in awaiting]  # type: ignore[index]


async def test_an_update_whose_answer_is_lost_is_confirmed_from_the_run(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    workflow_id = await _awaiting(stack, "elost")
    client = await Client.connect(stack.address, data_converter=build_data_converter())
    service = RunService(client, stack.task_queue, update_rpc_timeout=timedelta(seconds=2))
    waiting = await service.status(workflow_id)

    async def status_read_before_the_worker_stopped(target: str) -> object:
        return waiting

    service.status = status_read_before_the_worker_stopped  # type: ignore[method-assign]
    # No worker to answer: the update is admitted, its RPC times out, as under load.
    await stack.stop_worker()
    restarted: list[asyncio.Task[None]] = []
    original = service.confirm_decision

    async def confirm_after_restart(*args: object) -> object:
        restarted.append(asyncio.ensure_future(stack.start_worker()))
        return await original(*args)  # type: ignore[arg-type]

    service.confirm_decision = confirm_after_restart  # type: ignore[method-assign]
    command = Command(verb="approve", target=workflow_id, reason="lost answer", json=True)
    code = await cli.run_verb(cli.Invocation(load_settings(), command, service))
    captured = capsys.readouterr()
    assert code == cli.EXIT_OK, captured
    assert "sent; confirming…" in captured.err
    data = json.loads(captured.out)
    assert data["accepted"] is True
    assert "confirmed from the run's state" in data["message"]
    assert data["state"] in {s.value for s in RunState} - {"awaiting_approval"}
    assert restarted
    await asyncio.gather(*restarted, return_exceptions=True)

    async def applied() -> bool:
        return await _state(stack, workflow_id) == "applied"

    await wait_until(applied, what="applied")
    assert (await stack.run("destroy", "elost-human-in-the-loop-update", "--wait")).returncode == 0


def test_readme_cli_reference_matches_the_help() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for usage, _, _ in cli.VERB_HELP.values():
        assert f"provision {usage.split(' [')[0].split(' <')[0]}" in readme


async def test_lone_surrogate_in_a_slack_status_is_refused_with_a_message(
    temporal_client: Client,
) -> None:
    from bot.operations import RunRefused
    from provision.bot_main import TemporalRunOperations

    operations = TemporalRunOperations(load_settings(), temporal_client)
    with pytest.raises(RunRefused, match="the run id holds characters that are not valid text"):
        await operations.status("\ud800")
    with pytest.raises(RunRefused, match="the reason holds characters"):
        await operations.decide(
            "provision-x",
            "r1",
            ApplyDecision(is_approved=True, reason="ok \ud800"),
            by_signal=False,
        )


async def test_the_bot_confirms_a_decision_whose_update_answer_was_lost(stack: Stack) -> None:
    from provision.bot_main import TemporalRunOperations

    workflow_id = await _awaiting(stack, "ebotl")
    client = await Client.connect(stack.address, data_converter=build_data_converter())
    settings = load_settings().model_copy(
        update={"temporal_address": stack.address, "task_queue": stack.task_queue}
    )
    operations = TemporalRunOperations(settings, client)
    waiting = await operations.status(workflow_id)
    runs = await operations._runs()
    runs.update_rpc_timeout = timedelta(seconds=2)
    await stack.stop_worker()
    restart = asyncio.get_running_loop().call_later(
        3, lambda: asyncio.ensure_future(stack.start_worker())
    )
    try:
        outcome = await operations.decide(
            workflow_id,
            waiting.run_id,
            ApplyDecision(
                is_approved=True,
                reason="slow but sure",
                approver="U0BOB",
                approver_name="bob",
                approver_kind="slack",
            ),
            by_signal=False,
        )
    finally:
        restart.cancel()
    assert outcome is not None
    assert "confirmed from the run's state" in outcome.message
    assert outcome.state != RunState.AWAITING_APPROVAL

    async def applied() -> bool:
        return await _state(stack, workflow_id) == "applied"

    await wait_until(applied, what="applied")
    assert (await stack.run("destroy", "ebotl-human-in-the-loop-update", "--wait")).returncode == 0


async def test_a_signalled_denial_reports_the_state_after_it(stack: Stack) -> None:
    workflow_id = "provision-esig-human-in-the-loop-signal"
    started = await stack.run("run", "human-in-the-loop-signal", "--prefix", "esig")
    assert started.returncode == 0, started

    async def waiting() -> bool:
        return await _state(stack, workflow_id) == "awaiting_approval"

    await wait_until(waiting, what="awaiting approval")
    denied = await stack.run("deny", workflow_id, "--json")
    assert denied.returncode == 0, denied
    data = denied.json()
    assert data["state"] == "rejected", data  # type: ignore[index]
    assert data["message"].startswith("denied by") and "(by signal)" in data["message"]  # type: ignore[index]


async def test_temporal_refusals_no_verb_names_are_one_line(stack: Stack) -> None:
    result = await stack.run("list", env={"TEMPORAL_NAMESPACE": "no-such-namespace-e"})
    assert result.returncode in (1, 3), result
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("provision: ") and result.stderr.count("\n") == 1, result
