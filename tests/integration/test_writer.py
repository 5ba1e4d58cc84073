"""BatchWriter against the real database: exact rows, keys, flush triggers, status, speed."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import pytest

from scripts.models import GapRow, OhlcvRow
from scripts.storage import tables
from scripts.storage.status import PreviousRun, read_status_file
from scripts.storage.writer import BatchWriter
from tests.support.writer_db import T0, book, create_schema, fetch_rows, query, quote, trade


@pytest.fixture
def db(database_url: str) -> str:
    create_schema(database_url, ("BTC",))
    return database_url


def _writer(db: str, **kw: object) -> BatchWriter:
    opts: dict[str, object] = {
        "collector_name": "ws-btc",
        "currency": "BTC",
        "version": "test",
        "flush_interval_ms": 60_000,
        "flush_max_rows": 1000,
    }
    opts.update(kw)
    return BatchWriter(db, **opts)  # type: ignore[arg-type]


async def _eventually(check: Callable[[], Awaitable[bool] | bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


def _count(db: str, table: str) -> int:
    return int(query(db, f"SELECT count(*) FROM {table}")[0][0])


async def test_rows_land_exactly_column_by_column(db: str) -> None:
    writer = _writer(db)
    quotes = [quote(i) for i in range(300)]
    trades = [trade(i) for i in range(50)]
    books = [book(i) for i in range(20)]
    writer.add_many(tables.OPTION_QUOTES, "BTC", quotes)
    writer.add_many(tables.OPTION_TRADES, "BTC", trades)
    writer.add_many(tables.OPTION_ORDERBOOK_DEPTH, "BTC", books)
    assert await writer.flush()
    await writer.drain()
    assert fetch_rows(db, tables.OPTION_QUOTES) == [tuple(r) for r in quotes]
    assert fetch_rows(db, tables.OPTION_TRADES) == [tuple(r) for r in trades]
    assert fetch_rows(db, tables.OPTION_ORDERBOOK_DEPTH) == [tuple(r) for r in books]
    assert writer.status.rows_by_table == {
        "btc_option_quotes": 300,
        "btc_option_trades": 50,
        "btc_option_orderbook_depth": 20,
    }


async def test_duplicates_within_and_across_batches_are_ignored_without_losing_the_rest(
    db: str,
) -> None:
    writer = _writer(db)
    first = [trade(i) for i in range(10)]
    writer.add_many(tables.OPTION_TRADES, "BTC", [*first, trade(3), trade(3), trade(7)])
    assert await writer.flush()
    writer.add_many(tables.OPTION_TRADES, "BTC", [trade(5), trade(10), trade(0), trade(11)])
    assert await writer.flush()
    await writer.drain()
    want = [tuple(trade(i)) for i in range(12)]
    assert fetch_rows(db, tables.OPTION_TRADES) == want
    assert writer.status.rows_by_table["btc_option_trades"] == 12
    assert writer.status.duplicates_by_table["btc_option_trades"] == 5


async def test_on_conflict_update_keeps_the_newest_row(db: str) -> None:
    writer = _writer(db, currency=None, collector_name="rest")

    def bar(close: float, minute: int = 0) -> OhlcvRow:
        ts = T0 + timedelta(minutes=minute)
        return OhlcvRow(ts, "BTC-PERPETUAL", "BTC", "1", 1.0, 2.0, 0.5, close, 10.0, None, ts)

    writer.add_many(tables.PERPETUALS_OHLCV, None, [bar(1.0), bar(1.1, 1), bar(1.2)])
    assert await writer.flush()
    writer.add(tables.PERPETUALS_OHLCV, None, bar(1.3))
    gap = GapRow(
        "btc_option_trades", "BTC", "BTC-X", T0, T0 + timedelta(seconds=5), "ws", False, T0
    )
    writer.add(tables.DATA_GAPS, None, gap)
    assert await writer.flush()
    later = gap._replace(gap_end=T0 + timedelta(seconds=3), repaired=True)
    writer.add_many(tables.DATA_GAPS, None, [later, gap._replace(repaired=False)])
    assert await writer.flush()
    await writer.drain()
    bars = fetch_rows(db, tables.PERPETUALS_OHLCV, None)
    assert [r[7] for r in bars] == [1.3, 1.1]
    gaps = fetch_rows(db, tables.DATA_GAPS, None)
    assert gaps == [tuple(gap._replace(repaired=True))]  # end only grows; repaired sticks


async def test_flush_by_size_does_not_wait_for_the_interval(db: str) -> None:
    writer = _writer(db, flush_max_rows=100, flush_interval_ms=600_000)
    stop = asyncio.Event()
    task = asyncio.create_task(writer.run(stop))
    writer.add_many(tables.OPTION_QUOTES, "BTC", [quote(i) for i in range(100)])
    await _eventually(lambda: _count(db, "btc_option_quotes") == 100)
    writer.add_many(tables.OPTION_QUOTES, "BTC", [quote(i) for i in range(100, 150)])
    await asyncio.sleep(1.0)
    assert _count(db, "btc_option_quotes") == 100  # under the size, before the interval
    stop.set()
    await task
    assert _count(db, "btc_option_quotes") == 150


async def test_flush_by_time_writes_a_small_batch(db: str) -> None:
    writer = _writer(db, flush_max_rows=1_000_000, flush_interval_ms=200)
    stop = asyncio.Event()
    task = asyncio.create_task(writer.run(stop))
    writer.add_many(tables.OPTION_QUOTES, "BTC", [quote(i) for i in range(5)])
    await _eventually(lambda: _count(db, "btc_option_quotes") == 5)
    assert writer.buffered_rows == 0
    stop.set()
    await task


async def test_collector_status_carries_the_counters(db: str, tmp_path: Path) -> None:
    status_file = tmp_path / "ws-btc.status.json"
    writer = _writer(db, status_file=status_file)
    writer.status.set_connected(True)
    writer.status.note_messages(40)
    writer.status.note_rejected()
    writer.status.note_reconnect()
    writer.status.note_reconnect()
    writer.status.note_gap()
    writer.add_many(tables.OPTION_QUOTES, "BTC", [quote(i) for i in range(7)])
    writer.add_many(tables.OPTION_TRADES, "BTC", [trade(i) for i in range(3)])
    assert await writer.flush()
    (row,) = query(
        db,
        "SELECT state, messages_total, rows_by_table, rejected_total, reconnects, gaps_total, "
        "connected, currency, version, pid, last_flush_at IS NOT NULL, last_message_at "
        "IS NOT NULL, spool_bytes FROM collector_status WHERE collector_name = 'ws-btc'",
    )
    assert row[:10] == (
        "running",
        40,
        {"btc_option_quotes": 7, "btc_option_trades": 3},
        1,
        2,
        1,
        True,
        "BTC",
        "test",
        writer.status.pid,
    )
    assert row[10:] == (True, True, 0)
    file = read_status_file(status_file)
    assert file["collector"] == "ws-btc" and file["last_flush_to"] == "db" and file["db_ok"]
    await writer.drain()
    assert query(db, "SELECT state FROM collector_status")[0][0] == "stopped"
    assert read_status_file(status_file)["state"] == "stopped"


async def test_a_row_the_database_refuses_is_kept_and_the_rest_written(db: str) -> None:
    writer = _writer(db)
    bad = trade(5)._replace(trade_seq="not a number")  # type: ignore[arg-type]
    rows = [trade(i) for i in range(5)] + [bad] + [trade(i) for i in range(6, 10)]
    writer.add_many(tables.OPTION_TRADES, "BTC", rows)
    writer.add_many(tables.OPTION_QUOTES, "BTC", [quote(i) for i in range(4)])
    assert await writer.flush()
    await writer.drain()
    assert [r[2] for r in fetch_rows(db, tables.OPTION_TRADES)] == [
        f"BTC-{1000 + i}" for i in range(10) if i != 5
    ]
    assert len(fetch_rows(db, tables.OPTION_QUOTES)) == 4
    (rejected,) = query(db, "SELECT collector, channel, reason, raw FROM rejected_messages")
    assert rejected[:2] == ("ws-btc", "btc_option_trades")
    assert "database refused row" in rejected[2] and "not a number" in rejected[3]
    assert writer.status.rejected_total == 1


async def test_an_unclean_previous_exit_is_reported_with_its_window(db: str) -> None:
    first = _writer(db)
    first.add(tables.OPTION_QUOTES, "BTC", quote(1))
    assert await first.flush()  # then "dies": no drain, state stays 'running'
    assert first.db.pool is not None
    await first.db.pool.close()
    seen: list[PreviousRun] = []
    second = _writer(db, on_previous_run=seen.append)
    assert await second.flush()
    await second.drain()
    (prev,) = seen
    assert prev.unclean and prev.pid == first.status.pid
    window = prev.lost_window
    assert window is not None and window[0] <= window[1]
    (gap,) = prev.gap_rows(["btc_option_quotes"], "BTC")
    assert (gap.table_name, gap.scope, gap.repaired) == ("btc_option_quotes", "process", False)
    third_seen: list[PreviousRun] = []
    third = _writer(db, on_previous_run=third_seen.append)
    assert await third.flush()
    await third.drain()
    assert not third_seen[0].unclean and third_seen[0].lost_window is None


async def test_100k_quotes(db: str) -> None:
    writer = _writer(db, flush_max_rows=20_000, max_buffered_rows=200_000)
    rows = [quote(i, f"BTC-28MAR25-{80000 + i % 100}-C") for i in range(100_000)]
    t0 = time.perf_counter()
    for row in rows:
        writer.add(tables.OPTION_QUOTES, "BTC", row)
    added = time.perf_counter() - t0
    assert await writer.flush()
    elapsed = time.perf_counter() - t0
    await writer.drain()
    print(
        f"\n[writer] 100k quotes: add {added / len(rows) * 1e6:.2f} us/row, "
        f"written at {len(rows) / elapsed:,.0f} rows/s"
    )
    assert _count(db, "btc_option_quotes") == 100_000


def test_status_json_roundtrip_has_the_health_fields(tmp_path: Path) -> None:
    writer = BatchWriter(
        "postgresql://nobody@127.0.0.1:1/none",
        collector_name="rest",
        currency=None,
        version="v",
        status_file=tmp_path / "rest.status.json",
    )
    writer._write_status_file()
    data = json.loads((tmp_path / "rest.status.json").read_text())
    assert {"collector", "last_flush_at", "connected", "db_ok", "spool_bytes", "pid"} <= set(data)
