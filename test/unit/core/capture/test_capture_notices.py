"""Nothing lost silently, nothing claimed that did not happen: crash leftovers recovered or
reported, refusals and deletions as notices and counts, honest answers, file modes."""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from snapshot_helpers import (
    MS,
    T0,
    Factory,
    S,
    big_buffer,
    complete_snapshots,
    fake_clock_writers,
    make_buffer,
    read_rosbag,
    run_rig,
    settings,
    snapshot_every,
)

from gap_monitor.core.capture.log_limit import RefusalLog
from gap_monitor.core.capture.policy import TMP_MARK, TriggerResult
from gap_monitor.core.capture.recovery import verify_snapshot
from gap_monitor.core.capture.writer import SnapshotWriter
from gap_monitor.core.events import Event, Severity


@pytest.fixture
def writer_factory() -> Iterator[Factory]:
    with fake_clock_writers() as make:
        yield make


def one_snapshot(tmp_path: Path) -> Path:
    rb = make_buffer()
    w = SnapshotWriter(settings(tmp_path), rb)
    try:
        run_rig(rb, w, T0, T0 + 5 * S, {T0 + 3 * S: {"kind": "crash_test"}})
        assert w.flush(30)
    finally:
        w.close()
    (folder,) = complete_snapshots(tmp_path / "snapshots")
    return folder


def test_restart_keeps_a_complete_leftover_and_reports_an_incomplete_one(tmp_path: Path) -> None:
    folder = one_snapshot(tmp_path)
    before = {f.name: f.read_bytes() for f in folder.glob("*.mcap")}
    # As if SIGKILLed after the files were written but before the rename ...
    complete = folder.with_name(folder.name + TMP_MARK + "abc123")
    folder.rename(complete)
    (complete / "trigger.json").unlink()  # ... even before trigger.json
    # ... and one killed while its MCAP was being written.
    partial = folder.with_name(folder.name + "_2" + TMP_MARK + "def456")
    shutil.copytree(complete, partial)
    mcap = next(partial.glob("*.mcap"))
    mcap.write_bytes(mcap.read_bytes()[: mcap.stat().st_size // 2])
    assert verify_snapshot(complete) == "" and verify_snapshot(partial) != ""

    w = SnapshotWriter(settings(tmp_path), make_buffer())
    try:
        notices = {n.outcome: n for n in w.drain_notices()}
        assert set(notices) == {"recovered", "lost"}
        assert notices["recovered"].path == folder and not notices["recovered"].lost_data
        assert "trigger.json rebuilt" in notices["recovered"].reason
        assert partial.name in notices["lost"].reason and "deleted" in notices["lost"].reason
        assert complete_snapshots(tmp_path / "snapshots") == [folder]
        assert {f.name: f.read_bytes() for f in folder.glob("*.mcap")} == before
        assert sum(len(v) for v in read_rosbag(folder).values()) > 0
        assert (folder / "trigger.json").is_file()
        status = w.status()
        assert status.snapshots_on_disk == 1 and status.snapshots_lost == 1
        assert w.drain_notices() == []
    finally:
        w.close()


def test_deletions_and_refusals_are_notices_and_counted(
    tmp_path: Path, writer_factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    rb = big_buffer()
    s = settings(tmp_path, pre_s=2.0, post_s=0.0, compression="none", quota_count=2)
    w = writer_factory(s, rb)
    results = snapshot_every(w, rb, 4)
    deleted = w.drain_notices()
    assert [n.outcome for n in deleted] == ["deleted", "deleted"]
    assert [n.name for n in deleted] == [r.path.name for r in results[:2] if r.path is not None]
    assert all("quota_count 2" in n.reason for n in deleted)
    assert w.status().snapshots_deleted == 2

    class Usage:
        total, used, free = 10**10, 10**10 - 10**8, 10**8  # 100 MB free, 1 GB required

    monkeypatch.setattr(shutil, "disk_usage", lambda _path: Usage())
    w = writer_factory(settings(tmp_path / "b", pre_s=2.0, post_s=0.0, min_free_bytes=10**9), rb)
    result = w.trigger({"kind": "late"}, T0 + 2 * S)
    assert result.accepted and "may" not in result.answer()
    assert "unless the quota or free-space check then refuses it" in result.answer()
    assert w.flush(30)
    (refused,) = w.drain_notices()
    assert refused.outcome == "refused" and refused.lost_data
    assert result.path is not None and refused.name == result.path.name
    assert "bytes free" in refused.reason and "capture stopped" in refused.reason
    assert not result.path.exists()
    status = w.status()
    assert (status.snapshots_refused, status.snapshots_deleted) == (1, 0)


def test_answers_say_what_will_happen() -> None:
    refused = TriggerResult("cooldown", None, "cooldown_s 30: 12 s left")
    assert refused.answer() == "cooldown: cooldown_s 30: 12 s left"
    started = TriggerResult("started", Path("/s/x"), "snapshot x started")
    assert started.answer().startswith("queued: /s/x; written when its post window ends, unless")


def test_refused_triggers_reach_the_log_once_per_outcome_and_period() -> None:
    log = RefusalLog(period_ns=10 * S)

    def refusal(t: int, outcome: str = "cooldown") -> Event:
        details = {"outcome": outcome, "trigger": "manual"}
        return Event("snapshot", "capture", Severity.OK, f"not taken ({outcome})", t, details)

    lines = [log.line(refusal(T0 + k * 100 * MS)) for k in range(25)]
    assert lines[0] == "not taken (cooldown)" and lines[1:] == [None] * 24
    assert log.line(refusal(T0 + 200 * MS, "rate")) == "not taken (rate)"  # per outcome
    assert log.line(refusal(T0 + 11 * S)) == (
        "not taken (cooldown) (24 more 'cooldown' refusals not logged before this one)"
    )
    other = Event("snapshot", "capture", Severity.WARN, "snapshot refused: x", T0, {"outcome": "refused"})
    assert log.line(other) == log.line(other) == "snapshot refused: x"  # writer notices: every one
    assert log.line(refusal(T0)) == "not taken (cooldown)"  # the clock went back: logged afresh


def test_snapshot_files_ignore_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        folder = one_snapshot(tmp_path / "deep")
    finally:
        os.umask(old)
    for path in (tmp_path / "deep", tmp_path / "deep" / "snapshots", folder):
        assert stat.S_IMODE(path.stat().st_mode) == 0o750, path
    files = list(folder.iterdir())
    assert {f.name.rsplit(".", 1)[-1] for f in files} == {"mcap", "yaml", "json"}
    for f in files:
        assert stat.S_IMODE(f.stat().st_mode) == 0o640, f
