"""The real-time collector over a simulated hour: fake exchange + real database, in-process.

Its helpers are in tests/support/realtime.py, shared with the other real-time tests.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from scripts.config import load_settings
from scripts.storage.migrate import apply_settings_schema
from tests.support.realtime import (
    HOUR_S,
    SPEED,
    LoopStalls,
    SubscribeLog,
    assert_trades_exact,
    collector_env,
    db_quotes,
    hour_market,
    is_option,
    market_past,
    query,
    sent_quotes,
    start_collector,
    stop_collector,
    wait_for,
)


@pytest.mark.slow
async def test_simulated_hour_with_listings_and_expiries_lands_exact_quotes_and_trades(
    database_url: str, tmp_path: Path, fake_hour: Any, stalls: LoopStalls
) -> None:
    fake = await fake_hour()
    settings = load_settings(collector_env(fake, database_url, tmp_path / "spool"))
    await apply_settings_schema(settings)
    subs = SubscribeLog(fake)
    start_s = fake.clock.now()
    run = await start_collector(settings, fake)
    await asyncio.sleep(HOUR_S / SPEED)
    cut_ms = int((fake.clock.now() - 10.0) * 1000)
    await market_past(fake, cut_ms)

    # Listings: every option the market listed was subscribed within 60 s (market time on the
    # exchange, less the moments the shared event loop stood still) of its creation.
    market_options = {
        i["instrument_name"]: i
        for live in (False, True)
        for i in fake.market.instruments("ETH", "option", live)
    }
    listed = [i for i in market_options.values() if i["creation_timestamp"] / 1000 > start_s]
    assert len(listed) >= 3 * 8
    delays = {}
    for inst in listed:
        ch = f"quote.{inst['instrument_name']}"
        assert ch in subs.first, f"{ch} never subscribed"
        created, first = inst["creation_timestamp"], subs.first[ch]
        delays[ch] = (first - created - stalls.market_ms_within(fake.clock, created, first)) / 1000
    print("listing -> subscribed, market seconds:", sorted(delays.values()))
    assert max(delays.values()) <= 60.0, delays
    # Expiries: none of them stays subscribed after it expired (expiry checks every market
    # second, and the instrument.state push comes at the expiry), net of stalls again.
    expired = [
        i for i in market_options.values() if i["expiration_timestamp"] / 1000 < cut_ms / 1000
    ]
    assert len(expired) >= 8
    gone = {f"quote.{i['instrument_name']}" for i in expired}
    await wait_for(lambda: not gone & subs.subscribed_now(), 20, "expired options dropped")
    for inst in expired:
        ch = f"quote.{inst['instrument_name']}"
        if ch in subs.first:
            expiry, removed = inst["expiration_timestamp"], subs.removed[ch]
            stalled = stalls.market_ms_within(fake.clock, expiry, removed)
            assert removed - expiry - stalled <= 15_000, (ch, removed - expiry, stalled)

    # Trades: from the repair horizon at start (two hours back) to the cut, exactly.
    lo_ms = run.collector.repair_from_ms
    assert lo_ms is not None and lo_ms <= int((start_s - 7000) * 1000)
    await assert_trades_exact(database_url, fake, lo_ms, cut_ms)
    # Quotes: exactly the frames the fake sent on quote.* to the collector.
    await market_past(fake, cut_ms)
    sent = sent_quotes(fake, cut_ms)

    async def quotes_in() -> bool:
        return sum((await db_quotes(database_url, cut_ms)).values()) >= sum(sent.values())

    await wait_for(quotes_in, 30, "quotes stored")
    assert await db_quotes(database_url, cut_ms) == sent

    assert await stop_collector(run) == 0
    assert fake.stats.errors_sent_by_code.get(10028, 0) == 0
    # Marks attached to quotes are percent (markprice iv is a fraction on the wire).
    ivs = await query(database_url, "SELECT min(mark_iv), max(mark_iv) FROM eth_option_quotes")
    assert ivs[0][0] is not None and 5.0 < ivs[0][0] <= ivs[0][1] < 500.0
    # Books by REST, instruments and a clean stop.
    books = await query(
        database_url,
        "SELECT count(*), max(array_length(bid_prices, 1)) FROM eth_option_orderbook_depth",
    )
    assert books[0][0] >= len(market_options) - len(listed) and books[0][1] <= 10
    inst_rows = dict(
        await query(database_url, "SELECT instrument_name, is_active FROM instruments")
    )
    assert {i["instrument_name"] for i in listed} <= set(inst_rows)
    assert not any(inst_rows.get(i["instrument_name"], False) for i in expired)
    state = await query(
        database_url, "SELECT state FROM collector_status WHERE collector_name = 'ws-eth'"
    )
    assert state == [("stopped",)]
    gaps = await query(database_url, "SELECT table_name, repaired, reason FROM data_gaps")
    assert [g for g in gaps if not g[1]] == []  # nothing was lost
    assert any(g[0] == "eth_option_trades" and g[1] for g in gaps)  # the first-start backfill


@pytest.mark.slow
async def test_sol_options_come_from_the_usdc_book(
    database_url: str, tmp_path: Path, fake_hour: Any
) -> None:
    fake = await fake_hour(hour_market(currencies=("ETH", "SOL"), listing_every_s=None))
    env = collector_env(fake, database_url, tmp_path / "spool", CURRENCY="SOL")
    settings = load_settings(env)
    await apply_settings_schema(settings)
    run = await start_collector(settings, fake)
    subscribed = {c for s in fake.sessions for c in s.channels}
    assert "trades.option.USDC.100ms" in subscribed and "markprice.options.sol_usdc" in subscribed
    quotes = {c for c in subscribed if c.startswith("quote.")}
    assert quotes and all(c.startswith("quote.SOL_USDC-") for c in quotes)
    await asyncio.sleep(600 / SPEED)
    cut_ms = int((fake.clock.now() - 10.0) * 1000)
    lo_ms = run.collector.repair_from_ms or 0
    await market_past(fake, cut_ms)
    truth = {
        t["trade_id"]
        for t in fake.truth.trades
        if is_option(t["instrument_name"], "SOL_USDC-") and lo_ms <= t["timestamp"] <= cut_ms
    }

    async def stored() -> set[str]:
        rows = await query(
            database_url,
            "SELECT trade_id FROM sol_option_trades WHERE timestamp <= to_timestamp(%s / 1000.0)",
            cut_ms,
        )
        return {r[0] for r in rows}

    await wait_for(lambda: _ge(stored(), len(truth)), 30, "SOL trades")
    assert await stored() == truth
    assert await stop_collector(run) == 0


async def _ge(coro: Any, n: int) -> bool:
    return len(await coro) >= n
