"""The one k-of-n persistence rule: its live, statistic and mask forms agree with each other."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest

from gap_monitor.core.conditions.persistence import DEFAULT_PERSISTENCE, Persistence


@pytest.mark.parametrize(("k", "n"), [(1, 1), (3, 5), (2, 7), (5, 5)])
def test_live_rule_holds_exactly_when_the_statistic_passes_the_threshold(k, n):
    rule = Persistence(k, n)
    rng = np.random.default_rng(k * 10 + n)
    scores = rng.exponential(1.0, 400)
    threshold = 1.5
    statistic = rule.statistic(scores)
    recent: deque[bool] = deque(maxlen=n)
    live = []
    for score in scores:
        recent.append(bool(score > threshold))
        live.append(rule.holds(recent))
    # The statistic starts at the k-th sample, where the live rule first can hold.
    assert live[: k - 1] == [False] * (k - 1)
    assert live[k - 1 :] == list(statistic > threshold)


def test_persistent_marks_the_flags_inside_a_qualifying_run():
    rule = Persistence(3, 5)
    flags = np.array([1, 0, 1, 0, 1, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 1], dtype=bool)
    marked = rule.persistent(flags)
    # 1,0,1,0,1 is 3 of 5; the pair 1,1 later never gets a third within 5; the last 1 is alone.
    assert list(np.flatnonzero(marked)) == [0, 2, 4]
    short = np.array([1, 1, 1], dtype=bool)  # shorter than n: one run
    assert rule.persistent(short).all() and not rule.persistent(np.array([1, 0, 1], dtype=bool)).any()


def test_rule_is_validated_once_and_defaults_to_three_of_five():
    assert (DEFAULT_PERSISTENCE.k, DEFAULT_PERSISTENCE.n) == (3, 5)
    with pytest.raises(ValueError, match="1 <= fire_k <= fire_n"):
        Persistence(6, 5)
    nan_scores = np.array([np.nan, 5.0, 5.0, np.nan, 5.0])
    assert list(Persistence(3, 5).statistic(nan_scores)) == [5.0]  # NaN skipped
