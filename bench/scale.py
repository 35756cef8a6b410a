"""Load: many runs at once through real worker processes, against the bare terraform CLI.

Run: python bench/scale.py [--runs N] [--waiting N] [--shared-runs N] [--rounds N]
                           [--skip-concurrent] [--skip-waiting] [--skip-shared] [--json]

(a) N (50) concurrent happy-path runs through a dev server and a `provision worker` process, and
    again through two processes (`--role workflows` + `--role activities`), against the raw CLI
    sequence of bench/overhead.py (init, plan -out, show -json, apply, output) on the same
    configuration at the same parallelism; interleaved raw, one worker, split, per round.
(b) the worker's RSS (/proc/<pid>/status) before and after N (1,000) runs await approval, with
    the bounded sticky cache (PROVISION_MAX_CACHED_WORKFLOWS, default 100), then a workflows-only
    worker with a cache big enough for all of them, for comparison.
(c) N (20) approval runs decided from a client, one worker against three, on a shared PostgreSQL
    (PROVISION_DATABASE_URL, or a throwaway cluster from Debian's initdb/pg_ctl): runs/minute.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    # Run as a script, this folder leads sys.path and bench/codec.py shadows the codec package.
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse  # noqa: E402
import asyncio  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import secrets  # noqa: E402
import signal  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import AsyncIterator, Awaitable, Iterable, Mapping  # noqa: E402

from temporalio.api.enums.v1 import EventType  # noqa: E402
from temporalio.client import Client  # noqa: E402
from temporalio.contrib.pydantic import pydantic_data_converter  # noqa: E402

from bench.overhead import raw_iteration, stack_request, temporal_server  # noqa: E402
from bench.percentiles import percentile  # noqa: E402
from provision.client import connect  # noqa: E402
from provision.runs import RunService  # noqa: E402
from provision.search_attributes import ensure_search_attributes  # noqa: E402
from provision.settings import load_settings  # noqa: E402
from provision.shared_dev import ThrowawayPostgres, postgres_bin_dir  # noqa: E402
from provision.worker import build_activities  # noqa: E402
from stacks.requests import RunOptions, build_request  # noqa: E402
from workflows.contracts import QUERY_STATE  # noqa: E402
from workflows.models import ApplyDecision, ProvisionResult, RunState, RunStatus  # noqa: E402

TARGET_RATIO = 1.2
TARGET_RSS_MIB = 50.0
APPROVAL_SCENARIO = "human-in-the-loop-update"
VENV_BIN = Path(sys.executable).parent
MIB = 1024 * 1024


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def median(values: Iterable[float]) -> float:
    values = list(values)
    return statistics.median(values) if values else float("nan")


async def gather_bounded(limit: int, jobs: Iterable[Awaitable]) -> list:
    """Await `jobs` with at most `limit` in flight (client calls, not the runs themselves)."""
    sem = asyncio.Semaphore(limit)

    async def one(job: Awaitable) -> object:
        async with sem:
            return await job

    return await asyncio.gather(*(one(job) for job in jobs))


# Worker processes. ------------------------------------------------------------------------------


class WorkerProcess:
    """`provision worker` in a process of its own (its own data folder and log)."""

    def __init__(self, name: str, folder: Path, env: Mapping[str, str]) -> None:
        self.name, self.folder = name, folder
        self.env = dict(env)
        self.log_file = folder / "worker.log"
        self.process: asyncio.subprocess.Process | None = None

    async def start(self, *args: str, timeout: float = 120) -> WorkerProcess:
        self.folder.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as out:
            self.process = await asyncio.create_subprocess_exec(
                str(VENV_BIN / "provision"),
                "worker",
                *args,
                env={**self.env, "PROVISION_DATA_DIR": str(self.folder)},
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while "polling task queue" not in self.log_file.read_text(errors="replace"):
            if self.process.returncode is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker {self.name} did not start:\n{self.log_tail()}")
            await asyncio.sleep(0.1)
        return self

    def log_tail(self) -> str:
        return self.log_file.read_text(errors="replace")[-3000:]

    def rss_bytes(self) -> int:
        assert self.process is not None
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        assert match, status
        return int(match.group(1)) * 1024

    async def stop(self) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), 30)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()


class Bench:
    """One dev server, one client, and the worker processes the scenarios start."""

    def __init__(self, root: Path, address: str, client: Client, args: argparse.Namespace) -> None:
        self.root, self.address, self.client, self.args = root, address, client, args
        self.token = secrets.token_hex(3)
        self.workers: list[WorkerProcess] = []
        self.base_env = {
            **{
                k: v
                for k, v in os.environ.items()
                if not k.startswith(("TEMPORAL_", "PROVISION_", "SLACK_"))
            },
            "TEMPORAL_ADDRESS": address,
            # Several workers on one host: no two can serve the metrics port.
            "PROVISION_WORKER_METRICS_ADDRESS": "off",
            "PYTHONUNBUFFERED": "1",
        }
        if args.max_terraform:
            self.base_env["PROVISION_MAX_TERRAFORM"] = str(args.max_terraform)

    def queue(self, label: str) -> str:
        return f"scale-{self.token}-{label}"

    async def worker(
        self, name: str, queue: str, *args: str, env: Mapping[str, str] | None = None
    ) -> WorkerProcess:
        worker = WorkerProcess(
            name, self.root / name, {**self.base_env, "TEMPORAL_TASK_QUEUE": queue, **(env or {})}
        )
        self.workers.append(worker)
        return await worker.start(*args)

    async def stop_workers(self) -> None:
        await asyncio.gather(*(w.stop() for w in self.workers))


# (a) N concurrent happy-path runs against the raw CLI at the same parallelism. ------------------


def workflow_task_waits(events: list) -> list[float]:
    """Schedule-to-start of every workflow task of one run: how long it waited for a worker."""
    scheduled: dict[int, float] = {}
    waits = []
    for e in events:
        t = e.event_time.ToNanoseconds() / 1e9
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
            scheduled[e.event_id] = t
        elif e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
            sched_id = e.workflow_task_started_event_attributes.scheduled_event_id
            if sched_id in scheduled:
                waits.append(t - scheduled[sched_id])
    return waits


async def raw_batch(bench: Bench, runs: int, tag: str) -> dict:
    acts = build_activities(
        load_settings(data_dir=bench.root / "raw-data", temporal_address=bench.address)
    )
    runner = acts.runner
    base = stack_request(f"bench-{bench.token}-x", "x", bench.address)
    passthrough = {n: os.environ[n] for n in base.env_passthrough if n in os.environ}
    env = runner.env(passthrough)
    source = runner.config_dir("local_namespace")

    async def one(n: int) -> float:
        # No workspace variable: the namespace is named prefix-suffix, as raw_iteration checks.
        variables = {**base.variables, "name_suffix": f"{bench.token}-{tag}{n}", "workspace": ""}
        total, _ = await raw_iteration(
            runner.binary, source, bench.root / "raw" / f"{tag}{n}", variables, env
        )
        return total

    began = time.perf_counter()
    latencies = await asyncio.gather(*(one(n) for n in range(runs)))
    return {"latencies": list(latencies), "total": time.perf_counter() - began}


async def stack_batch(bench: Bench, queue: str, runs: int, tag: str) -> dict:
    service = RunService(bench.client, queue)

    async def one(n: int) -> tuple[float, list[float]]:
        suffix = f"{bench.token}-{tag}{n}"
        request = stack_request(f"bench-{bench.token}-{tag}{n}", suffix, bench.address)
        started = time.perf_counter()
        handle = await service.start(request)
        result: ProvisionResult = await handle.result()
        latency = time.perf_counter() - started
        if result.state != RunState.APPLIED:
            raise RuntimeError(f"run {handle.id} ended {result.state.value}: {result.reason}")
        history = await handle.fetch_history()
        return latency, workflow_task_waits(list(history.events))

    began = time.perf_counter()
    done = await asyncio.gather(*(one(n) for n in range(runs)))
    total = time.perf_counter() - began
    waits = [w for _, ws in done for w in ws]
    return {"latencies": [lat for lat, _ in done], "total": total, "wft_waits": waits}


async def concurrent_runs(bench: Bench) -> dict:
    runs, rounds = bench.args.runs, bench.args.rounds
    one_queue, split_queue = bench.queue("one"), bench.queue("split")
    await asyncio.gather(
        bench.worker("one-worker", one_queue),
        bench.worker("split-workflows", split_queue, "--role", "workflows"),
        bench.worker("split-activities", split_queue, "--role", "activities"),
    )
    sides: dict[str, list[dict]] = {"raw": [], "one worker": [], "split roles": []}
    log("(a) warm-up (untimed): one run of each kind")
    await raw_batch(bench, 1, "wr")
    await stack_batch(bench, one_queue, 1, "wo")
    await stack_batch(bench, split_queue, 1, "ws")
    for r in range(1, rounds + 1):
        for side, batch in (
            ("raw", raw_batch(bench, runs, f"r{r}-")),
            ("one worker", stack_batch(bench, one_queue, runs, f"o{r}-")),
            ("split roles", stack_batch(bench, split_queue, runs, f"s{r}-")),
        ):
            result = await batch
            sides[side].append(result)
            log(
                f"(a) round {r}/{rounds} {side}: {runs} runs in {result['total']:.1f} s, "
                f"median {median(result['latencies']):.2f} s"
            )
    await bench.stop_workers()
    bench.workers.clear()
    report: dict = {"runs": runs, "rounds": rounds, "target_ratio": TARGET_RATIO, "sides": {}}
    raw_total = median(b["total"] for b in sides["raw"])
    raw_median = median(x for b in sides["raw"] for x in b["latencies"])
    for side, batches in sides.items():
        latencies = [x for b in batches for x in b["latencies"]]
        waits = [w for b in batches for w in b.get("wft_waits", [])]
        total = median(b["total"] for b in batches)
        report["sides"][side] = {
            "total_s": total,
            "totals_s": [b["total"] for b in batches],
            "median_s": median(latencies),
            "p90_s": percentile(latencies, 0.9),
            "max_s": max(latencies),
            "ratio_total": total / raw_total,
            "ratio_median": median(latencies) / raw_median,
            "workflow_task_wait_median_s": median(waits) if waits else None,
            "workflow_task_wait_p90_s": percentile(waits, 0.9) if waits else None,
            "workflow_task_wait_max_s": max(waits) if waits else None,
        }
    return report


# (b) RSS of a worker with N runs awaiting approval. -----------------------------------------


def approval_request(bench: Bench, prefix: str) -> object:
    return build_request(
        RunOptions(scenario=APPROVAL_SCENARIO, prefix=prefix, temporal_address=bench.address)
    )


async def count_in_state(client: Client, queue: str, state: RunState) -> int:
    query = f'TaskQueue = "{queue}" AND provisionStatus = "{state.value}"'
    return (await client.count_workflows(query)).count


async def until_all_in_state(
    client: Client, queue: str, state: RunState, count: int, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while (seen := await count_in_state(client, queue, state)) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {seen} of {count} runs reached {state.value}")
        await asyncio.sleep(1.0)


async def start_approval_runs(bench: Bench, queue: str, count: int, tag: str) -> list[str]:
    service = RunService(bench.client, queue)

    async def start(n: int) -> str:
        handle = await service.start(approval_request(bench, f"w{bench.token}{tag}{n}"))
        return handle.id

    return await gather_bounded(32, (start(n) for n in range(count)))


async def query_all(client: Client, ids: list[str]) -> None:
    """Ask every run its state: a run the worker no longer caches is replayed to answer."""

    async def ask(workflow_id: str) -> None:
        for _ in range(60):
            with contextlib.suppress(Exception):  # its worker may be changing: ask again
                await client.get_workflow_handle(workflow_id).query(
                    QUERY_STATE, result_type=RunStatus
                )
                return
            await asyncio.sleep(0.5)
        raise RuntimeError(f"{workflow_id} answers no query")

    await gather_bounded(16, (ask(i) for i in ids))


async def waiting_runs(bench: Bench) -> dict:
    count = bench.args.waiting
    queue = bench.queue("waiting")
    # As deployed for load: the runs are held by a workflows-only worker with the bounded cache;
    # terraform runs in an activities-only one (whose growth is terraform's, not the runs').
    bounded = await bench.worker("waiting-bounded", queue, "--role", "workflows")
    activities = await bench.worker("waiting-activities", queue, "--role", "activities")
    # Before: a worker that has run one whole approval run (code loaded, terraform initialised).
    (warm,) = await start_approval_runs(bench, queue, 1, "warm")
    await until_all_in_state(bench.client, queue, RunState.AWAITING_APPROVAL, 1, 300)
    await RunService(bench.client, queue).send_decision(
        warm, None, ApplyDecision(is_approved=True, reason="bench warm-up"), by_signal=False
    )
    await bench.client.get_workflow_handle(warm).result()
    before = bounded.rss_bytes()
    activities_before = activities.rss_bytes()
    began = time.perf_counter()
    log(f"(b) starting {count} approval runs; RSS before {before / MIB:.1f} MiB")
    ids = await start_approval_runs(bench, queue, count, "r")
    await until_all_in_state(
        bench.client, queue, RunState.AWAITING_APPROVAL, count, timeout=60 + 10 * count
    )
    planned = time.perf_counter() - began
    await query_all(bench.client, ids)
    after = bounded.rss_bytes()
    activities_after = activities.rss_bytes()
    log(f"(b) {count} runs awaiting approval after {planned:.0f} s; RSS {after / MIB:.1f} MiB")
    # The same runs held by a worker that caches all of them: what the bound saves.
    unbounded = await bench.worker(
        "waiting-unbounded",
        queue,
        "--role",
        "workflows",
        env={"PROVISION_MAX_CACHED_WORKFLOWS": str(count + 100)},
    )
    await bounded.stop()
    await query_all(bench.client, [warm])
    unbounded_before = unbounded.rss_bytes()
    await query_all(bench.client, ids)
    unbounded_after = unbounded.rss_bytes()
    # A workflows worker that takes over the waiting runs (a restart, a new host): the bounded
    # cache with every run replayed, without the burst of their planning.
    takeover = await bench.worker("waiting-takeover", queue, "--role", "workflows")
    await unbounded.stop()
    await query_all(bench.client, [warm])
    takeover_before = takeover.rss_bytes()
    await query_all(bench.client, ids)
    takeover_after = takeover.rss_bytes()
    await bench.stop_workers()
    bench.workers.clear()
    cache = int(load_settings().max_cached_workflows)
    return {
        "waiting": count,
        "planned_in_s": planned,
        "max_cached_workflows": cache,
        "rss_before_mib": before / MIB,
        "rss_after_mib": after / MIB,
        "growth_mib": (after - before) / MIB,
        "activities_growth_mib": (activities_after - activities_before) / MIB,
        "takeover_growth_mib": (takeover_after - takeover_before) / MIB,
        "unbounded_rss_before_mib": unbounded_before / MIB,
        "unbounded_rss_after_mib": unbounded_after / MIB,
        "unbounded_growth_mib": (unbounded_after - unbounded_before) / MIB,
        "unbounded_kib_per_run": (unbounded_after - unbounded_before) / 1024 / count,
        "target_growth_mib": TARGET_RSS_MIB,
    }


# (c) one worker against three on a shared PostgreSQL. ---------------------------------------


@contextlib.asynccontextmanager
async def shared_database(root: Path) -> AsyncIterator[str | None]:
    """PROVISION_DATABASE_URL, or a throwaway cluster; None when neither can be had."""
    url = os.environ.get("PROVISION_DATABASE_URL")
    if url:
        yield url
        return
    if postgres_bin_dir() is None:
        yield None
        return
    # Not under a root-only folder: as root the cluster runs as the postgres user.
    folder = Path(tempfile.mkdtemp(prefix="provision-bench-pg-"))
    cluster = ThrowawayPostgres(folder)
    await asyncio.to_thread(cluster.start)
    try:
        yield cluster.url
    finally:
        await asyncio.to_thread(cluster.stop)


def fresh_database(url: str, name: str) -> str:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


async def approval_throughput(bench: Bench, url: str, workers: int) -> dict:
    count = bench.args.shared_runs
    queue = bench.queue(f"shared{workers}")
    database = fresh_database(url, f"bench_{bench.token}_{workers}w")
    env = {"PROVISION_DATABASE_URL": database}
    await asyncio.gather(
        *(bench.worker(f"shared{workers}-{n}", queue, env=env) for n in range(1, workers + 1))
    )
    service = RunService(bench.client, queue)
    approve = ApplyDecision(is_approved=True, reason="bench: reviewed")

    async def one(n: int) -> float:
        started = time.perf_counter()
        handle = await service.start(approval_request(bench, f"p{bench.token}{workers}w{n}"))
        while True:
            status = await service.status(handle.id)
            if status.state == RunState.AWAITING_APPROVAL:
                break
            if status.state.is_final:
                raise RuntimeError(f"{handle.id} ended {status.state.value} before approval")
            await asyncio.sleep(0.5)
        await service.send_decision(handle.id, None, approve, by_signal=False)
        result: ProvisionResult = await handle.result()
        if result.state != RunState.APPLIED:
            raise RuntimeError(f"{handle.id} ended {result.state.value}: {result.reason}")
        return time.perf_counter() - started

    began = time.perf_counter()
    latencies = await asyncio.gather(*(one(n) for n in range(count)))
    total = time.perf_counter() - began
    await bench.stop_workers()
    bench.workers.clear()
    log(f"(c) {workers} worker(s): {count} approval runs in {total:.1f} s")
    return {
        "workers": workers,
        "runs": count,
        "total_s": total,
        "runs_per_minute": count / total * 60,
        "median_s": median(latencies),
    }


# The benchmark. ---------------------------------------------------------------------------------


async def bench_all(args: argparse.Namespace) -> dict:
    load_start = os.getloadavg()[0]
    report: dict = {}
    with tempfile.TemporaryDirectory(prefix="provision-scale-") as tmp:
        root = Path(tmp)
        async with temporal_server(None) as (target, server_label):
            client = await connect(load_settings(temporal_address=target))
            client = Client(**(client.config() | {"data_converter": pydantic_data_converter}))
            await ensure_search_attributes(client)
            bench = Bench(root, target, client, args)
            report["server"] = server_label
            try:
                if not args.skip_concurrent:
                    report["concurrent"] = await concurrent_runs(bench)
                if not args.skip_waiting:
                    report["waiting"] = await waiting_runs(bench)
                if not args.skip_shared:
                    async with shared_database(root) as url:
                        if url is None:
                            report["shared"] = {"skipped": "no PostgreSQL (`make postgres`)"}
                        else:
                            report["shared"] = {
                                "one": await approval_throughput(bench, url, 1),
                                "three": await approval_throughput(bench, url, 3),
                            }
            except BaseException:
                for worker in bench.workers:
                    log(f"--- {worker.name} log tail ---\n{worker.log_tail()}")
                raise
            finally:
                await bench.stop_workers()
    report["machine"] = (
        f"{os.cpu_count()} CPUs, 1-min load average {load_start:.2f} at start, "
        f"{os.getloadavg()[0]:.2f} at end"
    )
    report["max_terraform"] = args.max_terraform or load_settings().max_terraform
    return report


def render(report: dict) -> str:
    lines = [
        f"Temporal: {report['server']}; worker processes (`provision worker`), no Slack.",
        f"Machine: {report['machine']}; PROVISION_MAX_TERRAFORM {report['max_terraform']}.",
    ]
    if "concurrent" in report:
        c = report["concurrent"]
        lines += [
            "",
            f"(a) {c['runs']} concurrent happy-path runs, {c['rounds']} round(s), interleaved "
            "raw / one worker / split roles",
            f"{'':<13}{'total s':>9}{'median s':>10}{'p90 s':>8}{'max s':>8}"
            f"{'x raw (total)':>15}{'x raw (median)':>16}   workflow task wait med/p90/max s",
        ]
        for side, s in c["sides"].items():
            wait = (
                f"{s['workflow_task_wait_median_s']:.2f} / {s['workflow_task_wait_p90_s']:.2f} / "
                f"{s['workflow_task_wait_max_s']:.2f}"
                if s["workflow_task_wait_median_s"] is not None
                else "-"
            )
            lines.append(
                f"{side:<13}{s['total_s']:>9.1f}{s['median_s']:>10.2f}{s['p90_s']:>8.2f}"
                f"{s['max_s']:>8.2f}{s['ratio_total']:>15.3f}{s['ratio_median']:>16.3f}   {wait}"
            )
        met = all(s["ratio_total"] <= c["target_ratio"] for s in c["sides"].values())
        lines.append(
            f"target total <= {c['target_ratio']:.1f}x raw: " + ("MET" if met else "NOT MET")
        )
    if "waiting" in report:
        w = report["waiting"]
        met = w["growth_mib"] <= w["target_growth_mib"]
        lines += [
            "",
            f"(b) worker RSS with {w['waiting']} runs awaiting approval "
            f"(planned in {w['planned_in_s']:.0f} s)",
            f"  workflows worker, bounded cache ({w['max_cached_workflows']}): "
            f"{w['rss_before_mib']:.1f} -> "
            f"{w['rss_after_mib']:.1f} MiB, growth {w['growth_mib']:+.1f} MiB "
            f"(target <= {w['target_growth_mib']:.0f}: {'MET' if met else 'NOT MET'})",
            f"  activities worker (ran the {w['waiting']} plans): growth "
            f"{w['activities_growth_mib']:+.1f} MiB",
            f"  a workflows worker taking them over (bounded cache, every run replayed): growth "
            f"{w['takeover_growth_mib']:+.1f} MiB",
            f"  cache for all of them:  {w['unbounded_rss_before_mib']:.1f} -> "
            f"{w['unbounded_rss_after_mib']:.1f} MiB, growth {w['unbounded_growth_mib']:+.1f} MiB "
            f"({w['unbounded_kib_per_run']:.0f} KiB per waiting run)",
        ]
    if "shared" in report:
        s = report["shared"]
        if "skipped" in s:
            lines += ["", f"(c) shared store: skipped, {s['skipped']}"]
        else:
            one, three = s["one"], s["three"]
            lines += [
                "",
                f"(c) {one['runs']} approval runs decided from a client, shared PostgreSQL",
                f"  1 worker:  {one['total_s']:.1f} s, {one['runs_per_minute']:.1f} runs/min, "
                f"median run {one['median_s']:.1f} s",
                f"  3 workers: {three['total_s']:.1f} s, {three['runs_per_minute']:.1f} runs/min, "
                f"median run {three['median_s']:.1f} s",
                f"  throughput 3 / 1: {three['runs_per_minute'] / one['runs_per_minute']:.2f}x",
            ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50, help="concurrent runs in (a) (50)")
    parser.add_argument("--rounds", type=int, default=1, help="rounds of (a) (1)")
    parser.add_argument("--waiting", type=int, default=1000, help="waiting runs in (b) (1000)")
    parser.add_argument("--shared-runs", type=int, default=20, help="approval runs in (c) (20)")
    parser.add_argument("--max-terraform", type=int, help="PROVISION_MAX_TERRAFORM of the workers")
    parser.add_argument("--skip-concurrent", action="store_true", help="skip (a)")
    parser.add_argument("--skip-waiting", action="store_true", help="skip (b)")
    parser.add_argument("--skip-shared", action="store_true", help="skip (c)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    for name in ("runs", "rounds", "waiting", "shared_runs"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    try:
        report = asyncio.run(bench_all(args))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - a failed measurement, not a slow one
        log(f"benchmark failed: {type(exc).__name__}: {exc}")
        return 1
    print(json.dumps(report, indent=2) if args.json else render(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
