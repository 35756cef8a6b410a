"""Temporal client factory: one place that turns settings into a connected client."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path

from temporalio.api.common.v1 import Payload
from temporalio.client import Client
from temporalio.converter import DataConverter, PayloadCodec
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.service import TLSConfig

from codec.converter import NO_KEY_MESSAGE, build_data_converter
from codec.keys import KeyRing, load_key_ring
from provision.local_stack import running_stack
from provision.settings import ConfigurationError, Settings
from workflows.metrics import HISTOGRAM_BUCKETS

log = logging.getLogger(__name__)


class TemporalUnreachable(Exception):
    """No Temporal server answered at the configured address."""


# The key file of a data folder: `provision dev` writes it when encrypting without a configured
# key, and every process of that data folder finds it there.
DEFAULT_KEY_FILE_NAME = "codec.keys"
_ENCRYPTED = b"binary/encrypted"


class EncryptedPayloadWithoutKey(ConfigurationError):
    """A payload arrived encrypted and this process has no key to open it."""


def default_key_file(settings: Settings) -> Path:
    return settings.data_dir / DEFAULT_KEY_FILE_NAME


def codec_settings(settings: Settings) -> Settings:
    """Settings with the data folder's codec defaults filled in where nothing was set: the key
    file `<data>/codec.keys`, and encryption and compression as the `provision dev` running on
    this data folder (and server) has them. What was set explicitly always wins."""
    update: dict[str, object] = {}
    if not (settings.codec_keys or settings.codec_key_file):
        key_file = default_key_file(settings)
        if key_file.is_file():
            update["codec_key_file"] = key_file
    stack = running_stack(settings.data_dir)
    if stack is not None and stack.get("temporal_address") == settings.temporal_address:
        for name in ("encrypt_payloads", "compress_payloads"):
            if name not in settings.model_fields_set and isinstance(stack.get(name), bool):
                update[name] = stack[name]
    return settings.model_copy(update=update) if update else settings


def key_ring_for(settings: Settings) -> KeyRing | None:
    """The configured payload keys; with encryption on, there must be some."""
    settings = codec_settings(settings)
    spec = settings.codec_keys.get_secret_value() if settings.codec_keys else None
    try:
        key_ring = load_key_ring(spec, settings.codec_key_file)
    except (ValueError, OSError) as exc:
        raise ConfigurationError(str(exc).splitlines()[0]) from None
    if settings.encrypt_payloads and key_ring is None:
        raise ConfigurationError(NO_KEY_MESSAGE)
    return key_ring


class _NoKeyGuard(PayloadCodec):
    """For a process without keys: an encrypted payload is refused with a message that says
    what to set, instead of the converter's `KeyError: Unknown payload encoding`."""

    def __init__(self, inner: PayloadCodec | None, data_dir: Path) -> None:
        self.inner = inner
        self.message = (
            "this run's data is encrypted (binary/encrypted) and no key is configured here: "
            "set PROVISION_CODEC_KEY_FILE or PROVISION_CODEC_KEYS to the key it was written "
            f"with (`provision dev` keeps its key in <data folder>/{DEFAULT_KEY_FILE_NAME}; "
            f"the data folder here is {data_dir}: run from the folder of `make demo`, or set "
            "PROVISION_DATA_DIR)"
        )

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return await self.inner.encode(payloads) if self.inner else list(payloads)

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        if any(p.metadata.get("encoding") == _ENCRYPTED for p in payloads):
            raise EncryptedPayloadWithoutKey(self.message)
        return await self.inner.decode(payloads) if self.inner else list(payloads)


def data_converter_for(settings: Settings) -> DataConverter:
    settings = codec_settings(settings)
    key_ring = key_ring_for(settings)
    converter = build_data_converter(
        key_ring=key_ring,
        encrypt=settings.encrypt_payloads,
        compress=settings.compress_payloads,
    )
    if key_ring is not None:
        return converter
    guard = _NoKeyGuard(converter.payload_codec, settings.data_dir.resolve())
    return dataclasses.replace(converter, payload_codec=guard)


def tls_config_for(settings: Settings) -> TLSConfig | bool:
    if settings.temporal_tls_cert or settings.temporal_tls_key:
        if not (settings.temporal_tls_cert and settings.temporal_tls_key):
            raise ConfigurationError("TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY must be set together")
        try:
            return TLSConfig(
                client_cert=settings.temporal_tls_cert.read_bytes(),
                client_private_key=settings.temporal_tls_key.read_bytes(),
            )
        except OSError as exc:
            raise ConfigurationError(
                f"TEMPORAL_TLS_CERT/KEY: {exc.strerror}: {exc.filename}"
            ) from None
    return settings.connect_api_key() is not None


def build_runtime(settings: Settings) -> Runtime | None:
    """The Temporal runtime of a worker process, exporting metrics for Prometheus.

    It serves the SDK's `temporal_*` metrics and ours (workflows/metrics.py) on
    `http://PROVISION_WORKER_METRICS_ADDRESS/metrics`. A runtime owns a thread pool and the
    exporter's port, so build it once per process and hand it to `connect`. None when metrics
    are off, or when the default address is taken (another worker or `provision dev` on this
    machine has it): a default must not stop a worker. An address that was asked for and cannot
    be served is a configuration error.
    """
    address = settings.worker_metrics_address
    if address is None:
        log.info("worker metrics are off (PROVISION_WORKER_METRICS_ADDRESS)")
        return None
    prometheus = PrometheusConfig(
        bind_address=address,
        # Seconds, like every other Prometheus histogram (ours included); the SDK's default is
        # integer milliseconds. Metric names do not change.
        durations_as_seconds=True,
        histogram_bucket_overrides={name: list(b) for name, b in HISTOGRAM_BUCKETS.items()},
    )
    try:
        runtime = Runtime(telemetry=TelemetryConfig(metrics=prometheus))
    except ValueError as exc:
        reason = str(exc).split(": ", 1)[-1]
        if "worker_metrics_address" in settings.model_fields_set:
            raise ConfigurationError(
                f"PROVISION_WORKER_METRICS_ADDRESS: cannot serve metrics on {address}: {reason}"
            ) from None
        log.warning(
            "worker metrics are off: cannot serve them on %s (%s); set "
            "PROVISION_WORKER_METRICS_ADDRESS to a free address, or to off",
            address,
            reason,
        )
        return None
    log.info("worker metrics on http://%s/metrics", address)
    return runtime


async def connect(
    settings: Settings,
    *,
    data_converter: DataConverter | None = None,
    runtime: Runtime | None = None,
) -> Client:
    """Connect with mTLS or an API key when configured (as the original demo did).

    `runtime` is the worker's (see build_runtime); None uses the SDK's default runtime.
    """
    converter = data_converter or data_converter_for(settings)
    tls = tls_config_for(settings)
    try:
        return await Client.connect(
            settings.temporal_address,
            namespace=settings.temporal_namespace,
            api_key=settings.connect_api_key(),
            tls=tls,
            data_converter=converter,
            runtime=runtime,
        )
    except RuntimeError as exc:
        raise TemporalUnreachable(
            f"cannot reach Temporal at {settings.temporal_address} "
            f"(namespace {settings.temporal_namespace}): {str(exc).splitlines()[0]}"
        ) from None
