"""Shares read from a profile's histograms: uniform within each bin, kept within the bounds the
stored quantiles imply (otherwise an atom, an integer level or a saturated value, at a bin edge
would be spread over its whole bin); and the common bins two distributions are drawn and compared on.
"""

from __future__ import annotations

import math

import numpy as np

from gap_monitor.core.conditions.profile import QUANTILE_LEVELS, FeatureStats, Histogram
from gap_monitor.offline.report.model import FloatArray

__all__ = ["common_edges", "distribution_grid", "rebin", "share_below"]


def share_below(stats: FeatureStats, x: float, strict: bool) -> float:
    """Share of the samples below x (at or below unless `strict`): the histogram's estimate
    (uniform within bins), kept within the bounds the stored quantiles imply. The bounds matter
    for features with atoms (integer levels, saturation): an atom at a bin edge is otherwise
    spread across its whole bin."""
    estimate = _histogram_cdf(stats.histogram, x, strict)
    if math.isnan(estimate):
        return estimate
    levels = QUANTILE_LEVELS
    if strict:  # F(x-): levels whose quantile is below x are below; those at or above x bound it
        lower = max((lv for lv, q in zip(levels, stats.quantiles, strict=True) if q < x), default=0.0)
        upper = min((lv for lv, q in zip(levels, stats.quantiles, strict=True) if q >= x), default=1.0)
    else:
        lower = max((lv for lv, q in zip(levels, stats.quantiles, strict=True) if q <= x), default=0.0)
        upper = min((lv for lv, q in zip(levels, stats.quantiles, strict=True) if q > x), default=1.0)
    if x < stats.min or (strict and x == stats.min):
        return 0.0
    if x > stats.max or (not strict and x == stats.max):
        return 1.0
    return float(min(max(estimate, lower), upper))


def _histogram_cdf(hist: Histogram, x: float, strict: bool = False) -> float:
    """Share of the histogram's mass at or below x (strictly below when `strict`), uniform in bins."""
    total = hist.total
    if total <= 0 or not math.isfinite(hist.low):
        return math.nan
    if hist.low == hist.high:
        return 1.0 if (x > hist.low or (x == hist.low and not strict)) else 0.0
    return float(_cdf_at(hist, np.array([x]))[0])


def _cdf_at(hist: Histogram, xs: FloatArray) -> FloatArray:
    """Mass share at or below each x, uniform within the bins (the last one closed)."""
    total = hist.total
    if total <= 0 or not math.isfinite(hist.low):
        return np.full(xs.shape, np.nan)
    if hist.low == hist.high:
        return np.asarray(np.where(xs >= hist.low, 1.0, 0.0), dtype=np.float64)
    edges = hist.edges()
    counts = np.asarray(hist.counts, dtype=np.float64)
    cumulative = np.concatenate([[0.0], np.cumsum(counts)]) / total
    return np.asarray(np.interp(xs, edges, cumulative, left=0.0, right=1.0), dtype=np.float64)


def rebin(hist: Histogram, edges: FloatArray) -> FloatArray:
    """The histogram's shares in the bins `edges` (uniform within its own bins)."""
    if hist.total <= 0 or not math.isfinite(hist.low):
        return np.zeros(edges.size - 1)
    if hist.low == hist.high:
        # The bin np.histogram would put the value in, so a point mass lines up with deployment values.
        counts, _ = np.histogram([hist.low], bins=edges)
        return np.asarray(counts, dtype=np.float64)
    return np.asarray(np.diff(_cdf_at(hist, edges)), dtype=np.float64)


def common_edges(a: FeatureStats, b: FeatureStats, bins: int) -> FloatArray:
    """`bins` equal bins over the range of both features (a profile comparison's grid)."""
    low, high = min(a.min, b.min), max(a.max, b.max)
    if not high > low:
        pad = max(a.resolution, abs(low) * 1e-3, 1e-9)
        low, high = low - pad, high + pad
    return np.linspace(low, high, bins + 1, dtype=np.float64)


def distribution_grid(
    st: FeatureStats, values: FloatArray, bins: int
) -> tuple[FloatArray, FloatArray, FloatArray, int]:
    """Common bins for the overlay of a feature's training statistics `st` and its deployment
    `values`: edges, training shares, deployment shares, values clipped."""
    finite = values[np.isfinite(values)]
    low, high = st.min, st.max
    if finite.size:
        # A few wild values must not squash the plot: beyond 1000 samples the axis ends at the
        # deployment's p0.1 / p99.9 (the clipped count is reported).
        robust = finite.size >= 1000
        lo_d = float(np.quantile(finite, 0.001)) if robust else float(np.min(finite))
        hi_d = float(np.quantile(finite, 0.999)) if robust else float(np.max(finite))
        low, high = min(low, lo_d), max(high, hi_d)
    if not high > low:
        pad = max(st.resolution, abs(low) * 0.01, 0.5 if st.resolution >= 1 else 1e-6)
        low, high = low - pad, high + pad
    edges = np.linspace(low, high, bins + 1, dtype=np.float64)
    training = rebin(st.histogram, edges)
    clipped = int(((finite < low) | (finite > high)).sum())
    deployment = np.zeros(bins)
    if finite.size:
        counts, _ = np.histogram(np.clip(finite, low, high), bins=edges)
        deployment = counts / finite.size
    return edges, training, deployment, clipped
