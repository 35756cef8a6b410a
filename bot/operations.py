"""What the bot needs from Temporal, as a Protocol: `provision` injects the implementation, so the
bot never imports the front door's wiring (arrows point down only)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from bot.blocks import RunListing
from workflows.models import (
    ApplyDecision,
    DecisionOutcome,
    DeprovisionRequest,
    ExtendTtl,
    ProvisionRequest,
    RunStatus,
)


class RunRefused(Exception):
    """Temporal or the workflow said no; the message is one plain line for the user."""


class TemporalUnavailable(Exception):
    """Temporal cannot be reached right now; the bot keeps running and tries again later."""


class StartedRun(Protocol):
    workflow_id: str
    run_id: str


class RunOperations(Protocol):
    """Run operations addressed to one run (workflow id + run id) wherever a user acted on a
    message, so a decision made on a plan can never land on the next plan after a replan."""

    async def ready(self) -> None:
        """Connect if not connected yet; TemporalUnavailable when Temporal cannot be reached."""
        ...

    async def start(self, request: ProvisionRequest | DeprovisionRequest) -> StartedRun:
        """Start a run; RunRefused names the run holding a busy workspace."""
        ...

    async def status(self, target: str) -> RunStatus:
        """The state of the latest run of a workflow id or workspace."""
        ...

    async def decide(
        self, workflow_id: str, run_id: str, decision: ApplyDecision, *, by_signal: bool
    ) -> DecisionOutcome | None:
        """Send a decision to that run: an update (validator errors → RunRefused) or a signal."""
        ...

    async def replan(self, workflow_id: str, run_id: str) -> None: ...

    async def destroy_now(self, workflow_id: str, run_id: str) -> None: ...

    async def extend_ttl(self, workflow_id: str, run_id: str, extension: ExtendTtl) -> None: ...

    async def list_runs(self, state: str | None = None) -> Sequence[RunListing]: ...

    def run_url(self, workflow_id: str, run_id: str | None = None) -> str | None: ...
