"""`gap-monitor report` and `profile compare`: the simulated rig with scripted faults, the real EuRoC
recording split in halves (plain and darkened), the snapshot catalogue, the JSON schema, the CLI.

The tests that record the sim or split EuRoC share module fixtures (about 10 s together) and are
marked slow; the whole file takes about 15-25 s on 2 cores."""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from gap_monitor.core.conditions.profile import Profile, ProfileBuilder, feature_stats
from gap_monitor.core.conditions.settings import ConditionSettings
from gap_monitor.core.io.recordings import open_recording
from gap_monitor.core.monitor import Monitor
from gap_monitor.offline import report as report_mod
from gap_monitor.offline.extraction import build_profile
from gap_monitor.offline.replay import config_for_recording
from gap_monitor.offline.report import (
    SCHEMA_PATH,
    ReportInputError,
    build_report,
    compare_profiles,
    persistent,
    round_cut,
    share_below,
)
from gap_monitor.sim.record import record_sim
from gap_monitor.sim.rig import DEFAULT_TOPICS, RigSettings
from gap_monitor.sim.scenario import Fault, Scenario

NS = 1_000_000_000
STORE = get_typestore(Stores.ROS2_JAZZY)
LUMINANCE = {"mean_luminance", "luminance_p5", "luminance_p95"}
# Small, slow-ish streams keep the recordings and the report fast; the rig keeps its field of view.
RIG = RigSettings(
    width=160, height=120, camera_rate_hz=10.0, depth_rate_hz=10.0, imu_rate_hz=100.0,
    joints_rate_hz=100.0, wrench_rate_hz=200.0, focal_px=125.0,
)  # fmt: skip
DARK = (8.0, 20.0)  # scripted lighting_gain 0.3, seconds into the deployment
DRIFT = (24.0, 40.0)  # scripted force_drift 3 N/s


# ----------------------------------------------------------------------------------------------
# A small JSON Schema validator: the keywords gap_monitor/report_schema.json uses, no more.

SUPPORTED_KEYWORDS = {
    "$schema", "$id", "title", "description", "$defs", "$ref", "type", "properties", "required",
    "additionalProperties", "items", "minItems", "enum", "const", "minimum", "maximum", "anyOf", "allOf",
}  # fmt: skip


def _is_type(value: Any, name: str) -> bool:
    return {
        "object": isinstance(value, dict),
        "array": isinstance(value, list),
        "string": isinstance(value, str),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, (int, float)) and not isinstance(value, bool),
        "boolean": isinstance(value, bool),
        "null": value is None,
    }[name]


def validate(instance: Any, schema: dict[str, Any], root: dict[str, Any], path: str = "$") -> list[str]:
    errors: list[str] = []
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/$defs/")
        errors += validate(instance, root["$defs"][name], root, path)
    for sub in schema.get("allOf", []):
        errors += validate(instance, sub, root, path)
    if "anyOf" in schema and all(validate(instance, sub, root, path) for sub in schema["anyOf"]):
        errors.append(f"{path}: matches none of anyOf")
    if "const" in schema and instance != schema["const"]:
        errors.append(f"{path}: {instance!r} != {schema['const']!r}")
    if "enum" in schema and instance not in schema["enum"]:
        errors.append(f"{path}: {instance!r} not in {schema['enum']}")
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_is_type(instance, t) for t in types):
            return [*errors, f"{path}: {type(instance).__name__} is not {types}"]
    if isinstance(instance, dict):
        errors += [f"{path}: missing {key!r}" for key in schema.get("required", []) if key not in instance]
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for key, value in instance.items():
            if key in properties:
                errors += validate(value, properties[key], root, f"{path}.{key}")
            elif extra is False:
                errors.append(f"{path}: unexpected key {key!r}")
            elif isinstance(extra, dict):
                errors += validate(value, extra, root, f"{path}.{key}")
    if isinstance(instance, list):
        if len(instance) < schema.get("minItems", 0):
            errors.append(f"{path}: fewer than {schema['minItems']} items")
        if "items" in schema:
            for i, item in enumerate(instance):
                errors += validate(item, schema["items"], root, f"{path}[{i}]")
    if _is_type(instance, "number"):
        if "minimum" in schema and instance < schema["minimum"]:
            errors.append(f"{path}: {instance} < minimum {schema['minimum']}")
        if "maximum" in schema and instance > schema["maximum"]:
            errors.append(f"{path}: {instance} > maximum {schema['maximum']}")
    return errors


def _keywords(schema: Any, found: set[str]) -> None:
    """Every keyword of a schema (property names and $defs names are not keywords)."""
    if isinstance(schema, dict):
        for key, value in schema.items():
            found.add(key)
            if key in ("properties", "$defs"):
                for sub in value.values():
                    _keywords(sub, found)
            elif key in ("items", "additionalProperties") and isinstance(value, dict):
                _keywords(value, found)
            elif key in ("anyOf", "allOf"):
                for sub in value:
                    _keywords(sub, found)


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text())


# ----------------------------------------------------------------------------------------------
# The simulated rig: clean training, a deployment with darkness and force drift, snapshots


def _replay_snapshots(recording: Path, profile: Profile, out: Path) -> None:
    """Run the monitor over the recording as `gap-monitor replay` does, with the profile scoring."""
    with open_recording(recording) as rec:
        start, end = rec.start_time_ns, rec.end_time_ns
        config = config_for_recording(rec.topics(), (end - start) / NS)
        capture = replace(
            config.capture, enabled=True, min_free_bytes=0, pre_s=2.0, post_s=1.0, cooldown_s=2.0
        )
        monitor = Monitor(replace(config, capture=capture), start, output_dir=out, profile=profile)
        period = int(config.check_period_s * NS)
        next_check = start + period
        for msg in rec.messages():
            while msg.log_time_ns >= next_check:
                monitor.check(next_check)
                next_check += period
            monitor.on_message(msg.topic, msg.log_time_ns, msg.data)
        monitor.close(end + NS)


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("sim")
    record_sim(root / "train", Scenario(seed=3), 60.0, RIG)
    faults = (
        Fault("lighting_gain", "camera", DARK[0], DARK[1] - DARK[0], {"gain": 0.3}),
        Fault("force_drift", "wrench", DRIFT[0], DRIFT[1] - DRIFT[0], {"rate_n_per_s": 3.0}),
    )
    # The deployment continues the rig's motion from where training stopped (start_s).
    record_sim(root / "deploy", Scenario(seed=3, faults=faults), 40.0, RIG, start_s=60.0)
    record_sim(root / "clean", Scenario(seed=3), 40.0, RIG, start_s=60.0)
    profile = build_profile([root / "train"], progress=False)
    profile.save(root / "train.yaml")
    _replay_snapshots(root / "deploy", profile, root / "snapshots")
    return {
        "root": root,
        "profile": root / "train.yaml",
        "deploy": root / "deploy",
        "clean": root / "clean",
        "snapshots": root / "snapshots",
    }


@pytest.fixture(scope="module")
def sim_report(sim: dict[str, Path]) -> report_mod.Report:
    return build_report(sim["profile"], [sim["deploy"]], snapshots=sim["snapshots"])


def _seconds(report: report_mod.Report, ns: int, recording: int = 0) -> float:
    return (ns - report.recordings[recording].start_time_ns) / NS


@pytest.mark.slow
def test_sim_darkness_and_force_drift_are_the_top_two_collection_targets(sim_report):
    top = sim_report.targets[:2]
    assert len(top) == 2, [t.text() for t in sim_report.targets]
    by_stream = {t.stream: t for t in top}
    assert set(by_stream) == {DEFAULT_TOPICS["camera"], DEFAULT_TOPICS["wrench"]}, [t.text() for t in top]

    dark = by_stream[DEFAULT_TOPICS["camera"]]
    assert dark.lead.side == "below"
    assert {dark.lead.feature, *(r.feature for r in dark.related)} & LUMINANCE
    # 12 s of 40 s were dark; the training never was.
    assert dark.lead.deployment_share == pytest.approx((DARK[1] - DARK[0]) / 40.0, abs=0.05)
    assert dark.lead.training_share < 0.01
    assert dark.lead.cut < dark.lead.edge
    (episode,) = dark.episodes
    assert _seconds(sim_report, episode[1]) == pytest.approx(DARK[0], abs=1.0)
    assert _seconds(sim_report, episode[2]) == pytest.approx(DARK[1], abs=1.0)

    drift = by_stream[DEFAULT_TOPICS["wrench"]]
    assert drift.lead.side == "above" and drift.lead.feature.startswith("force")
    assert drift.lead.training_share < 0.01
    (episode,) = drift.episodes
    assert DRIFT[0] <= _seconds(sim_report, episode[1]) < DRIFT[0] + 6.0  # once it left the range
    assert _seconds(sim_report, episode[2]) == pytest.approx(DRIFT[1], abs=1.0)

    text = dark.text()
    assert f"{dark.lead.feature} below" in text and "of deployment time" in text and "of training" in text


@pytest.mark.slow
def test_sim_alarms_match_the_scripted_faults_and_nothing_else(sim_report):
    fired = {s.name: [_seconds(sim_report, e.start_ns) for e in s.episodes] for s in sim_report.streams}
    assert len(fired[DEFAULT_TOPICS["camera"]]) == 1
    assert DARK[0] <= fired[DEFAULT_TOPICS["camera"]][0] < DARK[0] + 2.0
    assert len(fired[DEFAULT_TOPICS["wrench"]]) == 1
    assert DRIFT[0] <= fired[DEFAULT_TOPICS["wrench"]][0] < DRIFT[1]
    for topic in ("depth", "imu", "joints"):
        assert fired[DEFAULT_TOPICS[topic]] == [], topic
    # Both alarms coincide with a collection target of their stream.
    assert all(sim_report.explains(e) for s in sim_report.streams for e in s.episodes)


@pytest.mark.slow
def test_sim_clean_deployment_has_no_collection_target(sim):
    report = build_report(sim["profile"], [sim["clean"]])
    assert report.targets == ()
    assert all(s.status == "scored" and s.samples > 0 for s in report.streams)
    # The scripted deployment's darkness is absent here: the camera stays inside its range.
    camera = report.stream(DEFAULT_TOPICS["camera"]).feature("mean_luminance")
    assert camera.below_share is not None and camera.below_share < 0.05


@pytest.mark.slow
def test_sim_distributions_show_the_shift_and_training_share_outside_p1_p99(sim_report):
    camera = sim_report.stream(DEFAULT_TOPICS["camera"])
    lum = camera.feature("mean_luminance")
    assert lum.below_share == pytest.approx(0.3, abs=0.05)
    # Deployment values come from the recording through the live path: one per image at 5 Hz.
    assert lum.deployment_count == camera.samples == pytest.approx(40 * 5, abs=2)
    depth = sim_report.stream(DEFAULT_TOPICS["depth"])
    assert all(f.outside_share is not None and f.outside_share < 0.25 for f in depth.features)


@pytest.mark.slow
def test_snapshot_catalogue_lists_when_why_duration_size_and_path(sim, sim_report):
    folders = sorted(p for p in sim["snapshots"].iterdir() if p.is_dir())
    assert len(folders) == len(sim_report.snapshots) >= 2
    for entry in sim_report.snapshots:
        folder = Path(entry.path)
        assert folder in folders
        assert entry.size_bytes == sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
        trigger = json.loads((folder / "trigger.json").read_text())
        assert entry.duration_s == pytest.approx((trigger["end_ns"] - trigger["start_ns"]) / NS)
        assert entry.recording == 0
        assert entry.triggers[0].kind == "novel_condition"
        assert entry.triggers[0].top  # the top features, in words
    first = sim_report.snapshots[0]
    assert DARK[0] <= _seconds(sim_report, first.time_ns) < DARK[1]
    assert any(name in LUMINANCE for name in (t.split(" ")[0] for t in first.triggers[0].top))
    dark = next(t for t in sim_report.targets if t.stream == DEFAULT_TOPICS["camera"])
    assert first.name in dark.snapshots
    html = sim_report.to_html()
    for entry in sim_report.snapshots:
        assert entry.name in html and entry.path in html


@pytest.mark.slow
def test_report_files_are_self_contained_and_json_validates(sim_report, tmp_path, schema):
    html_path, json_path = sim_report.write(tmp_path / "report.html")
    assert json_path == tmp_path / "report.json"
    data = json.loads(json_path.read_text())
    assert validate(data, schema, schema) == []
    text = html_path.read_text()
    for external in ("http://", "https://", "src=", "<link", "<script", "url(", "@import"):
        assert external not in text, external
    ids = [p["id"] for p in data["plots"]]
    assert len(ids) == len(set(ids)) == text.count('<svg class="plot"')
    for plot_id in ids:
        assert f'<svg class="plot" id="{plot_id}"' in text
    kinds = {p["kind"] for p in data["plots"]}
    assert kinds == {"distribution", "timeline"}
    # Every feature with deployment values has its overlay, with units on the axis.
    lum = next(f for s in data["streams"] if s["name"] == DEFAULT_TOPICS["camera"] for f in s["features"]
               if f["name"] == "mean_luminance")  # fmt: skip
    assert lum["plot_id"] in ids and "level (0-255)" in text
    assert data["targets"][0]["text"] in [t.text() for t in sim_report.targets]


@pytest.mark.slow
def test_schema_validator_rejects_broken_reports(sim_report, schema):
    data = sim_report.to_json_dict()
    assert validate(data, schema, schema) == []
    broken = json.loads(json.dumps(data))
    del broken["targets"]
    broken["streams"][0]["features"][0]["below_share"] = 1.5
    broken["snapshots"][0]["extra"] = 1
    errors = validate(broken, schema, schema)
    assert any("missing 'targets'" in e for e in errors)
    assert any("below_share" in e and "maximum" in e for e in errors)
    assert any("unexpected key 'extra'" in e for e in errors)
    found: set[str] = set()
    _keywords(schema, found)
    assert found <= SUPPORTED_KEYWORDS, found - SUPPORTED_KEYWORDS


# ----------------------------------------------------------------------------------------------
# The real EuRoC recording: profile from its first half, report on its second half


def _split_euroc(source: Path, out: Path, gain: float) -> dict[str, Path]:
    """Per topic, the first half of the messages -> first, the rest -> second and (every image
    re-serialised with its pixels times `gain`) dark; IMU bytes copied untouched."""
    with Reader(source) as reader:
        counts = {c.topic: c.msgcount for c in reader.connections}
        writers = {name: Writer(out / name, version=8, storage_plugin=StoragePlugin.MCAP) for name in
                   ("first", "second", "dark")}  # fmt: skip
        for writer in writers.values():
            writer.open()
        conns = {
            name: {c.topic: w.add_connection(c.topic, c.msgtype, typestore=STORE) for c in reader.connections}
            for name, w in writers.items()
        }
        seen = dict.fromkeys(counts, 0)
        for conn, log_time, raw in reader.messages():
            half = "first" if seen[conn.topic] < counts[conn.topic] // 2 else "second"
            seen[conn.topic] += 1
            writers[half].write(conns[half][conn.topic], log_time, raw)
            if half == "first":
                continue
            data = raw
            if conn.msgtype == "sensor_msgs/msg/Image":
                msg = STORE.deserialize_cdr(raw, conn.msgtype)
                msg.data = (msg.data.astype(np.float32) * gain).astype(np.uint8)
                data = STORE.serialize_cdr(msg, conn.msgtype)
            elif conn.msgtype == "sensor_msgs/msg/CompressedImage":
                msg = STORE.deserialize_cdr(raw, conn.msgtype)
                image = cv2.imdecode(msg.data, cv2.IMREAD_UNCHANGED)
                assert image is not None
                ok, png = cv2.imencode(".png", (image.astype(np.float32) * gain).astype(np.uint8))
                assert ok
                msg.data = png.reshape(-1)
                data = STORE.serialize_cdr(msg, conn.msgtype)
            writers["dark"].write(conns["dark"][conn.topic], log_time, data)
        for writer in writers.values():
            writer.close()
    return {name: out / name for name in ("first", "second", "dark")}


@pytest.fixture(scope="module")
def euroc(real_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    source = real_data_dir / "euroc_mh01_micro_ros2"
    if not source.is_dir():
        pytest.skip(f"{source} not found")
    out = tmp_path_factory.mktemp("euroc")
    paths = _split_euroc(source, out, gain=0.3)
    # Images cover only 4.7 s: at 20 Hz each half still gives 47 frames per camera.
    profile = build_profile([paths["first"]], settings=ConditionSettings(image_rate_hz=20.0), progress=False)
    profile.save(out / "first.yaml")
    return {**paths, "profile": out / "first.yaml"}


CAMERAS = ("/cam0/image_raw", "/cam1/image_raw/compressed")


@pytest.mark.slow
def test_real_second_half_has_no_condition_beyond_the_calibrated_rate(euroc, schema):
    report = build_report(euroc["profile"], [euroc["second"]])
    # The rate the profile was calibrated at is read back from it (no --config given).
    assert report.conditions.image_rate_hz == pytest.approx(20.0)
    assert {s.name: s.samples for s in report.streams}["/imu0"] > 300
    assert all(s.samples >= 45 for s in report.streams if s.name in CAMERAS)
    # 2.35 s of training images cannot pin p1-p99 down: some features leave that range...
    outside = max(f.outside_share or 0.0 for s in report.streams for f in s.features)
    assert outside > 0.02
    # ...but none beyond what the calibrated alarm allows in-distribution data: no target.
    assert report.targets == (), [t.text() for t in report.targets]
    assert validate(report.to_json_dict(), schema, schema) == []


@pytest.mark.slow
def test_real_darkened_second_half_ranks_a_luminance_feature_first(euroc):
    report = build_report(euroc["profile"], [euroc["dark"]])
    assert report.targets, "darkened images must be a collection target"
    first = report.targets[0]
    assert first.stream in CAMERAS
    assert first.lead.feature in LUMINANCE and first.lead.side == "below"
    assert first.lead.deployment_share == pytest.approx(1.0)
    assert first.lead.training_share == pytest.approx(0.0, abs=0.01)
    assert {t.stream for t in report.targets} <= set(CAMERAS)  # the IMU was left alone


# ----------------------------------------------------------------------------------------------
# Profile comparison


def _profile(values: dict[str, np.ndarray]) -> Profile:
    builder = ProfileBuilder()
    n = len(next(iter(values.values())))
    for i in range(n):
        features = {name: float(v[i]) for name, v in values.items()}
        builder.add("camera", "/cam", features, i * 200_000_000)
    return builder.build(created_ns=0)


def test_compare_profiles_ranks_the_uncovered_feature_first_with_the_share_outside():
    rng = np.random.default_rng(1)
    a = _profile({"mean_luminance": rng.normal(120, 10, 4000), "contrast": rng.normal(40, 5, 4000)})
    dark = rng.normal(40, 5, 1200)
    b = _profile({
        "mean_luminance": np.concatenate([rng.normal(120, 10, 2800), dark]),
        "contrast": rng.normal(40, 5, 4000),
    })  # fmt: skip
    result = compare_profiles(a, b, "train.yaml", "deploy.yaml")
    first, second = result.features
    assert first.feature == "mean_luminance"
    assert first.below_share == pytest.approx(0.3 + 0.7 * 0.01, abs=0.02)
    assert first.above_share == pytest.approx(0.7 * 0.01, abs=0.01)
    assert first.overlap == pytest.approx(0.7, abs=0.05)
    assert second.feature == "contrast"
    assert second.outside_share == pytest.approx(0.02, abs=0.015)
    assert second.overlap > 0.9
    same = compare_profiles(a, a)
    assert all(f.overlap == pytest.approx(1.0) for f in same.features)
    ranked = [line for line in result.format_text().splitlines() if line.startswith("  1. ")]
    assert len(ranked) == 1 and "mean_luminance" in ranked[0]


def test_compare_writes_html_and_json(tmp_path):
    rng = np.random.default_rng(2)
    a = _profile({"mean_luminance": rng.normal(120, 10, 500)})
    b = _profile({"mean_luminance": rng.normal(60, 10, 500), "sharpness": rng.normal(5, 1, 500)})
    html_path, json_path = compare_profiles(a, b).write(tmp_path / "compare.html")
    data = json.loads(json_path.read_text())
    assert data["features"][0]["feature"] == "mean_luminance"
    assert data["features"][0]["below_share"] > 0.95
    assert data["only_in_b"] == ["/cam sharpness"]
    assert '<svg class="plot" id="cmp-1"' in html_path.read_text()


# ----------------------------------------------------------------------------------------------
# Pieces and the command line


def test_persistence_needs_k_of_n_consecutive_samples():
    mask = np.array([1, 1, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0], dtype=bool)
    assert persistent(mask, 3, 5).tolist() == [True, True, False, True] + [False] * 10
    assert not persistent(mask[8:], 3, 5).any()
    assert persistent(np.array([1, 1, 1], dtype=bool), 3, 5).all()  # shorter than n: one run


def test_round_cut_is_a_round_number_between_the_value_and_halfway_to_the_edge():
    assert round_cut(43.3, 145.1, "below") == 50
    assert round_cut(-0.3, 0.5, "below") == 0
    assert round_cut(1037.2, 1027.0, "above") == 1035
    small = round_cut(0.0317, 0.000119, "above")
    assert (0.0317 + 0.000119) / 2 <= small <= 0.0317
    assert float(f"{small:.1g}") == pytest.approx(small)  # one significant digit
    for value, edge, side in ((43.3, 145.1, "below"), (1037.2, 1027.0, "above"), (7.0, 7.0, "below")):
        cut = round_cut(value, edge, side)
        assert min(value, edge) <= cut <= max(value, edge)


def test_share_below_reads_the_histogram_and_respects_atoms():
    rng = np.random.default_rng(3)
    normal = feature_stats(rng.normal(0.0, 1.0, 20000))
    assert share_below(normal, -1.0, strict=True) == pytest.approx(0.1587, abs=0.01)
    assert 1.0 - share_below(normal, 2.0, strict=False) == pytest.approx(0.0228, abs=0.005)
    # 30 % at 48 and an atom of 70 % at 159, the maximum: uniform spreading alone would put the
    # whole last bin, atom included, below 159.
    atom = feature_stats(np.concatenate([np.full(300, 48.0), np.full(700, 159.0)]))
    assert 0.25 <= share_below(atom, 159.0, strict=True) <= 0.5
    assert share_below(atom, 159.0, strict=False) == 1.0
    assert share_below(atom, 47.0, strict=False) == 0.0


@pytest.mark.slow
def test_cli_writes_the_report_and_refuses_bad_input(sim, tmp_path, capsys):
    out = tmp_path / "r.html"
    code = report_mod.main(
        ["report", "--profile", str(sim["profile"]), str(sim["deploy"]), "-o", str(out), "--no-progress",
         "--no-motion"]
    )  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert out.is_file() and (tmp_path / "r.json").is_file()
    assert "collection targets:" in printed and "1. " in printed
    assert report_mod.main(["report", "--profile", str(tmp_path / "none.yaml"), str(sim["deploy"])]) == 2
    assert "no such file" in capsys.readouterr().err
    assert report_mod.main(["report", "--profile", str(sim["profile"]), str(tmp_path / "missing")]) == 2
    assert report_mod.main(["compare", str(sim["profile"]), str(sim["profile"])]) == 0
    assert "overlap 1.00" in capsys.readouterr().out
    with pytest.raises(ReportInputError, match="--snapshots"):
        build_report(sim["profile"], [sim["deploy"]], snapshots=tmp_path / "nowhere")


@pytest.mark.slow
def test_a_profile_stream_missing_from_the_deployment_is_reported_absent(sim, tmp_path):
    only_camera = tmp_path / "cam"
    record_sim(only_camera, Scenario(seed=3), 5.0, RIG, {"camera": DEFAULT_TOPICS["camera"]}, start_s=60.0)
    report = build_report(sim["profile"], [only_camera])
    status = {s.name: s.status for s in report.streams}
    assert status[DEFAULT_TOPICS["camera"]] == "scored"
    assert status[DEFAULT_TOPICS["wrench"]] == "absent"
    assert report.targets == ()
    assert math.isfinite(report.stream(DEFAULT_TOPICS["camera"]).observed_s)
    shutil.rmtree(only_camera)
