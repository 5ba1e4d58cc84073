"""The Grafana benchmark's numpy-built binary COPY rows, decoded by an independent reader."""

from __future__ import annotations

import struct
from datetime import UTC, datetime

import numpy as np

from bench import grafana_copy as bc


def _decode(data: bytes, kinds: list[str]) -> list[list[object]]:
    rows, pos = [], 0
    while pos < len(data):
        (count,) = struct.unpack_from(">h", data, pos)
        pos += 2
        assert count == len(kinds)
        row: list[object] = []
        for kind in kinds:
            (length,) = struct.unpack_from(">i", data, pos)
            pos += 4
            if length == -1:
                row.append(None)
                continue
            value = data[pos : pos + length]
            pos += length
            if kind == "array":
                ndim, _flags, oid, dim, lbound = struct.unpack_from(">5i", value)
                assert (ndim, oid, lbound) == (1, bc.FLOAT8_OID, 1)
                row.append(
                    [struct.unpack_from(">d", value, 20 + 12 * k + 4)[0] for k in range(dim)]
                )
            else:
                row.append(value.decode() if kind == "text" else struct.unpack(kind, value)[0])
        rows.append(row)
    return rows


def test_rows_round_trip_with_variable_text_and_nulls() -> None:
    at = datetime(2026, 6, 1, 8, tzinfo=UTC)
    unix_us = np.array([int(at.timestamp() * 1e6), int(at.timestamp() * 1e6) + 1])
    names = np.array([b"BTC-5JUN26-100000-C", b"BTC-26JUN26-60000-P"])
    data = bc.rows([
        bc.timestamps(unix_us), bc.text(names), bc.text(names, null=np.array([True, False])),
        bc.fixed([1.5, -2.0], ">f8", null=np.array([False, True])), bc.fixed([3, 4], ">i2"),
        bc.nulls(2), bc.float8_arrays(np.array([[0.1, 0.2], [0.3, 0.4]])),
    ])  # fmt: skip
    rows = _decode(data, [">q", "text", "text", ">d", ">h", ">d", "array"])
    pg_us = (at - datetime(2000, 1, 1, tzinfo=UTC)).total_seconds() * 1e6
    assert rows == [
        [pg_us, "BTC-5JUN26-100000-C", None, 1.5, 3, None, [0.1, 0.2]],
        [pg_us + 1, "BTC-26JUN26-60000-P", "BTC-26JUN26-60000-P", None, 4, None, [0.3, 0.4]],
    ]
