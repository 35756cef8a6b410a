"""Deterministic crash points for tests: the worker SIGKILLs itself where PROVISION_FAULT_POINTS says.

Points: `plan-running` (terraform plan has started), `apply-running` (terraform apply has finished
a resource and is still running), `after-apply-exit` (terraform apply has exited and its exit code
is on disk, but nothing is recorded), `after-apply-recorded` (the outcome is recorded, the activity
has not reported). Unset, nothing happens.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Iterable, Mapping

FAULT_POINTS_ENV = "PROVISION_FAULT_POINTS"
KNOWN_POINTS = frozenset(
    {"plan-running", "apply-running", "after-apply-exit", "after-apply-recorded"}
)

log = logging.getLogger(__name__)


class FaultPoints:
    def __init__(self, points: Iterable[str] = ()) -> None:
        self.points = frozenset(p for p in points if p)
        unknown = self.points - KNOWN_POINTS
        if unknown:
            raise ValueError(
                f"unknown fault points {sorted(unknown)}; known: {sorted(KNOWN_POINTS)}"
            )

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> FaultPoints:
        return cls(p.strip() for p in env.get(FAULT_POINTS_ENV, "").split(","))

    def reach(self, point: str) -> None:
        if point not in self.points:
            return
        log.warning("fault point %s reached: SIGKILL to worker pid %s", point, os.getpid())
        for handler in logging.getLogger().handlers:
            handler.flush()
        os.kill(os.getpid(), signal.SIGKILL)
