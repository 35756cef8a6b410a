"""Typed search attribute keys, with the names the original demo's users already query."""

from temporalio.common import SearchAttributeKey

PROVISION_STATUS = SearchAttributeKey.for_keyword("provisionStatus")
TF_DIRECTORY = SearchAttributeKey.for_text("tfDirectory")
SCENARIO = SearchAttributeKey.for_keyword("scenario")

ALL_KEYS = (PROVISION_STATUS, TF_DIRECTORY, SCENARIO)
