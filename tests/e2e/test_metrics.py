"""Metrics: what the dashboards and alerts query is what the processes really export.

The compose file, the Grafana provisioning and the dashboards parse and point at each other;
Prometheus's own promtool accepts the scrape config, the alert rules (and their unit tests) and
every dashboard query; a real `provision worker` process, after real runs through the CLI, exports
every worker metric a dashboard or an alert names; the bot's registry holds every bot metric they
name; and the workflow's metrics are recorded live but never during replay.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import socket
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
import pytest_asyncio
import temporalio.workflow
import yaml
from temporalio import activity
from temporalio.client import WorkflowHistory
from temporalio.exceptions import ApplicationError
from temporalio.runtime import MetricBuffer, Runtime, TelemetryConfig
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker

from codec.converter import build_data_converter
from provision.client import build_runtime, connect
from provision.settings import ConfigurationError, Settings, load_settings
from tests.support.processes import VENV_BIN, Stack, free_port, run_process, wait_until
from tests.workflows.test_workflows import FakeTerraform, request
from workflows import metrics as names
from workflows.models import NotifyInput, ProvisionResult, RunState, SlackMessageRef
from workflows.provision import DeprovisionInfraWorkflow, ProvisionInfraWorkflow

REPO = Path(__file__).resolve().parents[2]
METRICS = REPO / "metrics"
DASHBOARDS = sorted((METRICS / "grafana" / "dashboards").glob("*.json"))
PROMETHEUS_BUILTINS = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
# Needs Slack to fail past the notify activity's retries: proven in-process below instead.
WORKER_METRICS_NEEDING_A_SLACK_OUTAGE = {names.NOTIFICATION_FAILURES}
RUN_TIMEOUT = 120.0


# PromQL, as much as it takes to find the metric names in an expression. -------------------

_PROMQL_WORDS = {
    "and",
    "or",
    "unless",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "offset",
    "inf",
    "nan",
}


def grafana_to_promql(expr: str) -> str:
    """Replace Grafana's variables with values Prometheus accepts."""
    expr = expr.replace("$__rate_interval", "5m").replace("$__interval", "1m")
    expr = expr.replace("$__range", "1h")
    expr = re.sub(r"\$\{?\w+\}?", ".*", expr)
    label_values = re.fullmatch(r"\s*label_values\((.*),\s*\w+\s*\)\s*", expr)
    return label_values.group(1) if label_values else expr


def metric_names(promql: str) -> set[str]:
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', promql)  # label values may hold anything
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # range durations
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    found = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        word = match.group(0)
        follows = text[match.end() :].lstrip()[:1]
        if word.lower() in _PROMQL_WORDS or follows == "(":
            continue  # an operator, a keyword or a function
        found.add(word)
    return found


def test_metric_names_reads_promql_like_prometheus_would() -> None:
    expr = (
        "histogram_quantile(0.95, sum by (le, step) (rate(provision_terraform_step_seconds_bucket"
        '{namespace=~"a|b", outcome!="ok"}[5m]))) / on (job) group_left '
        "sum without (instance) (up) > bool 1"
    )
    assert metric_names(expr) == {"provision_terraform_step_seconds_bucket", "up"}
    assert metric_names(
        grafana_to_promql(
            'label_values(temporal_worker_task_slots_available{namespace=~"$namespace"}, task_queue)'
        )
    ) == {"temporal_worker_task_slots_available"}


def dashboard_queries(board: dict) -> list[str]:
    """Every PromQL expression of a dashboard: panel targets (rows included) and variables."""
    queries = []

    def panels(items: list[dict]) -> Iterator[dict]:
        for panel in items:
            yield panel
            yield from panels(panel.get("panels") or [])

    for panel in panels(board["panels"]):
        queries += [t["expr"] for t in panel.get("targets") or [] if t.get("expr")]
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            queries.append(query["query"] if isinstance(query, dict) else query)
    return queries


def alert_expressions() -> list[str]:
    rules = yaml.safe_load((METRICS / "alerts.yml").read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def queried_metrics() -> dict[str, set[str]]:
    """Metric name -> where it is queried (dashboard file or alerts.yml)."""
    where: dict[str, set[str]] = {}
    for path in DASHBOARDS:
        for query in dashboard_queries(json.loads(path.read_text())):
            for name in metric_names(grafana_to_promql(query)):
                where.setdefault(name, set()).add(path.name)
    for expr in alert_expressions():
        for name in metric_names(expr):
            where.setdefault(name, set()).add("alerts.yml")
    return where


def worker_metrics_queried() -> set[str]:
    return {
        n
        for n in queried_metrics()
        if n.startswith(("temporal_", "provision_")) and not n.startswith("provision_bot_")
    }


def sample_names(exposition: str) -> set[str]:
    return {
        m.group(1)
        for m in re.finditer(r"^([A-Za-z_:][A-Za-z0-9_:]*)[{ ]", exposition, re.MULTILINE)
    }


def samples(exposition: str, name: str) -> list[dict[str, str]]:
    """The label sets of every sample of `name`."""
    found = []
    for m in re.finditer(rf"^{re.escape(name)}\{{([^}}]*)\}}", exposition, re.MULTILINE):
        found.append(dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(1))))
    return found


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode()


@contextmanager
def listening(port: int = 0) -> Iterator[int]:
    """A socket that holds a port (or finds it already held by someone else)."""
    s = socket.socket()
    try:
        try:
            s.bind(("127.0.0.1", port))
            s.listen()
            port = s.getsockname()[1]
        except OSError:
            pass  # already in use: just as busy
        yield port
    finally:
        s.close()


# Files: compose, Grafana provisioning, dashboards, Prometheus config and rules. ------------


def test_compose_file_runs_prometheus_and_grafana_from_the_repo_files() -> None:
    compose = yaml.safe_load((METRICS / "docker-compose.yaml").read_text())
    services = compose["services"]
    assert {"prometheus", "grafana"} <= set(services)
    for name, service in services.items():
        image = service.get("image", "")
        assert re.search(r":[\w.-]+$", image) and not image.endswith(":latest"), (name, image)
        for volume in service.get("volumes") or []:
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (METRICS / source).exists(), f"{name}: {source} does not exist"
        build = service.get("build")
        if build:
            assert (METRICS / build["context"] / build["dockerfile"]).is_file()
    # The two core services run without a profile; the stack needs one.
    assert "profiles" not in services["prometheus"] and "profiles" not in services["grafana"]
    assert services["worker"]["profiles"] == ["stack"]
    mounts = dict(v.split(":")[:2] for v in services["grafana"]["volumes"])
    dashboards_in_container = mounts["./grafana/dashboards"]
    home = services["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.startswith(dashboards_in_container + "/")
    assert (METRICS / "grafana" / "dashboards" / Path(home).name).is_file()
    prometheus_mounts = dict(v.split(":")[:2] for v in services["prometheus"]["volumes"])
    assert prometheus_mounts["./alerts.yml"] == "/etc/prometheus/alerts.yml"


def test_grafana_provisioning_points_at_the_dashboards_and_prometheus() -> None:
    compose = yaml.safe_load((METRICS / "docker-compose.yaml").read_text())
    grafana_mounts = dict(v.split(":")[:2] for v in compose["services"]["grafana"]["volumes"])
    provisioning = METRICS / "grafana" / "provisioning"
    (datasources_file,) = (provisioning / "datasources").glob("*.yaml")
    (datasource,) = yaml.safe_load(datasources_file.read_text())["datasources"]
    assert datasource["type"] == "prometheus" and datasource["uid"] == "prometheus"
    assert datasource["url"] == "http://prometheus:9090"
    (providers_file,) = (provisioning / "dashboards").glob("*.yaml")
    (provider,) = yaml.safe_load(providers_file.read_text())["providers"]
    assert provider["options"]["path"] == grafana_mounts["./grafana/dashboards"]


def test_dashboards_parse_and_query_prometheus_through_their_variable() -> None:
    assert {p.name for p in DASHBOARDS} == {"temporal-sdk.json", "provisioning.json"}
    uids = set()
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        uids.add(board["uid"])
        assert board["title"] and board["panels"]
        variables = {v["name"]: v for v in board["templating"]["list"]}
        assert variables["datasource"]["query"] == "prometheus"
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), f"{path.name}: duplicate panel ids"
        for panel in board["panels"]:
            if panel["type"] == "row":
                continue
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert panel["targets"], f"{path.name}: {panel['title']} has no query"
            for target in panel["targets"]:
                assert target["datasource"] == panel["datasource"]
    assert len(uids) == len(DASHBOARDS)


def promtool() -> str:
    found = VENV_BIN / "promtool"
    if found.exists():
        return str(found)
    which = shutil.which("promtool")
    if not which:
        pytest.fail(
            "promtool is not installed: `make test` fetches it (Debian's prometheus package), "
            "or install Prometheus's promtool yourself"
        )
    return which


async def run_promtool(*args: str) -> str:
    result = await run_process([promtool(), *args], env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.output
    return result.output


async def test_prometheus_config_and_alert_rules_pass_promtool() -> None:
    output = await run_promtool("check", "config", str(METRICS / "prometheus.yml"))
    assert "SUCCESS" in output and "1 rule files found" in output
    await run_promtool("test", "rules", str(METRICS / "alerts.test.yml"))


async def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    # promtool parses recording rules' expressions exactly as Prometheus would.
    rules = [
        {"record": f"dashboard:{path.stem.replace('-', '_')}:{i}", "expr": grafana_to_promql(q)}
        for path in DASHBOARDS
        for i, q in enumerate(dashboard_queries(json.loads(path.read_text())))
    ]
    assert len(rules) > 40
    file = tmp_path / "dashboard-queries.yml"
    file.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    output = await run_promtool("check", "rules", str(file))
    assert f"SUCCESS: {len(rules)} rules found" in output


def test_scrape_targets_are_the_default_addresses() -> None:
    config = yaml.safe_load((METRICS / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    defaults = Settings.model_fields
    worker_port = defaults["worker_metrics_address"].default.rsplit(":", 1)[1]
    bot_port = defaults["bot_health_address"].default.rsplit(":", 1)[1]
    for job, port, service in (
        ("provision-worker", worker_port, "worker"),
        ("provision-bot", bot_port, "bot"),
    ):
        targets = [t for c in jobs[job]["static_configs"] for t in c["targets"]]
        assert targets == [f"host.docker.internal:{port}", f"{service}:{port}"], targets
        assert jobs[job].get("metrics_path", "/metrics") == "/metrics"
    compose = yaml.safe_load((METRICS / "docker-compose.yaml").read_text())
    worker_env = compose["services"]["worker"]["environment"]
    assert worker_env["PROVISION_WORKER_METRICS_ADDRESS"] == f"0.0.0.0:{worker_port}"
    bot_env = compose["services"]["bot"]["environment"]
    assert bot_env["PROVISION_BOT_HEALTH_ADDRESS"] == f"0.0.0.0:{bot_port}"


# Settings and the runtime. -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", None),
        ("off", None),
        ("OFF", None),
        ("0.0.0.0:9000", "0.0.0.0:9000"),
        ("localhost:9100", "127.0.0.1:9100"),
        ("[::1]:9000", "[::1]:9000"),
    ],
)
def test_metrics_address_setting(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: str | None
) -> None:
    monkeypatch.setenv("PROVISION_WORKER_METRICS_ADDRESS", value)
    assert load_settings().worker_metrics_address == expected


@pytest.mark.parametrize("value", ["metrics.local:9000", "127.0.0.1", "127.0.0.1:0", ":99999"])
def test_metrics_address_setting_rejects(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("PROVISION_WORKER_METRICS_ADDRESS", value)
    with pytest.raises(ConfigurationError, match=r"^PROVISION_WORKER_METRICS_ADDRESS: "):
        load_settings()


def test_metrics_default_to_the_original_demo_address() -> None:
    assert load_settings().worker_metrics_address == "127.0.0.1:9000"


def test_a_busy_default_address_turns_metrics_off_not_the_worker(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with listening(9000):
        assert build_runtime(load_settings()) is None
    assert "PROVISION_WORKER_METRICS_ADDRESS" in caplog.text


def test_a_busy_address_that_was_asked_for_is_a_configuration_error() -> None:
    with listening() as port, pytest.raises(ConfigurationError) as raised:
        build_runtime(Settings(worker_metrics_address=f"127.0.0.1:{port}"))
    assert str(raised.value).startswith("PROVISION_WORKER_METRICS_ADDRESS: cannot serve")
    assert build_runtime(Settings(worker_metrics_address="off")) is None


async def test_worker_refuses_to_start_on_a_busy_metrics_address(tmp_path: Path) -> None:
    with listening() as port:
        result = await run_process(
            [str(VENV_BIN / "provision"), "worker"],
            env={
                "PATH": "/usr/bin:/bin",
                "PROVISION_DATA_DIR": str(tmp_path),
                "TEMPORAL_ADDRESS": "127.0.0.1:1",
                "PROVISION_WORKER_METRICS_ADDRESS": f"127.0.0.1:{port}",
            },
            timeout=60,
        )
    assert result.returncode == 2, result
    line = result.stderr.strip()
    assert line.startswith("provision: PROVISION_WORKER_METRICS_ADDRESS: cannot serve"), line
    assert "\n" not in line and "Traceback" not in result.output


# The real worker process. ------------------------------------------------------------------


@pytest_asyncio.fixture(scope="module")
async def metrics_stack(
    temporal_env: WorkflowEnvironment, tmp_path_factory
) -> AsyncIterator[tuple[Stack, str]]:
    address = temporal_env.client.service_client.config.target_host
    stack = Stack(address, tmp_path_factory.mktemp("metrics-stack"), f"tq-{uuid.uuid4()}")
    metrics_address = f"127.0.0.1:{free_port()}"
    await stack.start_worker({"PROVISION_WORKER_METRICS_ADDRESS": metrics_address})
    await stack.wait_for_log(f"worker metrics on http://{metrics_address}/metrics", timeout=10)
    try:
        yield stack, f"http://{metrics_address}/metrics"
    finally:
        await stack.stop_worker()


async def status_of(stack: Stack, workflow_id: str) -> dict | None:
    result = await stack.run("status", workflow_id, "--json")
    return result.json() if result.returncode == 0 else None


async def human_in_the_loop_with_a_replan(stack: Stack) -> None:
    workflow_id = "provision-metrics-human-in-the-loop-update"
    waiting = asyncio.ensure_future(
        stack.run(
            "run",
            "human-in-the-loop-update",
            "--prefix",
            "metrics",
            "--wait",
            "--json",
            timeout=RUN_TIMEOUT,
        )
    )

    async def awaiting(replans: int) -> bool:
        status = await status_of(stack, workflow_id)
        return bool(
            status and status["status"] == "awaiting_approval" and status["replan_count"] == replans
        )

    await wait_until(lambda: awaiting(0), what="awaiting approval")
    assert (await stack.run("replan", workflow_id)).returncode == 0
    await wait_until(lambda: awaiting(1), what="awaiting approval after the replan")
    approved = await stack.run("approve", workflow_id, "--reason", "metrics test")
    assert approved.returncode == 0, approved
    result = await asyncio.wait_for(waiting, RUN_TIMEOUT)
    assert result.returncode == 0 and result.json()["status"] == "applied", result


async def run_expecting(stack: Stack, scenario: str, status: str, code: int) -> None:
    result = await stack.run(
        "run", scenario, "--prefix", "metrics", "--wait", "--json", timeout=RUN_TIMEOUT
    )
    assert result.returncode == code and result.json()["status"] == status, result


async def an_undecodable_start(stack: Stack, url: str) -> None:
    """A workflow whose input does not decode: its workflow task fails until terminated."""
    workflow_id = f"metrics-undecodable-{uuid.uuid4().hex[:8]}"
    started = await stack.temporal(
        "workflow",
        "start",
        "--task-queue",
        stack.task_queue,
        "--type",
        "ProvisionInfraWorkflow",
        "--workflow-id",
        workflow_id,
        "--input",
        '{"bogus": true}',
    )
    assert started.returncode == 0, started
    try:
        await wait_until(
            lambda: asyncio.to_thread(
                lambda: "temporal_workflow_task_execution_failed" in scrape(url)
            ),
            timeout=60,
            what="a workflow task failure",
        )
    finally:
        await stack.temporal("workflow", "terminate", "--workflow-id", workflow_id)


@pytest.mark.e2e
async def test_every_worker_metric_queried_is_exported_by_a_real_worker(
    metrics_stack: tuple[Stack, str],
) -> None:
    stack, url = metrics_stack
    await asyncio.gather(
        run_expecting(stack, "happy-path", "applied", 0),
        human_in_the_loop_with_a_replan(stack),
        run_expecting(stack, "non-recoverable-failure", "policy_failed", 1),
        run_expecting(stack, "api-failure", "applied", 0),
        an_undecodable_start(stack, url),
    )
    destroyed = await asyncio.gather(
        *(
            stack.run("destroy", f"metrics-{scenario}", "--wait", timeout=RUN_TIMEOUT)
            for scenario in ("happy-path", "human-in-the-loop-update", "api-failure")
        )
    )
    assert all(d.returncode == 0 for d in destroyed), destroyed

    wanted = worker_metrics_queried() - WORKER_METRICS_NEEDING_A_SLACK_OUTAGE
    assert len(wanted) > 20

    async def exported() -> str | None:
        text = await asyncio.to_thread(scrape, url)
        return text if wanted <= sample_names(text) else None

    try:
        text = await wait_until(exported, timeout=30, what="every queried metric exported")
    except AssertionError:
        missing = wanted - sample_names(await asyncio.to_thread(scrape, url))
        where = queried_metrics()
        raise AssertionError(
            "queried but not exported: "
            + ", ".join(f"{m} ({', '.join(sorted(where[m]))})" for m in sorted(missing))
        ) from None

    # And with the labels the dashboards group by.
    started = samples(text, names.RUNS_STARTED)
    assert {s["scenario"] for s in started} >= {
        "happy-path",
        "human-in-the-loop-update",
        "non-recoverable-failure",
        "api-failure",
        "destroy",
    }
    assert all(s["task_queue"] == stack.task_queue for s in started)
    # One start per run: a replan continues as new but is not a new run.
    hitl = [s for s in started if s["scenario"] == "human-in-the-loop-update"]
    assert re.search(
        rf'^{names.RUNS_STARTED}\{{[^}}]*scenario="human-in-the-loop-update"[^}}]*\}} 1$',
        text,
        re.MULTILINE,
    ), hitl
    finished = {(s["scenario"], s["outcome"]) for s in samples(text, names.RUNS_FINISHED)}
    assert {
        ("happy-path", "applied"),
        ("non-recoverable-failure", "policy_failed"),
        ("destroy", "destroyed"),
    } <= finished
    waits = {s["outcome"] for s in samples(text, names.APPROVAL_WAIT + "_count")}
    assert waits == {"replanned", "approved"}
    findings = {(s["rule"], s["level"]) for s in samples(text, names.POLICY_FINDINGS)}
    assert {("namespace_admin", "soft-mandatory"), ("account_owner", "hard-mandatory")} <= findings
    verdicts = {s["verdict"] for s in samples(text, names.POLICY_EVALUATIONS)}
    assert verdicts == {"pass", "needs_approval", "blocked"}
    steps = {(s["step"], s["outcome"]) for s in samples(text, names.TERRAFORM_STEP + "_count")}
    assert {("init", "ok"), ("plan", "ok"), ("apply", "ok"), ("output", "ok")} <= steps


# In-process: the Slack-outage metric, and replay. ------------------------------------------


async def test_a_notification_that_gives_up_is_counted(
    temporal_env: WorkflowEnvironment,
) -> None:
    address = f"127.0.0.1:{free_port()}"
    settings = Settings(
        temporal_address=temporal_env.client.service_client.config.target_host,
        worker_metrics_address=address,
    )
    runtime = build_runtime(settings)
    assert runtime is not None
    client = await connect(settings, runtime=runtime)

    @activity.defn(name="notify_run_message")
    async def slack_says_no(_: NotifyInput) -> None:
        raise ApplicationError(
            "Slack chat.update failed: channel_not_found",
            type="SlackApiError",
            non_retryable=True,
        )

    task_queue = f"tq-{uuid.uuid4()}"
    req = request(
        scenario="happy-path",
        tf_directory="local_namespace",
        slack=SlackMessageRef(channel="C0METRICS", ts="1.0"),
    )
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[ProvisionInfraWorkflow, DeprovisionInfraWorkflow],
        activities=[*FakeTerraform().activities(), slack_says_no],
    ):
        result = await client.execute_workflow(
            ProvisionInfraWorkflow.run,
            req,
            id=f"provision-{req.workspace}",
            task_queue=task_queue,
            result_type=ProvisionResult,
            execution_timeout=timedelta(seconds=60),
        )
    # A Slack outage never fails a run.
    assert result.state == RunState.APPLIED
    text = await asyncio.to_thread(scrape, f"http://{address}/metrics")
    failures = samples(text, names.NOTIFICATION_FAILURES)
    assert failures and {f["error_type"] for f in failures} == {"SlackApiError"}
    assert {f["workflow_type"] for f in failures} == {"ProvisionInfraWorkflow"}
    assert worker_metrics_queried() >= WORKER_METRICS_NEEDING_A_SLACK_OUTAGE


HISTORIES = REPO / "tests" / "histories"


async def replay_metrics(history: str) -> set[str]:
    """Names of the metrics recorded while replaying a recorded history."""
    buffer = MetricBuffer(10_000)
    replayer = Replayer(
        workflows=[ProvisionInfraWorkflow, DeprovisionInfraWorkflow],
        runtime=Runtime(telemetry=TelemetryConfig(metrics=buffer)),
        data_converter=build_data_converter(key_ring=None, encrypt=False, compress=False),
    )
    raw = json.loads((HISTORIES / f"{history}.json").read_text())
    result = await replayer.replay_workflow(
        WorkflowHistory.from_json(history, raw), raise_on_replay_failure=False
    )
    assert result.replay_failure is None, result.replay_failure
    return {update.metric.name for update in buffer.retrieve_updates()}


@pytest.mark.parametrize(
    ("history", "emitted"),
    [
        ("happy_path", {names.RUNS_STARTED, names.RUNS_FINISHED}),
        (
            "human_in_the_loop_update",
            {names.RUNS_STARTED, names.RUNS_FINISHED, names.APPROVAL_WAIT},
        ),
        ("non_recoverable_failure", {names.RUNS_STARTED, names.RUNS_FINISHED}),
    ],
)
async def test_replay_records_no_metrics(
    monkeypatch: pytest.MonkeyPatch, history: str, emitted: set[str]
) -> None:
    assert not {n for n in await replay_metrics(history) if n.startswith("provision_")}
    # The control: the same replay, told it is live, records them (so the meter is wired and
    # it is the replay-safe meter that keeps a worker restart from counting runs twice).
    monkeypatch.setattr(temporalio.workflow.unsafe, "is_replaying", staticmethod(lambda: False))
    assert {n for n in await replay_metrics(history) if n.startswith("provision_")} == emitted


# The bot. ------------------------------------------------------------------------------------


def bot_sample_names() -> set[str]:
    """Sample names the bot's /metrics can carry, from its prometheus_client registry."""
    bot_metrics = pytest.importorskip("bot.metrics", reason="bot/metrics.py is not there yet")
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_count", "_sum", "_created"),
        "summary": ("", "_count", "_sum", "_created"),
        "gauge": ("",),
        "info": ("_info",),
    }
    found = set()
    for family in bot_metrics.BotMetrics().registry.collect():
        found |= {family.name + suffix for suffix in suffixes.get(family.type, ("",))}
    return found


def test_every_bot_metric_queried_is_in_the_bots_registry() -> None:
    queried = {n for n in queried_metrics() if n.startswith("provision_bot_")}
    assert queried, "the provisioning dashboard shows the bot's Slack metrics"
    missing = queried - bot_sample_names()
    assert not missing, {m: sorted(queried_metrics()[m]) for m in missing}


def test_nothing_queried_is_unaccounted_for() -> None:
    for name, where in queried_metrics().items():
        assert name.startswith(("temporal_", "provision_")) or name in PROMETHEUS_BUILTINS, (
            name,
            where,
        )
