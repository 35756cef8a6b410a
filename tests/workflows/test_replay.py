"""Replay histories recorded from real runs (tests/histories/record.py re-records them).

A change to workflow code that would break runs in flight fails here; guard it with
`workflow.patched(...)` and re-record.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from codec.converter import build_data_converter
from codec.keys import KeyRing
from tests.histories.record import RECORDING_KEY_SPEC
from tests.support.processes import payload_parts
from workflows.provision import DeprovisionInfraWorkflow, ProvisionInfraWorkflow

HISTORIES = sorted((Path(__file__).resolve().parents[1] / "histories").glob("*.json"))


def test_every_scenario_kind_is_recorded() -> None:
    names = {p.stem for p in HISTORIES}
    assert {
        "happy_path",
        "destroy",
        "human_in_the_loop_update",
        "ephemeral",
        "human_in_the_loop_signal_denied",
        "replan_first_run",
        "non_recoverable_failure",
        "happy_path_encrypted",
        "api_failure_retried",
    } <= names


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_replay(path: Path) -> None:
    encrypted = path.stem.endswith("_encrypted")
    converter = build_data_converter(
        key_ring=KeyRing.parse(RECORDING_KEY_SPEC) if encrypted else None,
        encrypt=encrypted,
        compress=encrypted,
    )
    raw = json.loads(path.read_text())
    readable = b"\n".join(payload_parts(raw))
    # Plain histories show the plan; recorded encrypted payloads show nothing readable.
    assert (b"null_resource" in readable) is not encrypted
    history = WorkflowHistory.from_json(path.stem, raw)
    replayer = Replayer(
        workflows=[ProvisionInfraWorkflow, DeprovisionInfraWorkflow], data_converter=converter
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure
