"""`scripts.backfill` against the fake exchange's history: an interrupted run, resumed, ends with
exactly the rows of an uninterrupted one."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from scripts.backfill import parse_args, run_backfill
from scripts.clock import SimClock
from scripts.deribit.limiter import LimiterSet
from tests.fake_deribit.market import MarketConfig
from tests.fake_deribit.server import FakeDeribit
from tests.support.pgcluster import PgCluster
from tests.support.rest import fake_settings, fetch, make_schema, report_calls, wait_for

HOUR_S = 3600
# Every column but the local receive time, which differs between runs by nature.
TABLES = {
    "btc_option_trades": "timestamp, instrument_name, trade_id, trade_seq, price, amount, "
    "contracts, direction, tick_direction, iv, index_price, mark_price, liquidation, "
    "block_trade_id, block_trade_leg_count, block_rfq_id, combo_id, combo_trade_id",
    "perpetuals_ohlcv": "timestamp, instrument_name, currency, resolution, open, high, low, "
    "close, volume, cost",
    "futures_ohlcv": "timestamp, instrument_name, currency, resolution, open, high, low, close, "
    "volume, cost",
    "funding_rates": "timestamp, instrument_name, currency, interest_8h, interest_1h, "
    "index_price, prev_index_price",
    "index_prices": "timestamp, index_name, currency, kind, value",
}


def _market() -> MarketConfig:
    return MarketConfig(
        seed=21,
        currencies=("BTC",),
        expiries=1,
        strikes_per_expiry=2,
        quote_rate_hz=0.05,
        trade_rate_hz=0.05,
        perp_trade_rate_hz=0.05,
        future_trade_rate_hz=0.05,
        history_s=86_400,
        history_trade_rate_hz=0.05,
        ticker_slots=1,
        record_books=False,
    )


def _contents(url: str) -> dict[str, list[tuple[object, ...]]]:
    return {t: fetch(url, f"SELECT {cols} FROM {t} ORDER BY {cols}") for t, cols in TABLES.items()}


@pytest.fixture
def two_databases(pg_cluster: PgCluster) -> Iterator[tuple[str, str]]:
    urls = (pg_cluster.create_database("bf_whole"), pg_cluster.create_database("bf_resumed"))
    try:
        yield urls
    finally:
        for url in urls:
            pg_cluster.drop_database(url)


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_interrupted_backfill_resumes_to_the_same_rows(
    two_databases: tuple[str, str], tmp_path: Path
) -> None:
    whole_db, resumed_db = two_databases
    config = _market()
    clock = SimClock.starting_now(config.start_ms / 1000, 5.0)
    start_s = config.start_ms / 1000
    argv = [
        "--currency",
        "BTC",
        "--since",
        _iso(start_s - 20 * HOUR_S),
        "--until",
        _iso(start_s - 2 * HOUR_S),
    ]
    args = parse_args(argv)
    for url in two_databases:
        make_schema(url, ("BTC",))
    async with FakeDeribit(config, clock=clock) as fake:
        # One limiter set for this process, as every process has; slow enough to interrupt.
        limiters = LimiterSet.build(clock, requests_per_s=1.0, burst=1, get_instruments_share=0.4)
        settings = {
            url: fake_settings(
                fake, url, tmp_path / url[-12:], REST_REQUESTS_PER_S="2", REST_BURST="2"
            )
            for url in two_databases
        }
        market_start = clock.now()
        assert (
            await run_backfill(
                settings[whole_db], args, asyncio.Event(), apply_schema=False, limiters=limiters
            )
            == 0
        )

        stop = asyncio.Event()
        interrupted = asyncio.create_task(
            run_backfill(settings[resumed_db], args, stop, apply_schema=False, limiters=limiters)
        )

        async def first_checkpoint() -> bool:
            rows = fetch(
                resumed_db, "SELECT count(*) FROM pg_tables WHERE tablename = 'backfill_progress'"
            )
            if not rows[0][0]:
                return False
            return bool(fetch(resumed_db, "SELECT count(*) FROM backfill_progress")[0][0] >= 1)

        await wait_for(first_checkpoint, timeout_s=60, what="the first checkpoint")
        stop.set()
        assert await asyncio.wait_for(interrupted, 30) == 1  # stopped before the end
        partial = _contents(resumed_db)
        assert 0 < len(partial["btc_option_trades"]) < len(_contents(whole_db)["btc_option_trades"])

        assert (
            await run_backfill(
                settings[resumed_db], args, asyncio.Event(), apply_schema=False, limiters=limiters
            )
            == 0
        )
        report_calls(
            "backfill (3 runs)", dict(fake.stats.rest_calls_by_method), clock.now() - market_start
        )
        assert fake.stats.errors_sent_by_code.get(10028, 0) == 0

        whole = _contents(whole_db)
        resumed = _contents(resumed_db)
        for table in TABLES:
            assert resumed[table] == whole[table], table
        # And the trades are the exchange's, none missing at page boundaries.
        lo, hi = (args.since_ms, args.until_ms)
        truth = sorted(
            t["trade_id"]
            for t in fake.market.trades.currency("BTC", "option").trades
            if lo <= t["timestamp"] < hi
        )
        assert sorted(r[2] for r in whole["btc_option_trades"]) == truth
        assert len(truth) > 1000  # more than one page
        assert len(whole["perpetuals_ohlcv"]) == 18 * 60
        assert len(whole["funding_rates"]) == 18
        assert whole["index_prices"]
        done = fetch(resumed_db, "SELECT what, cursor FROM backfill_progress WHERE what = 'trades'")
        assert '"done": true' in done[0][1]


async def test_more_than_a_page_of_trades_in_one_millisecond_is_backfilled_whole(
    database_url: str, tmp_path: Path
) -> None:
    """The backfill pages trades with the real-time repair's pager: 2,500 trades in one
    millisecond (more than a page of 1,000) are read by `start_id`, each stored once."""
    config = _market()
    # The clock ten market minutes past the market's start: the burst, made at the start, is
    # then in the past, where the backfill reads.
    clock = SimClock.starting_now(config.start_ms / 1000 + 600, 5.0)
    start_s = config.start_ms / 1000
    window = ["--since", _iso(start_s - HOUR_S), "--until", _iso(start_s + 300)]
    args = parse_args(["--currency", "BTC", *window, "--what", "trades"])
    make_schema(database_url, ("BTC",))
    fake = FakeDeribit(config, clock=clock)
    name = next(n for n, i in fake.market.by_name.items() if i.kind == "option")
    burst_ms = fake.market.add_trade_burst(name, 2500)
    async with fake:
        limiters = LimiterSet.build(clock, requests_per_s=50, burst=50)
        settings = fake_settings(fake, database_url, tmp_path)
        run = run_backfill(settings, args, asyncio.Event(), apply_schema=False, limiters=limiters)
        assert await run == 0
        by_id = fake.stats.rest_calls_by_method["public/get_last_trades_by_currency"]
    stored = fetch(
        database_url,
        "SELECT trade_id, (extract(epoch from timestamp) * 1000)::bigint FROM btc_option_trades",
    )
    ids = [r[0] for r in stored]
    assert len(ids) == len(set(ids))  # none twice
    truth = sorted(
        t["trade_id"]
        for t in fake.market.trades.currency("BTC", "option").trades
        if args.since_ms <= t["timestamp"] < args.until_ms
    )
    assert sorted(ids) == truth
    assert sum(1 for _, ms in stored if ms == burst_ms) == 2500
    assert by_id >= 2  # the millisecond was paged by start_id
