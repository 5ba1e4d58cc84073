"""What a database holds, per table: row count, newest "timestamp", content checksum.

Read at dump time inside the very snapshot pg_dump exports from (REPEATABLE READ), and read
again from a restored database: equal manifests mean the restore holds exactly what the dump
holds, row for row. The checksum is order-independent: the sum of the first 60 bits of each
row's md5 over its text form, with the session's formats pinned (UTC, ISO dates, shortest
exact floats) so both sides print rows identically. Tables: every table of the public schema
(hypertables included, read through the hypertable, so compressed chunks count) and every
continuous aggregate, read from its materialization hypertable: the rows the dump holds. (Read
through the view, its real-time part re-aggregates raw rows in whatever order the scan gives,
and float sums then differ in the last bit; those raw rows are checked as tables already.)
Not views that only union other tables.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

PIN_FORMATS = (
    "SET TIME ZONE 'UTC'",
    "SET DateStyle = 'ISO, YMD'",
    "SET IntervalStyle = 'postgres'",
    "SET extra_float_digits = 1",
    "SET bytea_output = 'hex'",
)

_TABLES = """
SELECT c.relname, EXISTS (SELECT 1 FROM pg_attribute a
                          WHERE a.attrelid = c.oid AND a.attname = 'timestamp'
                            AND NOT a.attisdropped)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
   AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
 ORDER BY c.relname
"""
_CAGGS = """
SELECT view_name, materialization_hypertable_schema, materialization_hypertable_name,
       EXISTS (SELECT 1 FROM information_schema.columns col
                          WHERE col.table_schema = view_schema
                            AND col.table_name = view_name AND col.column_name = 'timestamp')
  FROM timescaledb_information.continuous_aggregates
 WHERE view_schema = 'public' ORDER BY view_name
"""


@dataclass(frozen=True, slots=True)
class TableState:
    rows: int
    newest: str | None  # ISO text of max("timestamp"), None without such a column or rows
    checksum: str

    def as_json(self) -> dict[str, Any]:
        return {"rows": self.rows, "newest": self.newest, "checksum": self.checksum}


Manifest = dict[str, TableState]


def pin_formats(conn: psycopg.Connection) -> None:
    for statement in PIN_FORMATS:
        conn.execute(statement)


def _relations(conn: psycopg.Connection) -> list[tuple[str, sql.Identifier, bool]]:
    """(manifest name, relation read, has a "timestamp" column) of every table and aggregate."""
    found = [
        (str(r[0]), sql.Identifier("public", str(r[0])), bool(r[1]))
        for r in conn.execute(_TABLES).fetchall()
    ]
    has_ts = conn.execute("SELECT to_regclass('timescaledb_information.continuous_aggregates')")
    row = has_ts.fetchone()
    if row is not None and row[0] is not None:
        found += [
            (str(r[0]), sql.Identifier(str(r[1]), str(r[2])), bool(r[3]))
            for r in conn.execute(_CAGGS).fetchall()
        ]
    return found


def read_manifest(conn: psycopg.Connection) -> Manifest:
    """The manifest as this connection's transaction sees the database."""
    pin_formats(conn)
    out: Manifest = {}
    for name, relation, has_timestamp in _relations(conn):
        newest = sql.SQL('max(t."timestamp")') if has_timestamp else sql.SQL("NULL::timestamptz")
        query = sql.SQL(
            "SELECT count(*), {newest},"
            " coalesce(sum(('x' || left(md5(t::text), 15))::bit(60)::bigint), 0)::text"
            " FROM {table} t"
        ).format(newest=newest, table=relation)
        row = conn.execute(query).fetchone()
        assert row is not None
        stamp: datetime | None = row[1]
        out[name] = TableState(int(row[0]), None if stamp is None else stamp.isoformat(), row[2])
    return out


def manifest_to_json(manifest: Manifest) -> dict[str, Any]:
    return {name: state.as_json() for name, state in manifest.items()}


def manifest_from_json(data: dict[str, Any]) -> Manifest:
    return {
        str(name): TableState(int(v["rows"]), v.get("newest"), str(v["checksum"]))
        for name, v in data.items()
    }


def differences(expected: Manifest, actual: Manifest) -> list[str]:
    """One line per table that differs (empty when the two agree row for row)."""
    out = []
    for name in sorted(set(expected) | set(actual)):
        want, got = expected.get(name), actual.get(name)
        if got is None:
            out.append(f"{name}: missing after restore (dump held {want.rows if want else 0} rows)")
        elif want is None:
            out.append(f"{name}: present after restore but not in the dump's manifest")
        elif want != got:
            parts = []
            if want.rows != got.rows:
                parts.append(f"rows {want.rows} -> {got.rows}")
            if want.newest != got.newest:
                parts.append(f"newest {want.newest} -> {got.newest}")
            if want.checksum != got.checksum:
                parts.append("content checksum differs")
            out.append(f"{name}: " + ", ".join(parts))
    return out


def dumps(manifest: Manifest, meta: dict[str, Any]) -> str:
    return json.dumps({**meta, "tables": manifest_to_json(manifest)}, indent=1, sort_keys=True)
