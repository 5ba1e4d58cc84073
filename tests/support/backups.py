"""What the backup tests share: settings for a database and a backup directory, a database
filled with rows of every shape, and table contents read for a row-for-row comparison."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from scripts.config import Settings, load_settings
from scripts.storage.migrate import apply_schema


def backup_settings(database_url: str, backup_dir: Path, **env: str) -> Settings:
    base = {
        "DATABASE_URL": database_url,
        "BACKUP_DIR": str(backup_dir),
        "BACKUP_DISK_MARGIN_MB": "1",
        "LOG_LEVEL": "INFO",
    }
    base.update(env)
    return load_settings(base, need_currency="any")


def fill(database_url: str, rows: int = 3000) -> None:
    """The real schema for BTC and rows in hypertables and plain tables, spread over chunks."""
    apply_schema(database_url, ["btc"], schedule_policies=False)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO btc_option_quotes (timestamp, instrument_name, best_bid_price,"
            " best_bid_amount, mark_iv, received_at)"
            " SELECT now() - i * interval '1 minute', 'BTC-27DEC26-100000-C', i * 0.0005, i,"
            " 55.5 + i / 7.0, now() FROM generate_series(1, %s) i",
            (rows,),
        )
        conn.execute(
            "INSERT INTO btc_option_trades (timestamp, instrument_name, trade_id, trade_seq,"
            " price, amount, direction) SELECT now() - i * interval '3 minutes',"
            " 'BTC-27DEC26-100000-C', 'T' || i, i, 0.01 * i, 1, 'buy'"
            " FROM generate_series(1, %s) i",
            (rows // 3,),
        )
        conn.execute(
            "INSERT INTO instruments (instrument_name, currency, kind, strike)"
            " VALUES ('BTC-27DEC26-100000-C', 'BTC', 'option', 100000)"
        )


def table_rows(database_url: str, table: str) -> list[tuple[Any, ...]]:
    """Every row of `table`, as text, sorted: two databases agree when these lists are equal."""
    with psycopg.connect(database_url) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        query = sql.SQL("SELECT t::text FROM {} t ORDER BY 1").format(sql.Identifier(table))
        return conn.execute(query).fetchall()


def count(database_url: str, table: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
        ).fetchone()
        assert row is not None
        return int(row[0])
