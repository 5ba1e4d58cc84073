"""Helpers for the writer, spool and health tests: the schema, rows, and reading them back."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

from scripts.models import BookSnapshotRow, QuoteRow, TradeRow
from scripts.storage.tables import ALL_TABLES, TableSpec

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def create_schema(database_url: str, currencies: Sequence[str] = ("BTC",)) -> None:
    """The real schema (`scripts.storage.migrate.apply_schema`) when it exists, else the
    registry's tables with their keys, plus collector_status and spool_offsets."""
    try:
        from scripts.storage.migrate import apply_schema  # type: ignore[import-not-found]
    except ImportError:
        _registry_schema(database_url, currencies)
        return
    apply_schema(database_url, list(currencies), schedule_policies=False)


def _registry_schema(database_url: str, currencies: Sequence[str]) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        for spec in ALL_TABLES:
            for cur in currencies if spec.per_currency else [None]:
                table = spec.table_name(cur)
                cols = sql.SQL(", ").join(
                    sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(t))
                    for c, t in zip(spec.columns, spec.sql_types, strict=True)
                )
                conn.execute(sql.SQL("CREATE TABLE {} ({})").format(sql.Identifier(table), cols))
                if spec.key:
                    conn.execute(
                        sql.SQL("CREATE UNIQUE INDEX ON {} ({})").format(
                            sql.Identifier(table),
                            sql.SQL(", ").join(sql.Identifier(k) for k in spec.key),
                        )
                    )
        conn.execute(
            """CREATE TABLE collector_status (
                collector_name text PRIMARY KEY, currency text, version text, hostname text,
                pid int, state text, started_at timestamptz, last_flush_at timestamptz,
                last_message_at timestamptz, connected bool, messages_total int8,
                rows_by_table jsonb, rejected_total int8, reconnects int8, gaps_total int8,
                spool_bytes int8, details jsonb, updated_at timestamptz)"""
        )
        conn.execute(
            """CREATE TABLE spool_offsets (collector_name text, segment text,
                last_batch_seq int8, updated_at timestamptz,
                PRIMARY KEY (collector_name, segment))"""
        )


def quote(i: int, instrument: str = "BTC-28MAR25-80000-C") -> QuoteRow:
    """A quote row whose every value derives from `i` (and some NULLs), one second apart."""
    ts = T0 + timedelta(seconds=i)
    return QuoteRow(
        ts,
        instrument,
        0.01 + i * 1e-6,
        float(i % 50),
        None if i % 7 == 0 else 0.02 + i * 1e-6,
        1.5,
        None,
        55.5 + (i % 10),
        56.25,
        0.015,
        84000.0 + i,
        ts + timedelta(milliseconds=3),
    )


def trade(i: int, instrument: str = "BTC-28MAR25-80000-C") -> TradeRow:
    ts = T0 + timedelta(seconds=i)
    return TradeRow(
        ts,
        instrument,
        f"BTC-{1000 + i}",
        i,
        0.0125,
        1.0 + i,
        None,
        "buy" if i % 2 else "sell",
        i % 4,
        54.2,
        84000.5,
        0.0124,
        None,
        None,
        None,
        None,
        None,
        None,
        ts,
    )


def book(i: int, instrument: str = "BTC-28MAR25-80000-C") -> BookSnapshotRow:
    ts = T0 + timedelta(minutes=i)
    return BookSnapshotRow(
        ts,
        instrument,
        10_000 + i,
        [0.01, 0.0095, 0.009],
        [1.0, 2.5, 10.0],
        [],
        [],
        0.0101,
        55.0,
        None,
        None,
        84000.0,
        123.5,
        ts,
    )


def fetch_rows(database_url: str, spec: TableSpec, currency: str | None = "BTC") -> list[tuple]:
    """Every row of the table, columns in registry order, ordered by the row's time."""
    table = spec.table_name(currency) if spec.per_currency else spec.table_name()
    order = "timestamp" if "timestamp" in spec.columns else spec.columns[0]
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            sql.SQL("SELECT {} FROM {} ORDER BY {}").format(
                sql.SQL(", ").join(sql.Identifier(c) for c in spec.columns),
                sql.Identifier(table),
                sql.Identifier(order),
            )
        ).fetchall()


def query(database_url: str, text: str, params: Sequence[Any] = ()) -> list[tuple]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(text, params).fetchall()  # type: ignore[arg-type]


def can_connect(database_url: str) -> bool:
    with (
        contextlib.suppress(psycopg.OperationalError),
        psycopg.connect(database_url, connect_timeout=2),
    ):
        return True
    return False
