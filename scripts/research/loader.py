"""`load(table, start=, end=, instrument=)`: a recorded table as a pandas DataFrame, from the
database or from an export folder, with the same columns and dtypes either way.

Both paths produce the same Arrow table (the database path streams it exactly as the exporter
does; the folder path reads the exporter's Parquet files) and convert it with one mapping:
timestamps `datetime64[us, UTC]`, float8 `float64`, integers pandas' nullable `Int16/32/64`,
booleans `boolean`, text `object`, float8[] lists of floats.
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from scripts.research.catalog import CatalogError, registry_name, resolve
from scripts.research.query import Filters, check_filters, select
from scripts.research.stream import record_batches, session_utc

Source = str | os.PathLike[str] | None
TimeLike = str | datetime | date | pd.Timestamp | None

_PANDAS_TYPES = {
    pa.int16(): pd.Int16Dtype(),
    pa.int32(): pd.Int32Dtype(),
    pa.int64(): pd.Int64Dtype(),
    pa.bool_(): pd.BooleanDtype(),
}


def to_utc(value: TimeLike) -> datetime | None:
    """A time argument as an aware UTC datetime; naive values and dates are UTC."""
    if value is None:
        return None
    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.to_pydatetime()


def to_frame(table: pa.Table) -> pd.DataFrame:
    return table.to_pandas(types_mapper=_PANDAS_TYPES.get)


def database_url(source: Source) -> str | None:
    """The URL to read from: `source` when it is one, DATABASE_URL when source is None."""
    if source is None:
        from scripts.config import load_settings

        return load_settings(need_currency="any").database_url
    text = os.fspath(source)
    return text if text.startswith(("postgres://", "postgresql://")) else None


def load_arrow(
    table: str,
    start: TimeLike = None,
    end: TimeLike = None,
    instrument: str | None = None,
    currency: str | None = None,
    *,
    source: Source = None,
) -> pa.Table:
    """The rows of `table` with time in [start, end) as an Arrow table (see `load`)."""
    lo, hi = to_utc(start), to_utc(end)
    filters = Filters(currency=currency, instrument=instrument)
    url = database_url(source)
    if url is not None:
        return _from_database(url, table, lo, hi, filters)
    return _from_folder(Path(os.fspath(source)), table, lo, hi, filters)  # type: ignore[arg-type]


def load(
    table: str,
    start: TimeLike = None,
    end: TimeLike = None,
    instrument: str | None = None,
    currency: str | None = None,
    *,
    source: Source = None,
) -> pd.DataFrame:
    """A table or union view for [start, end) as a DataFrame.

    source: None reads the database of DATABASE_URL; a postgresql:// URL reads that database;
    a folder reads what `python -m scripts.export` wrote there (the --out folder).
    """
    return to_frame(load_arrow(table, start, end, instrument, currency, source=source))


def _from_database(
    url: str, table: str, lo: datetime | None, hi: datetime | None, filters: Filters
) -> pa.Table:
    with psycopg.connect(url, autocommit=True) as conn:
        session_utc(conn)
        rel = resolve(conn, table)
        check_filters(rel, filters)
        query, params = select(rel, lo, hi, filters)
        batches = [b for b, _ in record_batches(conn, rel, query, params)]
        return pa.Table.from_batches(batches, schema=rel.schema)


def _from_folder(
    root: Path, table: str, lo: datetime | None, hi: datetime | None, filters: Filters
) -> pa.Table:
    if not registry_name(table):
        raise CatalogError(f"unknown table {table!r}: a registry table or a union view")
    folder = root / table if (root / table).is_dir() else root
    files = sorted(folder.glob("snapshot/part.parquet")) or [
        p for p in sorted(folder.glob("date=*/part.parquet")) if _day_overlaps(p, lo, hi)
    ]
    if not files:
        if not folder.is_dir():
            raise FileNotFoundError(f"no export of {table} in {root}")
        schema_file = next(iter(sorted(folder.glob("date=*/part.parquet"))), None)
        if schema_file is None:
            raise FileNotFoundError(f"no Parquet files of {table} in {folder}")
        return pq.read_schema(schema_file).empty_table()
    result = pa.concat_tables(pq.read_table(p) for p in files)
    return _filter(result, table, lo, hi, filters)


def _day_overlaps(path: Path, lo: datetime | None, hi: datetime | None) -> bool:
    day = date.fromisoformat(path.parent.name.removeprefix("date="))
    start = datetime.combine(day, datetime.min.time(), UTC)
    end = start + pd.Timedelta(days=1).to_pytimedelta()
    return (lo is None or end > lo) and (hi is None or start < hi)


def _filter(
    t: pa.Table, table: str, lo: datetime | None, hi: datetime | None, filters: Filters
) -> pa.Table:
    from scripts.research.catalog import INSTRUMENT_COLUMNS, time_column

    names = tuple(t.schema.names)
    tcol = time_column(table, names)
    mask = None

    def both(m: Any, cond: Any) -> Any:
        return cond if m is None else pc.and_(m, cond)

    if tcol and lo is not None:
        mask = both(mask, pc.greater_equal(t[tcol], pa.scalar(lo, t.schema.field(tcol).type)))
    if tcol and hi is not None:
        mask = both(mask, pc.less(t[tcol], pa.scalar(hi, t.schema.field(tcol).type)))
    icol = INSTRUMENT_COLUMNS.get(table, "instrument_name" if "instrument_name" in names else None)
    if filters.instrument and icol:
        mask = both(mask, pc.equal(t[icol], filters.instrument))
    if filters.currency and "currency" in names:
        mask = both(mask, pc.equal(t["currency"], filters.currency.upper()))
    return t if mask is None else t.filter(mask)
