"""The `provision` command: run commands of the shared grammar, plus the local stack and servers.

Each verb is one small function in `VERBS`. Exit codes: 0 done, 1 the run failed / was rejected /
expired (or a request was refused), 2 usage or configuration error, 3 Temporal unreachable,
141 stdout closed by its reader.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from bot.grammar import Command, GrammarError, parse_args
from provision.settings import ConfigurationError, Settings, WorkerRole, load_settings
from stacks.model import Stack
from stacks.registry import BUILTIN, Stacks, StacksFileError, load_stacks
from stacks.requests import RequestError, RunOptions, build_destroy_request, build_request
from workflows.contracts import workspace_of
from workflows.models import (
    Actor,
    ApplyDecision,
    DeprovisionRequest,
    ProvisionRequest,
    RunState,
    RunStatus,
)

if TYPE_CHECKING:
    from provision.runs import RunService

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3
# What a shell reports for a process killed by SIGPIPE; Python ignores the signal and gets EPIPE.
EXIT_BROKEN_PIPE = 128 + 13

SERVER_COMMANDS = ("dev", "worker", "codec-server", "fault", "bot")

# One entry per command: usage, a one-line summary, and details for `provision help <command>`.
VERB_HELP: dict[str, tuple[str, str, str]] = {
    "run": (
        "run <stack> [--var NAME=VALUE]… [--workspace W] [--owner ID]… [--prefix P] [--ttl S]\n"
        "      [--pace S] [--wait] [--json]",
        "plan, check policy, ask for approval where needed, apply",
        "  --var N=V      sets one of the stack's inputs (see `provision stacks`); repeatable\n"
        "  --workspace W  the workspace (default <prefix>-<stack>)\n"
        "  --owner ID     another owner of a new workspace (Slack user U… or group S…)\n"
        "  --prefix P     names the default workspace (default: TF_VAR_prefix, else your user)\n"
        "  --ttl S        an ephemeral run destroys what it applied after S seconds\n"
        "  --pace S       waits S seconds (at most 60) around each step, for live demos\n"
        "  --wait         follow the run to its end; the exit code says how it ended\n"
        "  --json         print JSON instead of text\n"
        "A stack name alone means `run <stack>`; `provision stacks` lists the stacks.",
    ),
    "plan": (
        "plan <stack> [the options of run]",
        "plan and check policy only; nothing is applied until someone chooses Apply",
        "Apply is `provision approve <id> --reason R` (or the Apply button in Slack) and\n"
        "follows the stack's approval rules.",
    ),
    "stacks": (
        "stacks [check] [--json]",
        "the stacks you can run, with their inputs; `check` validates the stacks file",
        "The stacks file is PROVISION_STACKS_FILE (default ./stacks.yaml when present).\n"
        "`stacks check` prints every error with its line and exits 2 when there is one.",
    ),
    "status": (
        "status <id> [--json]",
        "the state of a run",
        "<id> is a workflow id (provision-…) or a workspace name.",
    ),
    "list": (
        "list [--status S] [--json]",
        "recent runs, optionally only those in one state",
        "States: {states}.\n"
        "A run closed from outside (terminated, reset, timed out) shows how it closed.",
    ),
    "approve": (
        "approve <id> --reason R [--json]",
        "approve a run waiting for a decision",
        "The reason is recorded with your name; the answer gives the run's state after it.",
    ),
    "deny": (
        "deny <id> [--reason R] [--json]",
        "deny a run waiting for a decision",
        "Nothing is applied; the answer gives the run's state after it.",
    ),
    "replan": (
        "replan <id> [--json]",
        "throw the plan away and plan again",
        "The fresh plan runs as a new run of the same workflow id.",
    ),
    "destroy": (
        "destroy [<workspace> | --stack S --prefix P] [--pace S] [--wait] [--json]",
        "destroy what a workspace applied",
        "--wait follows the teardown to its end.",
    ),
    "help": ("help [<command>]", "this text, or one command's", ""),
}

SERVER_VERB_HELP: dict[str, tuple[str, str, str]] = {
    "dev": (
        "dev [--shared]",
        "the whole local stack: Temporal dev server, worker, codec server, bot",
        "--shared adds a throwaway PostgreSQL under the data folder and runs two workers on it\n"
        "(PROVISION_DATABASE_URL; see the README's Running more than one worker).",
    ),
    "worker": (
        "worker [--role workflows|activities|all]",
        "a worker alone, against TEMPORAL_ADDRESS",
        "--role (default PROVISION_WORKER_ROLE, else all): workflows polls workflow tasks only,\n"
        "activities polls activity tasks (terraform, notify) only. It stops cleanly on SIGTERM.",
    ),
    "bot": ("bot", "the Slack bot (socket mode)", "It needs SLACK_BOT_TOKEN and SLACK_APP_TOKEN."),
    "codec-server": (
        "codec-server [--host H] [--port P] [--web ORIGIN]",
        "the payload codec server for the Temporal UI and CLI",
        "--web adds a browser origin allowed by CORS (repeatable). Beyond 127.0.0.1 it needs\n"
        "PROVISION_CODEC_AUTH_TOKEN.",
    ),
    "fault": (
        "fault clear|set|status <switch>",
        "demo fault switches",
        "The one switch is recoverable-failure.",
    ),
}

EXIT_HELP = """Exit codes: 0 done, 1 the run failed / was rejected / expired (or a request was refused),
2 usage or configuration error, 3 Temporal unreachable, 141 stdout closed by its reader."""

Verb = Callable[["Invocation"], Awaitable[int]]


def _err(message: str) -> None:
    print(f"provision: {message}", file=sys.stderr)


class UsageError(GrammarError):
    """A command that parsed but cannot be right (an unknown status, an unknown help topic)."""

    def __init__(self, message: str, verb: str | None = None) -> None:
        super().__init__(message)
        self.verb = verb


def terminal_help(topic: str | None = None, stacks: Stacks = BUILTIN) -> str:
    """`provision help [<topic>]`, written for a terminal."""
    topics = {**VERB_HELP, **SERVER_VERB_HELP}
    if topic in topics:
        usage, summary, details = topics[topic]
        details = details.format(states=", ".join(state.value for state in RunState))
        return f"usage: provision {usage}\n\n{summary[0].upper()}{summary[1:]}.\n" + (
            f"{details}\n" if details else ""
        )
    if topic in stacks:
        return stack_details(stacks.get(topic)) + "\n" + terminal_help("run")
    if topic is not None:
        raise UsageError(f"no help for {topic!r}; commands: {', '.join(topics)}")
    width = max(len(name) for name in stacks.names())
    listed = "\n".join(f"  {s.name:<{width}}  {s.description}" for s in stacks)
    return (
        "usage: provision <command> [options]\n\n"
        f"Runs:\n{_help_lines(VERB_HELP)}\n\n"
        f"Stacks (`provision <stack>` is short for `provision run <stack>`):\n"
        f"{listed}\n\n"
        f"Servers and local tools:\n{_help_lines(SERVER_VERB_HELP)}\n\n"
        f"{EXIT_HELP}\n"
        "`provision help <command>` shows one command's options.\n"
    )


def stack_details(stack: Stack) -> str:
    """One stack for a terminal: what it is, where it comes from, what a run may set."""
    lines = [f"{stack.name}: {stack.description}".rstrip(": "), f"  source: {stack.source_label}"]
    for name, spec in stack.inputs.items():
        default = "required" if spec.required else f"default {spec.default}"
        lines.append(f"  --var {name}=…  {spec.allowed()} ({default})")
    rules = f"{stack.approvals} approval(s)" + (", self-approval" if stack.self_approval else "")
    applies = "auto-apply when policy is clean" if stack.auto_apply else "a human decides"
    lines.append(f"  {rules}; {applies}")
    return "\n".join(lines) + "\n"


def _help_lines(entries: dict[str, tuple[str, str, str]]) -> str:
    lines = []
    for usage, summary, _ in entries.values():
        usage = usage.split("\n")[0]
        if len(usage) <= 26:
            lines.append(f"  {usage:<26} {summary}")
        else:
            lines += [f"  {usage}", f"  {'':<26} {summary}"]
    return "\n".join(lines)


def _cli_actor() -> Actor:
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        user = "unknown"
    return Actor(id=f"cli:{user}", name=user, kind="cli")


def _default_prefix(settings: Settings) -> str:
    from stacks.requests import sanitize_prefix

    return settings.tf_var_prefix or sanitize_prefix(_cli_actor().name)


def _options(
    settings: Settings, command: Command, scenario: str, stacks: Stacks = BUILTIN
) -> RunOptions:
    return RunOptions(
        scenario=scenario,
        prefix=command.prefix or _default_prefix(settings),
        workspace=command.workspace,
        ttl_seconds=command.ttl,
        pace_seconds=command.pace,
        region=settings.tf_var_region or "local",
        temporal_address=settings.temporal_address,
        approval_timeout_seconds=int(settings.approval_timeout.total_seconds()),
        requester=_cli_actor(),
        ui_url=settings.ui_url,
        variables=dict(command.variables),
        owners=tuple(command.owners),
        approvers=tuple(settings.slack_approvers) or None,
        plan_only=command.plan_only,
        stacks=stacks,
    )


def _status_line(status: RunStatus) -> str:
    bar = "#" * (status.progress // 10) + "-" * (10 - status.progress // 10)
    line = f"[{bar}] {status.progress:3d}%  {status.state.value}"
    if status.reason:
        line += f"  ({status.reason})"
    return line


def _status_dict(status: RunStatus) -> dict:
    data = status.model_dump(mode="json")
    data["status"] = status.state.value
    return data


def _print_status(status: RunStatus, as_json: bool, url: str | None = None) -> None:
    if as_json:
        print(json.dumps(_status_dict(status), indent=2))
        return
    print(f"{status.workflow_type} {status.workflow_id} (run {status.run_id})")
    print(
        f"  scenario {status.scenario}, workspace {status.workspace}, requester "
        f"{status.requester.display}"
    )
    if status.inputs:
        print("  inputs: " + ", ".join(f"{k}={json.dumps(v)}" for k, v in status.inputs.items()))
    if status.source_revision:
        print(f"  source revision {status.source_revision}")
    print(f"  {_status_line(status)}")
    if status.plan_summary:
        s = status.plan_summary
        print(f"  plan: {s.add} to add, {s.change} to change, {s.destroy} to destroy")
    if status.policy:
        for finding in status.policy.findings:
            print(f"  policy {finding.level.value}: {finding.rule}: {finding.message}")
    for d in status.decisions:
        verdict = "approved" if d.is_approved else "denied"
        print(f"  {verdict} by {_who(d.actor)} at {d.at:%Y-%m-%d %H:%M:%S}: {d.reason}")
    for name, value in status.outputs.items():
        print(f"  output {name} = {json.dumps(value)}")
    if url:
        print(f"  {url}")


def _who(actor: Actor) -> str:
    """The actor's name, with how they were authenticated unless the name already says it."""
    return actor.display if actor.kind in actor.display else f"{actor.display} ({actor.kind})"


class Invocation:
    """One command with its settings, connecting to Temporal only when a verb needs it."""

    def __init__(
        self,
        settings: Settings,
        command: Command,
        service: RunService | None = None,
        stacks: Stacks = BUILTIN,
    ):
        self.settings = settings
        self.command = command
        self._service = service
        self.stacks = stacks

    async def service(self) -> RunService:
        if self._service is None:
            from provision.client import connect
            from provision.runs import RunService

            client = await connect(self.settings)
            self._service = RunService(client, self.settings.task_queue, self.settings.ui_url)
        return self._service


async def _help(call: Invocation) -> int:
    print(terminal_help(call.command.target, call.stacks), end="")
    return EXIT_OK


async def _run(call: Invocation) -> int:
    command = call.command
    request = build_request(_options(call.settings, command, command.scenario or "", call.stacks))
    return await _start_and_follow(call, request)


async def _stacks(call: Invocation) -> int:
    """List the stacks (the file was loaded and checked before this runs)."""
    stacks = call.stacks
    if call.command.target == "check":
        where = stacks.path or "no stacks file (PROVISION_STACKS_FILE, ./stacks.yaml)"
        print(f"{where}: ok, {len(stacks.names())} stacks")
        return EXIT_OK
    if call.command.json:
        listed = [
            {
                **stack.model_dump(mode="json"),
                "builtin": stack.builtin,
                "source": stack.source_label,
            }
            for stack in stacks
        ]
        print(json.dumps(listed, indent=2))
        return EXIT_OK
    print("\n".join(stack_details(stack) for stack in stacks), end="")
    return EXIT_OK


async def _destroy(call: Invocation) -> int:
    command, settings = call.command, call.settings
    if command.target:
        workspace = workspace_of(command.target)
    elif command.scenario:
        workspace = f"{command.prefix or _default_prefix(settings)}-{command.scenario}"
    else:
        raise RequestError("destroy needs a workspace, or --stack S --prefix P")
    request = build_destroy_request(
        workspace,
        scenario_name=command.scenario,
        options=_options(settings, command, command.scenario or "destroy", call.stacks),
    )
    return await _start_and_follow(call, request)


async def _start_and_follow(
    call: Invocation, request: ProvisionRequest | DeprovisionRequest
) -> int:
    command = call.command
    service = await call.service()
    handle = await service.start(request)
    url = service.run_url(handle.id, handle.result_run_id)
    if not command.wait:
        if command.json:
            started = {
                "workflow_id": handle.id,
                "run_id": handle.result_run_id,
                "workspace": request.workspace,
                "scenario": request.scenario,
                "status": "started",
                "url": url,
            }
            print(json.dumps(started))
        else:
            print(f"started {handle.id} (run {handle.result_run_id})")
            if url:
                print(f"  {url}")
            print(f"  follow it: provision status {handle.id}")
        return EXIT_OK
    if not command.json:
        print(f"started {handle.id} (run {handle.result_run_id})", file=sys.stderr)
        if url:
            print(f"  {url}", file=sys.stderr)
    hinted = False

    def progress(status: RunStatus) -> None:
        nonlocal hinted
        if command.json:
            return
        print(_status_line(status), file=sys.stderr)
        if status.state == RunState.AWAITING_APPROVAL and not hinted:
            hinted = True
            for f in status.policy.findings if status.policy else []:
                print(f"  policy {f.level.value}: {f.rule}: {f.message}", file=sys.stderr)
            print(
                f"  decide: provision approve {status.workflow_id} --reason '...'  |  "
                f"provision deny {status.workflow_id}",
                file=sys.stderr,
            )

    final = await service.wait(handle, progress)
    if command.json:
        print(json.dumps(_status_dict(final)))
    else:
        _print_status(final, False, service.run_url(final.workflow_id, final.run_id))
    return EXIT_OK if final.state.is_success else EXIT_FAILED


async def _status(call: Invocation) -> int:
    service = await call.service()
    status = await service.status(call.command.target or "")
    _print_status(status, call.command.json, service.run_url(status.workflow_id, status.run_id))
    return EXIT_OK


async def _decide(call: Invocation) -> int:
    command = call.command
    actor = _cli_actor()
    decision = ApplyDecision(
        is_approved=command.verb == "approve",
        reason=command.reason or "",
        approver=actor.id,
        approver_name=actor.name,
        approver_kind="cli",
    )
    from provision.runs import resolve_workflow_id

    service = await call.service()

    def unconfirmed() -> None:
        # The update's answer was lost (its RPC timed out); the decision has most likely landed.
        print("sent; confirming…", file=sys.stderr, flush=True)

    target = command.target or ""
    outcome = await service.decide(target, decision, on_unconfirmed=unconfirmed)
    if outcome is None:
        # A signal has no answer: the decision shows in the run's state once the run has taken it
        # (a signal it ignores never does, and that is reported as not confirmed).
        outcome = await service.confirm_decision(
            resolve_workflow_id(target), None, decision, note="by signal"
        )
    if command.json:
        print(json.dumps(outcome.model_dump(mode="json")))
    else:
        print(f"{outcome.message}; the run is {outcome.state.value}")
    return EXIT_OK


async def _replan(call: Invocation) -> int:
    service = await call.service()
    status = await service.replan(call.command.target or "")
    if call.command.json:
        print(json.dumps({"workflow_id": status.workflow_id, "replan": "requested"}))
    else:
        print(f"replan requested for {status.workflow_id}")
    return EXIT_OK


LIST_COLUMNS = (
    ("WORKFLOW ID", "workflow_id"),
    ("RUN ID", "run_id"),
    ("STATUS", "status"),
    ("SCENARIO", "scenario"),
    ("STARTED", "start_time"),
)


async def _list(call: Invocation) -> int:
    state = call.command.status
    if state is not None and state not in {s.value for s in RunState}:
        raise UsageError(
            f"unknown status {state!r}; one of: {', '.join(s.value for s in RunState)}", "list"
        )
    runs = await (await call.service()).list_runs(state)
    if call.command.json:
        print(json.dumps([r.as_dict() for r in runs], indent=2))
        return EXIT_OK
    if not runs:
        print(f"no runs in state {state}" if state else "no runs")
        return EXIT_OK
    rows = [[title for title, _ in LIST_COLUMNS]]
    rows += [[str(getattr(r, name) or "") for _, name in LIST_COLUMNS] for r in runs]
    # Widths from the data, so a long status (continued_as_new) or id keeps the columns aligned.
    widths = [max(len(row[i]) for row in rows) for i in range(len(LIST_COLUMNS))]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    return EXIT_OK


VERBS: dict[str, Verb] = {
    "run": _run,
    "plan": _run,
    "stacks": _stacks,
    "status": _status,
    "list": _list,
    "approve": _decide,
    "deny": _decide,
    "replan": _replan,
    "destroy": _destroy,
    "help": _help,
}


async def run_verb(call: Invocation) -> int:
    verb = VERBS.get(call.command.verb)
    if verb is None:
        raise UsageError(f"unknown command {call.command.verb!r}")
    return await verb(call)


def _parse(argv: list[str], stacks: Stacks = BUILTIN) -> Command:
    """The shared grammar, plus what only a terminal asks: `help <command>`, `<verb> --help`."""
    for position, arg in enumerate(argv, start=1):
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            raise UsageError(f"argument {position} is not valid text (undecodable bytes)") from None
    if argv[:1] == ["help"] or (argv and any(a in ("-h", "--help") for a in argv)):
        topic = argv[1] if argv[:1] == ["help"] and len(argv) > 1 else None
        if argv[:1] != ["help"] and argv[0] in (*VERB_HELP, *SERVER_VERB_HELP):
            topic = argv[0]
        if len(argv) > 2 and argv[0] == "help":
            raise UsageError("help takes one command at most", "help")
        terminal_help(topic, stacks)  # an unknown topic is a usage error before anything runs
        return Command(verb="help", target=topic)
    return parse_args(argv, stacks.names())


def _server_main(argv: Sequence[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog=f"provision {argv[0]}")
    if argv[0] == "codec-server":
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8081)
        parser.add_argument(
            "--web",
            action="append",
            default=[],
            help="a Temporal UI origin allowed by CORS (repeatable)",
        )
    if argv[0] == "dev":
        parser.add_argument(
            "--shared",
            action="store_true",
            help="a throwaway PostgreSQL under the data folder and two workers sharing it",
        )
    if argv[0] == "worker":
        parser.add_argument(
            "--role",
            choices=[role.value for role in WorkerRole],
            help="what this worker polls (default PROVISION_WORKER_ROLE, else all)",
        )
    if argv[0] == "fault":
        parser.add_argument("action", choices=["clear", "set", "status"])
        parser.add_argument("switch", choices=["recoverable-failure"])
    args = parser.parse_args(argv[1:])
    settings = load_settings()
    if argv[0] in ("worker", "bot", "dev"):
        # The stacks file is checked before anything connects: a bad one stops the process
        # with every error and its line, as `provision stacks check` prints them.
        try:
            load_stacks(settings.stacks_file)
        except StacksFileError as exc:
            for line in exc.errors:
                _err(line)
            return EXIT_USAGE
    if argv[0] == "worker":
        from provision.worker import run_worker_main

        if args.role:
            settings = settings.model_copy(update={"worker_role": WorkerRole(args.role)})
        return asyncio.run(run_worker_main(settings))
    if argv[0] == "bot":
        from provision.bot_main import run_bot_main

        return asyncio.run(run_bot_main(settings))
    if argv[0] == "dev" and args.shared:
        from provision.shared_dev import run_shared_dev

        return asyncio.run(run_shared_dev(settings))
    if argv[0] == "dev":
        from provision.dev import run_dev

        return asyncio.run(run_dev(settings))
    if argv[0] == "codec-server":
        from codec.server import InsecureListenError
        from provision.codec_main import run_codec_server_main

        try:
            return asyncio.run(run_codec_server_main(settings, args.host, args.port, args.web))
        except InsecureListenError as exc:
            _err(str(exc))
            return EXIT_USAGE
    if argv[0] == "fault":
        path = settings.data_dir.resolve() / "faults" / args.switch
        if args.action == "clear":
            path.unlink(missing_ok=True)
            print(f"fault switch {args.switch} is off ({path} removed)")
        elif args.action == "set":
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("on\n")
            print(f"fault switch {args.switch} is on ({path})")
        else:
            print(f"fault switch {args.switch} is {'on' if path.exists() else 'off'} ({path})")
        return EXIT_OK
    return EXIT_USAGE


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        level=logging.INFO
        if argv[:1] in (["dev"], ["worker"], ["codec-server"])
        else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from temporalio.client import RPCTimeoutOrCancelledError
    from temporalio.service import RPCError

    from activities.policy import PolicyError, PolicySyntaxError
    from provision.client import TemporalUnreachable
    from provision.runs import RunError

    try:
        if argv and argv[0] in SERVER_COMMANDS and not any(a in ("-h", "--help") for a in argv):
            return _server_main(argv)
        settings = load_settings()
        stacks = load_stacks(settings.stacks_file)
        command = _parse(argv, stacks)
        if command.verb == "help":
            print(terminal_help(command.target, stacks), end="")
            return EXIT_OK
        return asyncio.run(run_verb(Invocation(settings, command, stacks=stacks)))
    except StacksFileError as exc:
        for line in exc.errors:
            _err(line)
        return EXIT_USAGE
    except UsageError as exc:
        _err(f"{exc} (see `provision help{' ' + exc.verb if exc.verb else ''}`)")
        return EXIT_USAGE
    except GrammarError as exc:
        verb = argv[0] if argv and argv[0] in VERB_HELP else None
        _err(f"{exc} (see `provision help{' ' + verb if verb else ''}`)")
        return EXIT_USAGE
    except (ConfigurationError, RequestError) as exc:
        _err(str(exc))
        return EXIT_USAGE
    except TemporalUnreachable as exc:
        _err(str(exc))
        return EXIT_UNREACHABLE
    except RunError as exc:
        _err(str(exc))
        return EXIT_FAILED
    except (PolicySyntaxError, PolicyError) as exc:
        _err(f"policy: {exc}")
        return EXIT_USAGE
    except RPCTimeoutOrCancelledError:
        _err("Temporal did not answer in time; nothing is known to have changed, try again")
        return EXIT_FAILED
    except RPCError as exc:
        # Whatever Temporal refused that no verb names, the user gets its one line, not a stack.
        _err(f"Temporal: {' '.join(exc.message.split()) or exc.status.name}")
        return EXIT_FAILED
    except BrokenPipeError:
        return _reader_went_away()
    except KeyboardInterrupt:
        return 130


def _reader_went_away() -> int:
    """stdout's reader closed it (`provision list | head -3`): stop quietly, as `cat` would.

    Pointing stdout at /dev/null keeps the final flush from raising the same error again.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return EXIT_BROKEN_PIPE


def entrypoint() -> None:
    """Console-script entry: exit without interpreter teardown.

    The Temporal SDK's native runtime keeps threads alive; letting the interpreter finalise
    around them can abort the process after the work is done, so flush and leave directly.
    """
    code = main()
    logging.shutdown()
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        code = _reader_went_away()
    try:
        sys.stderr.flush()
    except BrokenPipeError:
        pass
    os._exit(code)


if __name__ == "__main__":
    entrypoint()
