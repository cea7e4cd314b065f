"""Sliding time windows for the windowed modalities (IMU, joints, wrench): samples are pushed one
at a time or in batches, and features are emitted every hop over the last `window_s` seconds."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterator, Mapping

import numpy as np
import numpy.typing as npt

from gap_monitor.core.conditions.features.registry import FeatureError

_FLOAT64 = np.dtype(np.float64)


class _Channel:
    """One channel's samples: rows live in ``values[start:len(times)]``, oldest first.

    Appending writes into preallocated rows and dropping only moves ``start`` (TimeWindow.push
    bisects ``times``, which never decrease: a window resets when time goes back); the live rows are
    moved to the front when the buffer fills, so a push costs O(1) amortised and reading the
    window is one slice copy.
    """

    __slots__ = ("row_shape", "start", "times", "values", "width")

    def __init__(self, width: int) -> None:
        self.width = width
        self.row_shape = (width,)
        self.times: list[int] = []
        self.values: npt.NDArray[np.float64] = np.empty((64, width), dtype=np.float64)
        self.start = 0

    def clear(self) -> None:
        self.times.clear()
        self.start = 0

    def append(self, time_ns: int, row: npt.NDArray[np.float64]) -> None:
        end = len(self.times)
        if end == self.values.shape[0]:
            end = self._make_room(1)
        self.values[end] = row
        self.times.append(time_ns)

    def extend(self, times: list[int], rows: npt.NDArray[np.float64]) -> None:
        """`append` of many rows at once."""
        count = len(times)
        end = len(self.times)
        if end + count > self.values.shape[0]:
            end = self._make_room(count)
        self.values[end : end + count] = rows
        self.times.extend(times)

    def _make_room(self, count: int) -> int:
        """Room for `count` more rows: the live rows moved to the front, into a buffer twice the
        size when they would fill more than half of it; returns the new end."""
        values, end = self.values, len(self.times)
        live = end - self.start
        capacity = values.shape[0]
        if 2 * (live + count) > capacity:
            values = np.empty((max(2 * capacity, 2 * (live + count)), self.width), dtype=np.float64)
        values[:live] = self.values[self.start : end]
        del self.times[: self.start]
        self.values = values
        self.start = 0
        return live

    def __len__(self) -> int:
        return len(self.times) - self.start

    def array(self) -> npt.NDArray[np.float64]:
        return self.values[self.start : len(self.times)].copy()


class TimeWindow:
    """Samples of named channels over the last ``window_s``, emitting every ``hop_s``.

    ``push`` returns True when features are due: the window first has to span ``window_s``, then
    emissions follow a fixed grid every hop (re-synchronised after a gap longer than a hop). A
    timestamp that goes backwards (bag loop, clock reset) empties the window instead of mixing
    epochs, and so does a gap longer than half the window (a stalled sensor): features of the
    few samples after it would measure a window unlike any in training, so the window fills
    again first.
    """

    def __init__(self, window_s: float, hop_s: float | None, widths: Mapping[str, int]) -> None:
        if not window_s > 0.0 or not np.isfinite(window_s):
            raise ValueError(f"window_s={window_s!r}: must be a finite number > 0")
        hop = window_s if hop_s is None else hop_s
        if not hop > 0.0 or not np.isfinite(hop):
            raise ValueError(f"hop_s={hop_s!r}: must be a finite number > 0 (or None: window_s)")
        self.window_ns = round(window_s * 1e9)
        self.hop_ns = max(1, round(hop * 1e9))
        self.restart_gap_ns = self.window_ns // 2
        self.widths = dict(widths)
        self._channels: dict[str, _Channel] = {
            channel: _Channel(width) for channel, width in self.widths.items()
        }
        self._start_ns: int | None = None
        self._last_ns: int | None = None
        self._next_emit_ns: int | None = None

    def reset(self) -> None:
        for samples in self._channels.values():
            samples.clear()
        self._start_ns = None
        self._last_ns = None
        self._next_emit_ns = None

    def push(self, time_ns: int, rows: Mapping[str, npt.ArrayLike | None]) -> bool:
        """Add one sample's rows (a None row is skipped); True when features are due now.

        A malformed row raises FeatureError before anything is stored, so it cannot poison the
        window."""
        checked = []
        channels = self._channels
        for channel, values in rows.items():
            if values is None:
                continue
            samples = channels.get(channel)
            if samples is None:
                raise FeatureError(f"unknown channel {channel!r}; channels: {sorted(self.widths)}")
            # A 1-D float64 row of the right width (what the CDR decoders give) needs no check.
            if (
                type(values) is not np.ndarray
                or values.dtype is not _FLOAT64
                or values.shape != samples.row_shape
            ):
                values = self._checked_row(channel, values, samples.width)
            checked.append((samples, values))
        last = self._last_ns
        if last is not None and (time_ns < last or time_ns - last > self.restart_gap_ns):
            self.reset()
        if self._start_ns is None or self._next_emit_ns is None:
            self._start_ns = time_ns
            self._next_emit_ns = time_ns + self.window_ns
        self._last_ns = time_ns
        for samples, row in checked:
            samples.append(time_ns, row)
        oldest_kept_exclusive_ns = time_ns - self.window_ns
        for samples in channels.values():  # drop_through, inlined: this runs for every sample
            samples.start = bisect_right(samples.times, oldest_kept_exclusive_ns, samples.start)
        if time_ns < self._next_emit_ns:
            return False
        self._next_emit_ns += self.hop_ns
        if self._next_emit_ns <= time_ns:
            self._next_emit_ns = time_ns + self.hop_ns
        return True

    def push_many(
        self,
        times_ns: npt.NDArray[np.int64],
        rows: Mapping[str, tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_] | None]],
    ) -> Iterator[int]:
        """`push` of many samples in order, for offline reading: yields the index of every sample
        at which features are due, the window then holding exactly what `push` would leave in
        it at that sample (read it before advancing the iterator).

        `rows` maps a channel to (N x width values, mask of the samples that have the channel or
        None for all); a sample without a channel is `push`'s None row. Shapes are checked before
        anything is stored (FeatureError)."""
        times = np.asarray(times_ns, dtype=np.int64).reshape(-1)
        n = times.shape[0]
        columns = []
        for channel, (values, present) in rows.items():
            samples = self._channels.get(channel)
            if samples is None:
                raise FeatureError(f"unknown channel {channel!r}; channels: {sorted(self.widths)}")
            if values.shape != (n, samples.width):
                raise FeatureError(
                    f"{channel}: {values.shape} values for {n} samples of width {samples.width}"
                )
            columns.append((samples, np.asarray(values, dtype=np.float64), present))
        # Runs without a step back or a stall: either resets the window, as in `push`.
        steps = np.diff(times)
        run_ends = [*(np.flatnonzero((steps < 0) | (steps > self.restart_gap_ns)) + 1).tolist(), n]
        i = 0
        for run_end in run_ends:
            if i >= run_end:
                continue
            first = int(times[i])
            last = self._last_ns
            if last is not None and (first < last or first - last > self.restart_gap_ns):
                self.reset()
            if self._start_ns is None or self._next_emit_ns is None:
                self._start_ns = first
                self._next_emit_ns = first + self.window_ns
            run = times[i:run_end]
            while i < run_end:
                due = i + int(np.searchsorted(run[i - run_end :], self._next_emit_ns, side="left"))
                stop = min(due + 1, run_end)
                self._extend(columns, times, i, stop)
                i = stop
                if due >= run_end:
                    break
                t = int(times[due])
                self._next_emit_ns += self.hop_ns
                if self._next_emit_ns <= t:
                    self._next_emit_ns = t + self.hop_ns
                yield due

    def features_many(
        self,
        times_ns: npt.NDArray[np.int64],
        rows: Mapping[str, tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_] | None]],
        compute: Callable[[], dict[str, float] | None],
    ) -> list[tuple[int, dict[str, float]]]:
        """`push_many`, calling `compute` (which reads the window) at every due sample:
        (sample index, features) for each that gives some."""
        out = []
        for due in self.push_many(times_ns, rows):
            features = compute()
            if features is not None:
                out.append((due, features))
        return out

    def _extend(
        self,
        columns: list[tuple[_Channel, npt.NDArray[np.float64], npt.NDArray[np.bool_] | None]],
        times: npt.NDArray[np.int64],
        start: int,
        stop: int,
    ) -> None:
        """Samples [start, stop) into their channels, then the window's old samples out."""
        for samples, values, present in columns:
            if present is None:
                samples.extend(times[start:stop].tolist(), values[start:stop])
            else:
                keep = present[start:stop]
                samples.extend(times[start:stop][keep].tolist(), values[start:stop][keep])
        last = int(times[stop - 1])
        self._last_ns = last
        oldest_kept_exclusive_ns = last - self.window_ns
        for samples in self._channels.values():
            samples.start = bisect_right(samples.times, oldest_kept_exclusive_ns, samples.start)

    @staticmethod
    def _checked_row(channel: str, values: npt.ArrayLike, width: int) -> npt.NDArray[np.float64]:
        try:
            row = np.asarray(values, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError) as exc:
            raise FeatureError(f"{channel}: not a numeric sample ({exc})") from exc
        if row.shape[0] != width:
            raise FeatureError(f"{channel}: {row.shape[0]} values per sample, expected {width}")
        return row

    def count(self, channel: str) -> int:
        samples = self._channels.get(channel)
        return 0 if samples is None else len(samples)

    def array(self, channel: str) -> npt.NDArray[np.float64]:
        """The channel's samples in the window as an N x width array (N may be 0)."""
        samples = self._channels.get(channel)
        if samples is None:
            return np.empty((0, 0), dtype=np.float64)
        return samples.array()


