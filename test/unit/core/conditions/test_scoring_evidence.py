"""The alarm's evidence (CUSUM) rule: statistic, calibration, behaviour and profile files."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml

from gap_monitor.core.conditions.alarm import SequentialAlarm, calibrate, count_alarms, evidence_statistic
from gap_monitor.core.conditions.calibration import build_calibrated_profile
from gap_monitor.core.conditions.profile import AlarmCalibration, FeatureSample, Profile
from gap_monitor.errors import ProfileError

RATE_HZ = 5.0
HOUR = int(3600 * RATE_HZ)


def correlated_scores(rng: np.random.Generator, n: int, rho: float = 0.8) -> np.ndarray:
    """-log10 of two-sided normal p-values of a unit AR(1): in-distribution scores with the
    frame-to-frame correlation of real features (runs of high scores)."""
    z = np.empty(n)
    z[0] = rng.standard_normal()
    noise = rng.standard_normal(n) * math.sqrt(1 - rho * rho)
    for i in range(1, n):
        z[i] = rho * z[i - 1] + noise[i]
    p = np.array([math.erfc(abs(v) / math.sqrt(2.0)) for v in z])
    return np.asarray(-np.log10(np.maximum(p, 1e-300)))


def first_fire(calibration: AlarmCalibration, scores: np.ndarray) -> int | None:
    alarm = SequentialAlarm(calibration)
    for index, score in enumerate(scores.tolist()):
        if alarm.update(score).fired:
            return index
    return None


def test_evidence_statistic_matches_the_recursion_and_skips_nan() -> None:
    rng = np.random.default_rng(1)
    for _ in range(20):
        scores = rng.exponential(1.0, rng.integers(1, 300)) * rng.choice([0.5, 1.0, 3.0])
        scores[rng.random(scores.size) < 0.1] = np.nan
        reference = float(rng.uniform(0.5, 3.0))
        expected, total = [], 0.0
        for score in scores[~np.isnan(scores)]:
            total = max(0.0, total + score - reference)
            expected.append(total)
        assert evidence_statistic(scores, reference) == pytest.approx(expected, abs=1e-9)
    assert evidence_statistic([], 1.0).size == 0


def test_evidence_accumulates_moderate_scores_and_restarts_after_clearing() -> None:
    cal = AlarmCalibration(
        threshold=100.0, clear_threshold=2.0, clear_n=2, evidence_reference=1.0, evidence_threshold=10.0
    )
    alarm = SequentialAlarm(cal)
    # Each 6 adds 5: 5, 10 (not above 10), 15 fires, though no single score is near the threshold.
    assert [alarm.update(s).fired for s in (6.0, 6.0, 6.0)] == [False, False, True]
    assert [alarm.update(s).cleared for s in (0.0, 0.0)] == [False, True]
    assert [alarm.update(s).fired for s in (6.0, 6.0)] == [False, False]  # evidence restarted at 0
    # Scores below the reference drain it, 1 a sample: 5, 4, ..., 0, then 5, 10 (not above 10).
    alarm.reset()
    assert not any(alarm.update(s).fired for s in (6.0, 0.0, 0.0, 0.0, 0.0, 0.0, 6.0, 6.0))
    assert not any(alarm.update(s).fired for s in (math.nan,) * 5)  # NaN changes nothing
    assert alarm.update(6.0).fired  # 10 + 5
    off = SequentialAlarm(replace(cal, evidence_threshold=0.0))
    assert not any(off.update(6.0).fired for _ in range(100))


def test_calibration_keeps_stationary_noise_quiet() -> None:
    """Calibrated on 2 h of held-out in-distribution scores for 1 false alarm/h: 10 further hours
    from the same distribution raise few alarms, and the evidence rule alone stays within its
    third of the budget."""
    rng = np.random.default_rng(2)
    held_out = [correlated_scores(rng, HOUR // 2) for _ in range(4)]
    cal = calibrate(held_out, RATE_HZ, target_false_alarms_per_hour=1.0)
    assert cal.evidence_threshold > 0 and cal.evidence_reference >= 1.0
    assert "evidence rule" in cal.method
    fresh = correlated_scores(rng, 10 * HOUR)
    assert count_alarms(fresh, cal) <= 10
    evidence_only = replace(cal, threshold=1e6, clear_threshold=cal.clear_threshold, instant_threshold=0.0)
    assert count_alarms(fresh, evidence_only) <= 10 / 3 + 1


def test_a_sustained_shift_is_caught_sooner_than_by_k_of_n_alone() -> None:
    """Scores a few times their usual size, sustained (p-values from a Beta(1/3, 1) alternative):
    with the same held-out data and the same total false-alarm budget, the alarm with the evidence
    rule fires sooner than k-of-n + instant alone."""
    rng = np.random.default_rng(3)
    held_out = [correlated_scores(rng, HOUR // 2) for _ in range(4)]
    with_evidence = calibrate(held_out, RATE_HZ)
    without = calibrate(held_out, RATE_HZ, evidence_rule=False)
    assert without.evidence_threshold == 0.0
    lead_n, shift_n = 50, 400
    new_delays, old_delays = [], []
    for _ in range(100):
        shifted = -np.log10(rng.random(shift_n)) * 3.0
        scores = np.concatenate([correlated_scores(rng, lead_n), shifted])
        new, old = first_fire(with_evidence, scores), first_fire(without, scores)
        if (new is not None and new < lead_n) or (old is not None and old < lead_n):
            continue  # a false alarm in the lead-in: no delay to compare
        new_delays.append(shift_n if new is None else new - lead_n)  # None: not within the shift
        old_delays.append(shift_n if old is None else old - lead_n)
    assert len(new_delays) >= 90
    pairs = list(zip(new_delays, old_delays, strict=True))
    assert np.median(new_delays) < 0.7 * np.median(old_delays)
    assert sum(n < o for n, o in pairs) > 2 * sum(n > o for n, o in pairs)


def test_profiles_keep_the_evidence_rule_and_old_files_load_without_it(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    samples = [
        FeatureSample("imu", "/imu", {"accel_std_x": float(abs(rng.normal(0.02, 0.001)))}, k * 200_000_000)
        for k in range(3000)
    ]
    profile = build_calibrated_profile(samples, frame_rate_hz=RATE_HZ)
    alarm = profile.streams["/imu"].alarm
    assert alarm is not None and alarm.evidence_threshold > 0
    path = tmp_path / "p.yaml"
    profile.save(path)
    assert Profile.load(path).streams["/imu"].alarm == alarm
    doc = yaml.safe_load(path.read_text())
    for stream in doc["streams"].values():
        del stream["alarm"]["evidence_reference"]
        del stream["alarm"]["evidence_threshold"]
    path.write_text(yaml.safe_dump(doc))
    old = Profile.load(path).streams["/imu"].alarm
    assert old is not None and old.evidence_threshold == 0.0 and old.evidence_reference == 0.0
    assert old.threshold == alarm.threshold  # the rest of the alarm is as written
    for stream in doc["streams"].values():
        stream["alarm"]["evidence_threshold"] = -1.0
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(ProfileError, match="evidence_threshold"):
        Profile.load(path)


def test_without_the_evidence_rule_the_budget_is_split_two_ways() -> None:
    """evidence_rule=False is the earlier alarm: two rules, each at half the budget; with the rule,
    each of three gets a third, so the k-of-n threshold can only rise."""
    rng = np.random.default_rng(5)
    scores = -np.log10(rng.random(200_000))
    two = calibrate(scores, RATE_HZ, 36.0, min_threshold=0.0, evidence_rule=False)
    three = calibrate(scores, RATE_HZ, 36.0, min_threshold=0.0)
    # 36/h at 5 Hz: q = 1e-3 of the persistence statistic for two rules, 2/3 of it for three.
    for cal, q in ((two, 1e-3), (three, 2e-3 / 3)):
        persistence = np.sort(np.lib.stride_tricks.sliding_window_view(scores, 5), axis=1)[:, 2]
        assert cal.threshold == pytest.approx(float(np.quantile(persistence, 1 - q)), rel=0.02)
    assert three.threshold >= two.threshold
    evidence = evidence_statistic(scores, three.evidence_reference)
    assert three.evidence_threshold == pytest.approx(float(np.quantile(evidence, 1 - 2e-3 / 3)), rel=0.02)
