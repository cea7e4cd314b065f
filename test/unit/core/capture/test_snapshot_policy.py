"""Capture policy: trigger windows and extensions, cooldown, rate, names, quotas, free space, settings."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from snapshot_helpers import (
    IMU_PERIOD,
    MS,
    T0,
    Factory,
    S,
    big_buffer,
    complete_snapshots,
    fake_clock_writers,
    make_buffer,
    mcap_contents,
    read_rosbag,
    run_rig,
    settings,
    snapshot_every,
)

from gap_monitor.core.capture.policy import (
    TMP_MARK,
    RefusedError,
    SnapshotSettings,
    StartLimits,
    check_ring_buffer,
    check_size,
    estimate_bytes,
    is_snapshot_name,
    is_temporary_name,
    over_quota,
    room_needed,
    snapshot_name,
)


@pytest.fixture
def writer_factory() -> Iterator[Factory]:
    with fake_clock_writers() as make:
        yield make


# -- windows, cooldown, rate, names -------------------------------------------------------------


def test_trigger_in_the_post_window_extends_the_same_snapshot(
    tmp_path: Path, writer_factory: Factory
) -> None:
    rb = make_buffer()
    w = writer_factory(settings(tmp_path), rb)
    first, second = T0 + 5 * S, T0 + 5 * S + 700 * MS
    results = run_rig(
        rb,
        w,
        T0,
        T0 + 9 * S,
        {first: {"kind": "novel_condition"}, second: {"kind": "action_aborted", "reason": "B"}},
    )
    assert [r.outcome for r in results] == ["started", "extended"]
    assert results[0].path == results[1].path
    assert w.flush(30)
    (folder,) = complete_snapshots(tmp_path / "snapshots")
    imu_times = [t for t, _ in read_rosbag(folder)["/imu"]]
    assert first - 2 * S <= imu_times[0] < first - 2 * S + IMU_PERIOD
    # The post window now ends post_s after the second trigger.
    assert second + 1 * S - IMU_PERIOD < imu_times[-1] <= second + 1 * S
    kinds = [md["kind"] for n, md in mcap_contents(folder)["metadata"] if n == "gap_monitor.trigger"]
    assert kinds == ["novel_condition", "action_aborted"]
    sidecar = json.loads((folder / "trigger.json").read_text())
    assert [t["trigger_ns"] for t in sidecar["triggers"]] == [first, second]


def test_extensions_stop_at_max_post_s(tmp_path: Path, writer_factory: Factory) -> None:
    rb = make_buffer()
    w = writer_factory(settings(tmp_path, post_s=1.0, max_post_s=2.0), rb)
    first = T0 + 5 * S
    trig = {first + k * 500 * MS: {"kind": "k"} for k in range(8)}  # one every 0.5 s for 4 s
    results = run_rig(rb, w, T0, T0 + 12 * S, trig)
    assert results[0].outcome == "started"
    assert w.flush(30)
    folders = complete_snapshots(tmp_path / "snapshots")
    imu_times = [t for t, _ in read_rosbag(folders[0])["/imu"]]
    assert first + 2 * S - IMU_PERIOD < imu_times[-1] <= first + 2 * S
    # Triggers after the capped end start a new snapshot (cooldown 0).
    assert len(folders) == 2


def test_burst_inside_the_post_window_gives_one_file(tmp_path: Path, writer_factory: Factory) -> None:
    rb = make_buffer()
    w = writer_factory(settings(tmp_path, post_s=5.0, cooldown_s=60.0), rb)
    burst = {T0 + 3 * S + k * 100 * MS: {"kind": "novel", "n": k} for k in range(10)}
    results = run_rig(rb, w, T0, T0 + 10 * S, burst)
    assert [r.outcome for r in results] == ["started"] + ["extended"] * 9
    assert w.flush(30)
    (folder,) = complete_snapshots(tmp_path / "snapshots")
    records = [md for n, md in mcap_contents(folder)["metadata"] if n == "gap_monitor.trigger"]
    assert [int(md["n"]) for md in records] == list(range(10))


def test_burst_after_short_post_windows_follows_the_cooldown(tmp_path: Path, writer_factory: Factory) -> None:
    # post 0.05 s, cooldown 0.3 s after a post window closes; triggers every 0.1 s from t=0:
    # 0.0 starts (closes 0.05, free again at 0.35), 0.1-0.3 cooldown, 0.4 starts (closes 0.45,
    # free at 0.75), 0.5-0.7 cooldown, 0.8 starts, 0.9 cooldown.
    rb = make_buffer()
    w = writer_factory(settings(tmp_path, pre_s=0.5, post_s=0.05, cooldown_s=0.3), rb)
    base = T0 + 3 * S
    burst = {base + k * 100 * MS: {"kind": "novel"} for k in range(10)}
    results = run_rig(rb, w, T0, T0 + 5 * S, burst)
    one_cycle = ["started", "cooldown", "cooldown", "cooldown"]
    assert [r.outcome for r in results] == one_cycle * 2 + ["started", "cooldown"]
    assert all(r.path is None and "cooldown" in r.reason for r in results if not r.accepted)
    assert w.flush(30)
    assert len(complete_snapshots(tmp_path / "snapshots")) == 3
    assert w.status().triggers_rejected == 7


def test_burst_is_limited_by_max_per_hour(tmp_path: Path, writer_factory: Factory) -> None:
    rb = make_buffer()
    w = writer_factory(settings(tmp_path, pre_s=0.5, post_s=0.05, max_per_hour=2), rb)
    base = T0 + 3 * S
    burst = {base + k * 100 * MS: {"kind": "novel"} for k in range(10)}
    results = run_rig(rb, w, T0, T0 + 5 * S, burst)
    assert [r.outcome for r in results] == ["started"] * 2 + ["rate"] * 8
    # An hour later the rate allows snapshots again.
    later = base + 3600 * S
    assert w.trigger({"kind": "novel"}, later).outcome == "started"
    w.close(later + 1 * S, timeout_s=30)
    assert len(complete_snapshots(tmp_path / "snapshots")) == 3


def test_clock_jump_back_restarts_cooldown_and_rate(tmp_path: Path, writer_factory: Factory) -> None:
    rb = make_buffer()
    w = writer_factory(settings(tmp_path, post_s=5.0, cooldown_s=600.0, max_per_hour=1), rb)
    run_rig(rb, w, T0, T0 + 3 * S, {T0 + 2 * S: {"kind": "before_jump"}})
    assert w.status().collecting
    # Sim time restarts 1000 s earlier: the open snapshot is closed as it is, limits restart.
    restart = T0 - 1000 * S
    assert w.trigger({"kind": "after_jump"}, restart).outcome == "started"
    w.close(restart + 2 * S, timeout_s=30)
    folders = complete_snapshots(tmp_path / "snapshots")
    assert len(folders) == 2
    flags = {json.loads((f / "trigger.json").read_text())["triggers"][0]["event"]["kind"]: f for f in folders}
    assert json.loads((flags["before_jump"] / "trigger.json").read_text())["truncated"] is True


def test_names_are_sanitised_and_unique(tmp_path: Path, writer_factory: Factory) -> None:
    rb = make_buffer()
    w = writer_factory(settings(tmp_path, pre_s=0.2, post_s=0.0), rb)
    run_rig(rb, w, T0, T0 + 1 * S)
    a = w.trigger({"kind": "Novel Condition / ../../etc"}, T0 + 1 * S)
    b = w.trigger({"kind": "Novel Condition / ../../etc"}, T0 + 1 * S + 10 * MS)
    c = w.trigger({"reason": "no kind given"}, T0 + 1 * S + 20 * MS)
    assert w.flush(30)
    assert a.path is not None and b.path is not None and c.path is not None
    assert a.path.name == "20251121T053013Z_novel_condition_etc"
    assert b.path.name != a.path.name and b.path.name.startswith(a.path.name)
    assert c.path.name == "20251121T053013Z_trigger"
    for p in (a.path, b.path, c.path):
        assert p.parent == tmp_path / "snapshots"
        assert re.fullmatch(r"\d{8}T\d{6}Z_[a-z0-9_]+", p.name)
        assert p.is_dir()


def test_check_ring_buffer_reports_windows_shorter_than_pre_s(tmp_path: Path) -> None:
    rb = make_buffer(window_s=1.0)
    rb.add_topic("/long", "sensor_msgs/msg/Imu", window_s=30.0)
    problems = check_ring_buffer(settings(tmp_path, pre_s=2.0), rb)
    assert len(problems) == 2
    assert any("/imu" in p for p in problems) and any("/camera/image" in p for p in problems)


def test_window_and_its_extension_stop_at_max_post_s(tmp_path: Path) -> None:
    s = settings(tmp_path, pre_s=2.0, post_s=1.0, max_post_s=3.0)
    assert s.window_ns(T0) == (T0 - 2 * S, T0 + 1 * S)
    assert s.extended_end_ns(T0, T0 + 1 * S, T0 + 500 * MS) == T0 + 1500 * MS
    assert s.extended_end_ns(T0, T0 + 2 * S, T0 + 100 * MS) == T0 + 2 * S  # never earlier
    assert s.extended_end_ns(T0, T0 + 2 * S, T0 + 5 * S) == T0 + 3 * S  # capped


def test_start_limits_cooldown_rate_and_clock_jump(tmp_path: Path) -> None:
    limits = StartLimits(settings(tmp_path, cooldown_s=10.0, max_per_hour=2))
    limits.observe(T0)
    assert limits.refusal(T0) is None
    limits.started(T0)
    limits.ended(T0 + 1 * S)
    refusal = limits.refusal(T0 + 5 * S)
    assert refusal is not None and refusal[0] == "cooldown" and "6 s left" in refusal[1]
    assert limits.refusal(T0 + 11 * S) is None
    limits.started(T0 + 11 * S)
    refusal = limits.refusal(T0 + 30 * S)
    assert refusal is not None and refusal[0] == "rate"
    assert limits.refusal(T0 + 3600 * S) is None  # the first start left the sliding hour
    # A jump back of up to a second is jitter; more means the clock restarted.
    limits.observe(T0 + 100 * S)
    assert not limits.jumped_back(T0 + 99 * S) and limits.jumped_back(T0 + 99 * S - 1)
    limits.restart()
    limits.observe(T0 - 1000 * S)
    assert limits.refusal(T0 - 1000 * S) is None and not limits.jumped_back(T0 - 1000 * S)


def test_folder_names(tmp_path: Path) -> None:
    name = snapshot_name(T0, "Novel Condition!", set())
    assert name == "20251121T053012Z_novel_condition"
    assert snapshot_name(T0, "Novel Condition!", {name, name + "_2"}) == name + "_3"
    assert snapshot_name(T0, "///", set()) == "20251121T053012Z_trigger"
    assert is_snapshot_name(name) and not is_temporary_name(name)
    assert is_temporary_name(name + TMP_MARK + "abc_123") and not is_snapshot_name(name + TMP_MARK + "abc")
    assert not is_snapshot_name("operator_notes")


# -- quotas and free space ----------------------------------------------------------------------


def test_quota_count_deletes_the_oldest(tmp_path: Path, writer_factory: Factory) -> None:
    rb = big_buffer()
    s = settings(tmp_path, pre_s=2.0, post_s=0.0, compression="none", quota_count=2)
    w = writer_factory(s, rb)
    results = snapshot_every(w, rb, 4)
    assert all(r.accepted for r in results)
    names = [p.name for p in complete_snapshots(s.output_dir)]
    assert names == [r.path.name for r in results[2:] if r.path is not None]
    st = w.status()
    assert st.snapshots_written == 4 and st.snapshots_on_disk == 2 and not st.capture_stopped


def test_quota_bytes_deletes_the_oldest(tmp_path: Path, writer_factory: Factory) -> None:
    rb = big_buffer()
    # 20 images of ~100 kB per snapshot: two fit in 5 MB, three do not.
    s = settings(tmp_path, pre_s=2.0, post_s=0.0, compression="none", quota_bytes=5_000_000)
    w = writer_factory(s, rb)
    results = snapshot_every(w, rb, 4)
    names = [p.name for p in complete_snapshots(s.output_dir)]
    assert names == [r.path.name for r in results[2:] if r.path is not None]
    used = sum(f.stat().st_size for p in complete_snapshots(s.output_dir) for f in p.iterdir())
    assert used <= 5_000_000
    assert w.status().bytes_used == used


def test_quota_stop_keeps_old_snapshots_and_stops(tmp_path: Path, writer_factory: Factory) -> None:
    rb = big_buffer()
    s = settings(tmp_path, pre_s=2.0, post_s=0.0, compression="none", quota_count=2, on_quota="stop")
    w = writer_factory(s, rb)
    results = snapshot_every(w, rb, 3)
    assert [r.outcome for r in results] == ["started", "started", "stopped"]
    assert len(complete_snapshots(s.output_dir)) == 2
    st = w.status()
    assert st.capture_stopped and st.stopped_reason is not None
    assert "quota_count" in st.stopped_reason


def test_low_free_space_stops_capture_with_a_reason(
    tmp_path: Path, writer_factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    rb = big_buffer()
    s = settings(tmp_path, pre_s=2.0, post_s=0.0, min_free_bytes=10**9)
    w = writer_factory(s, rb)

    class Usage:
        total, used, free = 10**10, 10**10 - 10**8, 10**8  # 100 MB free, 1 GB required

    monkeypatch.setattr(shutil, "disk_usage", lambda _path: Usage())
    (result,) = snapshot_every(w, rb, 1)
    assert result.accepted  # decided on the writer thread, not in the caller
    st = w.status()
    assert st.capture_stopped and st.stopped_reason is not None
    assert "min_free_bytes" in st.stopped_reason
    assert complete_snapshots(s.output_dir) == []
    assert w.trigger({"kind": "again"}, T0 + 50 * S).outcome == "stopped"


def test_estimate_scales_the_sample_to_the_window(tmp_path: Path) -> None:
    s = settings(tmp_path, pre_s=2.0, post_s=1.0)
    rb = make_buffer()
    for k in range(4):
        rb.push("/imu", T0 + k * MS, bytes(100))
    sample = rb.window(T0, T0 + 10 * MS, include_latched=False)
    # (100 + 64 bytes each) x 4 over 2 s, scaled to 3 s, plus the fixed overhead.
    assert estimate_bytes(s, sample, 2.0, []) == 164 * 4 * 3 // 2 + 64 * 1024


def test_room_needed_names_what_is_over_or_refuses(tmp_path: Path) -> None:
    s = settings(tmp_path, quota_count=2, quota_bytes=1000, min_free_bytes=100)
    kept = [("a", 300), ("b", 300)]
    assert room_needed(s, 100, kept, free_bytes=10_000) == "2 + 1 snapshots > quota_count 2"
    assert room_needed(s, 100, kept[:1], free_bytes=10_000) == ""
    assert room_needed(s, 800, kept[:1], free_bytes=10_000) == "300 + 800 bytes > quota_bytes 1000"
    assert room_needed(s, 100, kept[:1], free_bytes=150) == "150 bytes free, min_free_bytes 100"
    assert over_quota(s, kept, 0, 0) == ""
    with pytest.raises(RefusedError) as full:  # deleting every snapshot would not free enough
        room_needed(s, 100, kept[:1], free_bytes=-150)
    assert full.value.stop and "min_free_bytes 100" in full.value.reason
    with pytest.raises(RefusedError) as stop:
        room_needed(settings(tmp_path, quota_count=2, on_quota="stop"), 100, kept, free_bytes=10_000)
    assert stop.value.stop and "on_quota is 'stop'" in stop.value.reason
    with pytest.raises(RefusedError) as big:
        check_size(s, 1001)
    assert not big.value.stop and "exceeds quota_bytes 1000" in big.value.reason


# -- settings -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("pre_s", -1.0),
        ("post_s", "5"),
        ("cooldown_s", float("nan")),
        ("compression", "gzip"),
        ("on_quota", "ignore"),
        ("max_per_hour", 0),
        ("quota_bytes", 1.5),
        ("quota_count", True),
        ("min_free_bytes", -1),
        ("max_post_s", 0.5),
        ("output_dir", ""),
    ],
)
def test_settings_validation_names_field_value_and_allowed(tmp_path: Path, field: str, value: Any) -> None:
    with pytest.raises(ValueError) as info:
        settings(tmp_path, **{field: value})
    text = str(info.value)
    assert field in text and repr(value) in text and "allowed" in text


def test_settings_need_a_window_and_accept_str_paths(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="pre_s"):
        settings(tmp_path, pre_s=0.0, post_s=0.0)
    s = SnapshotSettings(output_dir=str(tmp_path))  # type: ignore[arg-type]
    assert s.output_dir == tmp_path
    assert (s.pre_s, s.post_s, s.compression) == (10.0, 5.0, "lz4")
