"""The real-time collector under faults: drops, a stall, SIGKILL and restarts, bad frames."""

from __future__ import annotations

import asyncio
import signal
from bisect import bisect_right
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
import websockets

from scripts.collectors.realtime.trade_checkpoint_file import read_checkpoint
from scripts.config import load_settings
from scripts.storage.migrate import apply_settings_schema
from tests.fake_deribit.faults import Faults
from tests.fake_deribit.market import DEFAULT_START_MS
from tests.support.collector_proc import spawn_collector
from tests.support.realtime import (
    SPEED,
    assert_trades_exact,
    collector_env,
    db_quotes,
    db_trades,
    hour_market,
    query,
    sent_quotes,
    start_collector,
    stop_collector,
    truth_trades,
    wait_connected,
    wait_for,
)


@pytest.mark.slow
async def test_drops_stall_and_two_sigkills_lose_no_trade_and_record_every_gap(
    database_url: str,
    tmp_path: Path,
    fake_hour: Any,
) -> None:
    faults = Faults(skip_book_change=3, seed=3)
    fake = await fake_hour(hour_market(listing_every_s=1200.0), faults)
    env = collector_env(fake, database_url, tmp_path / "spool", DATA_WATCHDOG_S="1")
    await apply_settings_schema(load_settings(env))
    log = tmp_path / "collector.log"
    step_s = 600 / SPEED  # ten simulated minutes per phase
    # The collector reads books by REST and subscribes no book stream, so the skip switch
    # acts only on an observer's `book.*` subscription: the changes it drops exist in the
    # market all the same, and the collector's snapshots must show them.
    observed = fake.market.instruments("ETH", "option", False)[0]["instrument_name"]
    observer = await websockets.connect(fake.ws_url, close_timeout=0.2)  # it reads nothing
    subscribe = {"channels": [f"book.{observed}.100ms"]}
    await observer.send(orjson.dumps({"id": 1, "method": "public/subscribe", "params": subscribe}))
    proc = spawn_collector(env, log)
    try:
        await wait_connected(fake, 1)
        await wait_for(lambda: fake.stats.book_changes_skipped == 3, 30, "book changes skipped")
        await observer.close()
        faults.drop_every_s = 180 / SPEED  # every three simulated minutes
        await asyncio.sleep(step_s)
        faults.drop_every_s = None
        faults.stall = True  # the socket stays up, heartbeats flow, no data
        await asyncio.sleep(3.0)
        faults.stall = False
        await asyncio.sleep(step_s / 2)
        for _ in range(2):
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            await asyncio.sleep(1.0)  # a couple of simulated minutes without a collector
            before = fake.stats.connections
            proc = spawn_collector(env, log)
            await wait_connected(fake, before)
            await asyncio.sleep(step_s / 2)
        cut_ms = int((fake.clock.now() - 10.0) * 1000)
        first = await query(
            database_url,
            "SELECT min(gap_start) FROM data_gaps WHERE table_name = 'eth_option_trades' "
            "AND reason LIKE 'first start%%'",
        )
        lo_ms = int(first[0][0].timestamp() * 1000)
        await assert_trades_exact(database_url, fake, lo_ms, cut_ms)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    text = log.read_text()
    assert "watchdog" in text
    assert fake.stats.errors_sent_by_code.get(10028, 0) == 0
    assert fake.stats.dropped_connections >= 3
    # Quotes have no repair path: each one sent but not stored lies in a recorded gap.
    gaps = await query(
        database_url,
        "SELECT (extract(epoch from gap_start) * 1000)::bigint, "
        "(extract(epoch from gap_end) * 1000)::bigint, reason FROM data_gaps "
        "WHERE table_name = 'eth_option_quotes' AND NOT repaired",
    )
    reasons = Counter(r[2].split(":")[0] for r in gaps)
    assert reasons["collector was not running"] == 2 and reasons["websocket down"] >= 3
    sent = sent_quotes(fake, cut_ms)
    stored = await db_quotes(database_url, cut_ms)
    assert set(stored) <= set(sent)
    lost = [q for q in sent if q not in stored]
    assert lost  # the kills did lose quotes ...
    outside = [q for q in lost if not any(g0 <= q[1] <= g1 for g0, g1, _ in gaps)]
    assert outside == []  # ... and every one of them is inside a recorded window
    # Gap times are exchange (market) time, never the writer's wall-time view of the kills.
    spans = await query(
        database_url,
        "SELECT scope, extract(epoch from min(gap_start)), extract(epoch from max(gap_end)) "
        "FROM data_gaps GROUP BY scope",
    )
    market_start_s = DEFAULT_START_MS / 1000 - 7200
    for scope, lo_s, hi_s in spans:
        assert scope != "process"
        assert market_start_s - 60 <= float(lo_s) <= float(hi_s) <= fake.clock.now() + 120
    await assert_books_match_the_market(database_url, fake, observed)


async def assert_books_match_the_market(database_url: str, fake: Any, observed: str) -> None:
    """Each stored REST snapshot is the market's book at its timestamp: its change_id is the
    book's newest change up to then, and its top of book the newest quote up to then."""
    assert not [c for s in fake.sessions for c in s.channels if c.startswith("book.")]
    rows = await query(
        database_url,
        "SELECT instrument_name, (extract(epoch from timestamp) * 1000)::bigint, change_id, "
        "bid_prices[1], bid_amounts[1], ask_prices[1], ask_amounts[1] "
        "FROM eth_option_orderbook_depth",
    )
    changes: dict[str, list[tuple[int, int]]] = {}
    for b in fake.truth.books:
        changes.setdefault(b.instrument_name, []).append((b.ts_ms, b.change_id))
    tops: dict[str, list[tuple[int, tuple[float, ...]]]] = {}
    for q in fake.truth.quotes:
        tops.setdefault(q.instrument_name, []).append((q.ts_ms, tuple(q[2:])))
    assert {r[0] for r in rows} >= {observed} and len(rows) >= 16
    checked_tops = 0
    for name, ts, change_id, bp, ba, ap, aa in rows:
        history = changes[name]
        i = bisect_right([t for t, _ in history], ts) - 1
        assert i >= 0 and history[i][1] == change_id, (name, ts, change_id)
        quotes = tops.get(name, [])
        j = bisect_right([t for t, _ in quotes], ts) - 1
        if j >= 0 and None not in (bp, ap):
            assert (bp, ba, ap, aa) == quotes[j][1], (name, ts)
            checked_tops += 1
    assert checked_tops >= len(rows) // 2


async def test_malformed_frames_at_1_percent_are_counted_and_trades_still_exact(
    database_url: str,
    tmp_path: Path,
    fake_hour: Any,
) -> None:
    faults = Faults(malformed_rate=0.01, seed=11)
    fake = await fake_hour(hour_market(listing_every_s=None), faults)
    settings = load_settings(collector_env(fake, database_url, tmp_path / "spool"))
    await apply_settings_schema(settings)
    run = await start_collector(settings, fake)
    await asyncio.sleep(900 / SPEED)
    faults.malformed_rate = 0.0
    cut_ms = int((fake.clock.now() - 10.0) * 1000)
    await assert_trades_exact(database_url, fake, run.collector.repair_from_ms or 0, cut_ms)
    await asyncio.sleep(0.5)
    assert not run.task.done()
    rejects = run.collector.rejects
    mine = [m for m in fake.malformed]
    kinds = Counter(m.kind for m in mine)
    assert sum(kinds.values()) >= 30
    assert (
        rejects.malformed_frames
        == kinds["truncated"] + kinds["nan_literal"] + kinds["missing_data"]
    )
    assert rejects.rejected_messages == kinds["wrong_type"]
    # An extra field is visible (and counted) where the data is an object; an extra key next
    # to `channel` in params is a valid envelope and its rows land.
    extra_in_data = sum(1 for m in mine if m.kind == "extra_fields" and isinstance(m.data, dict))
    assert rejects.unknown_field_messages == extra_in_data
    assert run.collector.writer.status.rejected_total == rejects.total
    assert await stop_collector(run) == 0
    kept = await query(database_url, "SELECT count(*), max(length(raw)) FROM rejected_messages")
    assert kept[0][0] == rejects.total and kept[0][1] <= 8192
    status = await query(
        database_url, "SELECT rejected_total FROM collector_status WHERE collector_name = 'ws-eth'"
    )
    assert status == [(rejects.total,)]


@pytest.mark.slow
async def test_a_kill_during_a_repair_is_re_read_after_the_restart(
    database_url: str,
    tmp_path: Path,
    fake_hour: Any,
) -> None:
    # A dense history and a slow REST budget: the first start's backfill takes several wall
    # seconds, while the stream stores live trades newer than what it has not read yet.
    fake = await fake_hour(hour_market(listing_every_s=None, history_trade_rate_hz=2.0))
    spool = tmp_path / "spool"
    env = collector_env(
        fake,
        database_url,
        spool,
        REST_REQUESTS_PER_S="0.05",
        REST_BURST="1",
        ORDERBOOK_SNAPSHOT_INTERVAL_S="86400",
    )
    await apply_settings_schema(load_settings(env))
    log = tmp_path / "collector.log"
    mark = spool / "ws-eth.trades-complete.json"
    proc = spawn_collector(env, log)
    method = "public/get_last_trades_by_currency_and_time"
    try:
        await wait_connected(fake, 0)
        await wait_for(lambda: fake.stats.rest_calls_by_method[method] >= 2, 30, "backfill")
        await wait_for(mark.exists, 30, "the complete-through mark")
        stored = await query(database_url, "SELECT max(timestamp) FROM eth_option_trades")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        pages_before_kill = fake.stats.rest_calls_by_method[method]
        newest_ms = int(stored[0][0].timestamp() * 1000)
        first = await query(
            database_url,
            "SELECT count(*) FROM data_gaps WHERE reason LIKE 'first start%%'",
        )
        assert first == [(0,)]  # killed before the backfill finished
        # ... and what it had not read yet is older than the newest stored (streamed) trade.
        truth = truth_trades(fake, 0, newest_ms)
        rows = await db_trades(database_url, 0, newest_ms)
        assert len(rows) < len(truth)
        lo_ms = read_checkpoint(mark)  # the first start's window, still unread when killed
        assert lo_ms is not None and lo_ms < newest_ms - 3_600_000
        proc = spawn_collector(env, log)
        await wait_for(
            lambda: fake.stats.rest_calls_by_method[method] > pages_before_kill + 2, 60, "re-read"
        )
        cut_ms = int((fake.clock.now() - 10.0) * 1000)
        await assert_trades_exact(database_url, fake, lo_ms, cut_ms, wait_s=60)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert "re-reading trades from" in log.read_text()
