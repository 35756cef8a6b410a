"""The `provision` command: run commands of the shared grammar, plus the local stack and servers.

Exit codes: 0 done, 1 the run failed / was rejected / expired (or a request was refused),
2 usage or configuration error, 3 Temporal unreachable.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import logging
import os
import sys
from collections.abc import Sequence

from bot.grammar import HELP, Command, GrammarError, parse_args
from provision.settings import ConfigurationError, Settings, load_settings
from workflows.models import Actor, ApplyDecision, RunStatus
from workflows.scenarios import RequestError, RunOptions, build_destroy_request, build_request

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3

SERVER_COMMANDS = ("dev", "worker", "codec-server", "fault", "bot")

SERVER_HELP = """
Servers and local tools:
  dev                        the whole local stack: Temporal dev server, worker (Ctrl-C stops all)
  worker                     a worker alone, against TEMPORAL_ADDRESS (stops cleanly on SIGTERM)
  bot                        the Slack bot (socket mode; needs SLACK_BOT_TOKEN, SLACK_APP_TOKEN)
  codec-server [--port P]    the payload codec server for the Temporal UI and CLI
  fault clear|set|status <switch>
                             demo fault switches (recoverable-failure)
"""


def _err(message: str) -> None:
    print(f"provision: {message}", file=sys.stderr)


def _cli_actor() -> Actor:
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        user = "unknown"
    return Actor(id=f"cli:{user}", name=user, kind="cli")


def _default_prefix(settings: Settings) -> str:
    from workflows.scenarios import sanitize_prefix

    return settings.tf_var_prefix or sanitize_prefix(_cli_actor().name)


def _options(settings: Settings, command: Command, scenario: str) -> RunOptions:
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
    print(f"  {_status_line(status)}")
    if status.plan_summary:
        s = status.plan_summary
        print(f"  plan: {s.add} to add, {s.change} to change, {s.destroy} to destroy")
    if status.policy:
        for finding in status.policy.findings:
            print(f"  policy {finding.level.value}: {finding.rule}: {finding.message}")
    for d in status.decisions:
        verdict = "approved" if d.is_approved else "denied"
        print(
            f"  {verdict} by {d.actor.display} ({d.actor.kind}) at {d.at:%Y-%m-%d %H:%M:%S}: "
            f"{d.reason}"
        )
    for name, value in status.outputs.items():
        print(f"  output {name} = {json.dumps(value)}")
    if url:
        print(f"  {url}")


async def _run_command(settings: Settings, command: Command) -> int:
    from provision.client import connect
    from provision.runs import RunService

    if command.verb == "help":
        print(HELP + SERVER_HELP)
        return EXIT_OK
    # Validate the request before touching the network: bad input is a usage error.
    request = None
    if command.verb == "run":
        request = build_request(_options(settings, command, command.scenario or ""))
    elif command.verb == "destroy":
        if command.target:
            workspace = command.target.removeprefix("provision-")
        elif command.scenario:
            prefix = command.prefix or _default_prefix(settings)
            workspace = f"{prefix}-{command.scenario}"
        else:
            raise RequestError("destroy needs a workspace, or --scenario S --prefix P")
        request = build_destroy_request(
            workspace,
            scenario_name=command.scenario,
            options=_options(settings, command, command.scenario or "happy-path"),
        )

    client = await connect(settings)
    service = RunService(client, settings.task_queue, settings.ui_url)

    if request is not None:
        handle = await service.start(request)
        url = service.run_url(handle.id, handle.result_run_id)
        if not command.wait:
            if command.json:
                print(
                    json.dumps(
                        {
                            "workflow_id": handle.id,
                            "run_id": handle.result_run_id,
                            "workspace": request.workspace,
                            "scenario": request.scenario,
                            "status": "started",
                            "url": url,
                        }
                    )
                )
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
            if status.state.value == "awaiting_approval" and not hinted:
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

    if command.verb == "status":
        status = await service.status(command.target or "")
        _print_status(status, command.json, service.run_url(status.workflow_id, status.run_id))
        return EXIT_OK
    if command.verb in ("approve", "deny"):
        actor = _cli_actor()
        decision = ApplyDecision(
            is_approved=command.verb == "approve",
            reason=command.reason or "",
            approver=actor.id,
            approver_name=actor.name,
            approver_kind="cli",
        )
        outcome = await service.decide(command.target or "", decision)
        message = outcome.message if outcome else "decision sent (signal)"
        if command.json:
            print(
                json.dumps(
                    {
                        "accepted": True,
                        "message": message,
                        **(outcome.model_dump(mode="json") if outcome else {}),
                    }
                )
            )
        else:
            print(message)
        return EXIT_OK
    if command.verb == "replan":
        status = await service.replan(command.target or "")
        print(f"replan requested for {status.workflow_id}")
        return EXIT_OK
    if command.verb == "list":
        runs = await service.list_runs(command.status)
        if command.json:
            print(json.dumps([r.as_dict() for r in runs], indent=2))
        elif not runs:
            print("no runs")
        else:
            for r in runs:
                print(
                    f"{r.workflow_id:<45} {r.status:<18} {r.scenario or '':<26} "
                    f"{r.execution_status:<11} {r.start_time or ''}"
                )
        return EXIT_OK
    raise GrammarError(f"unknown command {command.verb!r}")


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
    if argv[0] == "fault":
        parser.add_argument("action", choices=["clear", "set", "status"])
        parser.add_argument("switch", choices=["recoverable-failure"])
    args = parser.parse_args(argv[1:])
    settings = load_settings()
    if argv[0] == "worker":
        from provision.dev import run_worker_main

        return asyncio.run(run_worker_main(settings))
    if argv[0] == "bot":
        from provision.bot_main import run_bot_main

        return asyncio.run(run_bot_main(settings))
    if argv[0] == "dev":
        from provision.dev import run_dev

        return asyncio.run(run_dev(settings))
    if argv[0] == "codec-server":
        from codec.server import InsecureListenError
        from provision.dev import run_codec_server_main

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
    from activities.policy import PolicyError, PolicySyntaxError
    from provision.client import TemporalUnreachable
    from provision.runs import RunError

    try:
        if argv and argv[0] in SERVER_COMMANDS:
            return _server_main(argv)
        command = parse_args(argv)
        settings = load_settings()
        return asyncio.run(_run_command(settings, command))
    except GrammarError as exc:
        _err(f"{exc} (see `provision help`)")
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
    except KeyboardInterrupt:
        return 130


def entrypoint() -> None:
    """Console-script entry: exit without interpreter teardown.

    The Temporal SDK's native runtime keeps threads alive; letting the interpreter finalise
    around them can abort the process after the work is done, so flush and leave directly.
    """
    code = main()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    entrypoint()
