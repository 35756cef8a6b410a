"""Temporal client factory: one place that turns settings into a connected client."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.converter import DataConverter
from temporalio.service import TLSConfig

from codec.converter import build_data_converter
from codec.keys import load_key_ring
from provision.settings import ConfigurationError, Settings


class TemporalUnreachable(Exception):
    """No Temporal server answered at the configured address."""


def data_converter_for(settings: Settings) -> DataConverter:
    spec = settings.codec_keys.get_secret_value() if settings.codec_keys else None
    try:
        key_ring = load_key_ring(spec, settings.codec_key_file)
        return build_data_converter(
            key_ring=key_ring,
            encrypt=settings.encrypt_payloads,
            compress=settings.compress_payloads,
        )
    except (ValueError, OSError) as exc:
        raise ConfigurationError(str(exc).splitlines()[0]) from None


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


async def connect(settings: Settings, *, data_converter: DataConverter | None = None) -> Client:
    """Connect with mTLS or an API key when configured (as the original demo did)."""
    converter = data_converter or data_converter_for(settings)
    tls = tls_config_for(settings)
    try:
        return await Client.connect(
            settings.temporal_address,
            namespace=settings.temporal_namespace,
            api_key=settings.connect_api_key(),
            tls=tls,
            data_converter=converter,
        )
    except RuntimeError as exc:
        raise TemporalUnreachable(
            f"cannot reach Temporal at {settings.temporal_address} "
            f"(namespace {settings.temporal_namespace}): {str(exc).splitlines()[0]}"
        ) from None
