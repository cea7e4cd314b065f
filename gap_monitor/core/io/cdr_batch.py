"""Decode many messages of one type at once, for offline reading of high-rate streams.

A recording's IMU, joint and wrench topics hold thousands of messages with the same byte layout:
the same frame_id, joint names and array lengths, with only the stamp and the float64 values
changing. Decoding them one by one costs microseconds of Python each; here one message of a
layout (the template) goes through the ordinary decoder in `cdr`, and every message whose bytes
equal the template's outside the stamp and the float64 fields is read with numpy in one go.
Such a message decodes exactly like the template (the decoder's path depends only on those
bytes), so the result is the decoder's, message for message; every other message is decoded on
its own, and its errors are reported as the decoder words them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np
from numpy.typing import NDArray

from gap_monitor.core.io import cdr
from gap_monitor.core.units import NS_PER_S

__all__ = ["Block", "DecodedBatch", "decode_batch"]

_Msg = TypeVar("_Msg")
# Every float64 field of a decoded message (views into its bytes), in a fixed order per type:
# the bytes that never steer decoding. A field left out would count as layout and make every
# message with a different value there a layout of its own.
F64Fields = Callable[[_Msg], tuple[NDArray[np.float64], ...]]

_STAMP = slice(4, 12)  # a header's stamp: the body's first 8 bytes
# Distinct layouts tried per length before the rest of a group is decoded one by one: bounds
# the cost when every message differs (e.g. a frame_id with a counter in it).
MAX_TEMPLATES = 4


@dataclass(frozen=True)
class Block(Generic[_Msg]):
    """Messages of one layout: their positions in the batch, the decoded template (its strings
    and array lengths hold for every row), header stamps and float64 fields row by row."""

    rows: NDArray[np.intp]
    template: _Msg
    stamps_ns: NDArray[np.int64]
    fields: tuple[NDArray[np.float64], ...]  # per field: len(rows) x field length, native order


@dataclass(frozen=True)
class DecodedBatch(Generic[_Msg]):
    blocks: list[Block[_Msg]]
    errors: dict[int, str]  # position in the batch -> the decoder's CdrError message
    # The blocks' rows concatenated, then taken in `order`, are the decoded messages in batch
    # order; `positions` are their positions in the batch.
    order: NDArray[np.intp]
    positions: NDArray[np.intp]

    def stamps_ns(self) -> NDArray[np.int64]:
        """Header stamps of the decoded messages, in batch order."""
        return np.concatenate([b.stamps_ns for b in self.blocks])[self.order]

    def field(self, index: int) -> NDArray[np.float64]:
        """Float64 field `index` of the decoded messages, in batch order (N x its length, which
        must be the same in every block)."""
        return np.concatenate([b.fields[index] for b in self.blocks])[self.order]


def decode_batch(
    datas: Sequence[cdr.Buffer],
    decode: Callable[[cdr.Buffer], _Msg],
    f64_fields: F64Fields[_Msg],
    stamp_ns: Callable[[_Msg], int],
) -> DecodedBatch[_Msg]:
    """Decode `datas` (CDR messages of one header-first type) with `decode`, reading every message
    that shares a decoded template's layout with numpy. `f64_fields` must give all the type's
    float64 fields; the blocks hold them in that order."""
    by_length: dict[int, list[int]] = {}
    for i, data in enumerate(datas):
        by_length.setdefault(len(data), []).append(i)
    blocks: list[Block[_Msg]] = []
    errors: dict[int, str] = {}
    for length, indices in by_length.items():
        batch_index = np.asarray(indices, dtype=np.intp)
        pending = np.arange(len(indices), dtype=np.intp)  # positions within this length group
        matrix: NDArray[np.uint8] | None = None
        templates = 0
        while pending.size:
            first = indices[int(pending[0])]
            try:
                template = decode(datas[first])
            except cdr.CdrError as exc:
                errors[first] = str(exc)
                pending = pending[1:]
                continue
            templates += 1
            layout = None
            if pending.size > 1 and templates <= MAX_TEMPLATES:
                layout = _layout(datas[first], f64_fields(template))
            if layout is None:
                blocks.append(_single(first, template, f64_fields, stamp_ns))
                pending = pending[1:]
                continue
            if matrix is None:
                matrix = np.frombuffer(b"".join(datas[i] for i in indices), dtype=np.uint8).reshape(
                    len(indices), length
                )
            structural, spans, dtypes = layout
            rows = matrix[pending]
            same = (rows[:, structural] == rows[0, structural]).all(axis=1)
            blocks.append(
                _block(batch_index[pending[same]], rows[same], template, spans, dtypes, datas[first])
            )
            pending = pending[~same]
    decoded = np.concatenate([b.rows for b in blocks]) if blocks else np.zeros(0, dtype=np.intp)
    order = np.argsort(decoded, kind="stable")
    return DecodedBatch(blocks, errors, order, decoded[order])


def _layout(
    data: cdr.Buffer, fields: tuple[NDArray[np.float64], ...]
) -> tuple[NDArray[np.bool_], list[tuple[int, int]], list[np.dtype[np.float64]]] | None:
    """(structural byte mask, (offset, count) per field, dtype per field) of a decoded message;
    None when a field is not a view into `data` (then there is no layout to share)."""
    base = np.frombuffer(data, dtype=np.uint8)
    address = base.ctypes.data
    structural = np.ones(len(data), dtype=bool)
    structural[_STAMP] = False
    spans = []
    dtypes = []
    for field in fields:
        count = field.size
        offset = field.ctypes.data - address if count else 0
        if count and (
            offset < 12
            or offset + 8 * count > len(data)
            or not field.flags.c_contiguous
            or not np.array_equal(
                np.frombuffer(data, dtype=field.dtype, count=count, offset=offset), field.reshape(-1),
                equal_nan=True,
            )
        ):
            return None
        structural[offset : offset + 8 * count] = False
        spans.append((offset, count))
        dtypes.append(field.dtype)
    return structural, spans, dtypes


def _block(
    indices: NDArray[np.intp],
    rows: NDArray[np.uint8],
    template: _Msg,
    spans: list[tuple[int, int]],
    dtypes: list[np.dtype[np.float64]],
    data: cdr.Buffer,
) -> Block[_Msg]:
    little = data[1] == 1
    stamp = np.ascontiguousarray(rows[:, _STAMP])
    sec = stamp[:, 0:4].copy().view("<i4" if little else ">i4").reshape(-1).astype(np.int64)
    nanosec = stamp[:, 4:8].copy().view("<u4" if little else ">u4").reshape(-1).astype(np.int64)
    fields = tuple(
        np.ascontiguousarray(rows[:, offset : offset + 8 * count])
        .view(dtype)
        .reshape(len(indices), count)
        .astype(np.float64)
        for (offset, count), dtype in zip(spans, dtypes, strict=True)
    )
    return Block(indices, template, sec * NS_PER_S + nanosec, fields)


def _single(
    index: int, message: _Msg, f64_fields: F64Fields[_Msg], stamp_ns: Callable[[_Msg], int]
) -> Block[_Msg]:
    fields = tuple(np.asarray(f, dtype=np.float64).reshape(1, -1) for f in f64_fields(message))
    return Block(
        np.array([index], dtype=np.intp), message, np.array([stamp_ns(message)], dtype=np.int64), fields
    )
