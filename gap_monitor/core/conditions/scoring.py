"""Condition scoring against a training profile, and the sequential alarm.

Per feature: a two-sided tail probability p = 2 min(F(x), 1 - F(x-)) from the profile's quantiles.
F is linear between the stored quantiles (p0.1 ... p99.9); beyond p0.1 / p99.9 the tails are
exponential, with the scale the quantiles themselves imply (an exponential tail drops tenfold
between p99 and p99.9, so scale = (p99.9 - p99) / ln 10), floored at the feature's resolution.

Per stream: the Mahalanobis distance on the profile's shrunk covariance over the features present
(a missing feature is marginalised out), reported with its chi-square tail probability. For the
score the distance is judged against the training rows' own distances (their quantiles are in the
profile; upper tail only, same interpolation and exponential tail as a feature): the chi-square
assumes Gaussian features and, for real ones (clipped, skewed, non-linearly related), calls
ordinary frames astronomically unlikely. The chi-square is the fallback when those quantiles are
absent (a merged profile) or a feature is missing.

Score: the two tests combine by Bonferroni, p = min(1, 2 min(m * min_i p_i, p_distance)) for m
features, and the score is -log10 p (0 = typical, 3 = one in a thousand; capped at 300). Neither
p-value is exact on real data (features are correlated in time and the profile's tails are
estimates), which is why the alarm threshold is calibrated on held-out data rather than derived
from them.

Alarm (``SequentialAlarm``): a sample is novel when its score exceeds the threshold; the alarm fires
when ``fire_k`` of the last ``fire_n`` samples are novel (a novel condition must persist), or on one
score above the instant threshold, or when the evidence S_t = max(0, S_t-1 + score_t - r) exceeds
the evidence threshold. S_t is Page's CUSUM for a shift towards small p-values: with -log10 p as
the score, score - r is proportional to the log-likelihood ratio of p-values from a Beta(a, 1)
alternative against uniform ones (r = -log10(a) / (1 - a)). r is the held-out 90th percentile
score (at least MIN_EVIDENCE_REFERENCE), so in-distribution scores drain S while a sustained shift
to scores a few times their usual size, too weak for k-of-n to see often above its threshold, adds
up; the k-of-n and instant rules are the fast path for strong shifts. Once fired it clears and
re-arms only after ``clear_n`` consecutive samples score below the lower ``clear_threshold``
(hysteresis). NaN scores (no features) leave the alarm unchanged.

Calibration (``calibrate``): the k-of-n rule can only fire at a sample whose persistence statistic
m_t (the fire_k-th largest of the last fire_n scores) exceeds the threshold, so its false-alarm
rate is at most rate * P(m_t > threshold). On held-out in-distribution score series, m_t is
computed (per contiguous segment; this keeps the real frame-to-frame correlation) and the threshold
is its quantile at 1 - q, q = 2 target_per_hour / (safety_factor * rules * frame_rate_hz * 3600):
each rule gets an equal share, so by the union bound the rules together stay within
2 target / safety_factor alarms per hour (the target at the default factor 2; rules = 3, or 2
without the evidence rule, which is the alarm of earlier versions). The instant threshold and the
evidence threshold are set the same way on the scores and on S_t (per segment, starting at 0 like
the live alarm). When the held-out data are too short to hold that quantile (fewer than 10
expected exceedances), the top 2 % (at least the 10 largest values) are fitted with a generalised
Pareto tail (peaks over threshold; shape by the method of moments, clipped to 0..0.5: -log10 of a
calibrated p-value has an exponential tail, shape 0, and misspecified p-values make it heavier,
never lighter) and extrapolated. No threshold
is below the held-out maximum of its statistic when the held-out data are shorter than the allowed
time between false alarms, nor below ``min_threshold``. The clear threshold is the held-out 99th
percentile of the score, capped at 3/4 of the threshold.

``build_calibrated_profile`` gets its held-out scores by cross-fitting (each block of the recording
scored by a profile built without it). Measured on synthetic camera-feature streams (AR(1)
illumination and texture, 5 Hz): profiles from 2 h of data, calibrated for 1 false alarm per hour,
gave 0-0.4 alarms/h over 10 further hours each (12 seeds; thresholds 3.3-4.6).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import numpy as np
import numpy.typing as npt

from gap_monitor.core.conditions.profile import (
    QUANTILE_LEVELS,
    AlarmCalibration,
    FeatureSample,
    FeatureStats,
    Profile,
    ProfileBuilder,
    SourceRecording,
    StreamProfile,
)
from gap_monitor.core.values import json_number, number

FloatArray = npt.NDArray[np.float64]
ScoreSeries = Sequence[float] | FloatArray

MAX_SCORE = 300.0
_P_FLOOR = 10.0**-MAX_SCORE
_LEVELS = np.asarray(QUANTILE_LEVELS, dtype=np.float64)
_LOW_TAIL_DECADE = math.log(QUANTILE_LEVELS[1] / QUANTILE_LEVELS[0])
_HIGH_TAIL_DECADE = math.log((1.0 - QUANTILE_LEVELS[-2]) / (1.0 - QUANTILE_LEVELS[-1]))
UNUSUAL_TAIL_PROB = 0.01


# ----------------------------------------------------------------------------------------------
# Per-feature tail probabilities


class TailTable:
    """Vectorised tail probabilities for a fixed list of features (quantile knots + resolution)."""

    def __init__(self, knots: npt.ArrayLike, resolution: npt.ArrayLike) -> None:
        table = np.asarray(knots, dtype=np.float64).reshape(-1, _LEVELS.size)
        self.knots = np.maximum.accumulate(table, axis=1)
        floor = np.maximum(
            np.asarray(resolution, dtype=np.float64).reshape(-1),
            1e-9 * np.maximum(1.0, np.abs(self.knots).max(axis=1, initial=0.0)),
        )
        self.scale_low = np.maximum((self.knots[:, 1] - self.knots[:, 0]) / _LOW_TAIL_DECADE, floor)
        self.scale_high = np.maximum((self.knots[:, -1] - self.knots[:, -2]) / _HIGH_TAIL_DECADE, floor)

    @classmethod
    def from_stats(cls, stats: Sequence[FeatureStats]) -> TailTable:
        return cls([s.quantiles for s in stats], [s.resolution for s in stats])

    def probabilities(self, values: npt.ArrayLike) -> FloatArray:
        """Two-sided tail probability of each value (shape (..., features)); NaN stays NaN."""
        lower, upper = self._tails(values)
        return np.asarray(np.clip(2.0 * np.minimum(lower, upper), 0.0, 1.0), dtype=np.float64)

    def upper_probabilities(self, values: npt.ArrayLike) -> FloatArray:
        """P(X >= value): for quantities where only large is unusual (a distance)."""
        return np.asarray(np.clip(self._tails(values)[1], 0.0, 1.0), dtype=np.float64)

    def _tails(self, values: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
        """(F(x), 1 - F(x-)): the mass at or below x and at or above x, NaN for NaN."""
        x = np.asarray(values, dtype=np.float64)
        q = self.knots
        last = _LEVELS.size - 1
        expanded = x[..., None]
        n_le = (q <= expanded).sum(axis=-1)
        n_lt = (q < expanded).sum(axis=-1)
        lower = self._interpolate(x, np.clip(n_le, 1, last))
        lower = np.where(n_le > last, _LEVELS[-1], lower)
        upper = 1.0 - self._interpolate(x, np.clip(n_lt, 1, last))
        with np.errstate(over="ignore", invalid="ignore"):
            below = _LEVELS[0] * np.exp(-(q[:, 0] - x) / self.scale_low)
            above = (1.0 - _LEVELS[-1]) * np.exp(-(x - q[:, -1]) / self.scale_high)
        # Outside the knots the exponential tail is used directly (1 - F would lose precision).
        lower = np.where(n_le == 0, below, lower)
        upper = np.where(n_le == 0, 1.0, upper)
        upper = np.where(n_lt > last, above, upper)
        lower = np.where(n_lt > last, 1.0, lower)
        nan = np.isnan(x)
        return np.where(nan, np.nan, lower), np.where(nan, np.nan, upper)

    def _interpolate(self, x: FloatArray, upper: npt.NDArray[np.intp]) -> FloatArray:
        """CDF on the segment between knots upper-1 and upper (clamped to the segment)."""
        q = np.broadcast_to(self.knots, (*x.shape, self.knots.shape[1]))
        q_a = np.take_along_axis(q, (upper - 1)[..., None], axis=-1)[..., 0]
        q_b = np.take_along_axis(q, upper[..., None], axis=-1)[..., 0]
        width = q_b - q_a
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(width > 0, (x - q_a) / np.where(width > 0, width, 1.0), 0.0)
        t = np.clip(t, 0.0, 1.0)
        return np.asarray(_LEVELS[upper - 1] + (_LEVELS[upper] - _LEVELS[upper - 1]) * t)


def tail_probability(stats: FeatureStats, value: float) -> float:
    """Two-sided tail probability of one value against one feature's training statistics."""
    return float(TailTable.from_stats([stats]).probabilities(np.array([value]))[0])


# ----------------------------------------------------------------------------------------------
# Chi-square tail


def chi2_sf(x: float, dof: int) -> float:
    """P(X > x) for X ~ chi-square(dof): the regularised upper incomplete gamma Q(dof/2, x/2)."""
    if dof < 1:
        raise ValueError(f"dof={dof!r}: must be >= 1")
    if not x > 0.0:
        return 1.0
    if math.isinf(x):
        return 0.0
    return _gamma_q(dof / 2.0, x / 2.0)


def _gamma_q(a: float, x: float) -> float:
    # Numerical Recipes 6.2: series for P when x < a + 1, Lentz's continued fraction for Q beyond.
    log_prefactor = -x + a * math.log(x) - math.lgamma(a)
    if x < a + 1.0:
        term = total = 1.0 / a
        denominator = a
        for _ in range(1000):
            denominator += 1.0
            term *= x / denominator
            total += term
            if abs(term) < abs(total) * 1e-16:
                break
        return max(0.0, 1.0 - total * math.exp(log_prefactor))
    tiny = 1e-300
    b = x + 1.0 - a
    c = 1.0 / tiny
    d = 1.0 / b
    h = d
    for i in range(1, 1000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-16:
            break
    if h <= 0.0:
        return 0.0
    return min(1.0, math.exp(log_prefactor + math.log(h)))


# ----------------------------------------------------------------------------------------------
# Stream scores


def format_value(value: float) -> str:
    """Compact number for diagnostics: 23, 0.0123, 1.5e-05, 190."""
    if not math.isfinite(value):
        return str(value)
    if abs(value) >= 100.0:
        return f"{value:.0f}"
    return f"{value:.3g}"


@dataclass(frozen=True)
class FeatureScore:
    name: str
    value: float
    tail_prob: float
    p1: float
    p99: float
    unit: str = ""

    def describe(self) -> str:
        """``mean_luminance 23 (training p1-p99 80-190)``."""
        low, high = format_value(self.p1), format_value(self.p99)
        span = f"{low} to {high}" if self.p1 < 0 or self.p99 < 0 else f"{low}-{high}"
        return f"{self.name} {format_value(self.value)} (training p1-p99 {span})"


@dataclass(frozen=True)
class StreamScore:
    stream: str
    time_ns: int
    score: float  # -log10 of the combined p-value; NaN when no feature was available
    p_value: float
    feature_p: float  # Bonferroni-adjusted smallest per-feature tail probability
    mahalanobis: float  # distance in standard deviations; NaN without a model
    dof: int  # features in the distance (fewer than the model's when some are missing)
    mahalanobis_p: float  # chi-square tail probability of the distance
    mahalanobis_tail_p: float  # tail probability among the training distances (NaN: unavailable)
    top: tuple[FeatureScore, ...]
    missing: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()

    def describe(self, max_features: int = 3) -> str:
        """The unusual features in diagnostic style, most unusual first."""
        unusual = [f for f in self.top if f.tail_prob < UNUSUAL_TAIL_PROB][:max_features]
        if unusual:
            return "; ".join(f.describe() for f in unusual)
        if not self.top:
            return "no features"
        listed = "; ".join(f.describe() for f in self.top[:max_features])
        if self.p_value < UNUSUAL_TAIL_PROB and math.isfinite(self.mahalanobis):
            return (
                f"unusual combination (Mahalanobis {format_value(self.mahalanobis)} over "
                f"{self.dof} features): {listed}"
            )
        return f"within training conditions: {listed}"

    def details(self, threshold: float | None) -> dict[str, Any]:
        """The score for JSON (events, ~/scores): rounded, with the alarm threshold and the top
        features."""
        return {
            "score": json_number(round(self.score, 3)),
            "threshold": threshold,
            "top": [
                {"name": f.name, "value": f.value, "tail_prob": f.tail_prob, "p1": f.p1, "p99": f.p99}
                for f in self.top
            ],
        }


def condition_values(
    features: Mapping[str, float], score: StreamScore | None, threshold: float | None
) -> dict[str, str]:
    """A stream's latest features in display form (`core/values.py`), then its score and alarm
    threshold once it is scored; 4 significant digits (`format_value` is the shorter form of
    the descriptions)."""
    values = {name: number(value, ".4g") for name, value in features.items()}
    if score is not None:
        values["score"] = number(score.score, ".4g")
        values["threshold"] = number(threshold, ".4g")
    return values


@dataclass(frozen=True)
class _Evaluation:
    """Per-row arrays behind a batch of scores."""

    tails: FloatArray  # rows x features, two-sided
    feature_p: FloatArray
    distance: FloatArray
    dof: npt.NDArray[np.intp]
    chi2_p: FloatArray
    distance_tail_p: FloatArray
    p_value: FloatArray


class StreamScorer:
    """Scores feature dicts of one stream against its profile (module notes)."""

    def __init__(self, profile: StreamProfile, stream: str = "", top_k: int = 3) -> None:
        if top_k < 1:
            raise ValueError(f"top_k={top_k!r}: must be >= 1")
        self.stream = stream
        self.top_k = top_k
        self.names = tuple(name for name, stats in profile.features.items() if stats.count > 0)
        self._stats = [profile.features[name] for name in self.names]
        self._index = {name: i for i, name in enumerate(self.names)}
        self._table = TailTable.from_stats(self._stats)
        self._model_columns: npt.NDArray[np.intp] = np.zeros(0, dtype=np.intp)
        self._inverse_cache: dict[bytes, FloatArray] = {}
        self._distance_table: TailTable | None = None
        model = profile.model
        if model is not None and all(name in self._index for name in model.features):
            covariance = model.covariance_matrix()
            scale = np.sqrt(np.diag(covariance))
            if np.all(scale > 0):
                self._model_columns = np.array([self._index[name] for name in model.features], dtype=np.intp)
                self._model_mean = model.mean_vector()
                self._model_scale = scale
                self._correlation = covariance / np.outer(scale, scale)
                if model.distance_quantiles is not None:
                    self._distance_table = TailTable([model.distance_quantiles], [0.01])

    def vector(self, features: Mapping[str, float]) -> tuple[FloatArray, tuple[str, ...]]:
        """Feature values in profile order (NaN when absent) and the names the profile lacks."""
        row = np.full(len(self.names), np.nan)
        unknown = []
        for name, value in features.items():
            index = self._index.get(name)
            if index is None:
                unknown.append(name)
            else:
                row[index] = np.nan if value is None else float(value)
        return row, tuple(unknown)

    def score(self, features: Mapping[str, float], time_ns: int = 0) -> StreamScore:
        row, unknown = self.vector(features)
        result = self._evaluate(row[None, :])
        tails = result.tails[0]
        order = [i for i in np.argsort(tails, kind="stable") if not np.isnan(tails[i])]
        top = tuple(
            FeatureScore(
                name=self.names[i],
                value=float(row[i]),
                tail_prob=float(tails[i]),
                p1=self._stats[i].p1,
                p99=self._stats[i].p99,
                unit=self._stats[i].unit,
            )
            for i in order[: self.top_k]
        )
        p_value = float(result.p_value[0])
        return StreamScore(
            stream=self.stream,
            time_ns=int(time_ns),
            score=_to_score(p_value),
            p_value=p_value,
            feature_p=float(result.feature_p[0]),
            mahalanobis=float(result.distance[0]),
            dof=int(result.dof[0]),
            mahalanobis_p=float(result.chi2_p[0]),
            mahalanobis_tail_p=float(result.distance_tail_p[0]),
            top=top,
            missing=tuple(self.names[i] for i in np.flatnonzero(np.isnan(row))),
            unknown=unknown,
        )

    def scores(self, rows: Iterable[Mapping[str, float]]) -> FloatArray:
        """Scores of many feature dicts at once (calibration, offline audits)."""
        matrix = np.array([self.vector(features)[0] for features in rows], dtype=np.float64)
        if matrix.size == 0:
            return np.zeros(0)
        p_value = self._evaluate(matrix.reshape(-1, len(self.names))).p_value
        return np.array([_to_score(float(p)) for p in p_value])

    def _evaluate(self, matrix: FloatArray) -> _Evaluation:
        tails = self._table.probabilities(matrix)
        present = (~np.isnan(tails)).sum(axis=1)
        smallest = np.where(np.isnan(tails), 1.0, tails).min(axis=1, initial=1.0)
        feature_p = np.where(present > 0, np.minimum(1.0, smallest * present), np.nan)
        distance, dof = self._mahalanobis(matrix)
        chi2_p = np.array(
            [chi2_sf(d * d, int(k)) if k > 0 else np.nan for d, k in zip(distance, dof, strict=True)]
        )
        distance_tail_p = np.full(distance.shape, np.nan)
        model_p = chi2_p
        if self._distance_table is not None:
            # The training distances are of complete rows: only those are judged against them.
            complete = dof == self._model_columns.size
            distance_tail_p = np.where(
                complete, self._distance_table.upper_probabilities(distance[:, None])[:, 0], np.nan
            )
            model_p = np.where(complete, distance_tail_p, chi2_p)
        p_value = np.where(np.isnan(model_p), feature_p, np.minimum(1.0, 2.0 * np.fmin(feature_p, model_p)))
        return _Evaluation(tails, feature_p, distance, dof, chi2_p, distance_tail_p, p_value)

    def _mahalanobis(self, matrix: FloatArray) -> tuple[FloatArray, npt.NDArray[np.intp]]:
        """Distances (in standard deviations) and degrees of freedom per row; NaN and 0 dof
        without a model or without values."""
        distance = np.full(matrix.shape[0], np.nan)
        dof = np.zeros(matrix.shape[0], dtype=np.intp)
        if self._model_columns.size == 0:
            return distance, dof
        z = (matrix[:, self._model_columns] - self._model_mean) / self._model_scale
        present = ~np.isnan(z)
        masks, inverse_rows = np.unique(present, axis=0, return_inverse=True)
        for group, mask in enumerate(masks):
            if not mask.any():
                continue
            rows = np.flatnonzero(inverse_rows.reshape(-1) == group)
            inverse = self._inverse(mask)
            sub = z[np.ix_(rows, np.flatnonzero(mask))]
            squared = np.einsum("ij,jk,ik->i", sub, inverse, sub)
            distance[rows] = np.sqrt(np.maximum(squared, 0.0))
            dof[rows] = int(mask.sum())
        return distance, dof

    def _inverse(self, mask: npt.NDArray[np.bool_]) -> FloatArray:
        key = mask.tobytes()
        cached = self._inverse_cache.get(key)
        if cached is not None:
            return cached
        inverse: FloatArray = np.asarray(
            np.linalg.pinv(self._correlation[np.ix_(mask, mask)], hermitian=True), dtype=np.float64
        )
        self._inverse_cache[key] = inverse
        return inverse


def _to_score(p_value: float) -> float:
    if math.isnan(p_value):
        return math.nan
    return min(MAX_SCORE, -math.log10(max(p_value, _P_FLOOR))) + 0.0


# ----------------------------------------------------------------------------------------------
# Sequential alarm


@dataclass(frozen=True)
class AlarmUpdate:
    active: bool
    fired: bool  # became active at this sample
    cleared: bool  # became inactive (re-armed) at this sample


class SequentialAlarm:
    """k-of-n persistence, one overwhelming score or accumulated evidence to fire, ``clear_n``
    consecutive low scores to clear (module notes)."""

    def __init__(self, calibration: AlarmCalibration) -> None:
        self.calibration = calibration
        self._recent: deque[bool] = deque(maxlen=calibration.fire_n)
        self._quiet = 0
        self.evidence = 0.0  # S_t of the evidence rule (0 while active: it restarts on re-arming)
        self.active = False

    def reset(self) -> None:
        self._recent.clear()
        self._quiet = 0
        self.evidence = 0.0
        self.active = False

    def update(self, score: float) -> AlarmUpdate:
        if math.isnan(score):
            return AlarmUpdate(self.active, fired=False, cleared=False)
        settings = self.calibration
        if not self.active:
            self._recent.append(score > settings.threshold)
            self.evidence = max(0.0, self.evidence + score - settings.evidence_reference)
            instant = 0 < settings.instant_threshold < score
            accumulated = 0 < settings.evidence_threshold < self.evidence
            if instant or accumulated or sum(self._recent) >= settings.fire_k:
                self.active = True
                self._quiet = 0
                self.evidence = 0.0
                return AlarmUpdate(True, fired=True, cleared=False)
            return AlarmUpdate(False, fired=False, cleared=False)
        self._quiet = self._quiet + 1 if score < settings.clear_threshold else 0
        if self._quiet >= settings.clear_n:
            self.reset()
            return AlarmUpdate(False, fired=False, cleared=True)
        return AlarmUpdate(True, fired=False, cleared=False)


def count_alarms(scores: ScoreSeries, calibration: AlarmCalibration) -> int:
    """How many times the alarm fires over a score series (replays ``SequentialAlarm``)."""
    alarm = SequentialAlarm(calibration)
    return sum(alarm.update(float(score)).fired for score in scores)


@dataclass(frozen=True)
class MonitorUpdate:
    stream: str
    score: StreamScore
    alarm: AlarmUpdate | None  # None when the stream's profile has no calibrated alarm


class ConditionMonitor:
    """Scorer plus alarm for every stream of a profile; the node feeds it feature dicts."""

    def __init__(self, profile: Profile, top_k: int = 3) -> None:
        self.profile = profile
        self._scorers = {name: StreamScorer(stream, name, top_k) for name, stream in profile.streams.items()}
        self._alarms = {
            name: SequentialAlarm(stream.alarm)
            for name, stream in profile.streams.items()
            if stream.alarm is not None
        }

    @property
    def streams(self) -> tuple[str, ...]:
        return tuple(self._scorers)

    def update(self, stream: str, features: Mapping[str, float], time_ns: int) -> MonitorUpdate:
        scorer = self._scorers.get(stream)
        if scorer is None:
            raise KeyError(f"stream {stream!r} is not in the profile (streams: {list(self._scorers)})")
        score = scorer.score(features, time_ns)
        alarm = self._alarms.get(stream)
        return MonitorUpdate(stream, score, None if alarm is None else alarm.update(score.score))

    def reset(self) -> None:
        for alarm in self._alarms.values():
            alarm.reset()


# ----------------------------------------------------------------------------------------------
# Calibration


def persistence_statistic(scores: ScoreSeries, fire_k: int, fire_n: int) -> FloatArray:
    """m_t: the fire_k-th largest of the last fire_n scores (fewer at the start), from the first
    sample where fire_k are available. The alarm can fire at t only if m_t > threshold."""
    if not 1 <= fire_k <= fire_n:
        raise ValueError(f"fire_k={fire_k!r}, fire_n={fire_n!r}: need 1 <= fire_k <= fire_n")
    values = np.asarray(scores, dtype=np.float64)
    values = values[~np.isnan(values)]
    if values.size < fire_k:
        return np.zeros(0)
    padded = np.concatenate([np.full(fire_n - 1, -np.inf), values])
    windows = np.lib.stride_tricks.sliding_window_view(padded, fire_n)
    kth = np.sort(windows, axis=1)[:, fire_n - fire_k]
    return np.asarray(kth[fire_k - 1 :], dtype=np.float64)


def evidence_statistic(scores: ScoreSeries, reference: float) -> FloatArray:
    """S_t = max(0, S_t-1 + score_t - reference) from S_0 = 0 over the finite scores (NaN skipped,
    as the alarm skips them). The alarm's evidence rule can fire at t only if S_t > its threshold.
    Closed form: S_t = C_t - min(0, min_j<=t C_j), C the cumulative sum of score - reference."""
    values = np.asarray(scores, dtype=np.float64)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return np.zeros(0)
    cumulative = np.cumsum(values - reference)
    lowest = np.minimum(np.minimum.accumulate(cumulative), 0.0)
    return np.asarray(np.maximum(cumulative - lowest, 0.0), dtype=np.float64)


# The evidence reference: this quantile of the held-out scores, and at least this score (p = 0.1), so
# that in-distribution scores drain S even when nearly all held-out scores are 0. A lower quantile
# tunes the CUSUM to weaker shifts. Measured (scores of an AR(1) feature, 5 Hz, 2 h held out; 100
# sustained shifts to p ~ Beta(1/3, 1)): median delay 67 samples, against 240 for k-of-n + instant
# alone and 274 with the 99th percentile as reference (strong shifts are k-of-n's already).
EVIDENCE_REFERENCE_QUANTILE = 0.9
MIN_EVIDENCE_REFERENCE = 1.0


def calibrate(
    held_out_scores: ScoreSeries | Sequence[ScoreSeries],
    frame_rate_hz: float,
    target_false_alarms_per_hour: float = 1.0,
    *,
    fire_k: int = 3,
    fire_n: int = 5,
    clear_n: int = 10,
    safety_factor: float = 2.0,
    min_threshold: float = 2.0,
    evidence_rule: bool = True,
) -> AlarmCalibration:
    """Alarm thresholds for at most ``target_false_alarms_per_hour`` on in-distribution data.

    ``held_out_scores``: one score series, or a list of contiguous segments, at ``frame_rate_hz``
    (the rate the monitor scores at). ``evidence_rule``: calibrate the evidence (CUSUM) rule too
    (False: k-of-n and instant rules only, each with half the budget). Method: module notes.
    """
    if not (math.isfinite(frame_rate_hz) and frame_rate_hz > 0):
        raise ValueError(f"frame_rate_hz={frame_rate_hz!r}: must be a finite rate > 0")
    if not (math.isfinite(target_false_alarms_per_hour) and target_false_alarms_per_hour > 0):
        raise ValueError(f"target_false_alarms_per_hour={target_false_alarms_per_hour!r}: must be > 0")
    if not safety_factor >= 1.0:
        raise ValueError(f"safety_factor={safety_factor!r}: must be >= 1")
    if not 1 <= fire_k <= fire_n:
        raise ValueError(f"fire_k={fire_k!r}, fire_n={fire_n!r}: need 1 <= fire_k <= fire_n")
    segments = _segments(held_out_scores)
    scores = np.concatenate(segments) if segments else np.zeros(0)
    persistence = np.concatenate(
        [persistence_statistic(segment, fire_k, fire_n) for segment in segments] or [np.zeros(0)]
    )
    if persistence.size < 10:
        raise ValueError(
            f"held_out_scores: {scores.size} finite scores give {persistence.size} persistence "
            f"values; calibration needs at least 10 (more held-out data)"
        )
    rules = 3 if evidence_rule else 2
    exceedance = 2.0 * target_false_alarms_per_hour / (safety_factor * rules * frame_rate_hz * 3600.0)
    threshold, fitted = _statistic_threshold(persistence, exceedance)
    method = f"{fitted} of the k-of-n persistence statistic"
    threshold = max(threshold, min_threshold)
    clear_threshold = min(float(np.quantile(scores, 0.99)), 0.75 * threshold)
    reference = evidence_threshold = 0.0
    if evidence_rule:
        reference = max(float(np.quantile(scores, EVIDENCE_REFERENCE_QUANTILE)), MIN_EVIDENCE_REFERENCE)
        evidence = np.concatenate([evidence_statistic(segment, reference) for segment in segments])
        evidence_threshold, fitted = _statistic_threshold(evidence, exceedance)
        evidence_threshold = max(evidence_threshold, min_threshold)
        method += f"; evidence rule (reference {reference:.3g}): {fitted} of S_t"
    return AlarmCalibration(
        instant_threshold=_instant_threshold(np.sort(scores), exceedance, threshold),
        threshold=threshold,
        clear_threshold=max(clear_threshold, 0.0),
        fire_k=fire_k,
        fire_n=fire_n,
        clear_n=clear_n,
        frame_rate_hz=float(frame_rate_hz),
        target_false_alarms_per_hour=float(target_false_alarms_per_hour),
        held_out_samples=int(scores.size),
        method=f"{method}; safety factor {safety_factor:g}, {rules} rules",
        evidence_reference=reference,
        evidence_threshold=evidence_threshold,
    )


def _statistic_threshold(statistic: FloatArray, exceedance: float) -> tuple[float, str]:
    """The statistic's held-out quantile at 1 - exceedance (a generalised Pareto tail fit when
    fewer than 10 exceedances are expected; never below the held-out maximum when less than one is)
    and how it was found."""
    ordered = np.sort(statistic)
    count = ordered.size
    if count * exceedance >= 10:
        return float(np.quantile(ordered, 1.0 - exceedance)), "empirical quantile"
    threshold = _tail_quantile(ordered, exceedance)
    if count * exceedance < 1:
        threshold = max(threshold, float(ordered[-1]))
    return threshold, "generalised Pareto tail fit"


INSTANT_FACTOR = 2.0


def _instant_threshold(ordered_scores: FloatArray, exceedance: float, threshold: float) -> float:
    """A single score so high it fires at once (1 of 1), for faults too strong to wait for: set on
    the same held-out scores at the same per-rule false-alarm budget as the k-of-n rule, above
    every held-out score and at least INSTANT_FACTOR x the k-of-n threshold."""
    count = ordered_scores.size
    if count == 0:
        return 0.0
    if count * exceedance >= 10:
        quantile = float(np.quantile(ordered_scores, 1.0 - exceedance))
    else:
        quantile = _tail_quantile(ordered_scores, exceedance) if count >= 12 else float(ordered_scores[-1])
    return max(quantile, float(ordered_scores[-1]), INSTANT_FACTOR * threshold)


def _tail_quantile(ordered: FloatArray, exceedance: float) -> float:
    """Value exceeded with probability ``exceedance``, extrapolated from the top 2 % (>= 10 values)
    of the sorted sample with a generalised Pareto tail. The shape comes from the method of
    moments, xi = (1 - mean^2 / var) / 2, clipped to [0, 0.5]: never lighter than exponential,
    because scores of real data have heavier tails than the p-values assume."""
    count = ordered.size
    tail = min(count - 1, max(10, math.ceil(0.02 * count)))
    base = float(ordered[count - tail - 1])
    excess = ordered[count - tail :] - base
    mean = float(excess.mean())
    variance = float(excess.var(ddof=1)) if tail > 1 else 0.0
    if mean <= 0.0:
        return base
    shape = min(0.5, max(0.0, 0.5 * (1.0 - mean * mean / variance))) if variance > 0 else 0.0
    scale = mean * (1.0 - shape)
    ratio = (tail / count) / exceedance
    if ratio <= 1.0:
        return base
    if shape < 1e-6:
        return base + scale * math.log(ratio)
    return base + scale / shape * (ratio**shape - 1.0)


def _segments(held_out: ScoreSeries | Sequence[ScoreSeries]) -> list[FloatArray]:
    items = list(held_out)
    if items and all(np.ndim(item) == 0 for item in items):
        series = [np.asarray(items, dtype=np.float64)]
    else:
        series = [np.asarray(item, dtype=np.float64).reshape(-1) for item in items]
    return [s[~np.isnan(s)] for s in series if s.size]


# ----------------------------------------------------------------------------------------------
# From recorded feature streams to a calibrated profile


def fold_blocks(count: int, folds: int, blocks_per_fold: int = 2) -> list[list[tuple[int, int]]]:
    """(start, stop) index ranges of each fold: the recording is cut into folds * blocks_per_fold
    contiguous blocks and block b belongs to fold b % folds, so every fold is spread over the
    recording and held-out frames keep their real frame-to-frame correlation (random frames would
    sit next to near-identical training frames)."""
    if folds < 2:
        raise ValueError(f"folds={folds!r}: must be >= 2")
    if blocks_per_fold < 1:
        raise ValueError(f"blocks_per_fold={blocks_per_fold!r}: must be >= 1")
    blocks = folds * blocks_per_fold
    bounds = [round(b * count / blocks) for b in range(blocks + 1)]
    return [
        [(bounds[b], bounds[b + 1]) for b in range(fold, blocks, folds) if bounds[b + 1] > bounds[b]]
        for fold in range(folds)
    ]


def build_calibrated_profile(
    samples: Iterable[FeatureSample],
    *,
    folds: int = 5,
    blocks_per_fold: int = 2,
    frame_rate_hz: float | Mapping[str, float] | None = None,
    target_false_alarms_per_hour: float = 1.0,
    fire_k: int = 3,
    fire_n: int = 5,
    clear_n: int = 10,
    safety_factor: float = 2.0,
    min_threshold: float = 2.0,
    evidence_rule: bool = True,
    sources: Sequence[SourceRecording] = (),
    histogram_bins: int = 64,
    shrinkage: float | None = None,
    created_ns: int | None = None,
) -> Profile:
    """Profile of per-frame feature dicts, each stream's alarm calibrated on held-out data.

    Cross-fitting: per stream (in time order), each fold of ``fold_blocks`` is held out in turn,
    scored against a profile built from the other folds, and all the held-out score segments
    calibrate the alarm; the returned profile is built from all the data. Every frame is thus
    held out once (an hour of recording gives an hour of held-out scores rather than 1/folds of
    it), and the final profile, having seen more, scores in-distribution data no higher than
    the fold profiles did, which keeps the calibration conservative.

    ``frame_rate_hz`` is the rate the monitor will score at (one for all streams, or per stream);
    when the recording is faster, held-out frames are decimated to it. None: the recording's own
    rate. A stream with too little data (fewer than 10 persistence values) gets no alarm.
    """
    by_stream: dict[str, list[FeatureSample]] = {}
    for sample in samples:
        by_stream.setdefault(sample.stream, []).append(sample)
    builder = ProfileBuilder(histogram_bins=histogram_bins, shrinkage=shrinkage)
    for stream_samples in by_stream.values():
        stream_samples.sort(key=lambda s: s.time_ns)
        builder.add_samples(stream_samples)
    profile = builder.build(sources=sources, created_ns=created_ns)
    for name, stream_samples in by_stream.items():
        rate = frame_rate_hz.get(name) if isinstance(frame_rate_hz, Mapping) else frame_rate_hz
        data_rate = _sample_rate_hz([stream_samples])
        if rate is None:
            rate = data_rate
        if rate is None or not rate > 0:
            continue
        series: list[FloatArray] = []
        segments: list[list[FeatureSample]] = []
        for ranges in fold_blocks(len(stream_samples), folds, blocks_per_fold):
            held = np.zeros(len(stream_samples), dtype=bool)
            for start, stop in ranges:
                held[start:stop] = True
            if held.all() or not held.any():
                continue
            fold_builder = ProfileBuilder(histogram_bins=histogram_bins, shrinkage=shrinkage)
            fold_builder.add_samples(s for s, out in zip(stream_samples, held, strict=True) if not out)
            scorer = StreamScorer(fold_builder.build(created_ns=0).stream(name), name)
            for start, stop in ranges:
                segment = stream_samples[start:stop]
                if data_rate is not None and data_rate > 1.5 * rate:
                    segment = _decimate(segment, rate)
                series.append(scorer.scores(s.features for s in segment))
                segments.append(segment)

        calibrated = partial(
            calibrate,
            frame_rate_hz=rate,
            target_false_alarms_per_hour=target_false_alarms_per_hour,
            fire_k=fire_k,
            fire_n=fire_n,
            clear_n=clear_n,
            safety_factor=safety_factor,
            min_threshold=min_threshold,
            evidence_rule=evidence_rule,
        )
        try:
            alarm = calibrated(series)
            alarm = _without_unrepresented_block(
                alarm, series, segments, StreamScorer(profile.stream(name), name), fire_k, fire_n, calibrated
            )
        except ValueError:
            continue  # too little data: the stream is profiled but has no alarm
        profile = profile.with_alarm(name, alarm)
    return profile


# How far above the other blocks' threshold a block's held-out peak must be to count as a condition
# no other block has. Measured: EuRoC's motors-off start peaks at 5x the flight blocks' threshold; on
# the sim the highest ordinary block peaks at 2.3x (a rare pose, which must keep counting).
UNREPRESENTED_FACTOR = 4.0


def _without_unrepresented_block(
    alarm: AlarmCalibration,
    series: Sequence[FloatArray],
    segments: Sequence[Sequence[FeatureSample]],
    full_scorer: StreamScorer,
    fire_k: int,
    fire_n: int,
    calibrated: Callable[..., AlarmCalibration],
) -> AlarmCalibration:
    """Cross-fitting scores each block against the others, so a condition that only one block
    contains (a motors-off start, a single visit to a bright room) looks novel when held out and
    lifts the threshold until real novelty goes unseen. Such a block is in the profile, though, and
    deployment that revisits it is scored against the profile it is in. So when the block with the
    highest held-out peak exceeds the threshold of the other blocks by UNREPRESENTED_FACTOR, the
    threshold comes from the other blocks, floored at that block's peak when scored against the full
    profile (what deployment in that condition would score)."""
    if len(series) < 3:
        return alarm
    peaks = [float(np.max(persistence_statistic(s, fire_k, fire_n), initial=-np.inf)) for s in series]
    worst = int(np.argmax(peaks))
    others = [s for i, s in enumerate(series) if i != worst]
    try:
        rest = calibrated(others)
    except ValueError:
        return alarm
    if not peaks[worst] > UNREPRESENTED_FACTOR * rest.threshold:
        return alarm
    segment = segments[worst]
    in_profile = full_scorer.scores(s.features for s in segment)
    peak_in = float(np.max(persistence_statistic(in_profile, fire_k, fire_n), initial=-np.inf))
    start_s = (segment[0].time_ns - segments[0][0].time_ns) / 1e9 if segment else 0.0
    note = (
        f"; one block ({len(segment)} samples from t+{start_s:.1f} s) unlike the rest: held out it peaks at "
        f"{peaks[worst]:.1f}, against the full profile at {peak_in:.1f}; threshold from the other blocks"
    )
    threshold = max(rest.threshold, peak_in)
    instant = max(rest.instant_threshold, float(np.max(in_profile, initial=0.0)), INSTANT_FACTOR * threshold)
    evidence = rest.evidence_threshold
    if evidence > 0:
        peak = evidence_statistic(in_profile, rest.evidence_reference)
        evidence = max(evidence, float(np.max(peak, initial=0.0)))
    return replace(
        rest,
        threshold=threshold,
        instant_threshold=instant,
        evidence_threshold=evidence,
        clear_threshold=min(rest.clear_threshold, 0.75 * threshold),
        held_out_samples=alarm.held_out_samples,
        method=rest.method + note,
    )


def _sample_rate_hz(segments: Sequence[Sequence[FeatureSample]]) -> float | None:
    intervals = sum(max(0, len(segment) - 1) for segment in segments)
    duration_ns = sum(segment[-1].time_ns - segment[0].time_ns for segment in segments if segment)
    if intervals == 0 or duration_ns <= 0:
        return None
    return intervals / (duration_ns * 1e-9)


def _decimate(segment: Sequence[FeatureSample], rate_hz: float) -> list[FeatureSample]:
    """Keep a frame when at least 0.9 periods have passed since the last kept one (jitter-tolerant)."""
    min_gap_ns = 0.9e9 / rate_hz
    kept: list[FeatureSample] = []
    for sample in segment:
        if not kept or sample.time_ns - kept[-1].time_ns >= min_gap_ns:
            kept.append(sample)
    return kept
