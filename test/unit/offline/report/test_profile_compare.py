"""`profile compare`: per feature, the share of B outside A's training range and the overlap."""

from __future__ import annotations

import numpy as np
import pytest

from gap_monitor.offline.report import compare_profiles


def test_compare_profiles_ranks_the_uncovered_feature_first_with_the_share_outside(camera_profile):
    rng = np.random.default_rng(1)
    a = camera_profile({"mean_luminance": rng.normal(120, 10, 4000), "contrast": rng.normal(40, 5, 4000)})
    dark = rng.normal(40, 5, 1200)
    b = camera_profile({
        "mean_luminance": np.concatenate([rng.normal(120, 10, 2800), dark]),
        "contrast": rng.normal(40, 5, 4000),
    })  # fmt: skip
    result = compare_profiles(a, b, "train.yaml", "deploy.yaml")
    first, second = result.features
    assert first.feature == "mean_luminance"
    assert first.below_share == pytest.approx(0.3 + 0.7 * 0.01, abs=0.02)
    assert first.above_share == pytest.approx(0.7 * 0.01, abs=0.01)
    assert first.overlap == pytest.approx(0.7, abs=0.05)
    assert second.feature == "contrast"
    assert second.outside_share == pytest.approx(0.02, abs=0.015)
    assert second.overlap > 0.9
    same = compare_profiles(a, a)
    assert all(f.overlap == pytest.approx(1.0) for f in same.features)
    ranked = [line for line in result.format_text().splitlines() if line.startswith("  1. ")]
    assert len(ranked) == 1 and "mean_luminance" in ranked[0]
