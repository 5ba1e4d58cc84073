"""The real-time collector over a simulated hour: fake exchange + real database, in-process.

The helpers here are shared with test_realtime_faults.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from scripts.collectors.realtime.collector import OptionsRealtimeCollector
from scripts.collectors.realtime.service import run_realtime
from scripts.config import Settings, load_settings
from scripts.storage.migrate import apply_settings_schema
from tests.fake_deribit.faults import Faults
from tests.fake_deribit.market import MarketConfig
from tests.fake_deribit.server import FakeDeribit
from tests.support.realtime import LoopStalls, quote_key, sent_quote_key, sim_fakes

SPEED = 120.0  # a market hour in 30 wall seconds
HOUR_S = 3600.0


async def wait_for(cond: Callable[[], Any], timeout_s: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        ok = cond()
        if asyncio.iscoroutine(ok):
            ok = await ok
        if ok:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or cond}")
        await asyncio.sleep(0.1)


async def market_past(fake: FakeDeribit, ms: int) -> None:
    """Waits until the fake's market has made every event up to `ms`: on a busy machine it
    lags its clock, so ground truth read at a cut taken from the clock may still grow."""
    await wait_for(lambda: fake.market.now_ms >= ms, 30, "the market past the cut")


def hour_market(**kw: Any) -> MarketConfig:
    base: dict[str, Any] = {
        "currencies": ("ETH",),
        "expiries": 2,
        "strikes_per_expiry": 4,
        "quote_rate_hz": 10.0,
        "trade_rate_hz": 2.0,
        "listing_every_s": 900.0,
        "first_expiry_in_s": 1500.0,
        "history_s": 3 * 3600.0,
    }
    base.update(kw)
    return MarketConfig(**base)


def collector_env(
    fake: FakeDeribit, database_url: str, spool: Path, **extra: str
) -> dict[str, str]:
    env = {
        "DATABASE_URL": database_url,
        "CURRENCY": "ETH",
        "DERIBIT_WS_URL": fake.ws_url,
        "DERIBIT_REST_URL": fake.rest_url,
        "DERIBIT_HISTORY_URL": fake.history_url,
        "SIM_CLOCK": fake.sim_clock_spec(),
        "SPOOL_DIR": str(spool),
        "FLUSH_INTERVAL_MS": "200",
        "TRADE_REPAIR_MAX_AGE_S": "7200",
        "ORDERBOOK_SNAPSHOT_INTERVAL_S": "600",
        "DATA_WATCHDOG_S": "3",
        "DRAIN_DEADLINE_S": "10",
        "LOG_LEVEL": "INFO",
    }
    env.update(extra)
    return env


class SubscribeLog:
    """When each channel was first subscribed and last unsubscribed on the fake, in the fake
    market's own time (`market.now_ms` as the request is handled), recorded by wrapping its
    router: the latency of a listing is then the market time that passed on the exchange, not
    wall time scaled by the speed, which a busy test process stretches (the fake falls behind
    the clock and catches up in bursts, and a 0.5 s pause is a market minute at speed 120)."""

    def __init__(self, fake: FakeDeribit) -> None:
        self.first: dict[str, int] = {}
        self.removed: dict[str, int] = {}
        router = fake.router
        add, remove = router.add, router.remove

        def logged_add(session: Any, channel: str) -> bool:
            self.first.setdefault(channel, fake.market.now_ms)
            return add(session, channel)

        def logged_remove(session: Any, channel: str) -> bool:
            self.removed[channel] = fake.market.now_ms
            return remove(session, channel)

        router.add = logged_add  # type: ignore[method-assign]
        router.remove = logged_remove  # type: ignore[method-assign]
        self.router = router

    def subscribed_now(self) -> set[str]:
        return set(self.router.subscribers)


@dataclass
class Running:
    fake: FakeDeribit
    settings: Settings
    stop: asyncio.Event
    task: asyncio.Task[int]
    collector: OptionsRealtimeCollector


async def start_collector(settings: Settings, fake: FakeDeribit) -> Running:
    stop = asyncio.Event()
    ready: asyncio.Future[OptionsRealtimeCollector] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(
        run_realtime(settings, stop, clock=fake.clock, apply_schema=False, collector_ready=ready)
    )
    collector = await asyncio.wait_for(ready, 30)
    await asyncio.wait_for(collector.started.wait(), 30)
    return Running(fake, settings, stop, task, collector)


async def stop_collector(run: Running) -> int:
    run.stop.set()
    return await asyncio.wait_for(run.task, 60)


async def query(database_url: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        cur = await conn.execute(sql, args or None)
        return await cur.fetchall()


def is_option(name: str, prefix: str = "ETH-") -> bool:
    return name.startswith(prefix) and len(name.split("-")) == 4


def truth_trades(
    fake: FakeDeribit, lo_ms: int, hi_ms: int, prefix: str = "ETH-"
) -> dict[str, dict[str, Any]]:
    return {
        t["trade_id"]: t
        for t in fake.truth.trades
        if is_option(t["instrument_name"], prefix) and lo_ms <= t["timestamp"] <= hi_ms
    }


async def db_trades(database_url: str, lo_ms: int, hi_ms: int) -> list[tuple[Any, ...]]:
    return await query(
        database_url,
        "SELECT trade_id, instrument_name, trade_seq, price, amount, direction, "
        "(extract(epoch from timestamp) * 1000)::bigint FROM eth_option_trades "
        "WHERE timestamp BETWEEN to_timestamp(%s / 1000.0) AND to_timestamp(%s / 1000.0)",
        lo_ms,
        hi_ms,
    )


def sent_quotes(fake: FakeDeribit, hi_ms: int) -> Counter[tuple[Any, ...]]:
    """Each quote the fake sent, once: a (re)subscribe re-sends the current quote, which is the
    same quote again (deribit-protocol.md section 13), not a new one."""
    keys = {sent_quote_key(s.data) for s in fake.truth.sent_on("quote.")}
    return Counter(k for k in keys if k[1] <= hi_ms)


async def db_quotes(database_url: str, hi_ms: int) -> Counter[tuple[Any, ...]]:
    rows = await query(
        database_url,
        "SELECT instrument_name, (extract(epoch from timestamp) * 1000)::bigint, best_bid_price, "
        "best_bid_amount, best_ask_price, best_ask_amount FROM eth_option_quotes "
        "WHERE timestamp <= to_timestamp(%s / 1000.0)",
        hi_ms,
    )
    return Counter(quote_key(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows)


async def assert_trades_exact(
    database_url: str, fake: FakeDeribit, lo_ms: int, hi_ms: int, *, wait_s: float = 20.0
) -> None:
    """Every option trade the market made in [lo, hi] is stored once, with its fields."""
    await market_past(fake, hi_ms)
    truth = truth_trades(fake, lo_ms, hi_ms)

    async def caught_up() -> bool:
        return len(await db_trades(database_url, lo_ms, hi_ms)) >= len(truth)

    with contextlib.suppress(AssertionError):  # the comparison below says what is missing
        await wait_for(caught_up, wait_s, "trades stored")
    rows = await db_trades(database_url, lo_ms, hi_ms)
    ids = Counter(r[0] for r in rows)
    assert [i for i, n in ids.items() if n > 1] == []  # no duplicate
    missing = sorted(
        (truth[i]["timestamp"], i, truth[i]["instrument_name"]) for i in set(truth) - set(ids)
    )
    extra = sorted(set(ids) - set(truth))
    if extra:
        known = fake.truth.trade_by_id
        print("EXTRA", [(r, known.get(r[0], {}).get("timestamp")) for r in rows if r[0] in extra])
    if missing:
        gaps = await query(database_url, "SELECT * FROM data_gaps ORDER BY gap_start")
        print("MISSING", len(missing), missing[0], missing[-1], "\n".join(map(str, gaps)))
    assert (missing, extra) == ([], [])  # no loss, nothing invented
    for trade_id, name, seq, price, amount, direction, ts in rows:
        t = truth[trade_id]
        assert (name, seq, price, amount, direction, ts) == (
            t["instrument_name"],
            t["trade_seq"],
            t["price"],
            t["amount"],
            t["direction"],
            t["timestamp"],
        )


@pytest.fixture
async def fake_hour() -> AsyncIterator[Callable[..., Any]]:
    async with sim_fakes(SPEED) as make:

        async def hour(
            config: MarketConfig | None = None, faults: Faults | None = None
        ) -> FakeDeribit:
            return await make(config or hour_market(), faults)

        yield hour


@pytest.fixture
async def stalls() -> AsyncIterator[LoopStalls]:
    watch = LoopStalls().start()
    yield watch
    watch.stop()


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
