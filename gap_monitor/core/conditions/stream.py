"""Raw messages of one sensor stream -> condition features, at the configured rate.

`StreamConditions` is one stream's extractor; the feed loop (`feed.FeatureFeed`) runs one per
stream for every consumer, so training and deployment are measured identically. Images are
decimated by header stamp before they are decoded (skipped frames cost nothing); IMU, joint and
wrench samples go into sliding windows at full rate and give features every hop.

Offline, `on_batch` takes thousands of IMU, joint or wrench messages at once (decoded with numpy by
`cdr_batch`, pushed into the same windows with `TimeWindow.push_many`): the features, their times
and the malformed messages are those of `on_message` called message by message (tested), at a
fraction of the per-message cost.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from gap_monitor.core.conditions.features import FeatureError
from gap_monitor.core.conditions.features.depth import decode_compressed_depth, depth_features
from gap_monitor.core.conditions.features.image import decode_compressed, image_features
from gap_monitor.core.conditions.features.imu import ImuLimits, ImuWindow
from gap_monitor.core.conditions.features.joints import MAX_JOINTS, JointWindow
from gap_monitor.core.conditions.features.wrench import WrenchWindow
from gap_monitor.core.conditions.settings import ConditionSettings
from gap_monitor.core.io import cdr
from gap_monitor.core.io.cdr_batch import DecodedBatch, decode_batch
from gap_monitor.core.io.modalities import COMPRESSED_IMAGE, WINDOWED
from gap_monitor.core.units import NS_PER_S
from gap_monitor.errors import MessageError

DEPTH_WORK_WIDTH = 320


class ConditionError(MessageError):
    """A message features could not be computed from (malformed bytes, unknown encoding, ...)."""


class BatchSample(NamedTuple):
    """Features `on_batch` produced: at the batch's message `position`, timed `time_ns`."""

    position: int
    time_ns: int
    features: dict[str, float]


@dataclass
class BatchFeatures:
    """What `on_batch` made of a batch, in message order."""

    features: list[BatchSample] = field(default_factory=list)
    malformed: list[str] = field(default_factory=list)  # ConditionError messages
    log_time_fallbacks: int = 0  # messages timed by log time (zero or unreadable header stamp)


class StreamConditions:
    """Feature extraction for one stream; `on_message` returns a feature dict when one is due."""

    def __init__(self, modality: str, msgtype: str, settings: ConditionSettings | None = None) -> None:
        self.modality = modality
        self.msgtype = msgtype
        self.settings = settings or ConditionSettings()
        s = self.settings
        self._period_ns = int(NS_PER_S / s.image_rate_hz)
        self._next_image_ns: int | None = None
        self._imu = ImuWindow(s.window_s, s.hop_s, ImuLimits(s.accel_limit_m_s2, s.gyro_limit_rad_s))
        self._wrench = WrenchWindow(s.window_s, s.hop_s)
        self._joints: JointWindow | None = None
        self._joint_names: tuple[str, ...] = ()
        self.produced = 0

    def on_message(self, time_ns: int, data: cdr.Buffer) -> dict[str, float] | None:
        """Features when due, else None. `time_ns` is the header stamp (receipt time without one).

        Raises ConditionError for a message features cannot be computed from."""
        try:
            features = self._features(time_ns, data)
        except (cdr.CdrError, FeatureError) as exc:
            raise ConditionError(str(exc)) from exc
        if features is not None:
            self.produced += 1
        return features

    def _due(self, time_ns: int) -> bool:
        """Decimation on the stamps: one frame a period, re-anchored after a gap or a jump back."""
        nxt = self._next_image_ns
        # A frame a little early (stamp jitter, rounding) still counts as the one due.
        if nxt is not None and self._period_ns // 10 < nxt - time_ns <= self._period_ns:
            return False
        on_grid = nxt is not None and time_ns - nxt <= self._period_ns
        self._next_image_ns = (nxt if on_grid and nxt is not None else time_ns) + self._period_ns
        return True

    def _features(self, time_ns: int, data: cdr.Buffer) -> dict[str, float] | None:
        modality = self.modality
        # Highest-rate modalities first: this runs for every sample.
        if modality == "wrench":
            w = cdr.decode_wrench_stamped(data)
            return self._wrench.add(time_ns, w.force, w.torque)
        if modality == "imu":
            imu = cdr.decode_imu(data)
            return self._imu.add(time_ns, imu.linear_acceleration, imu.angular_velocity)
        if modality in ("camera", "depth"):
            if not self._due(time_ns):
                return None
            pixels, encoding = self._image(data)
            if self.modality == "depth":
                # Every n-th pixel (no interpolation: holes stay holes) keeps the statistics and
                # costs ~1/n^2: a 1280x720 depth frame would otherwise take ~25 ms.
                step = max(1, pixels.shape[1] // DEPTH_WORK_WIDTH)
                return depth_features(pixels[::step, ::step], encoding, self.settings.near_m)
            return image_features(pixels, encoding)
        if modality == "joints":
            js = cdr.decode_joint_state(data)
            return self._add_joints(time_ns, tuple(js.name), js.position, js.velocity, js.effort)
        raise ConditionError(f"unknown modality {self.modality!r}")

    def on_batch(self, log_times_ns: Sequence[int], datas: Sequence[cdr.Buffer]) -> BatchFeatures:
        """`on_message` for many messages of an IMU, joint or wrench stream, each timed by its
        header stamp, or by its log time when the stamp is zero (as `profile build` times them)."""
        if self.modality not in WINDOWED:
            raise ValueError(f"modality: {self.modality!r}: on_batch takes {sorted(WINDOWED)}")
        out = BatchFeatures()
        errors: list[tuple[int, str]] = []
        if self.modality == "imu":
            batch = decode_batch(datas, cdr.decode_imu, imu_fields, _stamp)
        elif self.modality == "wrench":
            batch = decode_batch(datas, cdr.decode_wrench_stamped, _wrench_fields, _stamp)  # type: ignore[arg-type]
        else:
            batch = decode_batch(datas, cdr.decode_joint_state, _joint_fields, _stamp)  # type: ignore[arg-type]
        for index, why in batch.errors.items():
            try:  # the stamp is read first, as for a message on its own
                if not cdr.header_stamp_ns(datas[index]):
                    out.log_time_fallbacks += 1
            except cdr.CdrError as exc:
                why = str(exc)
            errors.append((index, why))
        if batch.blocks:
            stamps = batch.stamps_ns()
            log_times = np.asarray(log_times_ns, dtype=np.int64)[batch.positions]
            unstamped = stamps == 0
            out.log_time_fallbacks += int(unstamped.sum())
            times = np.where(unstamped, log_times, stamps)
            if self.modality == "joints":
                self._joint_batch(batch, times, out, errors)
            else:
                # Imu: acceleration and angular velocity; WrenchStamped: force and torque.
                first, second = (4, 2) if self.modality == "imu" else (0, 1)
                window = self._imu if self.modality == "imu" else self._wrench
                for due, features in window.add_many(times, batch.field(first), batch.field(second)):
                    out.features.append(BatchSample(int(batch.positions[due]), int(times[due]), features))
        errors.sort()
        out.malformed = [why for _, why in errors]
        self.produced += len(out.features)
        return out

    def _joint_batch(
        self,
        batch: DecodedBatch[Any],
        times: npt.NDArray[np.int64],
        out: BatchFeatures,
        errors: list[tuple[int, str]],
    ) -> None:
        """Joint messages in runs of one name list: a run is pushed at once when its arrays fit
        the names, message by message through `on_message`'s own code otherwise."""
        blocks, order, positions = batch.blocks, batch.order, batch.positions
        block_of_row = np.concatenate([np.full(b.rows.size, k) for k, b in enumerate(blocks)])[order]
        row_in_block = np.concatenate([np.arange(b.rows.size) for b in blocks])[order]
        names = [tuple(b.template.name) for b in blocks]
        starts = [0]
        for k in range(1, block_of_row.size):
            if names[block_of_row[k]] != names[block_of_row[k - 1]]:
                starts.append(k)
        starts.append(block_of_row.size)
        for a, b in itertools.pairwise(starts):
            run_names = names[block_of_row[a]]
            n = len(run_names)
            regular = (
                0 < n <= MAX_JOINTS  # else each message is refused as `on_message` refuses it
                and len(set(run_names)) == n
                and all(blocks[k].fields[0].shape[1] == n for k in set(block_of_row[a:b].tolist()))
            )
            if not regular:
                for k in range(a, b):
                    block = blocks[block_of_row[k]]
                    j = row_in_block[k]
                    try:
                        features = self._add_joints(
                            int(times[k]), run_names, *(f[j] for f in block.fields)
                        )
                    except ConditionError as exc:
                        errors.append((int(positions[k]), str(exc)))
                        continue
                    if features is not None:
                        out.features.append(BatchSample(int(positions[k]), int(times[k]), features))
                continue
            self._joint_window(run_names)
            assert self._joints is not None
            count = b - a
            position = np.empty((count, n))
            velocity = (np.zeros((count, n)), np.zeros(count, dtype=bool))
            effort = (np.zeros((count, n)), np.zeros(count, dtype=bool))
            for k in set(block_of_row[a:b].tolist()):
                block = blocks[k]
                here = np.flatnonzero(block_of_row[a:b] == k)
                picked = row_in_block[a:b][here]
                position[here] = block.fields[0][picked]
                for (values, present), column in ((velocity, block.fields[1]), (effort, block.fields[2])):
                    if column.shape[1] == n:  # else not measured: `_optional` passes None
                        values[here] = column[picked]
                        present[here] = True
            run_times = times[a:b]
            run_rows = positions[a:b]
            for due, features in self._joints.add_many(run_times, position, velocity, effort):
                out.features.append(BatchSample(int(run_rows[due]), int(run_times[due]), features))

    def _joint_window(self, names: tuple[str, ...]) -> None:
        if self._joints is None or names != self._joint_names:
            # A driver that changes its joint list starts a new window.
            try:
                self._joints = JointWindow(names, self.settings.window_s, self.settings.hop_s)
            except ValueError as exc:
                raise ConditionError(f"name: {exc}") from exc
            self._joint_names = names

    def _add_joints(
        self,
        time_ns: int,
        names: tuple[str, ...],
        position: npt.NDArray[np.float64],
        velocity: npt.NDArray[np.float64],
        effort: npt.NDArray[np.float64],
    ) -> dict[str, float] | None:
        self._joint_window(names)
        assert self._joints is not None
        try:
            return self._joints.add(
                time_ns, position, _optional(velocity, names), _optional(effort, names)
            )
        except FeatureError as exc:
            raise ConditionError(str(exc)) from exc

    def _image(self, data: cdr.Buffer) -> tuple[Any, str]:
        if self.msgtype == COMPRESSED_IMAGE:
            msg = cdr.decode_compressed_image(data)
            if self.modality == "depth":  # compressed_depth_image_transport's png
                return decode_compressed_depth(msg.data.tobytes(), msg.format)
            return decode_compressed(msg.data.tobytes(), msg.format)
        img = cdr.decode_image(data)
        return img.pixels(), img.encoding


def _stamp(msg: Any) -> int:
    return int(msg.header.stamp_ns)


def imu_fields(msg: cdr.ImuMsg) -> tuple[npt.NDArray[np.float64], ...]:
    """All float64 fields of an Imu message, for `decode_batch`."""
    return (
        msg.orientation,
        msg.orientation_covariance,
        msg.angular_velocity,
        msg.angular_velocity_covariance,
        msg.linear_acceleration,
        msg.linear_acceleration_covariance,
    )


def _wrench_fields(msg: cdr.WrenchStampedMsg) -> tuple[npt.NDArray[np.float64], ...]:
    return msg.force, msg.torque


def _joint_fields(msg: cdr.JointStateMsg) -> tuple[npt.NDArray[np.float64], ...]:
    return msg.position, msg.velocity, msg.effort


def _optional(values: Any, names: tuple[str, ...]) -> Any:
    """JointState velocity/effort may be empty (not measured): pass None rather than a mismatch."""
    arr = np.asarray(values)
    return arr if arr.size == len(names) else None
