"""Merging profiles built from different recordings.

Merging (``merge_profiles``): counts, means, standard deviations, min and max combine exactly;
quantiles are approximate, read from the mixture of the inputs' histograms (uniform within a bin);
mean vectors and the stored (shrunk) covariances are pooled with the between-profile spread, and
the merged shrinkage is the count-weighted mean. The training distance quantiles cannot be
recomputed without the data, so a merged model has none (the scorer falls back to the chi-square).
Alarm calibrations are dropped: a merged profile scores differently and has to be calibrated again.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np

from gap_monitor.core.conditions.profile import (
    DEFAULT_HISTOGRAM_BINS,
    QUANTILE_LEVELS,
    FeatureStats,
    FloatArray,
    GaussianModel,
    Histogram,
    Profile,
    SourceRecording,
    StreamProfile,
)
from gap_monitor.core.conditions.profile_builder import feature_stats
from gap_monitor.errors import ProfileError


def merge_profiles(
    profiles: Sequence[Profile],
    created_ns: int | None = None,
    histogram_bins: int = DEFAULT_HISTOGRAM_BINS,
) -> Profile:
    """Combine profiles of the same robot (e.g. built from different recordings); see the module
    notes for what is exact and what is approximate."""
    if not profiles:
        raise ProfileError("merge_profiles: no profiles given")
    names: list[str] = []
    for profile in profiles:
        names.extend(name for name in profile.streams if name not in names)
    streams: dict[str, StreamProfile] = {}
    for name in names:
        parts = [p.streams[name] for p in profiles if name in p.streams]
        modalities = {part.modality for part in parts}
        if len(modalities) != 1:
            raise ProfileError(f"merge_profiles: stream {name!r} has modalities {sorted(modalities)}")
        streams[name] = _merge_streams(parts, histogram_bins)
    sources: list[SourceRecording] = []
    for profile in profiles:
        sources.extend(s for s in profile.sources if s not in sources)
    return Profile(
        streams=streams,
        sources=tuple(sources),
        created_ns=time.time_ns() if created_ns is None else int(created_ns),
    )


def _merge_streams(parts: Sequence[StreamProfile], bins: int) -> StreamProfile:
    feature_names: list[str] = []
    for part in parts:
        feature_names.extend(name for name in part.features if name not in feature_names)
    features = {
        name: merge_feature_stats([p.features[name] for p in parts if name in p.features], bins)
        for name in feature_names
    }
    return StreamProfile(
        modality=parts[0].modality,
        sample_count=sum(p.sample_count for p in parts),
        first_time_ns=min(p.first_time_ns for p in parts),
        last_time_ns=max(p.last_time_ns for p in parts),
        features=features,
        model=_merge_models(parts, features),
    )


def merge_feature_stats(parts: Sequence[FeatureStats], bins: int = DEFAULT_HISTOGRAM_BINS) -> FeatureStats:
    used = [p for p in parts if p.count > 0]
    nan_count = sum(p.nan_count for p in parts)
    unit, resolution = parts[0].unit, parts[0].resolution
    if not used:
        return replace(feature_stats([], bins, unit, resolution), nan_count=nan_count)
    count = sum(p.count for p in used)
    mean = sum(p.count * p.mean for p in used) / count
    variance = sum(p.count * (p.std**2 + (p.mean - mean) ** 2) for p in used) / count
    low, high = min(p.min for p in used), max(p.max for p in used)
    pieces = _histogram_pieces([p.histogram for p in used])
    # numpy's linear quantile sits at rank level*(n-1) (0-based); the value of rank r spans the
    # counts r..r+1 of the CDF, so aim at its middle.
    targets = [level * (count - 1) + 0.5 for level in QUANTILE_LEVELS]
    quantiles = _mixture_quantiles(pieces, targets)
    quantiles = np.maximum.accumulate(np.clip(quantiles, low, high))
    return FeatureStats(
        count=count,
        nan_count=nan_count,
        mean=float(mean),
        std=math.sqrt(max(variance, 0.0)),
        min=low,
        max=high,
        quantiles=tuple(float(q) for q in quantiles),
        histogram=_rebin(pieces, low, high, bins, float(count)),
        unit=unit,
        resolution=resolution,
    )


def _histogram_pieces(histograms: Sequence[Histogram]) -> FloatArray:
    """Rows (lo, hi, count) of uniform pieces; lo == hi is a point mass."""
    rows = []
    for histogram in histograms:
        edges = histogram.edges()
        counts = np.asarray(histogram.counts, dtype=np.float64)
        if histogram.low == histogram.high:
            rows.append(np.array([[histogram.low, histogram.low, counts.sum()]]))
        else:
            rows.append(np.column_stack([edges[:-1], edges[1:], counts]))
    pieces = np.vstack(rows)
    return pieces[pieces[:, 2] > 0]


def _mixture_cdf(pieces: FloatArray, x: FloatArray, left: bool) -> FloatArray:
    """Counts at or below x (strictly below when ``left``) under the piecewise-uniform mixture."""
    lo, hi, counts = pieces[:, 0], pieces[:, 1], pieces[:, 2]
    xs = x[:, None]
    width = hi - lo
    point = width == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        fraction = np.clip((xs - lo) / np.where(point, 1.0, width), 0.0, 1.0)
    point_fraction = (xs > lo) if left else (xs >= lo)
    fraction = np.where(point, point_fraction, fraction)
    return np.asarray(fraction @ counts, dtype=np.float64)


def _mixture_quantiles(pieces: FloatArray, targets: Sequence[float]) -> FloatArray:
    """Smallest x with CDF(x) >= target, the CDF being linear between the pieces' breakpoints."""
    breaks = np.unique(pieces[:, :2])
    right = _mixture_cdf(pieces, breaks, left=False)
    left = _mixture_cdf(pieces, breaks, left=True)
    results = []
    for target in targets:
        k = int(np.searchsorted(right, target, side="left"))
        k = min(k, breaks.size - 1)
        if k == 0 or left[k] < target:
            results.append(float(breaks[k]))
            continue
        below = right[k - 1]
        span = left[k] - below
        fraction = 0.0 if span <= 0 else (target - below) / span
        results.append(float(breaks[k - 1] + fraction * (breaks[k] - breaks[k - 1])))
    return np.asarray(results, dtype=np.float64)


def _rebin(pieces: FloatArray, low: float, high: float, bins: int, total: float) -> Histogram:
    if low == high:
        return Histogram(low, high, (total, *(0.0 for _ in range(bins - 1))))
    edges = np.linspace(low, high, bins + 1, dtype=np.float64)
    below = _mixture_cdf(pieces, edges, left=True)
    below[0] = 0.0
    below[-1] = total  # the last bin is closed
    return Histogram(low, high, tuple(float(c) for c in np.diff(below)))


def _merge_models(
    parts: Sequence[StreamProfile], features: Mapping[str, FeatureStats]
) -> GaussianModel | None:
    modelled: list[str] = []
    for part in parts:
        if part.model is not None:
            modelled.extend(f for f in part.model.features if f not in modelled)
    # A feature joins the merged model only if every part has statistics for it.
    names = [f for f in modelled if all(f in p.features and p.features[f].count > 0 for p in parts)]
    if not names:
        return None
    counts, means, covariances, shrinkages = [], [], [], []
    for part in parts:
        mean, covariance = _full_moments(part, names)
        weight = part.model.count if part.model is not None else part.sample_count
        counts.append(float(weight))
        means.append(mean)
        covariances.append(covariance)
        shrinkages.append(part.model.shrinkage if part.model is not None else 1.0)
    total = sum(counts)
    if total <= 0:
        return None
    pooled_mean = np.zeros(len(names))
    for part_weight, part_mean in zip(counts, means, strict=True):
        pooled_mean += part_weight * part_mean / total
    pooled = np.zeros((len(names), len(names)))
    for part_weight, part_mean, part_cov in zip(counts, means, covariances, strict=True):
        spread = part_mean - pooled_mean
        pooled += part_weight * (part_cov + np.outer(spread, spread)) / total
    return GaussianModel(
        features=tuple(names),
        mean=tuple(float(v) for v in pooled_mean),
        covariance=tuple(tuple(float(v) for v in row) for row in pooled),
        shrinkage=float(sum(w * s for w, s in zip(counts, shrinkages, strict=True)) / total),
        count=round(total),
    )


def _full_moments(part: StreamProfile, names: Sequence[str]) -> tuple[FloatArray, FloatArray]:
    """The part's mean and covariance over ``names``; features outside its model get their own
    mean and (floored) variance and no correlation."""
    mean = np.empty(len(names))
    covariance = np.zeros((len(names), len(names)))
    model = part.model
    index = {f: i for i, f in enumerate(model.features)} if model is not None else {}
    model_mean = model.mean_vector() if model is not None else np.empty(0)
    model_cov = model.covariance_matrix() if model is not None else np.empty((0, 0))
    for i, name in enumerate(names):
        stats = part.features[name]
        if name in index:
            mean[i] = model_mean[index[name]]
            for j, other in enumerate(names):
                if other in index:
                    covariance[i, j] = model_cov[index[name], index[other]]
        else:
            mean[i] = stats.mean
            covariance[i, i] = max(stats.std, stats.resolution) ** 2
    return mean, covariance
