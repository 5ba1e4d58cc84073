"""Export a relation to Parquet (zstd) or CSV, one file per day: the engine behind
`python -m scripts.export`.

Parquet: `<out>/<table>/date=YYYY-MM-DD/part.parquet`, written batch by batch with
pyarrow.parquet.ParquetWriter from the Arrow batches the ADBC driver decodes from binary COPY
(scripts/research/stream.py), so memory stays at a few batches whatever the range. CSV: the
server's own CSV with a header, `<out>/<table>/date=YYYY-MM-DD/part.csv`. Tables without a time
axis (`instruments`) go whole to `<out>/<table>/snapshot/part.<ext>`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
from psycopg import sql

from scripts.research.catalog import Relation, resolve
from scripts.research.export_days import DayJob, DayPlan, plan_days, run_days
from scripts.research.manifest import base_manifest
from scripts.research.progress import Progress
from scripts.research.query import Filters, check_filters, select
from scripts.research.stream import ArrowSources, connection_like, copy_out, session_utc

PARQUET_COMPRESSION = "zstd"
ROW_GROUP_ROWS = 128_000  # rows per Parquet row group: ~10-20 MB in memory for the widest tables
DEFAULT_JOBS = 2  # days written at once: reading one overlaps compressing another


@dataclass(frozen=True, slots=True)
class ExportRequest:
    table: str
    start: datetime
    end: datetime
    out: Path
    fmt: str = "parquet"  # parquet | csv
    filters: Filters = field(default_factory=Filters)
    jobs: int = DEFAULT_JOBS


def estimate_rows(conn: psycopg.Connection, query: sql.Composed, params: list[Any]) -> int | None:
    """The planner's row estimate (no scan): the progress bar's total."""
    try:
        row = conn.execute(sql.SQL("EXPLAIN (FORMAT JSON) {}").format(query), params).fetchone()
    except psycopg.Error:
        return None
    if not row:
        return None
    plan = row[0] if not isinstance(row[0], str) else json.loads(row[0])
    return int(plan[0]["Plan"]["Plan Rows"])


def parquet_writer(rel: Relation, filters: Filters, sources: ArrowSources) -> Any:
    def write(
        conn: psycopg.Connection,
        lo: datetime | None,
        hi: datetime | None,
        tmp: Path,
        progress: Progress,
    ) -> int:
        query, params = select(rel, lo, hi, filters)
        rows = 0
        last_bytes = 0
        group: list[pa.RecordBatch] = []
        strings = [f.name for f in rel.schema if pa.types.is_string(f.type)]
        with pq.ParquetWriter(
            tmp,
            rel.schema,
            compression=PARQUET_COMPRESSION,
            compression_level=1,  # zstd's fastest: most of the ratio for a fraction of the CPU
            use_dictionary=strings,  # names repeat; floats rarely do (trying costs time)
        ) as writer:
            for batch, read in sources.of(conn).batches(rel, query, params):
                group.append(batch)
                if sum(b.num_rows for b in group) >= ROW_GROUP_ROWS:
                    writer.write_table(pa.Table.from_batches(group, schema=rel.schema))
                    group = []
                rows += batch.num_rows
                progress.advance(batch.num_rows, read - last_bytes)
                last_bytes = read
            if group:
                writer.write_table(pa.Table.from_batches(group, schema=rel.schema))
        return rows

    return write


def csv_writer(rel: Relation, filters: Filters) -> Any:
    def write(
        conn: psycopg.Connection,
        lo: datetime | None,
        hi: datetime | None,
        tmp: Path,
        progress: Progress,
    ) -> int:
        query, params = select(rel, lo, hi, filters)
        copy_sql = sql.SQL("COPY ({}) TO STDOUT (FORMAT csv, HEADER)").format(query)
        with tmp.open("wb") as out:
            rows = copy_out(conn, copy_sql, params, out.write, lambda n: progress.advance(0, n))
        progress.advance(rows, 0)
        return rows

    return write


def counter(rel: Relation, filters: Filters) -> Any:
    def count(conn: psycopg.Connection, lo: datetime | None, hi: datetime | None) -> int:
        query, params = select(rel, lo, hi, filters, sql.SQL("count(*)"), ordered=False)
        row = conn.execute(query, params).fetchone()
        return int(row[0]) if row else 0

    return count


def parquet_rows(path: Path) -> int | None:
    try:
        return int(pq.ParquetFile(path).metadata.num_rows)
    except Exception:  # a damaged file: export the day again
        return -1


def export_table(conn: psycopg.Connection, req: ExportRequest, *, tty: bool | None = None) -> dict:
    """Exports one relation; returns the manifest. Raises CatalogError on a bad name/filter."""
    session_utc(conn)
    rel = resolve(conn, req.table)
    check_filters(rel, req.filters)
    ext = "parquet" if req.fmt == "parquet" else "csv"
    if rel.time_column is None:
        plans = [DayPlan("snapshot", None, None)]

        def name(plan: DayPlan) -> str:
            return f"snapshot/part.{ext}"
    else:
        plans = plan_days(req.start, req.end)

        def name(plan: DayPlan) -> str:
            return f"date={plan.label}/part.{ext}"

    sources = ArrowSources()
    job = DayJob(
        folder=req.out / rel.name,
        file_name=name,
        write=(
            parquet_writer(rel, req.filters, sources)
            if ext == "parquet"
            else csv_writer(rel, req.filters)
        ),
        count=counter(rel, req.filters),
        file_rows=parquet_rows if ext == "parquet" else (lambda _p: None),
        connect=lambda: connection_like(conn),
    )
    start = req.start if rel.time_column else None
    end = req.end if rel.time_column else None
    query, params = select(rel, start, end, req.filters, ordered=False)
    progress = Progress(rel.name, estimate_rows(conn, query, params), tty=tty)
    manifest = base_manifest(
        conn,
        table=rel.name,
        fmt=req.fmt,
        start=start,
        end=end,
        filters={"currency": req.filters.currency, "instrument": req.filters.instrument},
        columns=[
            {"name": f.name, "arrow_type": str(f.type), "sql_type": t}
            for f, t in zip(rel.schema, rel.sql_types, strict=True)
        ],
    )
    manifest["time_column"] = rel.time_column
    try:
        return run_days(conn, job, plans, manifest, progress, jobs=req.jobs)
    finally:
        sources.close()
        progress.close()
