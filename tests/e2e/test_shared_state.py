"""Several workers on one PostgreSQL (PROVISION_DATABASE_URL): real cluster, real dev server,
real terraform, three worker processes with their own data folders on one task queue.

The store tests at the top run against the same throwaway cluster without Temporal.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import shutil
import signal
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from activities.shared_store import (
    PgPlanStore,
    PgStateBackend,
    PlanRefused,
    SharedDatabase,
    declares_backend,
)
from codec.converter import build_data_converter
from codec.keys import KeyRing
from provision.settings import ConfigurationError
from provision.shared_dev import ThrowawayPostgres, postgres_bin_dir
from tests.e2e.test_crash import registered_namespaces
from tests.e2e.test_dev_stack import read_until
from tests.support.processes import VENV_BIN, Stack, free_port, wait_until
from workflows.models import ProvisionResult, RunState, RunStatus

RUNS = 20
WORKERS = 3
SCENARIO = "human-in-the-loop-update"


@pytest.fixture(scope="session")
def postgres() -> Iterator[ThrowawayPostgres]:
    if postgres_bin_dir() is None:
        pytest.skip(
            "PostgreSQL's initdb/pg_ctl are not installed (`make postgres` installs them as root)"
        )
    # Not under pytest's root-only tmp folder: as root the cluster runs as the postgres user.
    folder = Path(tempfile.mkdtemp(prefix="provision-pg-"))
    cluster = ThrowawayPostgres(folder)
    try:
        cluster.start()
    except ConfigurationError as exc:
        pytest.fail(f"could not start a throwaway PostgreSQL: {exc}")
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)


def fresh_database(cluster: ThrowawayPostgres) -> str:
    name = f"t_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(cluster.url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return cluster.url.rsplit("/", 1)[0] + f"/{name}"


# The stores ----------------------------------------------------------------------------------


def test_migrations_are_applied_once_when_workers_start_together(
    postgres: ThrowawayPostgres,
) -> None:
    url = fresh_database(postgres)
    results: list[list[int]] = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            results.append(SharedDatabase(url).migrate())
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    assert sorted(results, key=len) == [[]] * 5 + [[1]]
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT version FROM schema_migrations").fetchall() == [(1,)]


def test_saved_plans_are_sealed_and_refused_when_altered(postgres: ThrowawayPostgres) -> None:
    db = SharedDatabase(fresh_database(postgres))
    db.migrate()
    ring = KeyRing.generate("k1")
    plans = PgPlanStore(db, ring)
    secret = b"PK\x03\x04 plan with a password hunter2"
    sha = plans.save("ws-a", "p1", secret)
    assert sha == hashlib.sha256(secret).hexdigest()
    with db.connect() as conn:
        key_id, payload = conn.execute("SELECT key_id, payload FROM provision_plans").fetchone()
    assert key_id == "k1" and b"hunter2" not in bytes(payload) and b"PK" not in bytes(payload)
    assert plans.fetch("ws-a", "p1", sha).data == secret
    # A rotated ring still opens it; a ring without the key, or no ring, does not.
    assert PgPlanStore(db, ring.rotated("k2")).fetch("ws-a", "p1", sha).data == secret
    for other in (KeyRing.generate("k9"), None):
        with pytest.raises(PlanRefused):
            PgPlanStore(db, other).fetch("ws-a", "p1", sha)
    with pytest.raises(PlanRefused, match="sha256"):
        plans.fetch("ws-a", "p1", "0" * 64)
    with db.connect() as conn:
        conn.execute("UPDATE provision_plans SET payload = overlay(payload placing 'x' from 20)")
    with pytest.raises(PlanRefused, match="altered"):
        plans.fetch("ws-a", "p1", sha)
    # Clear text (no keys): an altered byte fails the sha256.
    clear = PgPlanStore(db)
    sha = clear.save("ws-b", "p2", b"plain plan")
    with db.connect() as conn:
        conn.execute("UPDATE provision_plans SET payload = 'plain plam' WHERE workspace = 'ws-b'")
    with pytest.raises(PlanRefused, match="sha256"):
        clear.fetch("ws-b", "p2", sha)


def test_state_backend_keeps_credentials_out_of_the_backend_configuration() -> None:
    backend = PgStateBackend.from_url("postgresql://deploy:s3cret@db.internal:6432/infra")
    assert "s3cret" not in backend.conn_str and "deploy" not in backend.conn_str
    assert "host=db.internal" in backend.conn_str and "sslmode=require" in backend.conn_str
    assert backend.env == {"PGUSER": "deploy", "PGPASSWORD": "s3cret"}
    assert "s3cret" not in repr(backend)
    schema = backend.schema_for("Team-A.prod-" + "x" * 80)
    assert len(schema) <= 63 and schema == schema.lower() and schema.startswith("tfstate_")
    assert backend.schema_for("a-b") != backend.schema_for("a_b")
    local = PgStateBackend.from_url("postgresql://postgres@127.0.0.1:5432/provision")
    assert "sslmode=disable" in local.conn_str


def test_a_stack_backend_is_detected() -> None:
    assert declares_backend({"main.tf": 'terraform {\n  backend "s3" {\n  }\n}\n'})
    assert declares_backend({"b.tf.json": '{"terraform": {"backend": {"gcs": {}}}}'})
    assert not declares_backend({"main.tf": '# backend "s3" is not used\nresource "x" "y" {}'})
    assert not declares_backend({"main.tf": 'resource "null_resource" "a" {}'})


# Three workers ------------------------------------------------------------------------------


def plan_rows(url: str) -> list[tuple[str, str, str | None, bytes]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT workspace, plan_id, key_id, payload FROM provision_plans"
        ).fetchall()
    return [(w, p, k, bytes(b)) for w, p, k, b in rows]


def applies_of(url: str, workspace: str) -> list[dict]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT record FROM provision_applies WHERE workspace = %s", (workspace,)
        ).fetchall()
    return [row[0] for row in rows]


def apply_logs(stacks: list[Stack], workspace: str) -> str:
    return "".join(
        log.read_text(errors="replace")
        for stack in stacks
        for log in sorted((stack.data_dir / "workspaces" / workspace / "applies").glob("*.log"))
    )


async def state_of(client: Client, workflow_id: str) -> RunStatus | None:
    try:
        return await client.get_workflow_handle(workflow_id).query(
            "get_state", result_type=RunStatus
        )
    except Exception:  # noqa: BLE001 - not started yet, or its worker is being replaced
        return None


def plan_ids(url: str, workspace: str) -> set[str]:
    return {p for w, p, _, _ in plan_rows(url) if w == workspace}


async def awaiting(
    client: Client, workflow_id: str, *, url: str = "", not_plan: str | None = None
) -> RunStatus:
    async def ready() -> RunStatus | None:
        status = await state_of(client, workflow_id)
        if status and status.state == RunState.AWAITING_APPROVAL:
            if not_plan is None or plan_ids(url, status.workspace) - {not_plan}:
                return status
        return None

    return await wait_until(ready, timeout=240, interval=0.5, what=f"{workflow_id} awaiting")


class Sampler:
    """Peak database connections and terraform memory while the workers run (for sizing)."""

    def __init__(self, url: str) -> None:
        self.url, self.connections, self.terraform_rss, self.terraforms = url, 0, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self._stop.wait(0.5):
                (count,) = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                ).fetchone()
                self.connections = max(self.connections, count - 1)
                rss = []
                for status in Path("/proc").glob("[0-9]*/status"):
                    try:
                        text = status.read_text()
                    except OSError:
                        continue
                    if text.startswith("Name:\tterraform"):
                        rss += [int(line.split()[1]) for line in text.splitlines()
                                if line.startswith("VmRSS:")]  # fmt: skip
                self.terraforms = max(self.terraforms, len(rss))
                self.terraform_rss = max(self.terraform_rss, max(rss, default=0))

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


async def bounded(limit: int, jobs):
    gate = asyncio.Semaphore(limit)

    async def one(job):
        async with gate:
            return await job

    return await asyncio.gather(*(one(job) for job in jobs))


@pytest.mark.e2e
@pytest.mark.timeout(1500)
async def test_three_workers_share_state_plans_and_records(
    postgres: ThrowawayPostgres, temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    url = fresh_database(postgres)
    # The cluster trusts loopback, so this password is never checked: it is there to be looked
    # for in everything terraform and the workers write.
    password = f"pw-{uuid.uuid4().hex}"
    shared_url = url.replace("postgres@", f"postgres:{password}@")
    ring = KeyRing.generate("shared1")
    address = temporal_env.client.service_client.config.target_host
    queue = f"tq-{uuid.uuid4()}"
    env = {
        "PROVISION_DATABASE_URL": shared_url,
        "PROVISION_CODEC_KEYS": ring.to_spec(),
        "ENCRYPT_PAYLOADS": "true",
        "PROVISION_WORKER_METRICS_ADDRESS": "off",
    }
    stacks = [Stack(address, tmp_path / f"worker-{n}", queue) for n in range(1, WORKERS + 1)]
    for stack in stacks:
        stack.env.update(env)
    client = Client(
        **(
            temporal_env.client.config()
            | {"data_converter": build_data_converter(key_ring=ring, encrypt=True)}
        )
    )
    # Worker 1 SIGKILLs itself in the middle of the first apply it runs.
    victim, survivors = stacks[0], stacks[1:]
    await asyncio.gather(
        victim.start_worker({"PROVISION_FAULT_POINTS": "apply-running"}),
        *(stack.start_worker() for stack in survivors),
    )
    sampler = Sampler(url).start()
    try:
        prefix = f"sh{uuid.uuid4().hex[:5]}"
        workspaces = [f"{prefix}{n:02d}-{SCENARIO}" for n in range(RUNS)]

        async def start(n: int) -> str:
            started = await stacks[n % WORKERS].run(
                "run", SCENARIO, "--prefix", f"{prefix}{n:02d}", "--json"
            )
            assert started.returncode == 0, started
            return started.json()["workflow_id"]

        began = time.monotonic()
        ids = await bounded(4, [start(n) for n in range(RUNS)])
        waiting = await bounded(RUNS, [awaiting(client, wid) for wid in ids])
        planned = time.monotonic() - began
        print(f"\n{RUNS} runs planned by {WORKERS} workers: {planned:.1f} s")

        # Every saved plan is in the database, sealed: no plan text, no zip, no workspace name.
        rows = {w: (k, payload) for w, _, k, payload in plan_rows(url)}
        assert set(rows) == set(workspaces)
        for workspace, (key_id, payload) in rows.items():
            assert key_id == "shared1"
            for clear in (b"PK\x03\x04", b"tfplan", b"null_resource", workspace.encode()):
                assert clear not in payload, (workspace, clear)

        # The first run's plan is altered in the database: its apply is refused and it replans.
        tampered = ids[0]
        assert waiting[0].workspace == workspaces[0]
        (tampered_plan,) = plan_ids(url, workspaces[0])
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "UPDATE provision_plans SET payload = overlay(payload placing"
                " decode('00ff00ff', 'hex') from 40) WHERE workspace = %s",
                (workspaces[0],),
            )

        async def approve(n: int, workflow_id: str) -> None:
            decided = await stacks[(n + 1) % WORKERS].run(
                "approve", workflow_id, "--reason", "reviewed"
            )
            assert decided.returncode == 0, decided

        began = time.monotonic()
        await approve(0, tampered)
        await bounded(4, [approve(n, wid) for n, wid in enumerate(ids) if n])
        await awaiting(client, tampered, url=url, not_plan=tampered_plan)
        refusals = "".join(s.worker_log.read_text(errors="replace") for s in stacks)
        assert f"the saved plan {tampered_plan} does not decrypt" in refusals
        assert not [r for r in applies_of(url, workspaces[0]) if r["plan_id"] == tampered_plan]
        await approve(0, tampered)

        # The victim died mid-apply if an apply reached it; otherwise it is killed now.
        if victim.worker and victim.worker.returncode is None:
            await asyncio.sleep(0)
            victim.worker.send_signal(signal.SIGKILL)
        assert victim.worker is not None
        await asyncio.wait_for(victim.worker.wait(), 240)

        results = await bounded(
            RUNS,
            [
                asyncio.wait_for(
                    client.get_workflow_handle(wid, result_type=ProvisionResult).result(), 600
                )
                for wid in ids
            ],
        )
        applied_in = time.monotonic() - began
        print(f"{RUNS} approved runs applied by {WORKERS} workers (one killed): {applied_in:.1f} s")
        killed_mid_apply = "fault point apply-running reached" in victim.worker_log.read_text()
        print(f"worker 1 SIGKILLed {'mid-apply' if killed_mid_apply else 'between applies'}")

        for workspace, result in zip(workspaces, results, strict=True):
            assert result.state == RunState.APPLIED, result
            assert result.outputs["namespace_name"] == workspace
            assert await registered_namespaces(client, workspace) == 1
            succeeded = [r for r in applies_of(url, workspace) if r["phase"] == "succeeded"]
            assert len(succeeded) == 1, applies_of(url, workspace)
            logs = apply_logs(stacks, workspace)
            assert logs.count("null_resource.namespace: Creating...") == 1, logs
            assert f"namespace {workspace} already exists" not in logs
        assert not plan_rows(url), "applied plans are removed from the database"
        if killed_mid_apply:
            # The victim's applies (it runs several at once) finished elsewhere, settled
            # without applying their plans again (one "Creating..." each, above).
            orphaned = [
                ws
                for ws in workspaces
                if (victim.data_dir / "workspaces" / ws / "applies").exists()
            ]
            records = [record for ws in orphaned for record in applies_of(url, ws)]
            settled = sorted(f"{r['settled_by']} (attempt {r['attempt']})" for r in records)
            print(f"the killed worker's {len(orphaned)} applies settled by: {', '.join(settled)}")
            assert all(r["phase"] == "succeeded" for r in records), records
            # Settled from the state by another worker, or applied there when it never moved.
            assert all(r["settled_by"] == "state" or r["attempt"] >= 2 for r in records), records

        # Every workspace destroyed by whichever worker picks it up (worker 1 is back, clean).
        await victim.start_worker()
        began = time.monotonic()

        async def destroy(n: int, workspace: str) -> None:
            gone = await stacks[n % WORKERS].run(
                "destroy", workspace, "--wait", "--json", timeout=600
            )
            assert gone.returncode == 0 and gone.json()["status"] == "destroyed", gone

        await bounded(6, [destroy(n, ws) for n, ws in enumerate(workspaces)])
        print(f"{RUNS} workspaces destroyed: {time.monotonic() - began:.1f} s")
        for workspace in workspaces:
            assert await registered_namespaces(client, workspace) == 0, workspace
        # State is in the database: some destroy ran on a worker that never saw the workspace.
        strangers = sum(
            1
            for stack in stacks
            for workspace in workspaces
            if (stack.data_dir / "workspaces" / workspace).exists()
            and not (stack.data_dir / "workspaces" / workspace / "terraform.tfstate").exists()
        )
        assert strangers, "no worker kept a local terraform.tfstate"
        with psycopg.connect(url) as conn:
            schemas = {
                row[0]
                for row in conn.execute(
                    "SELECT schema_name FROM information_schema.schemata"
                    " WHERE schema_name LIKE 'tfstate_%%'"
                )
            }
        assert schemas == {PgStateBackend.schema_for(w) for w in workspaces}
        # The database password is in no file terraform or a worker wrote, nor in any history.
        for stack in stacks:
            for path in stack.data_dir.rglob("*"):
                if path.is_file() and path.stat().st_size < 50_000_000:
                    assert password.encode() not in path.read_bytes(), path
        for workflow_id in ids:
            async for event in client.get_workflow_handle(workflow_id).fetch_history_events():
                assert password not in str(event)
        sampler.stop()
        print(
            f"peak: {sampler.connections} database connections, {sampler.terraforms} terraform "
            f"processes, {sampler.terraform_rss / 1024:.0f} MiB RSS for one terraform"
        )
    finally:
        sampler.stop()
        for stack in stacks:
            if stack.worker and stack.worker.returncode is None:
                await stack.stop_worker()


@pytest.mark.e2e
@pytest.mark.timeout(600)
async def test_dev_shared_runs_two_workers_on_a_throwaway_postgres(
    temporal_address: str, tmp_path: Path
) -> None:
    if postgres_bin_dir() is None:
        pytest.skip("PostgreSQL's initdb/pg_ctl are not installed (`make postgres`)")
    data_dir = tmp_path / "data"
    queue = f"tq-{uuid.uuid4()}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "PROVISION_"))},
        "TEMPORAL_ADDRESS": temporal_address,
        "TEMPORAL_TASK_QUEUE": queue,
        "PROVISION_CODEC_PORT": str(free_port()),
        "PROVISION_LOCAL_SLACK_PORT": str(free_port()),
        "PROVISION_BOT_HEALTH_ADDRESS": f"127.0.0.1:{free_port()}",
        "PROVISION_WORKER_METRICS_ADDRESS": "off",
        "PROVISION_DATA_DIR": str(data_dir),
        "PYTHONUNBUFFERED": "1",
    }
    dev = await asyncio.create_subprocess_exec(
        str(VENV_BIN / "provision"),
        "dev",
        "--shared",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        banner = await read_until(dev, "Ready.", timeout=180)
        (url,) = re.findall(r"PostgreSQL:\s+(postgresql://\S+)", banner)
        assert "Worker 2:" in banner
        second = Stack(temporal_address, data_dir / "worker-2", queue)
        await second.wait_for_log("polling task queue", timeout=120)
        stack = Stack(temporal_address, data_dir, queue)
        prefix = f"ds{uuid.uuid4().hex[:5]}"
        workspace = f"{prefix}-happy-path"
        run = await stack.run("run", "happy-path", "--prefix", prefix, "--wait", "--json")
        assert run.returncode == 0 and run.json()["status"] == "applied", run
        assert await stack.namespace_exists(workspace)
        with psycopg.connect(url) as conn:
            (state,) = conn.execute(
                f"SELECT data FROM {PgStateBackend.schema_for(workspace)}.states"
            ).fetchone()
        assert workspace in state
        gone = await stack.run("destroy", workspace, "--wait", "--json")
        assert gone.returncode == 0 and gone.json()["status"] == "destroyed", gone
        assert not await stack.namespace_exists(workspace)
    finally:
        if dev.returncode is None:
            dev.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(dev.wait(), 90)
    assert code == 0
    # The cluster and the second worker stopped with `provision dev`.
    assert not (data_dir / "postgres" / "data" / "postmaster.pid").exists()
    log = (data_dir / "worker-2" / "worker.log").read_text()
    assert "stopping worker" in log, log[-2000:]
    cluster = (data_dir / "postgres").resolve()
    if not cluster.is_relative_to(tmp_path):
        # As root under a root-only folder the cluster lived in /tmp behind a link.
        shutil.rmtree(cluster, ignore_errors=True)


def test_the_runner_adds_the_pg_backend_only_where_a_stack_brings_none(tmp_path: Path) -> None:
    from activities.terraform import BACKEND_OVERRIDE, TerraformRunner
    from provision.settings import default_terraform_root

    backend = PgStateBackend.from_url("postgresql://deploy:s3cret@127.0.0.1:5432/infra")
    runner = TerraformRunner(
        binary="terraform",
        terraform_root=default_terraform_root(),
        workspaces_dir=tmp_path / "workspaces",
        state_backend=backend,
        base_env={"PATH": "/usr/bin"},
    )
    work = runner.prepare("team-a", "local_namespace", {"prefix": "t"}, "happy-path")
    assert 'backend "pg"' in (work / BACKEND_OVERRIDE).read_text()
    config = runner.backend_config_file(work)
    assert config.stat().st_mode & 0o777 == 0o600
    assert "s3cret" not in config.read_text() and "deploy" not in config.read_text()
    assert PgStateBackend.schema_for("team-a") in config.read_text()
    assert runner.env({})["PGPASSWORD"] == "s3cret"

    own = tmp_path / "own-backend"
    own.mkdir()
    (own / "main.tf").write_text(
        'terraform {\n  backend "local" {\n    path = "x.tfstate"\n  }\n}\n'
    )
    work = runner.prepare("team-b", "own", {}, "", source=own, stack="own")
    assert not (work / BACKEND_OVERRIDE).exists()
    assert not runner.backend_config_file(work).exists()
