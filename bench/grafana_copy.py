"""PostgreSQL binary COPY data built column by column with numpy, for the Grafana benchmark's
busy tables (millions of rows a day: one Python tuple per row would take minutes).

Each column becomes an (n, width) block of bytes with, per row, how many of them are used (its
4-byte length, then the value; 4 bytes only for NULL). Laying the blocks side by side and
keeping the used bytes in row-major order gives the rows back to back, as COPY reads them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, header extension length
TRAILER = b"\xff\xff"
PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01 UTC in Unix microseconds
FLOAT8_OID = 701


@dataclass(frozen=True, slots=True)
class Field:
    block: npt.NDArray[np.uint8]  # (n, width): the 4-byte length then the value
    used: npt.NDArray[np.int64] | None  # bytes used per row; None: the whole width


def _be(value: int, dtype: str) -> npt.NDArray[np.uint8]:
    return np.frombuffer(np.array(value, dtype).tobytes(), np.uint8)


def _with_length(values: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """(n, k) value bytes -> (n, 4 + k) with the 4-byte length k in front."""
    n, k = values.shape
    out = np.empty((n, 4 + k), np.uint8)
    out[:, :4] = _be(k, ">i4")
    out[:, 4:] = values
    return out


def fixed(values: npt.ArrayLike, dtype: str, null: npt.NDArray[np.bool_] | None = None) -> Field:
    """A fixed-width column (`>f8`, `>i8`, `>i4`, `>i2`); rows where `null` is set are NULL."""
    arr = np.ascontiguousarray(np.asarray(values).astype(dtype))
    block = _with_length(arr.view(np.uint8).reshape(len(arr), arr.dtype.itemsize))
    if null is None:
        return Field(block, None)
    block[null, :4] = 0xFF
    return Field(block, np.where(null, 4, block.shape[1]).astype(np.int64))


def timestamps(unix_us: npt.NDArray[np.int64]) -> Field:
    """timestamptz from Unix microseconds."""
    return fixed(unix_us - PG_EPOCH_US, ">i8")


def nulls(n: int) -> Field:
    return Field(np.full((n, 4), 0xFF, np.uint8), None)


def text(values: npt.NDArray[np.bytes_], null: npt.NDArray[np.bool_] | None = None) -> Field:
    """A text column from a bytes array (`S` dtype, no NUL inside a value)."""
    n, width = len(values), values.dtype.itemsize
    lengths = np.char.str_len(values).astype(np.int64)
    if null is not None:
        lengths = np.where(null, -1, lengths)
    block = np.empty((n, 4 + width), np.uint8)
    block[:, :4] = lengths.astype(">i4").view(np.uint8).reshape(n, 4)
    block[:, 4:] = np.ascontiguousarray(values).view(np.uint8).reshape(n, width)
    return Field(block, 4 + np.maximum(lengths, 0))


def float8_arrays(values: npt.NDArray[np.float64]) -> Field:
    """float8[] columns, one 1-dimensional array of k values per row, no NULL elements."""
    n, k = values.shape
    header = np.array([1, 0, FLOAT8_OID, k, 1], ">i4").view(np.uint8)
    elems = np.empty((n, k, 12), np.uint8)
    elems[:, :, :4] = _be(8, ">i4")
    elems[:, :, 4:] = np.ascontiguousarray(values, ">f8").view(np.uint8).reshape(n, k, 8)
    body = np.concatenate([np.broadcast_to(header, (n, 20)), elems.reshape(n, 12 * k)], axis=1)
    return Field(_with_length(body), None)


def rows(fields: list[Field]) -> bytes:
    """The rows (without signature or trailer) of columns of equal length."""
    n = len(fields[0].block)
    count = Field(np.tile(_be(len(fields), ">i2"), (n, 1)), None)
    blocks, masks = [], []
    for f in [count, *fields]:
        blocks.append(f.block)
        width = f.block.shape[1]
        masks.append(
            np.ones((n, width), np.bool_) if f.used is None else np.arange(width) < f.used[:, None]
        )
    return np.concatenate(blocks, axis=1)[np.concatenate(masks, axis=1)].tobytes()
