"""A damaged MCAP chunk (bad CRC, broken lz4 frame, records that do not frame) is refused by both
readers the same way: a RecordingError naming the file and the chunk, never damaged payloads fed
on, never a decompressor's or struct's own exception."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from gap_monitor.core.io.recordings import open_recording
from gap_monitor.errors import RecordingError

DAMAGES = ("payload", "framing", "lz4_frame", "lz4_data")


@pytest.mark.parametrize("damage", DAMAGES)
@pytest.mark.parametrize("reader", ["views", "messages"])
def test_a_damaged_chunk_is_a_recording_error_naming_the_chunk(
    damaged_mcap: Callable[[str], Path], damage: str, reader: str
) -> None:
    path = damaged_mcap(damage)
    with open_recording(path) as rec, pytest.raises(RecordingError) as raised:
        for _ in rec.views() if reader == "views" else rec.messages():
            pass
    message = str(raised.value)
    assert message.startswith(f"{path}: chunk at offset ")
    assert "\n" not in message


def test_a_crc_mismatch_says_so(damaged_mcap: Callable[[str], Path]) -> None:
    path = damaged_mcap("payload")
    for read in ("views", "messages"):
        with open_recording(path) as rec, pytest.raises(RecordingError, match=r"corrupt \(CRC mismatch\)"):
            list(getattr(rec, read)())


def test_intact_files_read_whole(damaged_mcap: Callable[[str], Path]) -> None:
    with open_recording(damaged_mcap("none")) as rec:
        assert len(list(rec.views())) == len(list(rec.messages())) == 400
