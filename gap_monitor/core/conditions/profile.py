"""Training-condition profile: what each feature of each stream looked like in the training data.

A profile holds, per stream (a camera, an IMU, ...; each stream has one modality):

* per feature: count, NaN count, mean, population std, min, max, quantiles at ``QUANTILE_LEVELS``
  (numpy's linear interpolation) and an equal-width histogram between min and max;
* a joint Gaussian model of the features (``GaussianModel``): mean vector, shrunk covariance, and
  the quantiles of the training rows' own Mahalanobis distances;
* optionally the calibrated alarm (``AlarmCalibration``, set by ``scoring.calibrate``).

Files are YAML (``yaml.safe_dump``, plain types) with ``schema_version``; loading checks it and
every key, raising ``ProfileError`` with the file and the key path.
"""

from __future__ import annotations

import hashlib
import math
import mmap
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import yaml

from gap_monitor.core.conditions.features import MODALITIES
from gap_monitor.core.conditions.persistence import DEFAULT_PERSISTENCE, Persistence
from gap_monitor.errors import ProfileError

SCHEMA_VERSION = 1
QUANTILE_LEVELS: tuple[float, ...] = (0.001, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 0.999)
QUANTILE_KEYS: tuple[str, ...] = ("p0.1", "p1", "p5", "p25", "p50", "p75", "p95", "p99", "p99.9")
DEFAULT_HISTOGRAM_BINS = 64
# Fewer complete rows than this and no joint model is fitted (the shrinkage estimate needs n >= 3).
MIN_MODEL_SAMPLES = 3

FloatArray = npt.NDArray[np.float64]


class FeatureSample(NamedTuple):
    """One feature dict of one stream at one time, as the profile builder consumes them."""

    modality: str
    stream: str
    features: Mapping[str, float]
    time_ns: int


@dataclass(frozen=True)
class Histogram:
    """Counts in ``len(counts)`` equal-width bins from ``low`` to ``high`` (the last bin closed).

    ``low == high`` is a point mass (every count in the first bin). Counts are floats because a
    merged histogram redistributes counts between bins.
    """

    low: float
    high: float
    counts: tuple[float, ...]

    @classmethod
    def from_values(cls, values: FloatArray, bins: int) -> Histogram:
        if values.size == 0:
            return cls(math.nan, math.nan, tuple(0.0 for _ in range(bins)))
        low, high = float(np.min(values)), float(np.max(values))
        if low == high:
            return cls(low, high, (float(values.size), *(0.0 for _ in range(bins - 1))))
        counts, _ = np.histogram(values, bins=bins, range=(low, high))
        return cls(low, high, tuple(float(c) for c in counts))

    @property
    def total(self) -> float:
        return float(sum(self.counts))

    def edges(self) -> FloatArray:
        return np.linspace(self.low, self.high, len(self.counts) + 1, dtype=np.float64)


@dataclass(frozen=True)
class FeatureStats:
    count: int
    nan_count: int
    mean: float
    std: float
    min: float
    max: float
    quantiles: tuple[float, ...]  # at QUANTILE_LEVELS
    histogram: Histogram
    unit: str = ""
    resolution: float = 0.0

    def quantile(self, key: str) -> float:
        """A stored quantile by key ("p1", "p99.9", ...)."""
        return self.quantiles[QUANTILE_KEYS.index(key)]

    @property
    def p1(self) -> float:
        return self.quantile("p1")

    @property
    def p99(self) -> float:
        return self.quantile("p99")


@dataclass(frozen=True)
class GaussianModel:
    """Mean and shrunk covariance of the features listed, fitted on complete rows."""

    features: tuple[str, ...]
    mean: tuple[float, ...]
    covariance: tuple[tuple[float, ...], ...]
    shrinkage: float
    count: int
    # Quantiles (QUANTILE_LEVELS) of the training rows' own Mahalanobis distances: the scorer
    # judges a distance against these rather than trusting the chi-square (features are rarely
    # Gaussian). None after a merge, which changes the model.
    distance_quantiles: tuple[float, ...] | None = None

    def mean_vector(self) -> FloatArray:
        return np.asarray(self.mean, dtype=np.float64)

    def covariance_matrix(self) -> FloatArray:
        return np.asarray(self.covariance, dtype=np.float64).reshape(len(self.features), len(self.features))


@dataclass(frozen=True)
class AlarmCalibration:
    """Sequential alarm settings for one stream, scores being -log10(p).

    Fires when ``fire_k`` of the last ``fire_n`` scores exceed ``threshold``, or at once on a single
    score above ``instant_threshold`` (evidence too strong to wait for; 0: no such rule), or when the
    accumulated evidence S_t = max(0, S_t-1 + score_t - ``evidence_reference``) exceeds
    ``evidence_threshold`` (a CUSUM over the scores; 0: no such rule); once fired it clears (and
    re-arms) after ``clear_n`` consecutive scores below ``clear_threshold``. The remaining fields
    record how the thresholds were chosen.
    """

    threshold: float
    clear_threshold: float
    fire_k: int = DEFAULT_PERSISTENCE.k
    fire_n: int = DEFAULT_PERSISTENCE.n
    clear_n: int = 10
    frame_rate_hz: float = 0.0
    target_false_alarms_per_hour: float = 0.0
    held_out_samples: int = 0
    method: str = ""
    instant_threshold: float = 0.0
    evidence_reference: float = 0.0
    evidence_threshold: float = 0.0

    @property
    def persistence(self) -> Persistence:
        """The k-of-n rule this calibration fires by."""
        return Persistence(self.fire_k, self.fire_n)

    def __post_init__(self) -> None:
        problems = []
        if not math.isfinite(self.evidence_reference) or self.evidence_reference < 0:
            problems.append(f"evidence_reference={self.evidence_reference!r}: must be a finite score >= 0")
        if not math.isfinite(self.evidence_threshold) or self.evidence_threshold < 0:
            problems.append(f"evidence_threshold={self.evidence_threshold!r}: must be a finite sum >= 0")
        if not math.isfinite(self.instant_threshold) or self.instant_threshold < 0:
            problems.append(f"instant_threshold={self.instant_threshold!r}: must be a finite score >= 0")
        if not math.isfinite(self.threshold) or self.threshold <= 0:
            problems.append(f"threshold={self.threshold!r}: must be a finite score > 0")
        elif not (0 <= self.clear_threshold < self.threshold):
            problems.append(
                f"clear_threshold={self.clear_threshold!r}: must be >= 0 and below threshold "
                f"{self.threshold!r}"
            )
        if not 1 <= self.fire_n <= 1000:
            problems.append(f"fire_n={self.fire_n!r}: must be 1..1000 samples")
        if not 1 <= self.fire_k <= max(self.fire_n, 1):
            problems.append(f"fire_k={self.fire_k!r}: must be 1..fire_n ({self.fire_n})")
        if self.clear_n < 1:
            problems.append(f"clear_n={self.clear_n!r}: must be >= 1 sample")
        if not math.isfinite(self.frame_rate_hz) or self.frame_rate_hz < 0:
            problems.append(f"frame_rate_hz={self.frame_rate_hz!r}: must be >= 0")
        if self.held_out_samples < 0:
            problems.append(f"held_out_samples={self.held_out_samples!r}: must be >= 0")
        if problems:
            raise ValueError("AlarmCalibration: " + "; ".join(problems))


@dataclass(frozen=True)
class StreamProfile:
    modality: str
    sample_count: int
    first_time_ns: int
    last_time_ns: int
    features: Mapping[str, FeatureStats]
    model: GaussianModel | None = None
    alarm: AlarmCalibration | None = None


@dataclass(frozen=True)
class SourceRecording:
    """A recording the profile was built from. For a directory (a rosbag2 folder) the size is the
    sum of its files and the digest is SHA-256 over "relative path\\0file sha256\\n" lines in
    sorted order."""

    path: str
    size_bytes: int
    sha256: str

    @classmethod
    def from_path(cls, path: str | Path) -> SourceRecording:
        source = Path(path)
        if source.is_file():
            return cls(str(source), source.stat().st_size, _file_sha256(source))
        if source.is_dir():
            digest = hashlib.sha256()
            size = 0
            for member in sorted(p for p in source.rglob("*") if p.is_file()):
                size += member.stat().st_size
                relative = member.relative_to(source).as_posix()
                digest.update(f"{relative}\0{_file_sha256(member)}\n".encode())
            return cls(str(source), size, digest.hexdigest())
        raise FileNotFoundError(f"recording {source} does not exist")


@dataclass(frozen=True)
class Profile:
    streams: Mapping[str, StreamProfile]
    sources: tuple[SourceRecording, ...] = ()
    created_ns: int = 0
    schema_version: int = SCHEMA_VERSION

    def stream(self, name: str) -> StreamProfile:
        try:
            return self.streams[name]
        except KeyError:
            raise KeyError(
                f"stream {name!r} is not in the profile (streams: {sorted(self.streams)})"
            ) from None

    def with_alarm(self, stream: str, alarm: AlarmCalibration | None) -> Profile:
        streams = dict(self.streams)
        streams[stream] = replace(self.stream(stream), alarm=alarm)
        return replace(self, streams=streams)

    def to_dict(self) -> dict[str, Any]:
        return _profile_to_dict(self)

    @classmethod
    def from_dict(cls, data: Any, origin: str = "<profile>") -> Profile:
        return _profile_from_dict(data, origin)

    def dumps(self) -> str:
        return str(yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None))

    def digest(self) -> str:
        """SHA-256 of the canonical (key-sorted) YAML: identifies the profile in snapshots."""
        return hashlib.sha256(yaml.safe_dump(self.to_dict(), sort_keys=True).encode()).hexdigest()

    def save(self, path: str | Path) -> None:
        """Write atomically: a reader never sees half a profile."""
        target = Path(path)
        partial = target.with_name(target.name + ".partial")
        partial.write_text(self.dumps(), encoding="utf-8")
        partial.replace(target)

    @classmethod
    def load(cls, path: str | Path) -> Profile:
        source = Path(path)
        try:
            text = source.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ProfileError(f"profile {source}: cannot read: {exc}") from exc
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ProfileError(f"profile {source}: not valid YAML: {exc}") from exc
        return _profile_from_dict(data, str(source))


# ----------------------------------------------------------------------------------------------
# Serialisation


def _profile_to_dict(profile: Profile) -> dict[str, Any]:
    return {
        "schema_version": profile.schema_version,
        "kind": "gap_monitor/profile",
        "created_ns": int(profile.created_ns),
        "sources": [
            {"path": s.path, "size_bytes": int(s.size_bytes), "sha256": s.sha256} for s in profile.sources
        ],
        "streams": {name: _stream_to_dict(stream) for name, stream in profile.streams.items()},
    }


def _stream_to_dict(stream: StreamProfile) -> dict[str, Any]:
    model = stream.model
    alarm = stream.alarm
    return {
        "modality": stream.modality,
        "sample_count": int(stream.sample_count),
        "first_time_ns": int(stream.first_time_ns),
        "last_time_ns": int(stream.last_time_ns),
        "features": {name: _stats_to_dict(stats) for name, stats in stream.features.items()},
        "model": None
        if model is None
        else {
            "features": list(model.features),
            "mean": [float(v) for v in model.mean],
            "covariance": [[float(v) for v in row] for row in model.covariance],
            "shrinkage": float(model.shrinkage),
            "shrinkage_method": "schafer-strimmer diagonal target; variances floored at resolution",
            "count": int(model.count),
            "distance_quantiles": None
            if model.distance_quantiles is None
            else {k: float(v) for k, v in zip(QUANTILE_KEYS, model.distance_quantiles, strict=True)},
        },
        "alarm": None
        if alarm is None
        else {
            "threshold": float(alarm.threshold),
            "clear_threshold": float(alarm.clear_threshold),
            "fire_k": int(alarm.fire_k),
            "fire_n": int(alarm.fire_n),
            "clear_n": int(alarm.clear_n),
            "frame_rate_hz": float(alarm.frame_rate_hz),
            "target_false_alarms_per_hour": float(alarm.target_false_alarms_per_hour),
            "held_out_samples": int(alarm.held_out_samples),
            "method": alarm.method,
            "instant_threshold": float(alarm.instant_threshold),
            "evidence_reference": float(alarm.evidence_reference),
            "evidence_threshold": float(alarm.evidence_threshold),
        },
    }


def _stats_to_dict(stats: FeatureStats) -> dict[str, Any]:
    return {
        "unit": stats.unit,
        "resolution": float(stats.resolution),
        "count": int(stats.count),
        "nan_count": int(stats.nan_count),
        "mean": float(stats.mean),
        "std": float(stats.std),
        "min": float(stats.min),
        "max": float(stats.max),
        "quantiles": {k: float(v) for k, v in zip(QUANTILE_KEYS, stats.quantiles, strict=True)},
        "histogram": {
            "low": float(stats.histogram.low),
            "high": float(stats.histogram.high),
            "counts": [int(c) if float(c).is_integer() else float(c) for c in stats.histogram.counts],
        },
    }


class _Reader:
    """Typed access to a loaded mapping; every error names the file and the key path."""

    def __init__(self, data: Any, origin: str, where: str) -> None:
        if not isinstance(data, dict):
            raise ProfileError(
                f"profile {origin}: {where or 'top level'}: must be a mapping, got {type(data).__name__}"
            )
        self.data = data
        self.origin = origin
        self.where = where

    def _path(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def fail(self, key: str, problem: str) -> ProfileError:
        return ProfileError(f"profile {self.origin}: {self._path(key)}: {problem}")

    def raw(self, key: str) -> Any:
        if key not in self.data:
            raise self.fail(key, "missing")
        return self.data[key]

    def child(self, key: str) -> _Reader:
        return _Reader(self.raw(key), self.origin, self._path(key))

    def optional_child(self, key: str) -> _Reader | None:
        value = self.data.get(key)
        return None if value is None else self.child(key)

    def number(self, key: str) -> float:
        value = self.raw(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(key, f"must be a number, got {value!r}")
        return float(value)

    def integer(self, key: str) -> int:
        value = self.raw(key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, f"must be an integer, got {value!r}")
        return value

    def text(self, key: str) -> str:
        value = self.raw(key)
        if not isinstance(value, str):
            raise self.fail(key, f"must be a string, got {value!r}")
        return value

    def numbers(self, key: str, length: int | None = None) -> tuple[float, ...]:
        return self.number_list(self.raw(key), key, length)

    def number_list(self, value: Any, key: str, length: int | None = None) -> tuple[float, ...]:
        if not isinstance(value, list) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value
        ):
            raise self.fail(key, "must be a list of numbers")
        if length is not None and len(value) != length:
            raise self.fail(key, f"must have {length} entries, has {len(value)}")
        return tuple(float(v) for v in value)

    def items(self) -> list[tuple[str, Any]]:
        return [(str(k), v) for k, v in self.data.items()]


def _profile_from_dict(data: Any, origin: str) -> Profile:
    top = _Reader(data, origin, "")
    version = top.raw("schema_version")
    if version != SCHEMA_VERSION:
        raise ProfileError(
            f"profile {origin}: schema_version {version!r} is not supported "
            f"(found {version!r}, supported: {SCHEMA_VERSION})"
        )
    sources_raw = top.raw("sources")
    if not isinstance(sources_raw, list):
        raise ProfileError(f"profile {origin}: sources: must be a list")
    sources = []
    for index, item in enumerate(sources_raw):
        source = _Reader(item, origin, f"sources[{index}]")
        sources.append(
            SourceRecording(source.text("path"), source.integer("size_bytes"), source.text("sha256"))
        )
    streams_reader = top.child("streams")
    streams = {name: _stream_from_reader(streams_reader.child(name)) for name, _ in streams_reader.items()}
    return Profile(
        streams=streams,
        sources=tuple(sources),
        created_ns=top.integer("created_ns"),
        schema_version=SCHEMA_VERSION,
    )


def _stream_from_reader(reader: _Reader) -> StreamProfile:
    modality = reader.text("modality")
    if modality not in MODALITIES:
        raise reader.fail("modality", f"{modality!r} is not one of {MODALITIES}")
    features_reader = reader.child("features")
    features = {name: _stats_from_reader(features_reader.child(name)) for name, _ in features_reader.items()}
    model = None
    model_reader = reader.optional_child("model")
    if model_reader is not None:
        names_raw = model_reader.raw("features")
        if not isinstance(names_raw, list) or not all(isinstance(n, str) for n in names_raw):
            raise model_reader.fail("features", "must be a list of feature names")
        missing = [n for n in names_raw if n not in features]
        if missing:
            raise model_reader.fail("features", f"names features with no statistics: {missing}")
        size = len(names_raw)
        rows_raw = model_reader.raw("covariance")
        if not isinstance(rows_raw, list) or len(rows_raw) != size:
            raise model_reader.fail("covariance", f"must be a {size} x {size} list of lists")
        covariance = tuple(
            model_reader.number_list(row, f"covariance[{i}]", size) for i, row in enumerate(rows_raw)
        )
        distance_reader = model_reader.optional_child("distance_quantiles")
        model = GaussianModel(
            features=tuple(names_raw),
            mean=model_reader.numbers("mean", size),
            covariance=covariance,
            shrinkage=model_reader.number("shrinkage"),
            count=model_reader.integer("count"),
            distance_quantiles=None
            if distance_reader is None
            else tuple(distance_reader.number(key) for key in QUANTILE_KEYS),
        )
    alarm = None
    alarm_reader = reader.optional_child("alarm")
    if alarm_reader is not None:
        try:
            alarm = AlarmCalibration(
                threshold=alarm_reader.number("threshold"),
                clear_threshold=alarm_reader.number("clear_threshold"),
                fire_k=alarm_reader.integer("fire_k"),
                fire_n=alarm_reader.integer("fire_n"),
                clear_n=alarm_reader.integer("clear_n"),
                frame_rate_hz=alarm_reader.number("frame_rate_hz"),
                target_false_alarms_per_hour=alarm_reader.number("target_false_alarms_per_hour"),
                held_out_samples=alarm_reader.integer("held_out_samples"),
                method=alarm_reader.text("method"),
                # Absent in profiles written before the rule existed: no instant rule.
                instant_threshold=alarm_reader.number("instant_threshold")
                if "instant_threshold" in alarm_reader.data
                else 0.0,
                # Likewise for the evidence (CUSUM) rule: absent, the alarm is k-of-n + instant.
                evidence_reference=alarm_reader.number("evidence_reference")
                if "evidence_reference" in alarm_reader.data
                else 0.0,
                evidence_threshold=alarm_reader.number("evidence_threshold")
                if "evidence_threshold" in alarm_reader.data
                else 0.0,
            )
        except ValueError as exc:
            if isinstance(exc, ProfileError):
                raise
            raise ProfileError(f"profile {alarm_reader.origin}: {alarm_reader.where}: {exc}") from exc
    return StreamProfile(
        modality=modality,
        sample_count=reader.integer("sample_count"),
        first_time_ns=reader.integer("first_time_ns"),
        last_time_ns=reader.integer("last_time_ns"),
        features=features,
        model=model,
        alarm=alarm,
    )


def _stats_from_reader(reader: _Reader) -> FeatureStats:
    quantile_reader = reader.child("quantiles")
    histogram_reader = reader.child("histogram")
    counts = histogram_reader.numbers("counts")
    if len(counts) < 1:
        raise histogram_reader.fail("counts", "must not be empty")
    return FeatureStats(
        count=reader.integer("count"),
        nan_count=reader.integer("nan_count"),
        mean=reader.number("mean"),
        std=reader.number("std"),
        min=reader.number("min"),
        max=reader.number("max"),
        quantiles=tuple(quantile_reader.number(key) for key in QUANTILE_KEYS),
        histogram=Histogram(histogram_reader.number("low"), histogram_reader.number("high"), counts),
        unit=reader.text("unit"),
        resolution=reader.number("resolution"),
    )


# ----------------------------------------------------------------------------------------------
# Helpers


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        try:
            # One update over the mapped file: hashlib holds no GIL while it hashes, so a hashing
            # thread runs beside a busy Python thread instead of queueing for the GIL every block.
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                digest.update(mapped)
                return digest.hexdigest()
        except (OSError, ValueError):  # an empty file, or one that cannot be mapped
            pass
        for block in iter(lambda: handle.read(1 << 24), b""):
            digest.update(block)
    return digest.hexdigest()
