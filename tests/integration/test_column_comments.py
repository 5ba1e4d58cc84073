"""Every column of every table says what it holds and in which unit (COMMENT ON COLUMN, shown
by `psql \\d+`), for the shared tables and every currency's tables, including a currency
added after the schema; and schema/README.md lists the same units."""

from __future__ import annotations

from pathlib import Path

import psycopg

from scripts.storage.migrate import apply_schema

ROOT = Path(__file__).resolve().parents[2]


def uncommented(url: str) -> list[tuple[str, str]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            """
            SELECT c.relname, a.attname
              FROM pg_class c
              JOIN pg_namespace n ON n.oid = c.relnamespace
              JOIN pg_attribute a ON a.attrelid = c.oid
             WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
               AND a.attnum > 0 AND NOT a.attisdropped
               AND coalesce(col_description(c.oid, a.attnum), '') = ''
             ORDER BY 1, 2
            """
        ).fetchall()
    return [(str(t), str(c)) for t, c in rows]


def comment(url: str, table: str, column: str) -> str:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT col_description(%s::regclass, a.attnum) FROM pg_attribute a"
            " WHERE a.attrelid = %s::regclass AND a.attname = %s",
            (table, table, column),
        ).fetchone()
    assert row is not None
    return str(row[0])


def test_every_column_of_every_table_has_a_comment(database_url: str) -> None:
    apply_schema(database_url, ["BTC", "SOL"], schedule_policies=False)
    with psycopg.connect(database_url) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')"
        ).fetchone()
    assert tables is not None and tables[0] >= 18  # shared + 2 x 3 per-currency tables
    assert uncommented(database_url) == []
    assert "in the coin for BTC/ETH" in comment(database_url, "btc_option_quotes", "best_bid_price")
    assert "in USDC for SOL" in comment(database_url, "sol_option_quotes", "best_ask_price")
    assert "percent" in comment(database_url, "sol_option_quotes", "bid_iv")
    assert "a fraction" in comment(database_url, "funding_rates", "interest_8h")
    assert "base coin" in comment(database_url, "btc_option_trades", "amount")

    # A currency added later (a collector's start) gets its comments at once.
    apply_schema(database_url, ["ETH"], schedule_policies=False)
    assert uncommented(database_url) == []
    assert "percent" in comment(database_url, "eth_option_quotes", "ask_iv")


def test_a_column_without_a_comment_is_found(database_url: str) -> None:
    """The check above can fail: a column added without a comment is reported."""
    apply_schema(database_url, ["BTC"], schedule_policies=False)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE funding_rates ADD COLUMN undocumented float8")
    assert uncommented(database_url) == [("funding_rates", "undocumented")]


def test_schema_readme_lists_the_units() -> None:
    text = (ROOT / "schema" / "README.md").read_text()
    units = text.split("## Units", 1)[1]
    for needle in (
        "best_bid_price",
        "bid_iv",
        "underlying_price",
        "interest_8h",
        "contract_size",
        "QUOTE_FORWARD_MAX_AGE_S",
        "psql",
    ):
        assert needle in units, needle
