"""The one persistence rule: a condition counts when it holds for `k` of `n` consecutive samples.

The live alarm fires by it, calibration sets the alarm threshold on its statistic, and the report
marks persistent novel samples with it, so the three cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Persistence:
    """`k` of the last `n` samples (1 <= k <= n)."""

    k: int = 3
    n: int = 5

    def __post_init__(self) -> None:
        if not (isinstance(self.k, int) and isinstance(self.n, int) and 1 <= self.k <= self.n):
            raise ValueError(f"fire_k={self.k!r}, fire_n={self.n!r}: need 1 <= fire_k <= fire_n")

    def holds(self, last_n: Iterable[bool]) -> bool:
        """Live: whether the last `n` flags (oldest first, fewer at the start) hold `k` True ones."""
        return sum(last_n) >= self.k

    def statistic(self, scores: Sequence[float] | FloatArray) -> FloatArray:
        """m_t, the k-th largest of the last n scores (fewer at the start), from the first sample
        where k are available: the rule holds for `score > threshold` at t exactly when
        m_t > threshold, so calibration sets the threshold on m_t. NaN scores are skipped."""
        values = np.asarray(scores, dtype=np.float64)
        values = values[~np.isnan(values)]
        if values.size < self.k:
            return np.zeros(0)
        padded = np.concatenate([np.full(self.n - 1, -np.inf), values])
        windows = np.lib.stride_tricks.sliding_window_view(padded, self.n)
        kth = np.sort(windows, axis=1)[:, self.n - self.k]
        return np.asarray(kth[self.k - 1 :], dtype=np.float64)

    def persistent(self, flags: BoolArray) -> BoolArray:
        """The True flags that lie in some run of `n` consecutive samples holding at least `k`
        True ones; a series shorter than `n` is one run."""
        size = int(flags.size)
        if size == 0:
            return np.zeros(0, dtype=bool)
        if size < self.n:
            return flags.copy() if int(flags.sum()) >= self.k else np.zeros(size, dtype=bool)
        cumulative = np.concatenate([[0], np.cumsum(flags, dtype=np.int64)])
        starts = np.flatnonzero(cumulative[self.n :] - cumulative[: -self.n] >= self.k)
        delta = np.zeros(size + 1, dtype=np.int64)
        np.add.at(delta, starts, 1)
        np.add.at(delta, starts + self.n, -1)
        return np.asarray(flags & (np.cumsum(delta[:-1]) > 0), dtype=bool)


# The alarm's rule unless a profile's calibration says otherwise: 3 of 5 scores over the threshold.
DEFAULT_PERSISTENCE = Persistence()
