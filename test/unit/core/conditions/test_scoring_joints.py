"""Joint streams in the scoring core: joints never seen in training are a novel condition named
once, the known joints are still scored, and what is shown of a stream's features is bounded."""

from __future__ import annotations

import math

import pytest

from gap_monitor.core.conditions.profile import (
    QUANTILE_LEVELS,
    FeatureStats,
    Histogram,
    Profile,
    StreamProfile,
)
from gap_monitor.core.conditions.scoring import (
    MAX_SHOWN_FEATURES,
    ConditionMonitor,
    StreamScorer,
    bounded_features,
    condition_values,
)
from gap_monitor.core.diagnostics import novelty_level
from gap_monitor.core.events import Severity

KNOWN = [f"joint_{i}" for i in range(7)]


def uniform(low: float, high: float) -> FeatureStats:
    """Uniform on low..high: the quantile at level q is low + q (high - low)."""
    quantiles = tuple(low + q * (high - low) for q in QUANTILE_LEVELS)
    return FeatureStats(
        count=1000, nan_count=0, mean=(low + high) / 2, std=1.0, min=low, max=high,
        quantiles=quantiles, histogram=Histogram(low, high, (1000.0,)), resolution=0.001,
    )  # fmt: skip


def arm_profile() -> StreamProfile:
    features = {f"position.{j}": uniform(-1.0, 1.0) for j in KNOWN}
    features |= {f"velocity_max_abs.{j}": uniform(0.0, 2.0) for j in KNOWN}
    features["nan_count"] = uniform(-1.0, 1.0)  # 0 in the middle: typical
    return StreamProfile(
        modality="joints", sample_count=1000, first_time_ns=0, last_time_ns=1, features=features
    )


def arm(joints: list[str], position: float = 0.0) -> dict[str, float]:
    """A joint stream's features as the extractor gives them (message order)."""
    out = {f"position.{j}": position for j in joints}
    out |= {f"velocity_max_abs.{j}": 1.0 for j in joints}
    out["nan_count"] = 0.0
    return out


def test_unknown_joints_are_named_once_per_change_and_the_known_ones_still_scored() -> None:
    monitor = ConditionMonitor(Profile({"/joint_states": arm_profile()}))
    unknown = [f"j_{i}" for i in range(12)]
    trained = monitor.update("/joint_states", arm(KNOWN), 0)
    assert trained.joints is None and trained.score.unknown_joints == ()
    foreign = [monitor.update("/joint_states", arm(KNOWN + unknown), k) for k in range(1, 6)]
    change = foreign[0].joints
    assert change is not None and change.unknown == tuple(unknown) and change.missing == ()
    assert change.describe() == (
        "joints never seen in training: j_0, j_1, j_2, j_3, j_4, j_5, j_6, j_7, j_8, j_9, ... (+2 more)"
    )
    assert change.details() == {"unknown_joints": unknown[:10], "unknown_joints_total": 12}
    assert [u.joints for u in foreign[1:]] == [None] * 4  # once, not every update
    score = foreign[-1].score
    # The known joints are scored as before (typical), the names are the novelty.
    assert score.score == pytest.approx(trained.score.score) and math.isfinite(score.score)
    assert score.unknown_joints == tuple(unknown)
    assert novelty_level(False, score, 4.0, 3.0) == Severity.WARN
    assert novelty_level(False, trained.score, 4.0, 3.0) == Severity.OK
    assert score.describe().startswith("joints never seen in training: j_0, ")
    assert "within training conditions" in score.describe().split("; known joints: ")[1]
    details = score.details(4.0)
    assert details["unknown_joints_total"] == 12 and len(details["unknown_joints"]) == 10
    # A known joint out of its range still shows, next to the unknown names.
    out_of_range = monitor.update("/joint_states", arm(KNOWN + unknown, position=5.0), 6).score
    assert out_of_range.top[0].name.startswith("position.joint_") and out_of_range.score > 10
    back = monitor.update("/joint_states", arm(KNOWN), 7).joints
    assert back is not None and back.unknown == () and back.describe() == "back to joints seen in training"
    assert monitor.update("/joint_states", arm(KNOWN), 8).joints is None


def test_profile_joints_not_received_are_noted_but_do_not_make_a_novel_condition() -> None:
    monitor = ConditionMonitor(Profile({"/joint_states": arm_profile()}))
    subset = monitor.update("/joint_states", arm(KNOWN[:5]), 0)
    assert subset.score.missing_joints == ("joint_5", "joint_6")
    assert subset.joints is None and novelty_level(False, subset.score, 4.0, 3.0) == Severity.OK
    values = condition_values(arm(KNOWN[:5]), subset.score, 4.0)
    assert values["missing_joints"] == "2" and values["missing_joint_names"] == "joint_5, joint_6"
    renamed = monitor.update("/joint_states", arm(["x", *KNOWN[:6]]), 1).joints
    assert renamed is not None and renamed.describe() == (
        "joints never seen in training: x; profile joints not received: joint_6"
    )


def test_a_thousand_joints_give_bounded_values_with_the_most_unusual_features_kept() -> None:
    scorer = StreamScorer(arm_profile(), "/joint_states")
    unknown = [f"j_{i}" for i in range(993)]
    features = arm(KNOWN + unknown)
    features["position.joint_3"] = 7.0  # far outside -1..1
    score = scorer.score(features)
    assert score.top[0].name == "position.joint_3" and score.score > 10  # still scored
    values = condition_values(features, score, 4.0)
    shown = [k for k in values if k in features]
    assert len(features) == 2001 and len(shown) == MAX_SHOWN_FEATURES
    assert len(values) <= MAX_SHOWN_FEATURES + 8  # counts, score, threshold, joint summaries
    assert "position.joint_3" in shown
    assert (values["features_total"], values["features_shown"]) == ("2001", str(MAX_SHOWN_FEATURES))
    assert values["unknown_joints"] == "993" and values["unknown_joint_names"].endswith("(+983 more)")
    assert len(bounded_features(features, score)) == MAX_SHOWN_FEATURES
    # Without a score (a stream not in the profile) the first ones are shown, still bounded.
    assert len([k for k in condition_values(features, None, None) if k in features]) == MAX_SHOWN_FEATURES
    # A small stream shows every feature, in its own order.
    small = arm(KNOWN)
    assert list(condition_values(small, scorer.score(small), 4.0))[: len(small)] == list(small)
