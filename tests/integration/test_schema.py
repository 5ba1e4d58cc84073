"""The schema against the table registry: columns, types, keys, hypertables and union views."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from scripts.storage.migrate import apply_schema
from scripts.storage.tables import ALL_TABLES, OPTION_TRADES, TableSpec
from tests.support.pgcluster import PgCluster

# Columns the database fills itself, after the writer's COPY columns.
EXTRA_COLUMNS = {"data_gaps": ("id",), "rejected_messages": ("id",)}

CHUNK_INTERVALS = {
    "btc_option_quotes": timedelta(hours=6),
    "btc_option_trades": timedelta(days=1),
    "btc_option_orderbook_depth": timedelta(days=1),
    "options_ohlcv": timedelta(days=1),
    "perpetuals_ohlcv": timedelta(days=7),
    "futures_ohlcv": timedelta(days=7),
    "options_greeks": timedelta(days=7),
    "funding_rates": timedelta(days=30),
    "index_prices": timedelta(days=30),
}


@pytest.fixture(scope="module")
def schema_db(pg_cluster: PgCluster) -> Iterator[str]:
    """One migrated database shared by the tests that only read the catalog."""
    url = pg_cluster.create_database(prefix="schema_catalog")
    apply_schema(url, ["BTC"], schedule_policies=False)
    try:
        yield url
    finally:
        pg_cluster.drop_database(url)


@pytest.fixture
def migrated(database_url: str) -> str:
    apply_schema(database_url, ["BTC"], schedule_policies=False)
    return database_url


def _columns(conn: psycopg.Connection, table: str) -> list[tuple[str, str]]:
    rows = conn.execute(
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute"
        " WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
        (table,),
    ).fetchall()
    return [(str(n), str(t)) for n, t in rows]


def _spec_table(spec: TableSpec) -> str:
    return spec.table_name("BTC") if spec.per_currency else spec.table_name()


@pytest.mark.parametrize("spec", ALL_TABLES, ids=lambda s: s.name_template)
def test_table_columns_match_the_registry(schema_db: str, spec: TableSpec) -> None:
    table = _spec_table(spec)
    with psycopg.connect(schema_db) as conn:
        expected = [
            (col, str(conn.execute("SELECT %s::regtype::text", (sql_type,)).fetchone()[0]))  # type: ignore[index]
            for col, sql_type in zip(spec.columns, spec.sql_types, strict=True)
        ]
        actual = _columns(conn, table)
    extras = EXTRA_COLUMNS.get(table, ())
    assert actual[: len(expected)] == expected
    assert [name for name, _ in actual[len(expected) :]] == list(extras)


@pytest.mark.parametrize("spec", [s for s in ALL_TABLES if s.key], ids=lambda s: s.name_template)
def test_natural_keys_are_unique_indexes(schema_db: str, spec: TableSpec) -> None:
    table = _spec_table(spec)
    with psycopg.connect(schema_db) as conn:
        rows = conn.execute(
            "SELECT array_agg(a.attname::text ORDER BY k.ord) FROM pg_index i"
            " CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)"
            " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum"
            " WHERE i.indrelid = %s::regclass AND i.indisunique GROUP BY i.indexrelid",
            (table,),
        ).fetchall()
    assert sorted(spec.key) in [sorted(r[0]) for r in rows]


def test_trade_key_makes_repeated_writes_idempotent(migrated: str) -> None:
    ts = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    row = (ts, "BTC-28MAR25-90000-C", "BTC-123", 7, 0.05, 1.0, 1.0, "buy", 0)
    cols = ", ".join(f'"{c}"' for c in OPTION_TRADES.columns[:9])
    key = ", ".join(f'"{c}"' for c in OPTION_TRADES.key)
    with psycopg.connect(migrated) as conn:
        for _ in range(2):
            conn.execute(
                f"INSERT INTO btc_option_trades ({cols}) VALUES ({', '.join(['%s'] * 9)})"
                f" ON CONFLICT ({key}) DO NOTHING",
                row,
            )
        assert conn.execute("SELECT count(*) FROM btc_option_trades").fetchone() == (1,)


def test_hypertables_have_nas_sized_chunks(schema_db: str) -> None:
    with psycopg.connect(schema_db) as conn:
        rows = conn.execute(
            "SELECT hypertable_name, column_name, time_interval"
            " FROM timescaledb_information.dimensions"
        ).fetchall()
    found = {name: (col, interval) for name, col, interval in rows}
    for table, interval in CHUNK_INTERVALS.items():
        assert found[table] == ("timestamp", interval), table


def test_status_and_spool_tables_have_the_writers_columns(schema_db: str) -> None:
    with psycopg.connect(schema_db) as conn:
        status = _columns(conn, "collector_status")
        offsets = _columns(conn, "spool_offsets")
        pkey = conn.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE conrelid = 'spool_offsets'::regclass AND contype = 'p'"
        ).fetchone()
    assert status == [
        ("collector_name", "text"),
        ("currency", "text"),
        ("version", "text"),
        ("hostname", "text"),
        ("pid", "integer"),
        ("state", "text"),
        ("started_at", "timestamp with time zone"),
        ("last_flush_at", "timestamp with time zone"),
        ("last_message_at", "timestamp with time zone"),
        ("connected", "boolean"),
        ("messages_total", "bigint"),
        ("rows_by_table", "jsonb"),
        ("rejected_total", "bigint"),
        ("reconnects", "bigint"),
        ("gaps_total", "bigint"),
        ("spool_bytes", "bigint"),
        ("details", "jsonb"),
        ("updated_at", "timestamp with time zone"),
    ]
    assert offsets == [
        ("collector_name", "text"),
        ("segment", "text"),
        ("last_batch_seq", "bigint"),
        ("updated_at", "timestamp with time zone"),
        ("rows_done", "integer"),  # 010_writer_batches.sql
    ]
    assert pkey == ("PRIMARY KEY (collector_name, segment)",)


def test_new_currency_gets_tables_and_joins_the_union_views(migrated: str) -> None:
    ts = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    apply_schema(migrated, ["SOL"])
    with psycopg.connect(migrated) as conn:
        tables = {
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE tablename LIKE 'sol\\_%'"
            ).fetchall()
        }
        conn.execute(
            "INSERT INTO sol_option_trades (timestamp, instrument_name, trade_id, price, amount)"
            " VALUES (%s, 'SOL_USDC-28MAR25-150-C', 'SOL_USDC-1', 2.5, 10)",
            (ts,),
        )
        conn.execute(
            "INSERT INTO btc_option_quotes (timestamp, instrument_name, best_bid_price)"
            " VALUES (%s, 'BTC-28MAR25-90000-C', 0.01)",
            (ts,),
        )
        trades = conn.execute(
            "SELECT currency, trade_id, price FROM option_trades WHERE currency = 'SOL'"
        ).fetchall()
        quotes = conn.execute("SELECT currency, instrument_name FROM option_quotes").fetchall()
        view_cols = [c for c, _ in _columns(conn, "option_orderbook_depth")]
        table_cols = [c for c, _ in _columns(conn, "sol_option_orderbook_depth")]
        currencies = conn.execute("SELECT DISTINCT currency FROM option_quotes").fetchall()
        registered = conn.execute("SELECT currency FROM chaintape_currencies ORDER BY 1").fetchall()
    assert tables == {"sol_option_quotes", "sol_option_trades", "sol_option_orderbook_depth"}
    assert trades == [("SOL", "SOL_USDC-1", 2.5)]
    assert quotes == [("BTC", "BTC-28MAR25-90000-C")]
    assert view_cols == ["currency", *table_cols]
    assert currencies == [("BTC",)]
    assert registered == [("btc",), ("sol",)]


def test_add_currency_from_psql_refuses_a_bad_code(migrated: str) -> None:
    with (
        psycopg.connect(migrated) as conn,
        pytest.raises(psycopg.errors.RaiseException, match="not a currency code"),
    ):
        conn.execute("SELECT chaintape_add_currency('x; drop table instruments')")


def _index_columns(conn: psycopg.Connection, table: str) -> list[str]:
    rows = conn.execute(
        "SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = %s::regclass",
        (table,),
    ).fetchall()
    return sorted(str(r[0]).split(" USING btree ")[1] for r in rows)


def test_quote_tables_keep_one_index_and_upgrades_drop_the_default_one(migrated: str) -> None:
    """Each index costs every quote's insert: new tables get only (instrument_name, timestamp);
    an install from before 007 loses TimescaleDB's default "timestamp" index on upgrade, and
    the newest-row lookup still reads one chunk's worth, served by chunk exclusion."""
    composite = ['(instrument_name, "timestamp" DESC)']
    with psycopg.connect(migrated, autocommit=True) as conn:
        assert _index_columns(conn, "btc_option_quotes") == composite
        # An install from before: the default index exists and 007 was never applied.
        conn.execute(
            'CREATE INDEX btc_option_quotes_timestamp_idx ON btc_option_quotes ("timestamp" DESC)'
        )
        conn.execute("DELETE FROM schema_migrations WHERE filename = '007_quotes_indexes.sql'")
        for hours in (0, 7, 13):  # three chunks
            conn.execute(
                "INSERT INTO btc_option_quotes (timestamp, instrument_name) VALUES (%s, %s)",
                (datetime(2025, 3, 1, tzinfo=UTC) + timedelta(hours=hours), "BTC-1"),
            )
    apply_schema(migrated, ["BTC", "ETH"], schedule_policies=False)
    with psycopg.connect(migrated, autocommit=True) as conn:
        assert _index_columns(conn, "btc_option_quotes") == composite
        assert _index_columns(conn, "eth_option_quotes") == composite  # created after 007
        # Trades keep theirs: the repairer reads them by time.
        assert len(_index_columns(conn, "btc_option_trades")) == 3
        conn.execute("SET enable_seqscan = off")  # three rows: the planner would scan them
        plan = "\n".join(
            str(r[0])
            for r in conn.execute(
                "EXPLAIN SELECT * FROM btc_option_quotes WHERE instrument_name = 'BTC-1'"
                " AND timestamp > '2025-03-01 12:00+00'"
            ).fetchall()
        )
    assert "btc_option_quotes_instrument_idx" in plan


async def test_newest_timestamp_reads_the_newest_chunk(migrated: str) -> None:
    from scripts.storage.queries import newest_timestamp

    assert await newest_timestamp(migrated, "btc_option_quotes") is None
    t0 = datetime(2025, 3, 1, tzinfo=UTC)
    with psycopg.connect(migrated, autocommit=True) as conn:
        for hours in (0, 7, 13):
            conn.execute(
                "INSERT INTO btc_option_quotes (timestamp, instrument_name) VALUES (%s, 'BTC-1')",
                (t0 + timedelta(hours=hours),),
            )
        assert await newest_timestamp(migrated, "btc_option_quotes") == t0 + timedelta(hours=13)
        # The newest chunk emptied by hand: the whole table is read instead.
        conn.execute("DELETE FROM btc_option_quotes WHERE timestamp > %s", (t0,))
        assert await newest_timestamp(migrated, "btc_option_quotes") == t0
