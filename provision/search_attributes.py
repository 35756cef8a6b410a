"""Registering our search attributes (workflows/contracts.py) on a Temporal server."""

from __future__ import annotations

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client

from workflows.contracts import SEARCH_ATTRIBUTES

# The names `temporal server start-dev --search-attribute` and `temporal operator` use.
_CLI_TYPE_NAMES = {"KEYWORD": "Keyword", "TEXT": "Text"}


def cli_type_name(key) -> str:
    return _CLI_TYPE_NAMES[key.indexed_value_type.name.removeprefix("INDEXED_VALUE_TYPE_")]


def search_attribute_flags() -> list[str]:
    """`--search-attribute name=Type` for each, as `temporal server start-dev` takes them."""
    flags = []
    for key in SEARCH_ATTRIBUTES:
        flags += ["--search-attribute", f"{key.name}={cli_type_name(key)}"]
    return flags


async def ensure_search_attributes(client: Client) -> list[str]:
    """Register our search attributes on a server that lacks them; return the ones added."""
    resp = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=client.namespace)
    )
    missing = {
        key.name: IndexedValueType.ValueType(int(key.indexed_value_type.value))
        for key in SEARCH_ATTRIBUTES
        if key.name not in resp.custom_attributes
    }
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=client.namespace, search_attributes=missing)
        )
    return sorted(missing)
