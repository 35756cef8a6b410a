"""The bot's Prometheus metrics, in a registry of its own so a process hosting the worker too
exposes only what belongs to the bot on the bot's /metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

# Slack gives an app 3 s to acknowledge; the interesting part is well below that.
ACK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 3.0, 5.0)


class BotMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.commands = Counter(
            "provision_bot_slash_commands",
            "Slash commands received, by verb (invalid: did not parse)",
            ["verb"],
            registry=self.registry,
        )
        self.ack_seconds = Histogram(
            "provision_bot_ack_seconds",
            "Time from receiving a Socket Mode envelope to acknowledging it",
            ["kind"],
            buckets=ACK_BUCKETS,
            registry=self.registry,
        )
        self.decisions = Counter(
            "provision_bot_decisions",
            "Actions sent to runs, by kind (approve, deny, replan, destroy_now, extend_ttl) and "
            "outcome (sent, rejected by the workflow, error)",
            ["kind", "outcome"],
            registry=self.registry,
        )
        self.refusals = Counter(
            "provision_bot_refused_actions",
            "Actions the bot refused before anything reached the workflow, by reason",
            ["reason"],
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "provision_bot_actions_in_flight",
            "Commands, clicks and form submissions being handled (acknowledged, not yet answered)",
            registry=self.registry,
        )
        self.slack_api_errors = Counter(
            "provision_bot_slack_api_errors",
            "Slack Web API errors, by method and error code (retried ones included)",
            ["method", "error"],
            registry=self.registry,
        )

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
