"""Training-condition profile: statistics, shrunk covariance, YAML round trip, merge, errors."""

from __future__ import annotations

import hashlib
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from gap_monitor.core.conditions.profile import (
    QUANTILE_KEYS,
    QUANTILE_LEVELS,
    SCHEMA_VERSION,
    AlarmCalibration,
    FeatureSample,
    Profile,
    SourceRecording,
)
from gap_monitor.core.conditions.profile_builder import (
    ProfileBuilder,
    feature_stats,
    schafer_strimmer_shrinkage,
)
from gap_monitor.core.conditions.profile_merge import merge_profiles
from gap_monitor.errors import ProfileError


def build(
    columns: dict[str, np.ndarray], modality: str = "camera", stream: str = "cam", **kw: Any
) -> Profile:
    builder = ProfileBuilder(**kw)
    count = len(next(iter(columns.values())))
    for i in range(count):
        builder.add(modality, stream, {k: float(v[i]) for k, v in columns.items()}, i * 1000)
    return builder.build(created_ns=123)


def correlated(rng: np.random.Generator, n: int, shift: float = 0.0) -> dict[str, np.ndarray]:
    latent = rng.standard_normal(n)
    return {
        "mean_luminance": 120.0 + shift + 20.0 * latent + rng.normal(0.0, 2.0, n),
        "contrast": 40.0 + 5.0 * latent + rng.normal(0.0, 1.0, n),
        "noise_sigma": 1.0 + 0.3 * rng.standard_normal(n),
    }


# ---------------------------------------------------------------------------------------------
# Building


def test_feature_statistics_match_numpy_and_count_nans() -> None:
    values = np.concatenate([np.arange(1000.0), [np.nan, np.inf]])
    stats = feature_stats(values, bins=10, unit="m", resolution=0.5)
    finite = np.arange(1000.0)
    assert stats.count == 1000 and stats.nan_count == 2
    assert stats.mean == pytest.approx(finite.mean())
    assert stats.std == pytest.approx(finite.std())
    assert (stats.min, stats.max) == (0.0, 999.0)
    assert stats.quantiles == pytest.approx(np.quantile(finite, QUANTILE_LEVELS))
    assert stats.p1 == pytest.approx(np.quantile(finite, 0.01))
    assert stats.quantile("p99.9") == pytest.approx(np.quantile(finite, 0.999))
    assert stats.histogram.counts == tuple([100.0] * 10)
    assert (stats.unit, stats.resolution) == ("m", 0.5)


def test_builder_fills_units_and_resolution_from_the_registry() -> None:
    rng = np.random.default_rng(0)
    profile = build(correlated(rng, 200))
    stream = profile.stream("cam")
    assert stream.modality == "camera"
    assert stream.sample_count == 200
    assert (stream.first_time_ns, stream.last_time_ns) == (0, 199_000)
    assert stream.features["mean_luminance"].unit == "level (0-255)"
    assert stream.features["mean_luminance"].resolution == 1.0
    assert profile.created_ns == 123
    assert profile.schema_version == SCHEMA_VERSION


def test_features_appearing_late_or_missing_are_nan_padded() -> None:
    builder = ProfileBuilder()
    builder.add("imu", "imu", {"nan_count": 0.0}, 0)
    builder.add("imu", "imu", {"nan_count": 0.0, "accel_std_x": 0.1}, 1)
    builder.add("imu", "imu", {"accel_std_x": None}, 2)  # type: ignore[dict-item]
    stream = builder.build().stream("imu")
    assert stream.features["accel_std_x"].count == 1
    assert stream.features["accel_std_x"].nan_count == 2
    assert stream.features["nan_count"].nan_count == 1


def test_builder_rejects_bad_input() -> None:
    builder = ProfileBuilder()
    with pytest.raises(ValueError, match="modality"):
        builder.add("lidar", "l", {"x": 1.0}, 0)
    builder.add("imu", "s", {"x": 1.0}, 0)
    with pytest.raises(ValueError, match="was added as 'imu'"):
        builder.add("camera", "s", {"x": 1.0}, 1)
    with pytest.raises(ValueError, match="not a number"):
        builder.add("imu", "s", {"x": "bright"}, 2)  # type: ignore[dict-item]
    with pytest.raises(ProfileError, match="no feature samples"):
        ProfileBuilder().build()
    with pytest.raises(ValueError, match="histogram_bins"):
        ProfileBuilder(histogram_bins=1)
    with pytest.raises(ValueError, match="shrinkage"):
        ProfileBuilder(shrinkage=1.5)


def test_model_covariance_is_shrunk_towards_the_diagonal() -> None:
    rng = np.random.default_rng(1)
    columns = correlated(rng, 5000)
    model = build(columns).stream("cam").model
    assert model is not None
    assert model.features == ("mean_luminance", "contrast", "noise_sigma")
    matrix = np.column_stack([columns[f] for f in model.features])
    sample_cov = np.cov(matrix, rowvar=False)
    covariance = model.covariance_matrix()
    assert model.mean == pytest.approx(matrix.mean(axis=0))
    np.testing.assert_allclose(np.diag(covariance), np.diag(sample_cov), rtol=1e-9)
    # Strong real correlation and plenty of data: almost no shrinkage.
    assert model.shrinkage < 0.01
    np.testing.assert_allclose(covariance, sample_cov * (1 - model.shrinkage) + np.diag(
        np.diag(sample_cov) * model.shrinkage), rtol=1e-9, atol=1e-12)


def test_model_records_the_training_distances() -> None:
    rng = np.random.default_rng(8)
    columns = correlated(rng, 20000)
    model = build(columns).stream("cam").model
    assert model is not None and model.distance_quantiles is not None
    # Gaussian features: squared distances follow chi-square(3), whose median is 2.366.
    median = model.distance_quantiles[QUANTILE_KEYS.index("p50")]
    assert median == pytest.approx(math.sqrt(2.366), rel=0.03)
    assert list(model.distance_quantiles) == sorted(model.distance_quantiles)


def test_shrinkage_is_large_when_correlations_are_noise() -> None:
    rng = np.random.default_rng(2)
    independent = rng.standard_normal((30, 8))
    z = (independent - independent.mean(0)) / independent.std(0, ddof=1)
    assert schafer_strimmer_shrinkage(z) > 0.5
    tied = rng.standard_normal((300, 1)) + 0.1 * rng.standard_normal((300, 8))
    z_tied = (tied - tied.mean(0)) / tied.std(0, ddof=1)
    assert schafer_strimmer_shrinkage(z_tied) < 0.05


def test_fewer_samples_than_features_still_gives_a_positive_definite_covariance() -> None:
    rng = np.random.default_rng(3)
    columns = {f"f{i}": rng.standard_normal(5) for i in range(12)}
    model = build(columns, modality="imu").stream("cam").model
    assert model is not None
    assert np.all(np.linalg.eigvalsh(model.covariance_matrix()) > 0)


def test_constant_feature_is_modelled_with_its_resolution_as_spread() -> None:
    rng = np.random.default_rng(4)
    columns = correlated(rng, 300)
    columns["saturated_fraction"] = np.zeros(300)  # resolution 0.005 in the registry
    columns["custom_constant"] = np.full(300, 7.0)  # unregistered: no resolution
    model = build(columns).stream("cam").model
    assert model is not None
    assert "custom_constant" not in model.features
    index = model.features.index("saturated_fraction")
    assert model.covariance_matrix()[index, index] == pytest.approx(0.005**2)


def test_no_model_without_enough_complete_rows() -> None:
    assert build({"mean_luminance": np.array([1.0, 2.0])}).stream("cam").model is None


# ---------------------------------------------------------------------------------------------
# Files


def calibrated_profile() -> Profile:
    rng = np.random.default_rng(5)
    profile = build(correlated(rng, 400))
    builder = ProfileBuilder()
    for i in range(50):
        builder.add("imu", "imu0", {"gyro_std_x": 0.01 + 0.001 * (i % 7), "nan_count": 0.0}, i)
    imu = builder.build(sources=[SourceRecording("/data/run1.mcap", 42, "ab" * 32)], created_ns=9)
    merged = Profile(
        streams={**profile.streams, **imu.streams},
        sources=imu.sources,
        created_ns=1_700_000_000_000_000_000,
    )
    return merged.with_alarm("cam", AlarmCalibration(4.5, 1.5, 3, 5, 10, 5.0, 1.0, 720, "test"))


def test_yaml_round_trip_preserves_everything(tmp_path: Path) -> None:
    profile = calibrated_profile()
    path = tmp_path / "profile.yaml"
    profile.save(path)
    loaded = Profile.load(path)
    assert loaded == profile
    assert loaded.digest() == profile.digest()
    assert loaded.stream("cam").alarm == profile.stream("cam").alarm
    # Plain types only: a safe loader reads it, and nothing is a numpy scalar or a tag.
    text = path.read_text()
    assert "!!" not in text
    assert yaml.safe_load(text)["schema_version"] == SCHEMA_VERSION
    assert not list(tmp_path.glob("*.partial"))


def test_digest_changes_with_content() -> None:
    profile = calibrated_profile()
    changed = profile.with_alarm("cam", None)
    assert changed.digest() != profile.digest()


def test_nan_statistics_survive_the_round_trip(tmp_path: Path) -> None:
    builder = ProfileBuilder()
    builder.add("depth", "d", {"depth_median_m": math.nan, "valid_fraction": 0.0}, 0)
    path = tmp_path / "p.yaml"
    builder.build(created_ns=0).save(path)
    stats = Profile.load(path).stream("d").features["depth_median_m"]
    assert stats.count == 0 and stats.nan_count == 1 and math.isnan(stats.mean)


def write_yaml(tmp_path: Path, data: dict[str, Any]) -> str:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_corrupt_files_raise_profile_error(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.yaml"
    garbage.write_text("streams: [unclosed\n  - : :")
    with pytest.raises(ProfileError, match="not valid YAML"):
        Profile.load(garbage)
    with pytest.raises(ProfileError, match="cannot read"):
        Profile.load(tmp_path / "missing.yaml")
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(ProfileError, match="must be a mapping"):
        Profile.load(empty)


def test_wrong_schema_version_names_found_and_supported(tmp_path: Path) -> None:
    data = calibrated_profile().to_dict()
    data["schema_version"] = 99
    with pytest.raises(ProfileError) as error:
        Profile.load(write_yaml(tmp_path, data))
    assert "found 99" in str(error.value)
    assert f"supported: {SCHEMA_VERSION}" in str(error.value)
    del data["schema_version"]
    with pytest.raises(ProfileError, match="schema_version: missing"):
        Profile.load(write_yaml(tmp_path, data))


@pytest.mark.parametrize(
    ("path", "message"),
    [
        (("streams", "cam", "features", "contrast", "quantiles", "p99"), "quantiles.p99: missing"),
        (("streams", "cam", "modality"), "streams.cam.modality: missing"),
        (("streams", "cam", "model", "covariance"), "model.covariance: missing"),
        (("streams", "cam", "alarm", "threshold"), "alarm.threshold: missing"),
        (("created_ns",), "created_ns: missing"),
    ],
)
def test_missing_keys_are_named(tmp_path: Path, path: tuple[str, ...], message: str) -> None:
    data = calibrated_profile().to_dict()
    node = data
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    with pytest.raises(ProfileError, match=message.replace(".", r"\.")):
        Profile.load(write_yaml(tmp_path, data))


def test_wrong_types_and_inconsistent_models_are_rejected(tmp_path: Path) -> None:
    data = calibrated_profile().to_dict()
    data["streams"]["cam"]["sample_count"] = "many"
    with pytest.raises(ProfileError, match="sample_count: must be an integer"):
        Profile.load(write_yaml(tmp_path, data))
    data = calibrated_profile().to_dict()
    data["streams"]["cam"]["model"]["covariance"] = [[1.0]]
    with pytest.raises(ProfileError, match="covariance"):
        Profile.load(write_yaml(tmp_path, data))
    data = calibrated_profile().to_dict()
    data["streams"]["cam"]["alarm"]["clear_threshold"] = 99.0
    with pytest.raises(ProfileError, match="clear_threshold"):
        Profile.load(write_yaml(tmp_path, data))
    data = calibrated_profile().to_dict()
    data["streams"]["cam"]["modality"] = "sonar"
    with pytest.raises(ProfileError, match="sonar"):
        Profile.load(write_yaml(tmp_path, data))


def test_alarm_calibration_validates_fields() -> None:
    with pytest.raises(ValueError, match="fire_k"):
        AlarmCalibration(threshold=3.0, clear_threshold=1.0, fire_k=6, fire_n=5)
    with pytest.raises(ValueError, match="clear_threshold"):
        AlarmCalibration(threshold=3.0, clear_threshold=3.0)
    with pytest.raises(ValueError, match="threshold"):
        AlarmCalibration(threshold=math.inf, clear_threshold=1.0)


def test_source_recording_hashes_files_and_folders(tmp_path: Path) -> None:
    bag = tmp_path / "bag"
    bag.mkdir()
    (bag / "metadata.yaml").write_bytes(b"meta")
    (bag / "bag_0.mcap").write_bytes(b"x" * 1000)
    single = SourceRecording.from_path(bag / "bag_0.mcap")
    assert single.size_bytes == 1000
    assert single.sha256 == hashlib.sha256(b"x" * 1000).hexdigest()
    folder = SourceRecording.from_path(bag)
    assert folder.size_bytes == 1004
    (bag / "metadata.yaml").write_bytes(b"META")
    assert SourceRecording.from_path(bag).sha256 != folder.sha256
    with pytest.raises(FileNotFoundError):
        SourceRecording.from_path(tmp_path / "nope")
    (bag / "empty.mcap").write_bytes(b"")  # cannot be memory-mapped: hashed by reading
    assert SourceRecording.from_path(bag / "empty.mcap").sha256 == hashlib.sha256(b"").hexdigest()


# ---------------------------------------------------------------------------------------------
# Merging


def test_merge_combines_counts_moments_and_approximate_quantiles() -> None:
    rng = np.random.default_rng(6)
    first, second = correlated(rng, 3000), correlated(rng, 2000, shift=40.0)
    merged = merge_profiles(
        [build(first, histogram_bins=64), build(second, histogram_bins=64)], created_ns=5
    ).stream("cam")
    together = {k: np.concatenate([first[k], second[k]]) for k in first}
    assert merged.sample_count == 5000
    for name, values in together.items():
        stats = merged.features[name]
        assert stats.count == 5000
        assert stats.mean == pytest.approx(values.mean())
        assert stats.std == pytest.approx(values.std())
        assert (stats.min, stats.max) == (values.min(), values.max())
        bin_width = (values.max() - values.min()) / 64
        np.testing.assert_allclose(
            stats.quantiles, np.quantile(values, QUANTILE_LEVELS), atol=1.5 * bin_width
        )
        assert sum(stats.histogram.counts) == pytest.approx(5000)
    model = merged.model
    assert model is not None and model.count == 5000
    matrix = np.column_stack([together[f] for f in model.features])
    assert model.mean == pytest.approx(matrix.mean(axis=0))
    np.testing.assert_allclose(
        np.diag(model.covariance_matrix()), matrix.var(axis=0), rtol=0.01
    )
    # Off-diagonal terms come back too: the correlation survives the merge.
    reference = np.corrcoef(matrix, rowvar=False)
    covariance = model.covariance_matrix()
    scale = np.sqrt(np.diag(covariance))
    np.testing.assert_allclose(covariance / np.outer(scale, scale), reference, atol=0.02)


def test_merging_a_profile_with_itself_keeps_its_quantiles() -> None:
    rng = np.random.default_rng(7)
    profile = build(correlated(rng, 2000))
    merged = merge_profiles([profile, profile]).stream("cam")
    for name, stats in profile.stream("cam").features.items():
        width = (stats.max - stats.min) / len(stats.histogram.counts)
        np.testing.assert_allclose(merged.features[name].quantiles, stats.quantiles, atol=width)
        assert merged.features[name].count == 2 * stats.count


def test_merge_handles_point_masses_sources_and_drops_alarms() -> None:
    constant = build({"saturated_fraction": np.zeros(10)})
    shifted = build({"saturated_fraction": np.full(30, 0.5)})
    merged = merge_profiles(
        [
            replace(calibrated_profile(), streams={}),
            constant,
            shifted,
        ]
    )
    stats = merged.stream("cam").features["saturated_fraction"]
    assert stats.count == 40
    assert stats.quantile("p5") == 0.0
    assert stats.quantile("p50") == 0.5
    assert stats.mean == pytest.approx(0.375)
    assert merged.sources == calibrated_profile().sources
    with_alarm = calibrated_profile()
    merged_again = merge_profiles([with_alarm]).stream("cam")
    assert merged_again.alarm is None
    assert merged_again.model is not None and merged_again.model.distance_quantiles is None


def test_merge_rejects_conflicting_modalities_and_nothing() -> None:
    camera = build({"x": np.arange(5.0)}, modality="camera", stream="s")
    imu = build({"x": np.arange(5.0)}, modality="imu", stream="s")
    with pytest.raises(ProfileError, match="modalities"):
        merge_profiles([camera, imu])
    with pytest.raises(ProfileError, match="no profiles"):
        merge_profiles([])


def test_feature_sample_feeds_the_builder() -> None:
    builder = ProfileBuilder()
    builder.add_samples(FeatureSample("wrench", "ft", {"force_norm_mean": float(i)}, i) for i in range(5))
    assert builder.stream_names == ("ft",)
    stats = builder.build().stream("ft").features["force_norm_mean"]
    assert stats.quantile("p50") == 2.0
    assert QUANTILE_KEYS[4] == "p50"
