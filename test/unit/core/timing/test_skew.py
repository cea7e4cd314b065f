"""skew.py: injected offsets, drift, drops and clock jumps, and the real recordings."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

from gap_monitor.core.io import cdr
from gap_monitor.core.io.recordings import open_recording
from gap_monitor.core.timing.skew import (
    PairSkew,
    SkewLimits,
    SkewPair,
    SkewSettings,
    SkewTracker,
    measure_skew,
    nearest_offsets,
)
from gap_monitor.core.timing.stamps import Finding, Severity

NS = 1_000_000_000
MS = 1_000_000
T0 = 1_700_000_000 * NS


def sensor(
    rate_hz: float,
    seconds: float,
    *,
    offset_ms: float = 0.0,
    drift_ppm: float = 0.0,
    jitter_ms: float = 0.1,
    drop: Sequence[int] = (),
    start_ns: int = T0,
    seed: int = 0,
) -> np.ndarray:
    """Header stamps of a triggered sensor: offset, clock drift and stamp jitter added."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(rate_hz * seconds)) * (NS / rate_hz)
    stamps = start_ns + t + offset_ms * MS + t * drift_ppm * 1e-6 + rng.normal(0, jitter_ms * MS, len(t))
    return np.delete(stamps.astype(np.int64), list(drop))


def feed_live(pair: PairSkew | SkewTracker, streams: dict[str, np.ndarray], seed: int = 0) -> None:
    """Observe in receipt order: each topic has its own transport latency and jitter."""
    rng = np.random.default_rng(seed)
    events = []
    for k, (topic, stamps) in enumerate(streams.items()):
        receipt = stamps + (3 + 4 * k) * MS + rng.exponential(2 * MS, len(stamps))
        receipt = np.maximum.accumulate(receipt)
        events += [(int(r), topic, int(s)) for r, s in zip(receipt, stamps, strict=True)]
    for _, topic, stamp in sorted(events):
        pair.observe(topic, stamp)


def by_check(findings: Sequence[Finding]) -> dict[str, Finding]:
    return {f.check: f for f in findings}


def problems(findings: Sequence[Finding]) -> list[str]:
    return [f"{f.level.name} {f.message}" for f in findings if f.level != Severity.OK]


LIMITS = SkewLimits(offset_warn_ms=3.0, offset_error_ms=20.0, p95_warn_ms=None)


@pytest.mark.parametrize(
    ("offset_ms", "level"),
    [(1, Severity.OK), (2, Severity.OK), (5, Severity.WARN), (10, Severity.WARN),
     (30, Severity.ERROR), (-5, Severity.WARN), (-30, Severity.ERROR)],
)
def test_constant_offsets_are_recovered_live(offset_ms: float, level: Severity) -> None:
    pair = PairSkew("/lidar", "/camera")
    feed_live(pair, {"/lidar": sensor(10, 30, offset_ms=offset_ms, seed=1),
                     "/camera": sensor(10, 30, seed=2)})
    s = pair.summary()
    assert s.offset_median_ms == pytest.approx(offset_ms, abs=0.5)
    assert s.offset_p95_ms == pytest.approx(offset_ms, abs=0.5)
    assert s.unmatched == 0 and s.matched >= 90  # the 10 s window at 10 Hz
    skew = by_check(pair.assess(LIMITS))["skew"]
    assert skew.level == level
    assert skew.message.startswith(f"/lidar vs /camera: {offset_ms:+.1f} ms median")
    if level == Severity.WARN:
        assert "(limit 3 ms)" in skew.message
    if level == Severity.ERROR:
        assert "(limit 20 ms)" in skew.message


@pytest.mark.parametrize(
    ("rate_a", "rate_b", "offset_ms"),
    [(30, 90, 1), (30, 90, 2), (30, 90, 5), (10, 30, 10), (20, 200, 1), (200, 20, -2),
     (15, 30, 5)],
)
def test_different_rates_are_judged_by_best_alignment(rate_a: float, rate_b: float, offset_ms: float) -> None:
    a = sensor(rate_a, 20, offset_ms=offset_ms, seed=3)
    b = sensor(rate_b, 20, seed=4)
    pair = PairSkew("/a", "/b")
    feed_live(pair, {"/a": a, "/b": b})
    s = pair.summary()
    assert s.reference == ("/a" if rate_a < rate_b else "/b")  # the slower stream is matched
    assert s.offset_median_ms == pytest.approx(offset_ms, abs=0.5)
    assert s.unmatched == 0
    assert s.tolerance_ms == pytest.approx(500 / max(rate_a, rate_b), rel=0.02)
    offline = measure_skew(a, b)
    assert offline.offset_median_ms == pytest.approx(offset_ms, abs=0.5)
    assert offline.matched == min(len(a), len(b))


def test_drift_of_50_ppm_is_measured_and_flagged() -> None:
    pair = PairSkew("/a", "/b")
    feed_live(pair, {"/a": sensor(30, 120, drift_ppm=50, seed=5), "/b": sensor(30, 120, seed=6)})
    s = pair.summary()
    assert s.drift_ppm == pytest.approx(50, abs=5)
    assert s.drift_span_s > 100
    assert by_check(pair.assess())["drift"].level == Severity.OK  # default limit 100 ppm
    flagged = by_check(pair.assess(SkewLimits(drift_warn_ppm=20)))["drift"]
    assert flagged.level == Severity.WARN and "+5" in flagged.message and "ppm" in flagged.message


def test_drift_past_half_a_period_is_unwrapped() -> None:
    # 2000 ppm over 60 s is 120 ms: the nearest partner changes several times.
    a, b = sensor(30, 60, drift_ppm=2000, seed=7), sensor(30, 60, seed=8)
    s = measure_skew(a, b)
    assert s.drift_ppm == pytest.approx(2000, rel=0.02)
    # Only right at half a period, where the nearest partner is ambiguous, can a match fail.
    assert s.unmatched_fraction is not None and s.unmatched_fraction < 0.02


def test_clean_streams_raise_no_alarm() -> None:
    configs = [(30, 30, 0.3), (30, 90, 0.0), (20, 200, -0.5), (10, 10, 1.0), (100, 100, 0.0)]
    for i, (ra, rb, offset) in enumerate(configs):
        pair = PairSkew("/a", "/b")
        feed_live(pair, {"/a": sensor(ra, 30, offset_ms=offset, seed=i),
                         "/b": sensor(rb, 30, seed=10 + i)}, seed=i)
        assert problems(pair.assess()) == [], (ra, rb)
        assert pair.summary().unmatched == 0


def test_dropped_partner_messages_are_unmatched() -> None:
    rng = np.random.default_rng(9)
    drop = sorted(rng.choice(np.arange(10, 290), size=30, replace=False).tolist())
    pair = PairSkew("/depth", "/color")
    feed_live(pair, {"/depth": sensor(30, 10, offset_ms=1.0, seed=1),
                     "/color": sensor(30, 10, drop=drop, seed=2)})
    pair.flush()
    s = pair.summary()
    assert s.unmatched == pytest.approx(30, abs=1)  # each lost colour frame leaves a depth frame
    assert s.offset_median_ms == pytest.approx(1.0, abs=0.5)  # the matched ones still agree
    matching = by_check(pair.assess())["matching"]
    assert matching.level == Severity.WARN and "without a partner" in matching.message

    # Losing frames of the reference stream costs nothing: the rest still find partners.
    other = measure_skew(sensor(30, 10, drop=drop, seed=1), sensor(30, 10, seed=2))
    assert other.unmatched == 0


def test_dead_partner_is_an_error() -> None:
    pair = PairSkew("/a", "/b")
    a, b = sensor(30, 10, seed=1), sensor(30, 10, seed=2)
    for stamp in b[:30]:
        pair.observe("/b", int(stamp))
    for stamp in a:  # /b has gone silent after 1 s
        pair.observe("/a", int(stamp))
    assert by_check(pair.assess())["matching"].level == Severity.ERROR


def test_tolerance_is_configurable() -> None:
    a, b = sensor(10, 10, offset_ms=5, seed=1), sensor(10, 10, seed=2)
    s = measure_skew(a, b, SkewSettings(tolerance_ms=1.0))
    assert s.matched == 0 and s.unmatched == len(a) and s.tolerance_ms == 1.0
    assert s.unmatched_fraction == 1.0
    pair = PairSkew("/a", "/b", SkewSettings(tolerance_ms=1.0))
    feed_live(pair, {"/a": a, "/b": b})
    matching = by_check(pair.assess())["matching"]
    assert matching.level == Severity.ERROR
    assert "none of" in matching.message and "within 1.00 ms" in matching.message


def test_clock_jump_resets_the_pair() -> None:
    first = {"/a": sensor(30, 10, offset_ms=3, seed=1), "/b": sensor(30, 10, seed=2)}
    restart = {"/a": sensor(30, 10, offset_ms=3, start_ns=NS, seed=3),
               "/b": sensor(30, 10, start_ns=NS, seed=4)}  # sim time starts over
    pair = PairSkew("/a", "/b")
    feed_live(pair, first)
    feed_live(pair, restart)
    s = pair.summary()
    assert s.clock_jumps >= 1
    assert s.offset_median_ms == pytest.approx(3, abs=0.5)
    assert s.unmatched == 0 and s.matched <= 300
    assert problems(pair.assess(LIMITS)) == []


def test_small_backward_stamps_are_ignored_and_counted() -> None:
    pair = PairSkew("/a", "/b")
    a, b = sensor(30, 5, seed=1), sensor(30, 5, seed=2)
    for x, y in zip(a, b, strict=True):
        pair.observe("/a", int(x))
        pair.observe("/b", int(y))
        pair.observe("/b", int(y) - 50 * MS)  # an old message arriving late
        pair.observe("/b", int(y))  # a repeat
    s = pair.summary()
    assert s.out_of_order == len(b)
    assert s.unmatched == 0 and s.offset_median_ms == pytest.approx(0, abs=0.5)


def test_memory_stays_bounded() -> None:
    pair = PairSkew("/a", "/b", SkewSettings(window_s=5, drift_points=64))
    feed_live(pair, {"/a": sensor(100, 300, seed=1), "/b": sensor(100, 300, seed=2)})
    s = pair.summary()
    assert 490 <= s.matched <= 501  # 5 s at 100 Hz, not 300 s
    assert s.drift_span_s > 250  # the decimated history still spans the run
    stamps, history = pair.held
    assert stamps < 400 and history <= 64


def test_nearest_offsets_matches_brute_force() -> None:
    rng = np.random.default_rng(11)
    ref = np.sort(rng.integers(0, 10**9, 200))
    other = np.sort(rng.integers(0, 10**9, 57))
    expected = [min((r - o for o in other), key=abs) for r in ref]
    np.testing.assert_array_equal(np.abs(nearest_offsets(ref, other)), np.abs(expected))


def test_tracker_routes_topics_to_pairs() -> None:
    tracker = SkewTracker([
        SkewPair("/depth", "/color", limits=LIMITS),
        SkewPair("/fisheye", "/color", limits=SkewLimits(offset_warn_ms=1.0)),
    ])
    assert tracker.topics == {"/depth", "/color", "/fisheye"}
    feed_live(tracker, {"/depth": sensor(30, 10, offset_ms=0.2, seed=1),
                        "/color": sensor(30, 10, seed=2),
                        "/fisheye": sensor(30, 10, offset_ms=-8.8, seed=3),
                        "/imu": sensor(200, 10, seed=4)})
    tracker.flush()
    summaries = tracker.summaries()
    assert summaries[("/depth", "/color")].offset_median_ms == pytest.approx(0.2, abs=0.5)
    assert summaries[("/fisheye", "/color")].offset_median_ms == pytest.approx(-8.8, abs=0.5)
    levels = {(f.subject, f.check): f.level for f in tracker.assess()}
    assert levels[("/depth vs /color", "skew")] == Severity.OK
    assert levels[("/fisheye vs /color", "skew")] == Severity.WARN  # its own 1 ms limit
    by_pair = tracker.assess_pairs()
    assert list(by_pair) == ["/depth vs /color", "/fisheye vs /color"]
    assert [f for findings in by_pair.values() for f in findings] == tracker.assess()
    assert all(f.subject == pair for pair, findings in by_pair.items() for f in findings)
    tracker.reset()
    assert all(s.matched == 0 for s in tracker.summaries().values())


@pytest.mark.parametrize(
    ("make", "match"),
    [(lambda: SkewSettings(window_s=0), "window_s"),
     (lambda: SkewSettings(tolerance_ms=-1.0), "tolerance_ms"),
     (lambda: SkewSettings(drift_points=4), "drift_points"),
     (lambda: SkewLimits(offset_warn_ms=5.0, offset_error_ms=1.0),
      r"^offset_error_ms: 1.0: a number >= offset_warn_ms \(5\)$"),
     (lambda: SkewLimits(drift_warn_ppm=float("inf")), "^drift_warn_ppm: inf: "),
     (lambda: SkewPair("/a", "/a"), "two different topic"),
     (lambda: PairSkew("/a", "/a"), "two different topics"),
     (lambda: SkewTracker([SkewPair("/a", "/b"), SkewPair("/a", "/b")]), "listed twice"),
     (lambda: PairSkew("/a", "/b").observe("/c", 1), "not part of the pair")],
)
def test_invalid_configuration_is_rejected(make: Callable[[], object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make()


def recording_skew(path: Path, pairs: list[SkewPair]) -> SkewTracker:
    tracker = SkewTracker(pairs)
    with open_recording(path) as rec:
        for m in rec.messages(tracker.topics):
            stamp = cdr.header_stamp_ns(m.data)
            assert stamp is not None
            tracker.observe(m.topic, stamp)
    tracker.flush()
    return tracker


def test_euroc_cameras_are_stamped_identically(real_data_dir: Path) -> None:
    tracker = recording_skew(real_data_dir / "euroc_mh01_micro_ros2",
                             [SkewPair("/cam0/image_raw", "/cam1/image_raw/compressed")])
    s = tracker.summaries()[("/cam0/image_raw", "/cam1/image_raw/compressed")]
    assert (s.offset_median_ms, s.offset_p95_ms, s.offset_min_ms, s.offset_max_ms) == (0, 0, 0, 0)
    assert s.matched == 95 and s.unmatched == 0
    assert problems(tracker.assess()) == []


def test_openloris_colour_depth_and_fisheye(real_data_dir: Path) -> None:
    few = SkewLimits(min_matches=3)
    color = "/d400/color/image_raw"
    tracker = recording_skew(real_data_dir / "openloris_sample_ros2", [
        SkewPair("/d400/depth/image_raw", color, limits=few),
        SkewPair("/d400/aligned_depth_to_color/image_raw", color, limits=few),
        SkewPair("/t265/fisheye1/image_raw/compressed", color, limits=few),
    ])
    s = tracker.summaries()
    for depth in ("/d400/depth/image_raw", "/d400/aligned_depth_to_color/image_raw"):
        assert abs(s[(depth, color)].offset_median_ms or 1.0) < 0.1  # README: ~7 us
        assert s[(depth, color)].matched == 4
    fisheye = s[("/t265/fisheye1/image_raw/compressed", color)]
    assert fisheye.offset_median_ms == pytest.approx(-8.8, abs=0.15)  # README: ~8.8 ms before
    assert fisheye.matched == 4 and fisheye.unmatched == 0
    findings = {(f.subject, f.check): f for f in tracker.assess()}
    skew = findings[("/t265/fisheye1/image_raw/compressed vs /d400/color/image_raw", "skew")]
    assert skew.level == Severity.WARN and "-8.9 ms median (limit 2 ms)" in skew.message
    assert findings[(f"/d400/depth/image_raw vs {color}", "skew")].level == Severity.OK
