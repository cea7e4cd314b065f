"""Condition scoring against a training profile: per-feature tail probabilities and the stream score.

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

Joints never seen in training: a joint stream's features are per joint, and a joint the profile
does not know has no statistics to score against. Its name is the novelty: a score carries the
unknown joints (and the profile's joints not received) next to the score of the known ones, and
`ConditionMonitor` reports each change of the unknown set once (`MonitorUpdate.joints`).

What is shown is bounded: `condition_values` (and `shown_features`) carry at most
`MAX_SHOWN_FEATURES` features, the most unusual first to be kept, and name lists in texts at most
`MAX_LISTED_NAMES` names and a count.

The alarm these scores feed is `alarm.SequentialAlarm`; profiles are calibrated in `calibration`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from gap_monitor.core.conditions.alarm import AlarmUpdate, SequentialAlarm
from gap_monitor.core.conditions.features import JOINT_SEPARATOR, PER_JOINT_FEATURES
from gap_monitor.core.conditions.profile import (
    QUANTILE_LEVELS,
    FeatureStats,
    Profile,
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
# Every standard modality has fewer features, and so has an arm of up to 10 joints (3 per joint
# and nan_count): those streams show all; beyond, the most unusual are kept.
MAX_SHOWN_FEATURES = 32
MAX_LISTED_NAMES = 10


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
    # Joint streams: joints the profile has no feature of, in message order (the score is of the
    # known ones), and the profile's joints without any feature in this update.
    unknown_joints: tuple[str, ...] = ()
    missing_joints: tuple[str, ...] = ()
    ranked: tuple[str, ...] = ()  # profile features, most unusual first (at most MAX_SHOWN_FEATURES)

    def describe(self, max_features: int = 3) -> str:
        """The unknown joints, then the unusual features in diagnostic style, most unusual first."""
        text = self._describe_features(max_features)
        if not self.unknown_joints:
            return text
        return f"{unknown_joints_text(self.unknown_joints)}; known joints: {text}"

    def _describe_features(self, max_features: int) -> str:
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
        details: dict[str, Any] = {
            "score": json_number(round(self.score, 3)),
            "threshold": threshold,
            "top": [
                {"name": f.name, "value": f.value, "tail_prob": f.tail_prob, "p1": f.p1, "p99": f.p99}
                for f in self.top
            ],
        }
        details.update(joint_details(self.unknown_joints, self.missing_joints))
        return details


def name_list(names: Sequence[str], limit: int = MAX_LISTED_NAMES) -> str:
    """``a, b, c`` or, beyond `limit` names, ``a, b, ... (+9,998 more)``."""
    if len(names) <= limit:
        return ", ".join(names)
    return f"{', '.join(names[:limit])}, ... (+{len(names) - limit:,} more)"


def unknown_joints_text(unknown: Sequence[str]) -> str:
    return f"joints never seen in training: {name_list(unknown)}"


def missing_joints_text(missing: Sequence[str]) -> str:
    return f"profile joints not received: {name_list(missing)}"


def joint_details(unknown: Sequence[str], missing: Sequence[str]) -> dict[str, Any]:
    """Unknown and missing joints for JSON: the first MAX_LISTED_NAMES names and the count of each
    (nothing when there are none)."""
    out: dict[str, Any] = {}
    for key, names in (("unknown_joints", unknown), ("missing_joints", missing)):
        if names:
            out[key] = list(names[:MAX_LISTED_NAMES])
            out[f"{key}_total"] = len(names)
    return out


def shown_features(
    features: Mapping[str, float], score: StreamScore | None, limit: int = MAX_SHOWN_FEATURES
) -> list[str]:
    """The names of at most `limit` features to show, in the features' own order: all when they
    fit, else the most unusual by the score (its `ranked`), then the first others."""
    if len(features) <= limit:
        return list(features)
    chosen: set[str] = set()
    for name in score.ranked if score is not None else ():
        if len(chosen) >= limit:
            break
        if name in features:
            chosen.add(name)
    for name in features:
        if len(chosen) >= limit:
            break
        chosen.add(name)
    return [name for name in features if name in chosen]


def bounded_features(features: Mapping[str, float], score: StreamScore | None) -> dict[str, float]:
    """`shown_features` with their values (~/scores)."""
    return {name: features[name] for name in shown_features(features, score)}


def condition_values(
    features: Mapping[str, float], score: StreamScore | None, threshold: float | None
) -> dict[str, str]:
    """A stream's latest features in display form (`core/values.py`), at most
    MAX_SHOWN_FEATURES of them (`shown_features`; when some are left out, how many there are
    and how many are shown), then its score and alarm threshold once it is scored, and joints
    unknown to or missing from the profile; 4 significant digits (`format_value` is the shorter
    form of the descriptions)."""
    shown = shown_features(features, score)
    values = {name: number(features[name], ".4g") for name in shown}
    if len(shown) < len(features):
        values["features_total"] = str(len(features))
        values["features_shown"] = str(len(shown))
    if score is not None:
        values["score"] = number(score.score, ".4g")
        values["threshold"] = number(threshold, ".4g")
        for kind, names in (("unknown", score.unknown_joints), ("missing", score.missing_joints)):
            if names:
                values[f"{kind}_joints"] = str(len(names))
                values[f"{kind}_joint_names"] = name_list(names)
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
        # Joint streams: the profile's features of each joint (all of them, scored or not).
        self._joint_keys: dict[str, list[str]] = {}
        if profile.modality == "joints":
            for name in profile.features:
                joint = _joint_of(name)
                if joint is not None:
                    self._joint_keys.setdefault(joint, []).append(name)
        self._last_unknown: tuple[tuple[str, ...], tuple[str, ...]] = ((), ())

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

    def joints(
        self, features: Mapping[str, float], unknown: tuple[str, ...]
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(joints the profile does not know, in message order; profile joints with no feature
        here) for a joint stream; empty for the others. `unknown`: the keys the profile lacks."""
        if not self._joint_keys:
            return (), ()
        missing = tuple(
            joint for joint, keys in self._joint_keys.items() if not any(key in features for key in keys)
        )
        if not unknown:
            return (), missing
        if unknown != self._last_unknown[0]:  # a joint list is the same hop after hop: parse it once
            joints = (_joint_of(key) for key in unknown)
            novel = tuple(dict.fromkeys(j for j in joints if j is not None and j not in self._joint_keys))
            self._last_unknown = (unknown, novel)
        return self._last_unknown[1], missing

    def score(self, features: Mapping[str, float], time_ns: int = 0) -> StreamScore:
        row, unknown = self.vector(features)
        result = self._evaluate(row[None, :])
        tails = result.tails[0]
        order = [i for i in np.argsort(tails, kind="stable") if not np.isnan(tails[i])]
        unknown_joints, missing_joints = self.joints(features, unknown)
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
            unknown_joints=unknown_joints,
            missing_joints=missing_joints,
            ranked=tuple(self.names[i] for i in order[:MAX_SHOWN_FEATURES]),
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


def _joint_of(key: str) -> str | None:
    """The joint of a per-joint feature key (``position.elbow`` -> ``elbow``); None otherwise."""
    feature, separator, joint = key.partition(JOINT_SEPARATOR)
    return joint if separator and feature in PER_JOINT_FEATURES else None


def _to_score(p_value: float) -> float:
    if math.isnan(p_value):
        return math.nan
    return min(MAX_SCORE, -math.log10(max(p_value, _P_FLOOR))) + 0.0


@dataclass(frozen=True)
class JointChange:
    """The set of a joint stream's joints unknown to the profile changed (appeared, changed or
    went away): reported once per change, alarm or not, calibrated or not."""

    unknown: tuple[str, ...]  # now unknown, in message order (empty: all known again)
    missing: tuple[str, ...]  # profile joints not received now

    def describe(self) -> str:
        if not self.unknown:
            return "back to joints seen in training"
        text = unknown_joints_text(self.unknown)
        return f"{text}; {missing_joints_text(self.missing)}" if self.missing else text

    def details(self) -> dict[str, Any]:
        return joint_details(self.unknown, self.missing)


@dataclass(frozen=True)
class MonitorUpdate:
    stream: str
    score: StreamScore
    alarm: AlarmUpdate | None  # None when the stream's profile has no calibrated alarm
    joints: JointChange | None = None  # the unknown joints changed with this update


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
        self._unknown_joints: dict[str, frozenset[str]] = {}  # as last reported, per stream

    @property
    def streams(self) -> tuple[str, ...]:
        return tuple(self._scorers)

    def update(self, stream: str, features: Mapping[str, float], time_ns: int) -> MonitorUpdate:
        scorer = self._scorers.get(stream)
        if scorer is None:
            raise KeyError(f"stream {stream!r} is not in the profile (streams: {list(self._scorers)})")
        score = scorer.score(features, time_ns)
        alarm = self._alarms.get(stream)
        alarmed = None if alarm is None else alarm.update(score.score)
        return MonitorUpdate(stream, score, alarmed, self._joint_change(stream, score))

    def _joint_change(self, stream: str, score: StreamScore) -> JointChange | None:
        unknown = frozenset(score.unknown_joints)
        if unknown == self._unknown_joints.get(stream, frozenset()):
            return None
        self._unknown_joints[stream] = unknown
        return JointChange(score.unknown_joints, score.missing_joints)

    def reset(self) -> None:
        for alarm in self._alarms.values():
            alarm.reset()
        self._unknown_joints.clear()
