"""Which relations can be exported or loaded, their columns and Arrow types, and their time axis.

A name is valid when it is a table of the registry (`scripts/storage/tables.py`, with `{cur}`
filled by a currency) or one of the union views over the per-currency tables (`option_quotes`,
`option_trades`, `option_orderbook_depth`). Columns and their SQL types are read from the
database, so extra columns (`data_gaps.id`) come along, and mapped to exact Arrow types:
timestamps as UTC microseconds, float8 as float64, float8[] as lists of float64.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import psycopg
import pyarrow as pa

from scripts.currencies import KNOWN_CURRENCIES
from scripts.storage.tables import ALL_TABLES

UNION_VIEWS = ("option_quotes", "option_trades", "option_orderbook_depth")
# The time axis a table is cut into days by; instruments has none (exported whole).
TIME_COLUMNS = {"data_gaps": "gap_start", "rejected_messages": "received_at", "instruments": None}
# Which column an --instrument filter applies to.
INSTRUMENT_COLUMNS = {"index_prices": "index_name", "data_gaps": "scope"}
TEXT_WITH_NEWLINES = {"rejected_messages"}

_ARROW_TYPES: dict[str, pa.DataType] = {
    "timestamp with time zone": pa.timestamp("us", tz="UTC"),
    "double precision": pa.float64(),
    "real": pa.float32(),
    "bigint": pa.int64(),
    "integer": pa.int32(),
    "smallint": pa.int16(),
    "boolean": pa.bool_(),
    "text": pa.string(),
    "double precision[]": pa.list_(pa.float64()),
}


class CatalogError(Exception):
    """A name or filter that does not fit the recorded tables; the message says which do."""


@dataclass(frozen=True, slots=True)
class Relation:
    name: str  # the table or view as in the database: btc_option_quotes, option_quotes
    columns: tuple[str, ...]
    sql_types: tuple[str, ...]  # format_type() of each column
    time_column: str | None
    instrument_column: str | None
    has_currency_column: bool
    multiline_text: bool

    @property
    def schema(self) -> pa.Schema:
        return pa.schema(
            [pa.field(c, arrow_type(t)) for c, t in zip(self.columns, self.sql_types, strict=True)]
        )

    @property
    def list_columns(self) -> tuple[str, ...]:
        pairs = zip(self.columns, self.sql_types, strict=True)
        return tuple(c for c, t in pairs if t.endswith("[]"))


def arrow_type(sql_type: str) -> pa.DataType:
    """The Arrow type of a PostgreSQL column type; anything unknown travels as text."""
    return _ARROW_TYPES.get(sql_type, pa.string())


def known_names(currencies: tuple[str, ...]) -> list[str]:
    """Every exportable name for these currencies (lower-case codes)."""
    names: list[str] = []
    for spec in ALL_TABLES:
        if spec.per_currency:
            names += [spec.table_name(c) for c in currencies]
        else:
            names.append(spec.table_name())
    return sorted(names) + list(UNION_VIEWS)


def registry_name(name: str) -> bool:
    """True when `name` is a registry table for some known currency, or a union view (no I/O)."""
    if name in UNION_VIEWS:
        return True
    codes = tuple(c.lower() for c in KNOWN_CURRENCIES)
    return name in known_names(codes)


def time_column(name: str, columns: tuple[str, ...]) -> str | None:
    if name in TIME_COLUMNS:
        return TIME_COLUMNS[name]
    return "timestamp" if "timestamp" in columns else None


def resolve(conn: psycopg.Connection, name: str) -> Relation:
    """The relation `name` in this database; CatalogError when it is not exportable or absent."""
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,62}", name) or not registry_name(name):
        currencies = _recorded_currencies(conn)
        raise CatalogError(f"unknown table {name!r}; one of: {', '.join(known_names(currencies))}")
    rows = conn.execute(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod)"
        "  FROM pg_attribute a"
        " WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped"
        " ORDER BY a.attnum",
        (name,),
    ).fetchall()
    if not rows:
        currencies = _recorded_currencies(conn)
        raise CatalogError(
            f"table {name!r} does not exist in this database (run `python -m scripts.migrate`, "
            f"or use one of: {', '.join(known_names(currencies))})"
        )
    columns = tuple(r[0] for r in rows)
    return Relation(
        name=name,
        columns=columns,
        sql_types=tuple(r[1] for r in rows),
        time_column=time_column(name, columns),
        instrument_column=INSTRUMENT_COLUMNS.get(
            name, "instrument_name" if "instrument_name" in columns else None
        ),
        has_currency_column="currency" in columns,
        multiline_text=name in TEXT_WITH_NEWLINES,
    )


def _recorded_currencies(conn: psycopg.Connection) -> tuple[str, ...]:
    if conn.execute("SELECT to_regclass('chaintape_currencies')").fetchone() == (None,):
        return ()
    rows = conn.execute("SELECT currency FROM chaintape_currencies ORDER BY 1").fetchall()
    return tuple(r[0] for r in rows)
