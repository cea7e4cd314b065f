"""Building a profile from feature samples: exact per-feature statistics and the joint Gaussian model.

Covariance shrinkage. The sample correlation matrix is shrunk towards the identity (i.e. the
covariance towards its own diagonal) with the analytic Ledoit-Wolf-type intensity of Schafer &
Strimmer (2005, target "D"): delta = sum_{i!=j} Var(r_ij) / sum_{i!=j} r_ij^2, clipped to [0, 1].
It needs no tuning, goes to 0 for strongly correlated features with plenty of data and towards 1
when the correlations are indistinguishable from noise. A fixed intensity can be given instead.
Each variance is then floored at the feature's ``resolution`` squared, so a feature that hardly
varied in training (a NaN count that was always 0) stays in the model without making a trivial
change an enormous distance; features with zero variance and no resolution are left out.
"""

from __future__ import annotations

import math
import time
from array import array
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from gap_monitor.core.conditions.features import MODALITIES, feature_spec
from gap_monitor.core.conditions.profile import (
    DEFAULT_HISTOGRAM_BINS,
    MIN_MODEL_SAMPLES,
    QUANTILE_LEVELS,
    FeatureSample,
    FeatureStats,
    FloatArray,
    GaussianModel,
    Histogram,
    Profile,
    SourceRecording,
    StreamProfile,
)
from gap_monitor.errors import ProfileError


class ProfileBuilder:
    """Accumulates feature dicts per stream and builds a :class:`Profile`.

    Values are kept (8 bytes per feature per sample) so quantiles are exact; an hour of 12 IMU
    features at 10 Hz is about 3.5 MB.
    """

    def __init__(self, histogram_bins: int = DEFAULT_HISTOGRAM_BINS, shrinkage: float | None = None) -> None:
        if not 2 <= histogram_bins <= 4096:
            raise ValueError(f"histogram_bins={histogram_bins!r}: must be 2..4096")
        if shrinkage is not None and not 0.0 <= shrinkage <= 1.0:
            raise ValueError(f"shrinkage={shrinkage!r}: must be 0..1, or None for the estimate")
        self.histogram_bins = histogram_bins
        self.shrinkage = shrinkage
        self._streams: dict[str, _StreamColumns] = {}

    def add(self, modality: str, stream_name: str, features: Mapping[str, float], time_ns: int) -> None:
        if modality not in MODALITIES:
            raise ValueError(f"modality={modality!r}: must be one of {MODALITIES}")
        if not stream_name:
            raise ValueError("stream_name must be a non-empty string")
        columns = self._streams.get(stream_name)
        if columns is None:
            columns = self._streams[stream_name] = _StreamColumns(modality)
        elif columns.modality != modality:
            raise ValueError(f"stream {stream_name!r} was added as {columns.modality!r}, now as {modality!r}")
        columns.add(features, int(time_ns))

    def add_samples(self, samples: Iterable[FeatureSample]) -> None:
        for sample in samples:
            self.add(sample.modality, sample.stream, sample.features, sample.time_ns)

    @property
    def stream_names(self) -> tuple[str, ...]:
        return tuple(self._streams)

    def build(self, sources: Sequence[SourceRecording] = (), created_ns: int | None = None) -> Profile:
        if not self._streams:
            raise ProfileError("no feature samples were added: nothing to build a profile from")
        streams = {
            name: columns.build(self.histogram_bins, self.shrinkage)
            for name, columns in self._streams.items()
        }
        return Profile(
            streams=streams,
            sources=tuple(sources),
            created_ns=time.time_ns() if created_ns is None else int(created_ns),
        )


class _StreamColumns:
    """Column store for one stream; a feature first seen late is back-filled with NaN."""

    def __init__(self, modality: str) -> None:
        self.modality = modality
        self.rows = 0
        self.columns: dict[str, array[float]] = {}
        self.first_ns: int | None = None
        self.last_ns: int | None = None

    def add(self, features: Mapping[str, float], time_ns: int) -> None:
        for name, value in features.items():
            if not isinstance(name, str) or not name:
                raise ValueError(f"feature names must be non-empty strings, got {name!r}")
            column = self.columns.get(name)
            if column is None:
                column = self.columns[name] = array("d", [math.nan] * self.rows)
            column.append(feature_value(name, value))
        self.rows += 1
        for column in self.columns.values():
            if len(column) < self.rows:
                column.append(math.nan)
        self.first_ns = time_ns if self.first_ns is None else min(self.first_ns, time_ns)
        self.last_ns = time_ns if self.last_ns is None else max(self.last_ns, time_ns)

    def build(self, bins: int, shrinkage: float | None) -> StreamProfile:
        names = list(self.columns)
        matrix = np.empty((self.rows, len(names)), dtype=np.float64)
        for index, name in enumerate(names):
            matrix[:, index] = np.frombuffer(self.columns[name], dtype=np.float64)
        stats = {
            name: feature_stats(matrix[:, index], bins, *unit_and_resolution(self.modality, name))
            for index, name in enumerate(names)
        }
        return StreamProfile(
            modality=self.modality,
            sample_count=self.rows,
            first_time_ns=self.first_ns or 0,
            last_time_ns=self.last_ns or 0,
            features=stats,
            model=fit_gaussian_model(names, matrix, stats, shrinkage),
        )


def feature_stats(
    values: npt.ArrayLike, bins: int = DEFAULT_HISTOGRAM_BINS, unit: str = "", resolution: float = 0
) -> FeatureStats:
    """Statistics of one feature's values; non-finite values are only counted."""
    raw = np.asarray(values, dtype=np.float64).reshape(-1)
    finite = raw[np.isfinite(raw)]
    nan_count = int(raw.size - finite.size)
    if finite.size == 0:
        nan = math.nan
        return FeatureStats(
            0, nan_count, nan, nan, nan, nan, tuple(nan for _ in QUANTILE_LEVELS),
            Histogram.from_values(finite, bins), unit, resolution,
        )  # fmt: skip
    quantiles = np.quantile(finite, QUANTILE_LEVELS)
    return FeatureStats(
        count=int(finite.size),
        nan_count=nan_count,
        mean=float(finite.mean()),
        std=float(finite.std()),
        min=float(np.min(finite)),
        max=float(np.max(finite)),
        quantiles=tuple(float(q) for q in quantiles),
        histogram=Histogram.from_values(finite, bins),
        unit=unit,
        resolution=float(resolution),
    )


def fit_gaussian_model(
    names: Sequence[str],
    matrix: FloatArray,
    stats: Mapping[str, FeatureStats],
    shrinkage: float | None = None,
) -> GaussianModel | None:
    """Mean and shrunk covariance over the complete rows (see the module notes); None if there
    are fewer than ``MIN_MODEL_SAMPLES`` complete rows or no usable feature."""
    usable = [
        index
        for index, name in enumerate(names)
        if stats[name].count >= MIN_MODEL_SAMPLES and (stats[name].std > 0 or stats[name].resolution > 0)
    ]
    if not usable:
        return None
    columns = matrix[:, usable]
    rows = columns[np.isfinite(columns).all(axis=1)]
    n = rows.shape[0]
    if n < MIN_MODEL_SAMPLES:
        return None
    mean = rows.mean(axis=0)
    std = rows.std(axis=0, ddof=1)
    varying = std > 0
    standardised = np.zeros_like(rows)
    standardised[:, varying] = (rows[:, varying] - mean[varying]) / std[varying]
    correlation = standardised.T @ standardised / (n - 1)
    if shrinkage is None:
        shrinkage = schafer_strimmer_shrinkage(standardised)
    shrunk = (1.0 - shrinkage) * correlation
    np.fill_diagonal(shrunk, 1.0)
    floors = np.array([stats[names[i]].resolution for i in usable], dtype=np.float64)
    scale = np.maximum(std, floors)
    covariance = shrunk * np.outer(scale, scale)
    z = (rows - mean) / scale
    inverse = np.linalg.pinv(shrunk, hermitian=True)
    distances = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", z, inverse, z), 0.0))
    return GaussianModel(
        features=tuple(names[i] for i in usable),
        mean=tuple(float(v) for v in mean),
        covariance=tuple(tuple(float(v) for v in row) for row in covariance),
        shrinkage=float(shrinkage),
        count=int(n),
        distance_quantiles=tuple(float(q) for q in np.quantile(distances, QUANTILE_LEVELS)),
    )


def schafer_strimmer_shrinkage(standardised: FloatArray) -> float:
    """Optimal intensity for shrinking a correlation matrix towards the identity.

    ``standardised`` is n x p, each column centred and scaled to unit (ddof=1) variance (a
    constant column all zeros). Var(r_ij) is estimated from w_kij = x_ki * x_kj as
    n / (n-1)^3 * sum_k (w_kij - mean_k w_kij)^2.
    """
    n, p = standardised.shape
    if p < 2 or n < MIN_MODEL_SAMPLES:
        return 1.0
    products = standardised.T @ standardised
    squares = np.square(standardised)
    sum_sq = squares.T @ squares
    mean_w = products / n
    var_r = n / (n - 1) ** 3 * (sum_sq - n * np.square(mean_w))
    r = products / (n - 1)
    off = ~np.eye(p, dtype=bool)
    denominator = float(np.square(r[off]).sum())
    if denominator <= 0.0:
        return 1.0
    return float(np.clip(var_r[off].sum() / denominator, 0.0, 1.0))


def unit_and_resolution(modality: str, name: str) -> tuple[str, float]:
    spec = feature_spec(modality, name)
    return ("", 0.0) if spec is None else (spec.unit, spec.resolution)


def feature_value(name: str, value: Any) -> float:
    """None means "not available" (NaN); anything else must be a number."""
    if value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"feature {name!r}: value {value!r} is not a number") from None
