"""Every name another process or a user relies on: workflow types, handlers, activities, search
attributes and the workflow id prefix.

Users of the original demo type these names in `temporal …` commands and recorded histories carry
them, so they never change; everything in this repository uses them from here.
"""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

# Workflow types.
PROVISION_WORKFLOW = "ProvisionInfraWorkflow"
DEPROVISION_WORKFLOW = "DeprovisionInfraWorkflow"
WORKFLOW_TYPES = (PROVISION_WORKFLOW, DEPROVISION_WORKFLOW)

# Updates and signals.
UPDATE_APPLY_DECISION = "update_apply_decision"
SIGNAL_APPLY_DECISION = "signal_apply_decision"
SIGNAL_REPLAN = "request_continue_as_new"
SIGNAL_DESTROY_NOW = "destroy_now"
SIGNAL_EXTEND_TTL = "extend_ttl"

# Queries: the original demo's four, and the whole structured state.
QUERY_STATUS = "get_current_status"
QUERY_PROGRESS = "get_progress"
QUERY_PLAN = "get_plan"
QUERY_REASON = "get_reason"
QUERY_STATE = "get_state"

# Activities: part of every workflow history.
PLAN_ACTIVITY = "terraform_plan"
APPLY_ACTIVITY = "terraform_apply"
EVALUATE_POLICY_ACTIVITY = "evaluate_policy"
NOTIFY_ACTIVITY = "notify_run_message"
CLAIM_WORKSPACE_ACTIVITY = "claim_workspace"

# Search attributes, upserted at every state change.
PROVISION_STATUS = SearchAttributeKey.for_keyword("provisionStatus")
TF_DIRECTORY = SearchAttributeKey.for_text("tfDirectory")
SCENARIO = SearchAttributeKey.for_keyword("scenario")
SEARCH_ATTRIBUTES = (PROVISION_STATUS, TF_DIRECTORY, SCENARIO)

# A workspace's workflow id: Temporal's one-running-execution-per-id is the workspace lock.
WORKFLOW_ID_PREFIX = "provision-"


def workflow_id_for(workspace: str) -> str:
    """The workflow id of a workspace."""
    return f"{WORKFLOW_ID_PREFIX}{workspace}"


def workspace_of(workflow_id_or_workspace: str) -> str:
    """The workspace a workflow id names (a workspace name is returned as it is)."""
    return workflow_id_or_workspace.removeprefix(WORKFLOW_ID_PREFIX)
