"""Settings, the command grammar and request building: the edges where user input arrives."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from bot.grammar import HELP, GrammarError, parse_args, parse_text
from provision.client import tls_config_for
from provision.settings import ConfigurationError, WorkerRole, load_settings, usable_cpus
from stacks.requests import RequestError, RunOptions, build_request, sanitize_prefix
from workflows.models import DeprovisionRequest, ProvisionRequest
from workflows.scenarios import SCENARIOS


def test_defaults_match_the_original_demo(monkeypatch: pytest.MonkeyPatch) -> None:
    s = load_settings()
    assert s.temporal_address == "localhost:7233"
    assert s.temporal_namespace == "default"
    assert s.task_queue == "provision-infra"
    assert s.data_dir == Path(".data")
    assert s.approval_timeout == timedelta(hours=24)
    assert Path(s.terraform_binary).exists()
    assert (s.terraform_root / "local_namespace").is_dir()


def test_original_aliases(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    cert.write_text("CERT")
    key.write_text("KEY")
    monkeypatch.setenv("TEMPORAL_CERT_PATH", str(cert))
    monkeypatch.setenv("TEMPORAL_KEY_PATH", str(key))
    monkeypatch.setenv("TEMPORAL_INFRA_PROVISION_TASK_QUEUE", "legacy-queue")
    monkeypatch.setenv("PROVISION_APPROVAL_TIMEOUT", "90m")
    s = load_settings()
    assert s.temporal_tls_cert == cert and s.task_queue == "legacy-queue"
    assert s.approval_timeout == timedelta(minutes=90)
    tls = tls_config_for(s)
    assert tls.client_cert == b"CERT" and tls.client_private_key == b"KEY"


def test_cloud_api_key_is_used_to_connect_only_when_asked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TEMPORAL_CLOUD_API_KEY", "provider-credential")
    assert load_settings().connect_api_key() is None
    monkeypatch.setenv("TEMPORAL_USE_CLOUD_API_KEY", "true")
    assert load_settings().connect_api_key() == "provider-credential"
    monkeypatch.setenv("TEMPORAL_API_KEY", "connect-key")
    s = load_settings()
    assert s.connect_api_key() == "connect-key"
    assert tls_config_for(s) is True
    # Secrets never show in the settings' repr (and so not in logs).
    assert "connect-key" not in repr(s) and "provider-credential" not in repr(s)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PROVISION_APPROVAL_TIMEOUT", "tomorrow"),
        ("PROVISION_APPROVAL_TIMEOUT", "0"),
        ("ENCRYPT_PAYLOADS", "perhaps"),
        ("TEMPORAL_ADDRESS", "no-port"),
        ("TF_VAR_prefix", "Bad Prefix"),
        ("PROVISION_DEV_UI_PORT", "99999"),
        ("PROVISION_WORKER_ROLE", "both"),
        ("PROVISION_MAX_TERRAFORM", "0"),
        ("PROVISION_TERRAFORM_NICE", "20"),
        ("PROVISION_MAX_CACHED_WORKFLOWS", "1"),
        ("PROVISION_MAX_CACHED_WORKFLOWS", "-5"),
    ],
)
def test_bad_values_name_the_variable(monkeypatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError) as err:
        load_settings()
    assert str(err.value).startswith(f"{name}: ")
    assert "\n" not in str(err.value)


def test_tls_needs_both_halves(monkeypatch, tmp_path: Path) -> None:
    cert = tmp_path / "c.pem"
    cert.write_text("x")
    monkeypatch.setenv("TEMPORAL_TLS_CERT", str(cert))
    with pytest.raises(ConfigurationError, match="set together"):
        tls_config_for(load_settings())


def test_slack_form_and_cli_form_parse_the_same() -> None:
    slack = parse_text("happy-path --prefix demo --ttl 60")
    cli = parse_args(["run", "happy-path", "--prefix", "demo", "--ttl", "60"])
    assert slack == cli
    assert slack.verb == "run" and slack.scenario == "happy-path" and slack.ttl == 60


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("frobnicate", "unknown command or stack 'frobnicate'"),
        ("run nope", "unknown stack 'nope'"),
        ("happy-path --colour red", "unrecognized arguments: --colour red"),
        ("happy-path --ttl -5", "--ttl"),
        ("status", "the following arguments are required: target"),
        ("approve x", "--reason"),
        ('happy-path --prefix "unclosed', "could not read the command"),
        ("destroy ws --scenario happy-path", "not both"),
    ],
)
def test_grammar_errors_name_the_problem(text: str, problem: str) -> None:
    with pytest.raises(GrammarError) as err:
        parse_text(text)
    assert problem in str(err.value)


def test_help_names_every_scenario_and_verb() -> None:
    assert parse_text("").verb == "help" and parse_text("help").verb == "help"
    for name in SCENARIOS:
        assert name in HELP
    for verb in ("status", "list", "destroy", "approve", "deny", "replan"):
        assert verb in HELP


def test_every_scenario_builds_a_valid_request() -> None:
    for name, scenario in SCENARIOS.items():
        options = RunOptions(
            scenario=name,
            prefix="demo",
            workspace="demo-happy-path" if scenario.deprovision else None,
        )
        request = build_request(options)
        expected = DeprovisionRequest if scenario.deprovision else ProvisionRequest
        assert isinstance(request, expected)
        if isinstance(request, ProvisionRequest):
            assert request.workspace == f"demo-{name}"
            assert request.variables["name_suffix"] == name
    assert build_request(RunOptions(scenario="ephemeral", prefix="d")).ttl_seconds == 300
    assert build_request(RunOptions(scenario="api-failure", prefix="d")).faults.apply_failures == 4


@pytest.mark.parametrize(
    "options",
    [
        RunOptions(scenario="happy-path", prefix="x; rm -rf /"),
        RunOptions(scenario="happy-path", prefix="$(id)"),
        RunOptions(scenario="happy-path", prefix="ok", region="eu west"),
        RunOptions(scenario="happy-path", prefix="ok", temporal_address="host:1;id"),
        RunOptions(scenario="happy-path", prefix="ok", workspace="../../etc"),
        RunOptions(scenario="destroy", prefix="ok"),
    ],
)
def test_injection_and_bad_input_is_refused_before_any_run(options: RunOptions) -> None:
    with pytest.raises(RequestError):
        build_request(options)


def test_prefix_from_a_user_name() -> None:
    assert sanitize_prefix("Alice.Smith") == "alice-smith"
    assert sanitize_prefix("--") == "user"
    assert len(sanitize_prefix("x" * 80)) == 31


def test_list_settings_read_comma_separated_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROVISION_SLACK_APPROVERS", "")
    monkeypatch.setenv("PROVISION_PASSTHROUGH_ENV", "TF_VAR_token, TEMPORAL_CLOUD_API_KEY")
    s = load_settings()
    assert s.slack_approvers == []
    assert s.passthrough_env == ["TF_VAR_token", "TEMPORAL_CLOUD_API_KEY"]


def test_operator_passthrough_names_reach_every_run(tmp_path: Path) -> None:
    from activities.provisioning import ProvisioningActivities
    from activities.workspace_store import FileWorkspaceStore

    acts = ProvisioningActivities(
        runner=None,
        policy_evaluator=None,
        data_dir=tmp_path,
        store=FileWorkspaceStore(lambda workspace: tmp_path / workspace),
        worker_env={"TF_VAR_token": "s3cr3t-value", "OTHER": "not passed"},
        extra_passthrough=["TF_VAR_token"],
    )
    values, scrub, tf_vars = acts._passthrough([])
    assert values == {"TF_VAR_token": "s3cr3t-value"}
    assert tf_vars == {"token"}
    assert scrub("error: s3cr3t-value leaked") == "error: (redacted) leaked"


def test_bad_passthrough_name_is_a_configuration_error(monkeypatch) -> None:
    monkeypatch.setenv("PROVISION_PASSTHROUGH_ENV", "OK_NAME,bad-name;rm")
    with pytest.raises(ConfigurationError, match="^PROVISION_PASSTHROUGH_ENV: "):
        load_settings()


def test_load_settings_default_to_one_worker_doing_everything_within_bounds() -> None:
    settings = load_settings()
    assert settings.worker_role == WorkerRole.ALL
    assert settings.max_terraform == usable_cpus() >= 1
    assert settings.terraform_nice == 10
    assert settings.max_cached_workflows == 100


def test_load_settings_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROVISION_WORKER_ROLE", "workflows")
    monkeypatch.setenv("PROVISION_MAX_TERRAFORM", "6")
    monkeypatch.setenv("PROVISION_TERRAFORM_NICE", "0")
    monkeypatch.setenv("PROVISION_MAX_CACHED_WORKFLOWS", "0")
    settings = load_settings()
    assert settings.worker_role == WorkerRole.WORKFLOWS
    assert (settings.max_terraform, settings.terraform_nice) == (6, 0)
    assert settings.max_cached_workflows == 0
