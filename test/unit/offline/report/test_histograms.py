"""Shares read from a profile's histogram, within the bounds of its quantiles."""

from __future__ import annotations

import numpy as np
import pytest

from gap_monitor.core.conditions.profile_builder import feature_stats
from gap_monitor.offline.report import share_below


def test_share_below_reads_the_histogram_and_respects_atoms():
    rng = np.random.default_rng(3)
    normal = feature_stats(rng.normal(0.0, 1.0, 20000))
    assert share_below(normal, -1.0, strict=True) == pytest.approx(0.1587, abs=0.01)
    assert 1.0 - share_below(normal, 2.0, strict=False) == pytest.approx(0.0228, abs=0.005)
    # 30 % at 48 and an atom of 70 % at 159, the maximum: uniform spreading alone would put the
    # whole last bin, atom included, below 159.
    atom = feature_stats(np.concatenate([np.full(300, 48.0), np.full(700, 159.0)]))
    assert 0.25 <= share_below(atom, 159.0, strict=True) <= 0.5
    assert share_below(atom, 159.0, strict=False) == 1.0
    assert share_below(atom, 47.0, strict=False) == 0.0
