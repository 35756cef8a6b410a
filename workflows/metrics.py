"""Names and buckets of provision's own metrics.

The workflows emit through `workflow.metric_meter()` (replay-safe), the activities through
`activity.metric_meter()`; the worker's Temporal runtime exports both on its Prometheus endpoint
next to the SDK's `temporal_*` metrics (see provision.client.build_runtime). Pure data, so the
workflow sandbox can import it.
"""

from __future__ import annotations

# Counters carry the `_total` suffix themselves: the SDK's exporter adds none.
RUNS_STARTED = "provision_runs_started_total"
RUNS_FINISHED = "provision_runs_finished_total"
APPROVAL_WAIT = "provision_approval_wait_seconds"
NOTIFICATION_FAILURES = "provision_notification_failures_total"
POLICY_EVALUATIONS = "provision_policy_evaluations_total"
POLICY_FINDINGS = "provision_policy_findings_total"
TERRAFORM_STEP = "provision_terraform_step_seconds"

DESCRIPTIONS = {
    RUNS_STARTED: "Runs started (a replan's continue-as-new is not a new run), by scenario",
    RUNS_FINISHED: "Runs that reached a final state, by scenario and outcome (the final state)",
    APPROVAL_WAIT: "Time a run waited for its human decision, by scenario and outcome "
    "(approved, rejected, expired, replanned)",
    NOTIFICATION_FAILURES: "Run-message notification rounds that did not land, by error type",
    POLICY_EVALUATIONS: "Policy evaluations of a plan, by verdict (pass, needs_approval, blocked)",
    POLICY_FINDINGS: "Policy findings, by rule and level",
    TERRAFORM_STEP: "Duration of terraform steps (init, plan, apply, output), by step and outcome",
}

# A decision can take seconds (a policy-clean re-check) or days (a weekend).
APPROVAL_WAIT_BUCKETS = (
    5.0,
    30.0,
    60.0,
    300.0,
    900.0,
    1800.0,
    3600.0,
    7200.0,
    14400.0,
    28800.0,
    86400.0,
    172800.0,
    259200.0,
    604800.0,
)
# The local null configurations take well under a second a step; cloud ones take minutes.
TERRAFORM_STEP_BUCKETS = (
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
    1800.0,
    3600.0,
)
HISTOGRAM_BUCKETS: dict[str, tuple[float, ...]] = {
    APPROVAL_WAIT: APPROVAL_WAIT_BUCKETS,
    TERRAFORM_STEP: TERRAFORM_STEP_BUCKETS,
}


def count(name: str, **attributes: str) -> None:
    """Add one to a counter from workflow code.

    The workflow's meter drops values during replay, so each run counts once; it adds no command
    to history, so recorded histories replay unchanged.
    """
    from temporalio import workflow

    workflow.metric_meter().create_counter(name, DESCRIPTIONS[name]).add(1, attributes)


def observe_seconds(name: str, seconds: float, **attributes: str) -> None:
    """Record a duration in a histogram from workflow code (replay-safe like `count`)."""
    from temporalio import workflow

    workflow.metric_meter().create_histogram_float(name, DESCRIPTIONS[name], "s").record(
        seconds, attributes
    )
