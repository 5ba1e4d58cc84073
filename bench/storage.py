"""Bytes per row per table, before and after compression, and the extrapolation to a day.

Before: chunk sizes (heap + indexes + TOAST, `chunks_detailed_size`) over the rows in those
chunks. After (full edition only): the chunks are compressed with the table's own settings
(schema/005) and `chunk_compression_stats` gives their sizes before and after. On the Apache
edition the compressed figures are None, with the reason.

A table holds two sets of chunks: the collector's rows (market time, 2026) and the raw COPY
baseline's (from `baselines.BASELINE_EPOCH`). The collector's are measured when there are at
least `MIN_ROWS` of them; otherwise (trades arrive a few a second) the baseline's, because
with a few hundred rows the pages' fixed overhead, not the rows, is what gets measured.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg

APACHE_NOTE = "n/a (Apache edition)"
DAY_S = 86_400
MONTH_DAYS = 30
MIN_ROWS = 20_000


@dataclass(frozen=True)
class TableStorage:
    table: str
    rows: int
    bytes_per_row: float | None
    compressed_bytes_per_row: float | None
    ratio: float | None
    basis: str = ""  # which rows were measured
    note: str = ""  # why the compressed figures are missing


def edition(url: str) -> str:
    """'apache' or 'timescale' (full edition); 'unknown' without the extension."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT current_setting('timescaledb.license', true)").fetchone()
    return str(row[0]) if row and row[0] else "unknown"


def measure(url: str, tables: list[str], *, compress: bool, split: datetime) -> list[TableStorage]:
    """Sizes of `tables`; with `compress` (full edition) compresses the measured chunks."""
    out = []
    with psycopg.connect(url, autocommit=True) as conn:
        for table in tables:
            out.append(_measure_table(conn, table, compress, split))
    return out


def _measure_table(
    conn: psycopg.Connection, table: str, compress: bool, split: datetime
) -> TableStorage:
    chunks = conn.execute(
        "SELECT format('%%I.%%I', c.chunk_schema, c.chunk_name), c.chunk_name, "
        "       c.range_start >= %s, coalesce(s.total_bytes, 0) "
        "FROM timescaledb_information.chunks c "
        "JOIN chunks_detailed_size(%s::regclass) s ON s.chunk_name = c.chunk_name "
        "WHERE c.hypertable_name = %s",
        (split, table, table),
    ).fetchall()
    counts = conn.execute(
        f'SELECT count(*) FILTER (WHERE "timestamp" < %s), count(*) FILTER '
        f'(WHERE "timestamp" >= %s) FROM {psycopg.sql.Identifier(table).as_string(conn)}',
        (split, split),
    ).fetchone()
    live_rows, base_rows = (int(counts[0]), int(counts[1])) if counts else (0, 0)
    use_baseline = live_rows < MIN_ROWS and base_rows > live_rows
    rows = base_rows if use_baseline else live_rows
    note = f"{rows:,} raw COPY baseline rows" if use_baseline else f"{rows:,} collector rows"
    if not use_baseline and rows < MIN_ROWS:
        note += " (few: page overhead inflates bytes/row)"
    chosen = [c for c in chunks if bool(c[2]) == use_baseline]
    if rows == 0:
        return TableStorage(table, 0, None, None, None, "", "no rows written")
    before = sum(int(c[3]) for c in chosen) / rows
    if not compress:
        return TableStorage(table, rows, before, None, None, note, APACHE_NOTE)
    enabled = conn.execute(
        "SELECT compression_enabled FROM timescaledb_information.hypertables "
        "WHERE hypertable_name = %s",
        (table,),
    ).fetchone()
    if not enabled or not enabled[0]:
        return TableStorage(table, rows, before, None, None, note, "compression not enabled")
    for regclass, *_ in chosen:
        conn.execute("SELECT compress_chunk(%s::regclass, if_not_compressed => true)", (regclass,))
    names = {c[1] for c in chosen}
    stats = conn.execute(
        "SELECT chunk_name, before_compression_total_bytes, after_compression_total_bytes "
        "FROM chunk_compression_stats(%s::regclass)",
        (table,),
    ).fetchall()
    pre = sum(int(s[1] or 0) for s in stats if s[0] in names)
    post = sum(int(s[2] or 0) for s in stats if s[0] in names)
    if not post:
        return TableStorage(table, rows, before, None, None, note, "compression stats empty")
    return TableStorage(table, rows, pre / rows, post / rows, pre / post, note)


def per_day_bytes(rows_per_s: float, bytes_per_row: float, currencies: int) -> float:
    return rows_per_s * DAY_S * bytes_per_row * currencies
