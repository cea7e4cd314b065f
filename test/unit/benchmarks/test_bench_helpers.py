"""Pure helpers of the feature, snapshot, offline and skew benchmarks (no timing asserts)."""

from pathlib import Path

import numpy as np
import pytest

from bench.feature_cost import median_seconds, paired_median_seconds
from bench.offline_throughput import BenchError, iterate_mcap, mcap_files
from bench.skew_accuracy import SkewCase, arrival_order, synthetic_stamps, wrapped
from bench.snapshot_write import SuiteSerializer, suite_schedule, window_stats
from gap_monitor.core.io import cdr
from gap_monitor.core.units import NS_PER_S as NS

MS = 1_000_000

# --- timing helpers -----------------------------------------------------------------------------


def test_median_seconds_runs_warmup_then_repeats_with_increasing_index():
    calls: list[int] = []
    result = median_seconds(calls.append, repeats=5, warmup=2)
    assert calls == [0, 1, 0, 1, 2, 3, 4]
    assert result >= 0.0


def test_paired_median_times_baseline_then_measured_in_every_repetition():
    calls = []
    m, b = paired_median_seconds(
        lambda i: calls.append(("m", i)), lambda i: calls.append(("b", i)), repeats=3, warmup=1
    )
    assert calls == [("b", 0), ("m", 0), ("b", 0), ("m", 0), ("b", 1), ("m", 1), ("b", 2), ("m", 2)]
    assert m >= 0.0 and b >= 0.0


@pytest.mark.parametrize("fn", [median_seconds, lambda f, r: paired_median_seconds(f, f, r)])
def test_timing_helpers_refuse_zero_repeats(fn):
    with pytest.raises(ValueError, match="repeats"):
        fn(lambda i: None, 0)


# --- snapshot benchmark -------------------------------------------------------------------------


def test_suite_schedule_has_each_rate_in_time_order():
    rates = {"slow": 30.0, "fast": 1000.0}
    schedule = suite_schedule(rates, 0, NS)
    times = [t for t, _, _ in schedule]
    assert times == sorted(times)
    assert sum(1 for _, s, _ in schedule if s == "slow") == 30
    assert sum(1 for _, s, _ in schedule if s == "fast") == 1000
    # seq is the index on the stream's own grid: message k is due at k periods (floored to ns)
    assert all(t == k * NS // int(rates[s]) for t, s, k in schedule)


def test_suite_schedule_spans_join_without_gap_or_repeat():
    rates = {"a": 30.0, "b": 400.0}
    whole = suite_schedule(rates, 5 * NS + 123, 7 * NS)
    split = suite_schedule(rates, 5 * NS + 123, 6 * NS + 17) + suite_schedule(rates, 6 * NS + 17, 7 * NS)
    assert whole == sorted(split)
    assert all(5 * NS + 123 <= t < 7 * NS for t, _, _ in whole)


def test_suite_schedule_refuses_a_rate_that_is_not_positive():
    with pytest.raises(ValueError, match="rates_hz"):
        suite_schedule({"a": 0.0}, 0, NS)


def test_window_stats_counts_gaps_across_the_window_edges_and_drops_inside():
    push = [0, 1 * MS, 2 * MS, 12 * MS, 13 * MS, 30 * MS]
    late = [0, 0, 0, 9 * MS, 0, 0]
    drops = [12 * MS, 12 * MS, 40 * MS]
    inside = window_stats(push, late, drops, 1 * MS, 13 * MS)
    assert inside.max_gap_ms == pytest.approx(17.0)  # 13 -> 30 ms crosses the upper edge
    assert inside.pushes == 4
    assert inside.max_late_ms == pytest.approx(9.0)
    assert inside.dropped == 2
    assert inside.dropped_per_s == pytest.approx(2 / 0.012)
    quiet = window_stats(push, late, drops, 0, 2 * MS)
    assert quiet.max_gap_ms == pytest.approx(10.0)  # 2 -> 12 ms, the first push after the window
    assert quiet.dropped == 0


def test_window_stats_refuses_lateness_not_aligned_with_pushes():
    with pytest.raises(ValueError, match="late_ns"):
        window_stats([0, 1], [0], [], 0, 1)


def test_suite_serializer_writes_cdr_the_project_decoder_reads():
    ser = SuiteSerializer()
    pixels = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    image = cdr.decode_image(ser.image(pixels, "rgb8", 3 * NS + 7, "cam"))
    assert image.encoding == "rgb8"
    assert np.array_equal(image.pixels(), pixels)
    assert cdr.header_stamp_ns(ser.image(pixels, "rgb8", 3 * NS + 7, "cam")) == 3 * NS + 7
    imu = cdr.decode_imu(ser.imu([0.1, 0.2, 9.8], [0.01, 0.02, 0.03], NS))
    assert np.allclose(imu.linear_acceleration, [0.1, 0.2, 9.8])
    assert np.allclose(imu.angular_velocity, [0.01, 0.02, 0.03])
    js = cdr.decode_joint_state(ser.joints(["j1", "j2"], [1.0, 2.0], [0.0, 0.5], [3.0, 4.0], NS))
    assert tuple(js.name) == ("j1", "j2")
    assert np.allclose(js.effort, [3.0, 4.0])
    w = cdr.decode_wrench_stamped(ser.wrench([1.0, 2.0, 3.0], [0.1, 0.2, 0.3], NS))
    assert np.allclose(w.force, [1.0, 2.0, 3.0])
    assert np.allclose(w.torque, [0.1, 0.2, 0.3])


# --- offline benchmark --------------------------------------------------------------------------


def _small_mcap(path: Path, messages: int) -> Path:
    from mcap.writer import Writer

    with path.open("wb") as f:
        writer = Writer(f)
        writer.start(profile="ros2")
        schema = writer.register_schema("std_msgs/msg/String", "ros2msg", b"string data")
        channel = writer.register_channel("/chatter", "cdr", schema)
        for i in range(messages):
            writer.add_message(channel, log_time=i, data=b"\x00\x01\x00\x00" + bytes(8), publish_time=i)
        writer.finish()
    return path


def test_mcap_files_finds_a_folders_mcap_files_or_takes_the_file(tmp_path):
    folder = tmp_path / "bag"
    folder.mkdir()
    second = _small_mcap(folder / "b_1.mcap", 1)
    first = _small_mcap(folder / "b_0.mcap", 1)
    (folder / "metadata.yaml").write_text("x: 1\n")
    assert mcap_files(folder) == [first, second]
    assert mcap_files(first) == [first]


def test_mcap_files_refuses_a_folder_without_mcap(tmp_path):
    with pytest.raises(BenchError, match=r"no \.mcap"):
        mcap_files(tmp_path)


def test_iterate_mcap_counts_every_message_of_every_file(tmp_path):
    files = [_small_mcap(tmp_path / "a.mcap", 7), _small_mcap(tmp_path / "b.mcap", 5)]
    assert iterate_mcap(files) == 12


# --- skew benchmark -----------------------------------------------------------------------------


def test_synthetic_stamps_follow_rate_offset_and_drift():
    rng = np.random.default_rng(0)
    stamps = synthetic_stamps(10.0, 2.0, rng, start_ns=NS, offset_ns=3 * MS, drift_ppm=100.0)
    assert len(stamps) == 20
    assert stamps[0] == NS + 3 * MS
    assert np.all(np.diff(stamps) == round(NS / 10 * (1 + 100e-6)))


def test_synthetic_stamps_jitter_has_the_requested_spread():
    rng = np.random.default_rng(1)
    stamps = synthetic_stamps(100.0, 100.0, rng, jitter_ns=0.5 * MS)
    residual = stamps - np.arange(len(stamps)) * (NS / 100)
    assert np.std(residual) == pytest.approx(0.5 * MS, rel=0.05)
    assert np.all(np.diff(stamps) > 0)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"rate_hz": 0.0}, "rate_hz"), ({"seconds": -1.0}, "seconds"), ({"jitter_ns": -1.0}, "jitter_ns")],
)
def test_synthetic_stamps_refuses_bad_arguments(kwargs, field):
    args = {"rate_hz": 10.0, "seconds": 1.0, "rng": np.random.default_rng(0)} | kwargs
    jitter = args.pop("jitter_ns", 0.0)
    with pytest.raises(ValueError, match=field):
        synthetic_stamps(args["rate_hz"], args["seconds"], args["rng"], jitter_ns=jitter)


def test_wrapped_reads_offsets_modulo_the_period_around_zero():
    period = 1000 / 30
    assert wrapped(10.0, period) == pytest.approx(10.0)
    assert wrapped(30.0, period) == pytest.approx(30.0 - period)
    assert wrapped(-20.0, period) == pytest.approx(period - 20.0)


def test_skew_case_expects_the_wrapped_offset_outside_half_a_period_and_none_under_drift():
    assert SkewCase("p", 30.0, 60.0, 10.0, 0.0).expected_ms == pytest.approx(10.0)
    far = SkewCase("p", 30.0, 60.0, 30.0, 0.0)
    assert not far.measurable
    assert far.expected_ms == pytest.approx(30.0 - 1000 / 30)
    assert SkewCase("p", 30.0, 300.0, 0.0, 50.0).expected_ms is None


def test_arrival_order_yields_every_stamp_once_and_keeps_each_topic_in_order():
    rng = np.random.default_rng(2)
    a = np.arange(0, 100 * MS, 10 * MS, dtype=np.int64)
    b = a + 5 * MS
    got = list(arrival_order(a, b, rng))
    assert sorted(s for w, s in got if w == 0) == a.tolist()
    assert [s for w, s in got if w == 0] == a.tolist()
    assert [s for w, s in got if w == 1] == b.tolist()
