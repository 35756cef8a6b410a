"""Payload codec settings a second terminal gets from the data folder, with nothing set by hand:
the demo's key file `<data>/codec.keys`, and encryption as the running `provision dev` has it.
Without a key, an encrypted payload is a clear configuration error, not a KeyError."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from temporalio.converter import DataConverter

from codec.keys import write_new_key_file
from provision import local_stack
from provision.client import (
    EncryptedPayloadWithoutKey,
    codec_settings,
    data_converter_for,
    key_ring_for,
)
from provision.settings import Settings
from workflows.models import SlackMessageRef

ADDRESS = "localhost:7233"


async def roundtrip(writer: DataConverter, reader: DataConverter) -> object:
    [payload] = await writer.encode([SlackMessageRef(channel="C0INFRA", ts="1.000001")])
    [value] = await reader.decode([payload], [SlackMessageRef])
    return value


def test_the_data_folders_key_file_is_found_without_being_named(tmp_path: Path) -> None:
    assert key_ring_for(Settings(data_dir=tmp_path)) is None
    ring = write_new_key_file(tmp_path / "codec.keys")
    found = key_ring_for(Settings(data_dir=tmp_path))
    assert found is not None and found.active_key_id == ring.active_key_id
    # A key named by hand wins over the data folder's.
    other = write_new_key_file(tmp_path / "elsewhere.keys", key_id="other")
    named = key_ring_for(Settings(data_dir=tmp_path, codec_key_file=tmp_path / "elsewhere.keys"))
    assert named is not None and named.active_key_id == other.active_key_id


def test_a_running_dev_stack_lends_its_encryption_to_its_data_folder(tmp_path: Path) -> None:
    write_new_key_file(tmp_path / "codec.keys")
    plain = Settings(data_dir=tmp_path)
    assert not codec_settings(plain).encrypt_payloads
    local_stack.announce(tmp_path, temporal_address=ADDRESS, encrypt=True, compress=False)
    try:
        assert codec_settings(plain).encrypt_payloads
        # What was set explicitly wins; another server's stack says nothing about this one.
        assert not codec_settings(
            Settings(data_dir=tmp_path, encrypt_payloads=False)
        ).encrypt_payloads
        elsewhere = Settings(data_dir=tmp_path, temporal_address="127.0.0.1:7999")
        assert not codec_settings(elsewhere).encrypt_payloads
    finally:
        local_stack.withdraw(tmp_path)
    assert not (tmp_path / local_stack.STACK_FILE_NAME).exists()
    assert not codec_settings(plain).encrypt_payloads


def test_a_stack_that_died_lends_nothing(tmp_path: Path) -> None:
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead_pid = int(gone.stdout)
    local_stack.announce(tmp_path, temporal_address=ADDRESS, encrypt=True, compress=False)
    path = tmp_path / local_stack.STACK_FILE_NAME
    path.write_text(path.read_text().replace(str(os.getpid()), str(dead_pid)))
    assert local_stack.running_stack(tmp_path) is None
    assert not codec_settings(Settings(data_dir=tmp_path)).encrypt_payloads


async def test_the_second_terminal_reads_and_writes_what_the_stack_does(tmp_path: Path) -> None:
    write_new_key_file(tmp_path / "codec.keys")
    stack_side = data_converter_for(Settings(data_dir=tmp_path, encrypt_payloads=True))
    local_stack.announce(tmp_path, temporal_address=ADDRESS, encrypt=True, compress=False)
    try:
        second = data_converter_for(Settings(data_dir=tmp_path))
        [sealed] = await second.encode([SlackMessageRef(channel="C0INFRA", ts="1.000001")])
        assert sealed.metadata["encoding"] == b"binary/encrypted"
        assert await roundtrip(stack_side, second) == SlackMessageRef(
            channel="C0INFRA", ts="1.000001"
        )
    finally:
        local_stack.withdraw(tmp_path)


async def test_an_encrypted_payload_without_a_key_is_a_clear_error(tmp_path: Path) -> None:
    write_new_key_file(tmp_path / "stack" / "codec.keys")
    sealing = data_converter_for(Settings(data_dir=tmp_path / "stack", encrypt_payloads=True))
    keyless = data_converter_for(Settings(data_dir=tmp_path / "elsewhere"))
    with pytest.raises(EncryptedPayloadWithoutKey) as raised:
        await roundtrip(sealing, keyless)
    message = str(raised.value)
    assert "encrypted" in message and "PROVISION_CODEC_KEY_FILE" in message
    assert "codec.keys" in message
    # Plain payloads still pass through a process without keys.
    plain = data_converter_for(Settings(data_dir=tmp_path / "elsewhere"))
    assert await roundtrip(plain, keyless) == SlackMessageRef(channel="C0INFRA", ts="1.000001")
