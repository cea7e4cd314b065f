"""`gap-monitor audit` from the command line: the printed tables and findings, --json, --pairs,
--config, --fail-on and the exit codes, on the real recordings and small ones written with rosbags
(test/offline_fixtures.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gap_monitor.commands.audit import COMMAND as AUDIT
from gap_monitor.offline.audit import AuditInputError, run_audit

Capture = pytest.CaptureFixture[str]
EUROC = "euroc_mh01_micro_ros2"
OPENLORIS = "openloris_sample_ros2"


def cli(capsys: Capture, *argv: str) -> tuple[int, str, str]:
    """Run `audit ARGV...` as the CLI does (errors mapped to exit codes); (exit code, stdout, stderr)."""
    code = AUDIT.main([*argv, "--no-progress"])
    out, err = capsys.readouterr()
    return code, out, err


def test_euroc_cameras_in_step_imu_5ms_and_json(real_data_dir: Path, tmp_path: Path, capsys: Capture) -> None:
    out_json = tmp_path / "audit.json"
    code, out, _ = cli(capsys, str(real_data_dir / EUROC), "--fail-on", "error", "--json", str(out_json))
    assert code == 0, out
    report = json.loads(out_json.read_text())
    assert set(report) >= {"schema", "worst_level", "recordings", "topics", "pairs", "motion_offsets",
                           "findings"}
    assert report["worst_level"] in ("OK", "WARN")
    (rec,) = report["recordings"]
    assert rec["topics"]["/imu0"] == {"type": "sensor_msgs/msg/Imu", "count": 29120}
    topics = {t["topic"]: t for t in report["topics"]}
    assert topics["/imu0"]["period_median_ms"] == pytest.approx(5.0, abs=1e-3)
    assert topics["/imu0"]["count"] == 29120 and topics["/imu0"]["gaps"] == 0
    assert topics["/cam0/image_raw"]["period_median_ms"] == pytest.approx(50.0, abs=1e-3)
    # README: log_time == header stamp.
    assert topics["/imu0"]["latency_median_ms"] == 0
    (pair,) = report["pairs"]
    assert {pair["a"], pair["b"]} == {"/cam0/image_raw", "/cam1/image_raw/compressed"}
    assert (pair["offset_median_ms"], pair["offset_p95_ms"], pair["matched"]) == (0, 0, 95)
    assert pair["level"] == "OK"
    # Images cover 4.7 s of the 145 s IMU stream: said in words, as a WARN.
    coverage = [f for f in report["findings"] if f["check"] == "coverage"]
    assert {f["subject"] for f in coverage} == {"/cam0/image_raw", "/cam1/image_raw/compressed"}
    assert all(f["level"] == "WARN" and "of the 145.6 s recording" in f["message"] for f in coverage)
    assert "messages cover only 4.7 s" in out
    # Both cameras against the gyro; the VI-Sensor is hardware-synchronized, so a confident
    # estimate must be near zero.
    motions = {(m["camera"], m["imu"]): m for m in report["motion_offsets"]}
    assert set(motions) == {("/cam0/image_raw", "/imu0"), ("/cam1/image_raw/compressed", "/imu0")}
    for m in motions.values():
        assert m["reason"]
        if m["confident"]:
            assert abs(m["offset_ms"]) < 3.0, m
    # The tables are printed.
    assert "/cam0/image_raw vs /cam1/image_raw/compressed" in out
    assert "jitter p95 ms" in out and "drift ppm" in out and "motion offset" in out


@pytest.mark.parametrize(("fail_on", "code"), [("warn", 1), ("error", 0)])
def test_openloris_exit_code_follows_fail_on(
    real_data_dir: Path, capsys: Capture, fail_on: str, code: int
) -> None:
    got, out, _ = cli(capsys, str(real_data_dir / OPENLORIS), "--fail-on", fail_on)
    assert got == code
    assert "+8.9 ms median" in out or "-8.9 ms median" in out


def test_injected_5ms_image_offset_is_flagged_in_words(stereo_bag: Path, capsys: Capture) -> None:
    code, out, _ = cli(capsys, str(stereo_bag), "--fail-on", "warn")
    assert code == 1
    assert "/left vs /right: -5.0 ms median (limit 2 ms)" in out
    result = run_audit([stereo_bag])
    (pair,) = result.recordings[0].pairs
    assert pair.source == "images" and pair.summary is not None
    assert pair.summary.offset_median_ms == pytest.approx(-5.0, abs=1e-6)
    assert pair.summary.matched == 60 and pair.summary.unmatched == 0
    # The headerless topic is listed as skipped, not timed.
    assert [s.topic for s in result.recordings[0].skipped] == ["/status"]
    assert {t.topic for t in result.recordings[0].topics} == {"/left", "/right"}
    assert cli(capsys, str(stereo_bag))[0] == 0  # 5 ms is below the 10 ms error limit


def test_pairs_argument_and_unknown_pair_topic(stereo_bag: Path, capsys: Capture) -> None:
    result = run_audit([stereo_bag], pairs=[("/right", "/left")])
    (pair,) = result.recordings[0].pairs
    assert (pair.a, pair.b, pair.source) == ("/right", "/left", "argument")
    assert pair.summary is not None and pair.summary.offset_median_ms == pytest.approx(5.0, abs=1e-6)
    code, _, err = cli(capsys, str(stereo_bag), "--pairs", "/left,/nope")
    assert code == 2 and "/nope" in err and "none of the recordings" in err
    with pytest.raises(SystemExit):  # argparse rejects a malformed pair (exit 2)
        cli(capsys, str(stereo_bag), "--pairs", "/left")


def test_config_rates_pairs_and_missing_streams(stereo_bag: Path, tmp_path: Path, capsys: Capture) -> None:
    params = tmp_path / "params.yaml"
    params.write_text(
        "/**:\n"
        "  ros__parameters:\n"
        "    cameras:\n"
        "      left: {topic: /left, rate_hz: 30.0}\n"
        "      right: {topic: /right, rate_hz: 20.0}\n"
        "    imus:\n"
        "      imu: {topic: /imu/data, rate_hz: 200.0}\n"
        "    skew_pairs:\n"
        "      stereo: {a: /left, b: /right, offset_warn_ms: 1.0, offset_error_ms: 4.0}\n"
    )
    out_json = tmp_path / "out.json"
    code, _, _ = cli(capsys, str(stereo_bag), "--config", str(params), "--json", str(out_json))
    assert code == 1  # the configured pair's 5 ms exceeds its 4 ms error limit
    report = json.loads(out_json.read_text())
    assert report["worst_level"] == "ERROR" and report["failed"] is True
    findings = {(f["subject"], f["check"]): f for f in report["findings"]}
    assert findings[("/left vs /right", "skew")]["level"] == "ERROR"
    assert findings[("/imu/data", "missing")]["level"] == "ERROR"
    assert "not in the recording" in findings[("/imu/data", "missing")]["message"]
    # 20 Hz recorded against 30 Hz configured: -33 %, beyond the stream's 20 % tolerance.
    assert findings[("/left", "rate")]["level"] == "WARN"
    assert "vs expected 30 Hz" in findings[("/left", "rate")]["message"]
    assert findings[("/right", "rate")]["level"] == "OK"
    (pair,) = report["pairs"]
    assert pair["source"] == "config"


def test_bad_config_exits_2_naming_the_file(stereo_bag: Path, tmp_path: Path, capsys: Capture) -> None:
    params = tmp_path / "bad.yaml"
    params.write_text("/**:\n  ros__parameters:\n    imus:\n      imu: {topic: /imu, rate_hz: -5}\n")
    code, out, err = cli(capsys, str(stereo_bag), "--config", str(params))
    assert code == 2 and out == ""
    assert str(params) in err and "imus.imu.rate_hz" in err


def test_missing_path_exits_2_with_the_path(tmp_path: Path, stereo_bag: Path, capsys: Capture) -> None:
    missing = tmp_path / "no_such_recording"
    code, out, err = cli(capsys, str(stereo_bag), str(missing))
    assert code == 2 and out == ""
    assert str(missing) in err and "not found" in err
    not_a_bag = tmp_path / "notes.txt"
    not_a_bag.write_text("hello")
    code, _, err = cli(capsys, str(not_a_bag))
    assert code == 2 and str(not_a_bag) in err
    with pytest.raises(AuditInputError, match="no_such_recording"):
        run_audit([missing])
