"""Synthetic option quotes written with binary COPY: data for the export benchmark and tests.

Rows are spread evenly over `days` UTC days from `start`, across a chain of twelve ETH options,
every value derived from the row number (bid_iv and ask_iv NULL, as when no ticker is
subscribed), so a run is reproducible. The COPY BINARY stream is built with numpy, a million
rows at a time: the generator is never the bottleneck of the benchmark it feeds.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import psycopg

from scripts.storage.tables import OPTION_QUOTES

STRIKES = (2000, 2500, 3000, 3500, 4000, 4500)
NAME_BYTES = 18  # every name below is this long: fixed-size binary rows
PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
CHUNK_ROWS = 1_000_000
HEADER = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
TRAILER = (-1).to_bytes(2, "big", signed=True)

# One row: field count, then per column its length (-1 = NULL) and value, big-endian.
_ROW = np.dtype(
    [
        ("nfields", ">i2"),
        ("ts_len", ">i4"),
        ("ts", ">i8"),
        ("name_len", ">i4"),
        ("name", f"S{NAME_BYTES}"),
        ("bb_len", ">i4"),
        ("bb", ">f8"),
        ("bba_len", ">i4"),
        ("bba", ">f8"),
        ("ba_len", ">i4"),
        ("ba", ">f8"),
        ("baa_len", ">i4"),
        ("baa", ">f8"),
        ("bid_iv_len", ">i4"),
        ("ask_iv_len", ">i4"),
        ("iv_len", ">i4"),
        ("iv", ">f8"),
        ("mark_len", ">i4"),
        ("mark", ">f8"),
        ("und_len", ">i4"),
        ("und", ">f8"),
        ("recv_len", ">i4"),
        ("recv", ">i8"),
    ]
)


def instrument(i: int) -> str:
    strike = STRIKES[i % len(STRIKES)]
    return f"ETH-26JUN26-{strike}-{'C' if (i // len(STRIKES)) % 2 == 0 else 'P'}"


def _rows(first: int, n: int, start_us: int, step_us: int) -> bytes:
    i = np.arange(first, first + n, dtype=np.int64)
    names = np.array([instrument(k).encode() for k in range(len(STRIKES) * 2)])
    assert all(len(x) == NAME_BYTES for x in names)
    rows = np.zeros(n, dtype=_ROW)
    rows["nfields"] = len(OPTION_QUOTES.columns)
    for col in ("ts", "recv", "bb", "bba", "ba", "baa", "iv", "mark", "und"):
        rows[f"{col}_len"] = 8
    rows["name_len"] = NAME_BYTES
    rows["bid_iv_len"] = -1
    rows["ask_iv_len"] = -1
    ts = start_us + i * step_us
    rows["ts"] = ts
    rows["recv"] = ts + 2_000
    rows["name"] = names[i % len(names)]
    rows["bb"] = 0.01 + (i % 997) * 1e-5
    rows["bba"] = (i % 50 + 1).astype(np.float64)
    rows["ba"] = 0.02 + (i % 991) * 1e-5
    rows["baa"] = (i % 40 + 1).astype(np.float64)
    rows["iv"] = 40.0 + (i % 300) / 10.0
    rows["mark"] = 0.015 + (i % 83) * 1e-5
    rows["und"] = 3000.0 + (i % 1000) / 4.0
    return rows.tobytes()


def write_quotes(
    url: str, rows: int, start: datetime, days: int, table: str = "eth_option_quotes"
) -> None:
    """Appends `rows` quotes to `table` with COPY ... (FORMAT BINARY), a million per commit."""
    step_us = max(1, int(days * 86_400 * 1_000_000 / max(rows, 1)))
    start_us = int((start - PG_EPOCH).total_seconds()) * 1_000_000
    cols = ", ".join(f'"{c}"' for c in OPTION_QUOTES.columns)
    done = 0
    with psycopg.connect(url) as conn:
        while done < rows:
            n = min(CHUNK_ROWS, rows - done)
            with (
                conn.cursor() as cur,
                cur.copy(f'COPY "{table}" ({cols}) FROM STDIN (FORMAT BINARY)') as copy,
            ):
                copy.write(HEADER + _rows(done, n, start_us, step_us) + TRAILER)
            conn.commit()
            done += n
