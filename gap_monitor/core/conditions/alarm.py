"""The alarm on a stream's scores, and the calibration of its thresholds.

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
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from gap_monitor.core.conditions.persistence import DEFAULT_PERSISTENCE, Persistence
from gap_monitor.core.conditions.profile import AlarmCalibration


class InsufficientDataError(ValueError):
    """Too few held-out scores to set a threshold: the stream is profiled without an alarm."""


FloatArray = npt.NDArray[np.float64]
ScoreSeries = Sequence[float] | FloatArray


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
        self._rule = Persistence(calibration.fire_k, calibration.fire_n)
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
            if instant or accumulated or self._rule.holds(self._recent):
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


# ----------------------------------------------------------------------------------------------
# Calibration


def persistence_statistic(scores: ScoreSeries, fire_k: int, fire_n: int) -> FloatArray:
    """m_t of the k-of-n rule (`Persistence.statistic`): the alarm can fire at t only if
    m_t > threshold."""
    return Persistence(fire_k, fire_n).statistic(scores)


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
    fire_k: int = DEFAULT_PERSISTENCE.k,
    fire_n: int = DEFAULT_PERSISTENCE.n,
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
    rule = Persistence(fire_k, fire_n)
    segments = _segments(held_out_scores)
    scores = np.concatenate(segments) if segments else np.zeros(0)
    persistence = np.concatenate(
        [rule.statistic(segment) for segment in segments] or [np.zeros(0)]
    )
    if persistence.size < 10:
        raise InsufficientDataError(
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


