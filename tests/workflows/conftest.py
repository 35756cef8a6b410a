"""The workflow tests' client: the session's dev server, speaking pydantic."""

from __future__ import annotations

import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter


@pytest.fixture
async def client(temporal_client: Client) -> Client:
    config = temporal_client.config()
    config["data_converter"] = pydantic_data_converter
    return Client(**config)
