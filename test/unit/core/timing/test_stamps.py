"""timing.py: synthetic streams with known faults, and the real recordings."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pytest

from gap_monitor.core.io import cdr
from gap_monitor.core.io.recordings import open_recording
from gap_monitor.core.timing.stamps import (
    Finding,
    Severity,
    StreamTiming,
    TimingLimits,
    TimingSettings,
    TimingTracker,
    worst_finding,
)

NS = 1_000_000_000
MS = 1_000_000
T0 = 1_700_000_000 * NS


def make_stream(
    rate_hz: float,
    seconds: float,
    *,
    stamp_jitter: float = 0.01,  # std, as a fraction of the period
    latency_ms: float = 2.0,
    latency_jitter_ms: float = 1.0,  # exponential scale: delivery is never early
    hiccups: float = 0.005,  # fraction of messages held up 20 ms by the scheduler
    drop: Iterable[int] = (),
    start_ns: int = T0,
    seed: int = 0,
) -> list[tuple[int, int]]:
    """(stamp, receipt) pairs of a sensor stream with realistic delivery jitter."""
    rng = np.random.default_rng(seed)
    n = int(rate_hz * seconds)
    period = NS / rate_hz
    stamps = start_ns + np.round(np.arange(n) * period + rng.normal(0, stamp_jitter * period, n))
    latency = latency_ms * MS + rng.exponential(latency_jitter_ms * MS, n)
    latency += np.where(rng.random(n) < hiccups, 20 * MS, 0)
    receipts = np.maximum.accumulate(stamps + latency)  # one connection delivers in order
    dropped = set(drop)
    pairs = zip(stamps, receipts, strict=True)
    return [(int(s), int(r)) for i, (s, r) in enumerate(pairs) if i not in dropped]


def feed(timing: StreamTiming, pairs: Iterable[tuple[int | None, int]]) -> StreamTiming:
    for stamp, receipt in pairs:
        timing.observe(stamp, receipt)
    return timing


def levels(findings: Sequence[Finding]) -> dict[str, Severity]:
    return {f.check: f.level for f in findings}


def problems(findings: Sequence[Finding]) -> list[str]:
    return [f"{f.level.name} {f.message}" for f in findings if f.level != Severity.OK]


@pytest.mark.parametrize("rate", [10.0, 30.0, 100.0, 200.0, 1000.0])
@pytest.mark.parametrize("expected", [True, False], ids=["expected", "median"])
def test_clean_streams_raise_no_alarm(rate: float, expected: bool) -> None:
    seconds = 12 if rate < 500 else 4
    pairs = make_stream(rate, seconds, seed=int(rate))
    timing = feed(StreamTiming(rate if expected else None, name="/sensor"), pairs)
    findings = timing.assess(now_ns=pairs[-1][1] + int(NS / rate))
    assert problems(findings) == []
    s = timing.summary()
    assert s.gaps == 0 and s.total_gaps == 0 and s.clock_jumps == 0
    assert s.rate_hz == pytest.approx(rate, rel=0.01)
    assert s.period_median_ms == pytest.approx(1000 / rate, rel=0.01)
    assert {f.check for f in findings} >= {"rate", "jitter", "gaps", "stamps", "latency", "silence"}


def test_measured_numbers_match_the_generated_stream() -> None:
    pairs = make_stream(50.0, 10, stamp_jitter=0.02, seed=3)
    stamps = np.array([p[0] for p in pairs])
    latency = np.array([p[1] - p[0] for p in pairs]) / MS
    periods = np.diff(stamps) / MS
    s = feed(StreamTiming(50.0, TimingSettings(window_s=30)), pairs).summary()
    assert s.messages == len(pairs)
    assert s.period_median_ms == pytest.approx(np.median(periods), abs=1e-6)
    assert s.jitter_std_ms == pytest.approx(np.std(periods), abs=1e-6)
    p95 = np.percentile(np.abs(periods - np.median(periods)), 95)
    assert s.jitter_p95_ms == pytest.approx(p95, abs=1e-6)
    assert s.latency_median_ms == pytest.approx(np.median(latency), abs=1e-6)
    assert s.latency_p95_ms == pytest.approx(np.percentile(latency, 95), abs=1e-6)
    assert s.future_stamps == 0 and s.non_monotonic == 0


@pytest.mark.parametrize("expected", [True, False], ids=["expected", "median"])
def test_dropped_messages_are_counted_as_gaps(expected: bool) -> None:
    drop = [100, 200, 201, *range(500, 510)]
    pairs = make_stream(100.0, 10, drop=drop, seed=5)
    timing = feed(StreamTiming(100.0 if expected else None, name="/imu"), pairs)
    s = timing.summary()
    assert (s.gaps, s.missed_messages) == (3, 13)
    assert s.longest_gap_ms == pytest.approx(110, abs=2)
    found = {f.check: f for f in timing.assess()}
    assert found["gaps"].level == Severity.WARN  # 13 of 1000 missing: below the 5 % error limit
    assert "3 gap(s)" in found["gaps"].message and "~13 message(s)" in found["gaps"].message
    assert levels(timing.assess())["jitter"] == Severity.OK  # gaps are not jitter


def test_many_dropped_messages_are_an_error() -> None:
    drop = [i for i in range(1000) if i % 10 == 5]  # 10 % lost
    timing = feed(StreamTiming(100.0), make_stream(100.0, 10, drop=drop))
    assert levels(timing.assess())["gaps"] == Severity.ERROR
    assert timing.summary().missed_messages == pytest.approx(100, abs=1)


@pytest.mark.parametrize(
    ("actual", "level"), [(30.5, Severity.OK), (25.0, Severity.WARN), (12.0, Severity.ERROR)]
)
def test_rate_against_expected(actual: float, level: Severity) -> None:
    timing = feed(StreamTiming(30.0, name="/cam"), make_stream(actual, 10))
    found = {f.check: f for f in timing.assess()}
    assert found["rate"].level == level
    assert "expected 30 Hz" in found["rate"].message
    assert found["rate"].values["rate_hz"] == pytest.approx(actual, rel=0.01)


def periodic_stamps(periods_ms: Sequence[float], repeat: int) -> list[tuple[int, int]]:
    stamps = T0 + np.cumsum(np.tile(np.asarray(periods_ms) * MS, repeat)).astype(np.int64)
    return [(int(s), int(s) + 3 * MS) for s in stamps]


def test_jitter_levels() -> None:
    warn = feed(StreamTiming(100.0), periodic_stamps([7, 10, 13], 300))  # +-30 %
    assert levels(warn.assess())["jitter"] == Severity.WARN
    assert warn.summary().jitter_p95_ms == pytest.approx(3.0, abs=1e-6)
    # An extra message 4 ms after every third: 60 % deviation, without any gap.
    error = feed(StreamTiming(100.0), periodic_stamps([10, 10, 10, 4, 6], 300))
    assert levels(error.assess())["jitter"] == Severity.ERROR
    assert error.summary().gaps == 0


def test_late_message_counts_as_reordered_not_as_a_gap() -> None:
    pairs = make_stream(100.0, 5, latency_jitter_ms=0.1, hiccups=0)
    pairs[200], pairs[201] = (pairs[201][0], pairs[200][1]), (pairs[200][0], pairs[201][1])
    timing = feed(StreamTiming(100.0), pairs)
    s = timing.summary()
    assert (s.non_monotonic, s.gaps, s.total_gaps) == (1, 0, 0)
    found = levels(timing.assess())
    assert found["stamps"] == Severity.WARN and found["gaps"] == Severity.OK


def test_duplicate_and_zero_stamps() -> None:
    pairs: list[tuple[int | None, int]] = list(make_stream(100.0, 5))
    pairs[50] = (pairs[49][0], pairs[50][1])
    for i in (100, 300, 301):
        pairs[i] = (0, pairs[i][1])
    timing = feed(StreamTiming(100.0, name="/odom"), pairs)
    s = timing.summary()
    assert (s.duplicate_stamps, s.zero_stamps, s.total_zero_stamps) == (1, 3, 3)
    stamps = next(f for f in timing.assess() if f.check == "stamps")
    assert stamps.level == Severity.WARN
    assert "1 repeated" in stamps.message and "3 zero" in stamps.message
    assert s.gaps == 0  # those messages arrived: their bad stamps are no missing messages
    pairs[400] = (0, pairs[400][1])
    pairs.pop(401)  # lost next to a zero stamp: still one missing message
    s = feed(StreamTiming(100.0), pairs).summary()
    assert (s.gaps, s.missed_messages) == (1, 1)


@pytest.mark.parametrize(("ahead_ms", "level"), [(0.5, None), (5.0, Severity.WARN),
                                                 (2000.0, Severity.ERROR)])
def test_stamps_ahead_of_receipt(ahead_ms: float, level: Severity | None) -> None:
    pairs = [(s, s - int(ahead_ms * MS)) for s, _ in make_stream(100.0, 3)]
    timing = feed(StreamTiming(100.0), pairs)
    s = timing.summary()
    assert s.latency_median_ms == pytest.approx(-ahead_ms, abs=1e-6)
    found = levels(timing.assess())
    if level is None:  # within the 1 ms tolerance
        assert "future" not in found and s.future_stamps == 0
    else:
        assert found["future"] == level and s.future_stamps == s.messages
        assert s.max_future_ms == pytest.approx(ahead_ms, abs=1e-6)


def test_sim_time_restart_resets_instead_of_alarming() -> None:
    before = make_stream(100.0, 5, start_ns=100 * NS)
    after = make_stream(100.0, 5, start_ns=1 * NS, seed=1)  # /clock restarted
    timing = feed(StreamTiming(100.0), before + after)
    s = timing.summary()
    assert s.clock_jumps == 1 and "went back" in (s.last_clock_jump or "")
    assert s.messages == len(after) and s.total_messages == len(before) + len(after)
    assert (s.gaps, s.non_monotonic, s.total_non_monotonic, s.total_gaps) == (0, 0, 0, 0)
    findings = timing.assess()
    assert problems(findings) == []
    assert levels(findings)["clock"] == Severity.OK


def test_receipt_clock_step_detected_with_steady_clock() -> None:
    pairs = make_stream(100.0, 4)
    timing = StreamTiming(100.0)
    for i, (stamp, receipt) in enumerate(pairs):
        step = 60 * NS if i >= 200 else 0  # wall clock set forward; stamps on the same clock
        timing.observe(stamp + step, receipt + step, steady_ns=receipt - T0)
    s = timing.summary()
    assert s.clock_jumps == 1 and "steady clock" in (s.last_clock_jump or "")
    assert s.total_gaps == 0 and problems(timing.assess()) == []


def test_real_outage_is_a_gap_not_a_clock_jump() -> None:
    pairs = make_stream(100.0, 4)
    outage = [(s + 2 * NS, r + 2 * NS) for s, r in pairs[200:]]  # both clocks agree: 2 s silent
    timing = feed(StreamTiming(100.0), pairs[:200] + outage)
    s = timing.summary()
    assert s.clock_jumps == 0
    assert s.gaps == 1 and s.longest_gap_ms == pytest.approx(2010, abs=2)
    assert levels(timing.assess())["gaps"] == Severity.ERROR


@pytest.mark.parametrize("step_s", [30.0, -30.0])
def test_sensor_clock_step_against_receipt_is_a_jump(step_s: float) -> None:
    pairs = make_stream(100.0, 4)
    stepped = [(s + int(step_s * NS), r) for s, r in pairs[200:]]
    timing = feed(StreamTiming(100.0), pairs[:200] + stepped)
    s = timing.summary()
    assert s.clock_jumps == 1 and "header stamps stepped" in (s.last_clock_jump or "")
    assert (s.total_gaps, s.total_non_monotonic) == (0, 0)


def test_headerless_stream_is_timed_by_receipt() -> None:
    receipts = [r for _, r in make_stream(20.0, 10, drop=[50, 51, 52])]
    timing = feed(StreamTiming(20.0, name="/flag"), [(None, r) for r in receipts])
    s = timing.summary()
    assert s.missing_stamps == s.messages == len(receipts)
    assert s.gaps == 1 and s.missed_messages == 3
    assert s.latency_median_ms is None
    assert "stamps" not in levels(timing.assess())


def test_silence_is_judged_against_now() -> None:
    pairs = make_stream(100.0, 3)
    timing = feed(StreamTiming(100.0), pairs)
    last = pairs[-1][1]
    assert levels(timing.assess(now_ns=last + 15 * MS))["silence"] == Severity.OK
    assert levels(timing.assess(now_ns=last + 50 * MS))["silence"] == Severity.WARN
    late = timing.assess(now_ns=last + 2 * NS)
    assert levels(late)["silence"] == Severity.ERROR
    assert "2000.0 ms ago" in next(f.message for f in late if f.check == "silence")


def test_memory_is_bounded_by_window_and_cap() -> None:
    pairs = make_stream(1000.0, 30, hiccups=0)
    windowed = feed(StreamTiming(1000.0, TimingSettings(window_s=2.0)), pairs).summary()
    assert windowed.total_messages == len(pairs)
    assert 1990 <= windowed.messages <= 2001 and windowed.window_s <= 2.0
    capped = feed(StreamTiming(1000.0, TimingSettings(max_samples=500)), pairs).summary()
    assert capped.messages == 500


def test_few_messages_only_collect() -> None:
    timing = feed(StreamTiming(10.0), make_stream(10.0, 0.5))
    findings = timing.assess()
    assert [f.check for f in findings] == ["rate"] and "collecting" in findings[0].message


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"window_s": 0}, "window_s"), ({"max_samples": 5}, "max_samples"),
     ({"gap_factor": 1.0}, "gap_factor"), ({"min_periods": 0}, "min_periods"),
     ({"future_tolerance_ms": -1}, "future_tolerance_ms"),
     ({"clock_jump_back_s": float("nan")}, "clock_jump_back_s"),
     ({"clock_jump_step_s": 0}, "clock_jump_step_s")],
)
def test_settings_are_validated(kwargs: dict[str, float], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        TimingSettings(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"rate_warn_pct": -1}, "rate_warn_pct"), ({"gaps_warn": 0}, "gaps_warn"),
     ({"rate_warn_pct": 60.0}, "rate_warn_pct = 60.0 must not exceed rate_error_pct"),
     ({"min_messages": 1}, "min_messages"),
     ({"latency_warn_ms": 50.0, "latency_error_ms": 10.0}, "latency_warn_ms")],
)
def test_limits_are_validated(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        TimingLimits(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="expected_rate_hz"):
        StreamTiming(0.0)


def test_worst_finding_names_the_worst_or_the_first_two_when_all_ok() -> None:
    ok = [Finding(Severity.OK, "/imu", c, f"/imu: {c} fine") for c in ("rate", "gaps", "latency")]
    assert worst_finding([]) == (Severity.OK, "collecting")
    assert worst_finding(ok) == (Severity.OK, "/imu: rate fine; /imu: gaps fine")
    warn = [Finding(Severity.WARN, "/imu", c, f"/imu: {c} off") for c in ("jitter", "future")]
    assert worst_finding([*ok, *warn]) == (Severity.WARN, "/imu: jitter off; /imu: future off")
    error = Finding(Severity.ERROR, "/imu", "gaps", "/imu: many gaps")
    assert worst_finding([*warn, error]) == (Severity.ERROR, "/imu: many gaps")


def test_tracker_separates_sensors_sharing_a_topic() -> None:
    left = make_stream(30.0, 10, seed=1)
    right = make_stream(30.0, 10, seed=2)
    events = sorted([(r, s, "left") for s, r in left] + [(r, s, "right") for s, r in right])
    grouped = TimingTracker({"/stereo": 30.0})
    mixed = TimingTracker({"/stereo": 60.0}, group_by_frame=False)
    for receipt, stamp, frame in events:
        grouped.observe("/stereo", stamp, receipt, frame_id=frame)
        mixed.observe("/stereo", stamp, receipt, frame_id=frame)
    assert set(grouped.streams()) == {("/stereo", "left"), ("/stereo", "right")}
    assert problems(grouped.assess()) == []
    assert {f.subject for f in grouped.assess()} == {"/stereo [left]", "/stereo [right]"}
    # Interleaved, the two sensors' stamps go back and forth: that is what grouping avoids.
    assert set(mixed.streams()) == {("/stereo", "")}
    assert mixed.summaries()[("/stereo", "")].non_monotonic > 0


def test_tracker_rates_limits_overflow_and_clock_jumps() -> None:
    tracker = TimingTracker({"/cams": 30.0, ("/cams", "ir"): 15.0}, max_frames_per_topic=2)
    for frame in ("rgb", "ir", "depth", "extra"):
        tracker.observe("/cams", T0, T0, frame_id=frame)
    streams = tracker.streams()
    assert set(streams) == {("/cams", "rgb"), ("/cams", "ir"), ("/cams", "*")}
    assert streams[("/cams", "ir")].expected_rate_hz == 15.0
    assert streams[("/cams", "rgb")].expected_rate_hz == 30.0
    tracker.note_clock_jump("ROS time jumped")
    assert all(s.clock_jumps == 1 for s in tracker.summaries().values())
    strict = TimingLimits(min_messages=100)
    findings = tracker.assess({"/cams": strict})
    assert all("of 100 messages" in f.message for f in findings if f.check == "rate")
    with pytest.raises(ValueError, match="expected_rates"):
        TimingTracker({"/x": -1.0})


def test_euroc_imu_period_is_5_ms_and_cameras_50_ms(real_data_dir: Path) -> None:
    tracker = TimingTracker(
        {"/imu0": 200.0, "/cam0/image_raw": 20.0, "/cam1/image_raw/compressed": 20.0},
        TimingSettings(window_s=30.0),
    )
    with open_recording(real_data_dir / "euroc_mh01_micro_ros2") as rec:
        for m in rec.messages():
            tracker.observe(m.topic, cdr.header_stamp_ns(m.data), m.log_time_ns,
                            frame_id=cdr.header_frame_id(m.data))
    summaries = {topic: s for (topic, _), s in tracker.summaries().items()}
    imu = summaries["/imu0"]
    assert imu.period_median_ms == pytest.approx(5.0, abs=1e-3)
    assert imu.jitter_max_ms is not None and imu.jitter_max_ms < 0.001
    assert imu.total_gaps == 0 and imu.rate_hz == pytest.approx(200.0, rel=1e-3)
    for cam in ("/cam0/image_raw", "/cam1/image_raw/compressed"):
        assert summaries[cam].period_median_ms == pytest.approx(50.0, abs=1e-3)
        assert summaries[cam].messages == 95
    assert problems(tracker.assess()) == []


def test_kuka_stamps_ahead_of_log_time_and_receipt_jitter(real_data_dir: Path) -> None:
    timing = StreamTiming(100.0, TimingSettings(window_s=60.0), name="/joint_states")
    with open_recording(real_data_dir / "kuka_lwr_joint_states_ros2") as rec:
        for m in rec.messages():
            timing.observe(cdr.header_stamp_ns(m.data), m.log_time_ns)
    s = timing.summary()
    assert s.messages == 4101
    # README: header stamps ~4.4 ms ahead of log time; spacing exactly 10 ms; log times 8-12 ms.
    assert s.latency_median_ms == pytest.approx(-4.4, abs=0.1)
    assert s.period_median_ms == pytest.approx(10.0, abs=1e-3)
    assert s.jitter_max_ms is not None and s.jitter_max_ms < 0.01
    assert s.receipt_period_median_ms == pytest.approx(10.0, abs=0.05)
    assert s.receipt_jitter_max_ms == pytest.approx(2.0, abs=0.3)
    assert s.total_gaps == 0
    found = {f.check: f for f in timing.assess()}
    assert found["future"].level == Severity.WARN  # a real clock offset between two machines
    assert "4101 of 4101" in found["future"].message
    assert all(found[c].level == Severity.OK for c in ("rate", "jitter", "gaps", "stamps"))


# --- summary fast path: the same figures as the straightforward computation ----------------------


def _reference_columns(st: StreamTiming, horizon: int) -> tuple[np.ndarray, ...]:
    """The window's columns as summary() computed them before it cached an int64 table: one
    Python pass per column over the held records (a record without a usable stamp has no latency)."""
    records = [r for r in st.records if r[0] >= horizon]
    no_latency = 1 | 2  # _NO_STAMP | _ZERO
    periods = np.fromiter((r[1] for r in records if r[1] > 0), np.int64)
    intervals = np.fromiter((r[2] for r in records if r[2] >= 0), np.int64)
    latencies = np.fromiter((r[3] for r in records if not r[4] & no_latency), np.int64)
    flags = np.fromiter((r[4] for r in records), np.int64, len(records))
    return periods, intervals, latencies, flags


def _reference_summary_values(st: StreamTiming, now_ns: int) -> dict[str, object]:
    horizon = now_ns - st.window_ns
    periods, intervals, latencies, flags = _reference_columns(st, horizon)
    records = [r for r in st.records if r[0] >= horizon]
    future = [-r[3] for r in records if r[4] & 4 and not r[4] & 3]

    def spread(values: np.ndarray) -> tuple[float, ...] | None:
        if len(values) < 2:
            return None
        median = float(np.median(values))
        dev = np.abs(values - median)
        return (median / MS, float(np.std(values)) / MS, float(np.percentile(dev, 95)) / MS,
                float(dev.max()) / MS)

    span = records[-1][0] - records[0][0] if len(records) >= 2 else 0
    return {
        "messages": len(records),
        "window_s": span / NS,
        "period": spread(periods),
        "receipt": spread(intervals),
        "non_monotonic": int(np.count_nonzero(flags & 8)),
        "duplicate_stamps": int(np.count_nonzero(flags & 16)),
        "zero_stamps": int(np.count_nonzero(flags & 2)),
        "missing_stamps": int(np.count_nonzero(flags & 1)),
        "future_stamps": len(future),
        "max_future_ms": max(future) / MS if future else None,
        "latency_median_ms": float(np.median(latencies)) / MS if len(latencies) else None,
        "latency_p95_ms": float(np.percentile(latencies, 95)) / MS if len(latencies) else None,
    }


def _summary_values(st: StreamTiming, now_ns: int) -> dict[str, object]:
    s = st.summary(now_ns)
    period = None if s.period_median_ms is None else (
        s.period_median_ms, s.jitter_std_ms, s.jitter_p95_ms, s.jitter_max_ms)
    receipt = None if s.receipt_period_median_ms is None else (
        s.receipt_period_median_ms, s.receipt_jitter_std_ms, s.receipt_jitter_p95_ms,
        s.receipt_jitter_max_ms)
    return {
        "messages": s.messages,
        "window_s": s.window_s,
        "period": period,
        "receipt": receipt,
        "non_monotonic": s.non_monotonic,
        "duplicate_stamps": s.duplicate_stamps,
        "zero_stamps": s.zero_stamps,
        "missing_stamps": s.missing_stamps,
        "future_stamps": s.future_stamps,
        "max_future_ms": s.max_future_ms,
        "latency_median_ms": s.latency_median_ms,
        "latency_p95_ms": s.latency_p95_ms,
    }


@pytest.mark.parametrize("seed", range(6))
def test_summary_matches_the_reference_computation_on_messy_streams(seed: int) -> None:
    """Summaries between messages (the cached table grows, is trimmed, is rebuilt after resets and
    after the sample cap) equal the plain per-record computation, value for value."""
    rng = np.random.default_rng(seed)
    st = StreamTiming(200.0, TimingSettings(window_s=1.0, max_samples=150 + 100 * seed))
    stamp, receipt, steady = T0, T0 + 2 * MS, 0
    compared = 0
    for _ in range(3000):
        kind = rng.random()
        step = int(5 * MS * rng.uniform(0.5, 1.5))
        steady += step
        receipt += step
        if rng.random() < 0.01:
            receipt -= int(3 * MS)  # small receipt step back: records not sorted by receipt
        stamp += step if rng.random() > 0.02 else 40 * MS  # gaps
        given: int | None = stamp
        if kind < 0.03:
            given = None
        elif kind < 0.06:
            given = 0
        elif kind < 0.08:
            given = stamp - int(12 * MS)  # late, non-monotonic
        elif kind < 0.1:
            given = receipt + int(50 * MS)  # from the future
        st.observe(given, receipt + int(rng.exponential(MS)), steady)
        if rng.random() < 0.002:
            st.reset("test")
        if rng.random() < 0.05:
            now = receipt + int(rng.uniform(0, 1.5) * NS)
            assert _summary_values(st, now) == _reference_summary_values(st, now)
            compared += 1
    assert compared > 50
