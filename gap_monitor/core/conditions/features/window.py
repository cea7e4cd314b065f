"""Named scalar features computed from sensor arrays (no message types here).

Each modality module (image, depth, imu, joints, wrench) turns numpy arrays into a plain
``dict[str, float]`` whose keys are registered below with a unit and a description, so a profile,
a score or a diagnostic can say what a number means. Windowed modalities (IMU, joints, wrench) are
fed one sample at a time through a :class:`TimeWindow` that emits features every hop.

A feature's ``resolution`` is the smallest change worth noticing. The scorer floors its tail scale
with it, so a feature that never varied in training (a NaN count that was always 0) does not make a
trivial change infinitely surprising.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from gap_monitor.errors import MessageError

MODALITIES = ("camera", "depth", "imu", "joints", "wrench")

# Joint features are per joint: the registered name is a prefix, the joint name follows it.
JOINT_SEPARATOR = "."


class FeatureError(MessageError):
    """Input that features cannot be computed from: unknown encoding, empty or mis-sized array."""


@dataclass(frozen=True)
class FeatureSpec:
    name: str
    unit: str
    description: str
    resolution: float


def _specs(*rows: tuple[str, str, float, str]) -> tuple[FeatureSpec, ...]:
    return tuple(FeatureSpec(name, unit, description, res) for name, unit, res, description in rows)


FEATURE_SPECS: dict[str, tuple[FeatureSpec, ...]] = {
    "camera": _specs(
        ("mean_luminance", "level (0-255)", 1.0, "mean Rec.601 luma; mono16 scaled by 1/257"),
        ("luminance_p5", "level (0-255)", 1.0, "5th percentile of luma"),
        ("luminance_p95", "level (0-255)", 1.0, "95th percentile of luma"),
        ("contrast", "level (0-255)", 0.5, "standard deviation of luma"),
        ("dark_fraction", "fraction", 0.005, "fraction of pixels with luma < 16"),
        ("saturated_fraction", "fraction", 0.005, "fraction of pixels with luma >= 250"),
        ("sharpness", "level^2", 1.0, "variance of the 4-neighbour Laplacian, luma <= 320 px wide"),
        ("noise_sigma", "level (0-255)", 0.1, "Immerkaer fast noise estimate on full-size luma"),
        ("colour_cast", "level (0-255)", 0.5, "distance of the mean (R, G, B) from the grey axis"),
    ),
    "depth": _specs(
        ("valid_fraction", "fraction", 0.005, "fraction of pixels that are finite and > 0"),
        ("depth_median_m", "m", 0.01, "median depth of valid pixels"),
        ("depth_p5_m", "m", 0.01, "5th percentile depth of valid pixels"),
        ("depth_p95_m", "m", 0.01, "95th percentile depth of valid pixels"),
        ("near_fraction", "fraction", 0.005, "fraction of all pixels valid and nearer than near_m"),
        ("edge_noise_m", "m", 0.001, "mean |4-neighbour Laplacian| where the cross is all valid"),
    ),
    "imu": _specs(
        ("accel_norm_mean", "m/s^2", 0.01, "mean |acceleration| (about g when not accelerating)"),
        ("accel_std_x", "m/s^2", 0.001, "std of x acceleration over the window"),
        ("accel_std_y", "m/s^2", 0.001, "std of y acceleration over the window"),
        ("accel_std_z", "m/s^2", 0.001, "std of z acceleration over the window"),
        ("gyro_std_x", "rad/s", 1e-4, "std of x angular rate over the window"),
        ("gyro_std_y", "rad/s", 1e-4, "std of y angular rate over the window"),
        ("gyro_std_z", "rad/s", 1e-4, "std of z angular rate over the window"),
        ("gyro_mean_x", "rad/s", 1e-4, "mean x angular rate (bias when still)"),
        ("gyro_mean_y", "rad/s", 1e-4, "mean y angular rate (bias when still)"),
        ("gyro_mean_z", "rad/s", 1e-4, "mean z angular rate (bias when still)"),
        ("nan_count", "count", 1.0, "non-finite accel/gyro values in the window"),
        ("saturation_count", "count", 1.0, "accel/gyro values at or beyond the sensor limits"),
    ),
    "joints": _specs(
        ("position", "fraction of range | rad or m", 0.001,
         "mean position, 0..1 inside the training range; raw without a range"),
        ("velocity_max_abs", "rad/s or m/s", 0.001, "max |velocity| over the window"),
        ("effort_max_abs", "N*m or N", 0.01, "max |effort| over the window"),
        ("nan_count", "count", 1.0, "non-finite position/velocity/effort values in the window"),
    ),
    "wrench": _specs(
        ("force_norm_mean", "N", 0.01, "mean |force| over the window"),
        ("force_norm_std", "N", 0.01, "std of |force| over the window"),
        ("torque_norm_mean", "N*m", 0.001, "mean |torque| over the window"),
        ("torque_norm_std", "N*m", 0.001, "std of |torque| over the window"),
        ("force_offset", "N", 0.01, "median |force| over the quietest quarter (resting offset)"),
        ("torque_offset", "N*m", 0.001, "median |torque| over the quietest quarter"),
        ("nan_count", "count", 1.0, "non-finite force/torque values in the window"),
    ),
}

# Joint features that carry a per-joint suffix; nan_count is one value for the whole arm.
PER_JOINT_FEATURES = ("position", "velocity_max_abs", "effort_max_abs")


def feature_spec(modality: str, name: str) -> FeatureSpec | None:
    """The spec of a feature key (per-joint keys resolve to their prefix); None if unregistered."""
    specs = FEATURE_SPECS.get(modality)
    if specs is None:
        return None
    base = name
    if modality == "joints" and JOINT_SEPARATOR in name:
        base = name.split(JOINT_SEPARATOR, 1)[0]
    for spec in specs:
        if spec.name == base:
            return spec
    return None


def joint_feature_name(feature: str, joint: str) -> str:
    return f"{feature}{JOINT_SEPARATOR}{joint}"


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
    epochs.
    """

    def __init__(self, window_s: float, hop_s: float | None, widths: Mapping[str, int]) -> None:
        if not window_s > 0.0 or not np.isfinite(window_s):
            raise ValueError(f"window_s={window_s!r}: must be a finite number > 0")
        hop = window_s if hop_s is None else hop_s
        if not hop > 0.0 or not np.isfinite(hop):
            raise ValueError(f"hop_s={hop_s!r}: must be a finite number > 0 (or None: window_s)")
        self.window_ns = round(window_s * 1e9)
        self.hop_ns = max(1, round(hop * 1e9))
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
        if self._last_ns is not None and time_ns < self._last_ns:
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
        # Runs of non-decreasing times: a step back resets the window, as in `push`.
        run_ends = [*(np.flatnonzero(np.diff(times) < 0) + 1).tolist(), n]
        i = 0
        for run_end in run_ends:
            if i >= run_end:
                continue
            first = int(times[i])
            if self._last_ns is not None and first < self._last_ns:
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


def as_float_matrix(name: str, values: npt.ArrayLike, width: int | None) -> npt.NDArray[np.float64]:
    """N x width float64 array (a single row may be given 1-D); FeatureError otherwise."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise FeatureError(f"{name}: not a numeric array ({exc})") from exc
    if array.ndim == 1 and width is not None and array.shape[0] == width:
        array = array.reshape(1, width)
    if array.ndim != 2 or (width is not None and array.shape[1] != width):
        shape = "N x ?" if width is None else f"N x {width}"
        raise FeatureError(f"{name}: expected an {shape} array, got shape {array.shape}")
    return array


def percentile_from_cumulative(cumulative: npt.NDArray[np.float64], percent: float) -> float:
    """np.percentile's linear interpolation, read from cumulative counts of the values 0, 1, 2...

    A histogram of integer pixel values is far cheaper than sorting a frame.
    """
    position = percent / 100.0 * (float(cumulative[-1]) - 1.0)
    below = math.floor(position)
    fraction = position - below
    # The k-th smallest value (0-based) is the first level whose cumulative count exceeds k.
    low = float(np.searchsorted(cumulative, below, side="right"))
    if fraction == 0.0:
        return low
    high = float(np.searchsorted(cumulative, below + 1, side="right"))
    return low + fraction * (high - low)
