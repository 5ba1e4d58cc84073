"""Issue 11 scenario 7: one greeks row per option per hour, however often the collector restarts.

The greeks poller reads the fake exchange's `ticker` over real HTTP and writes through a real
writer; "restarts" are new pollers and writers (as after a process restart) in the same hour.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from scripts.clock import SimClock
from scripts.collectors.rest.catalog import RestCatalog
from scripts.collectors.rest.greeks import GreeksPoller
from scripts.currencies import currency_spec
from scripts.deribit.limiter import LimiterSet
from scripts.deribit.rest import DeribitRestClient
from scripts.storage.migrate import apply_schema
from scripts.storage.writer import BatchWriter
from tests.fake_deribit.market import MarketConfig
from tests.fake_deribit.server import FakeDeribit
from tests.support.rest import fetch, make_schema

HOUR_S = 3600.0
RESTARTS = 3


def _market() -> MarketConfig:
    return MarketConfig(
        seed=7,
        currencies=("BTC",),
        expiries=2,
        strikes_per_expiry=2,
        quote_rate_hz=0.05,
        trade_rate_hz=0.01,
        history_s=3600,
        ticker_slots=1,
        record_books=False,
    )


async def _one_run(fake: FakeDeribit, clock: SimClock, database_url: str) -> int:
    """A collector's life: start, read every option's greeks once, stop."""
    writer = BatchWriter(database_url, collector_name="rest", currency=None, version="test")
    limiters = LimiterSet.build(clock, requests_per_s=50, burst=50)
    async with DeribitRestClient(fake.rest_url, limiter=limiters, clock=clock) as rest:
        catalog = RestCatalog(rest, writer, clock, (currency_spec("BTC"),))
        await catalog.refresh_all()
        poller = GreeksPoller(
            rest, writer, catalog, clock, asyncio.Event(), interval_s=HOUR_S, spread_fraction=0.01
        )
        await poller.poll(clock.now())
    assert await writer.flush()
    await writer.drain()
    return poller.rows_written


async def test_restarts_in_the_same_hour_leave_one_greeks_row_per_option(
    database_url: str, tmp_path: Path
) -> None:
    config = _market()
    clock = SimClock.starting_now(config.start_ms / 1000 + 600, 100.0)
    make_schema(database_url, ("BTC",))
    async with FakeDeribit(config, clock=clock) as fake:
        read = [await _one_run(fake, clock, database_url) for _ in range(RESTARTS)]
    per_hour = fetch(
        database_url,
        "SELECT instrument_name, date_trunc('hour', timestamp), count(*) FROM options_greeks "
        "GROUP BY 1, 2 ORDER BY 3 DESC",
    )
    print(f"\ngreeks read per run: {read}; rows per option-hour: {[r[2] for r in per_hour]}")
    assert all(n > 0 for n in read)
    assert per_hour and all(n == 1 for _, _, n in per_hour), per_hour[:3]


def test_migration_keeps_the_first_greeks_row_of_each_option_hour(database_url: str) -> None:
    make_schema(database_url, ("BTC",))
    # The table as it was before 012: greeks stamped with the ticker's time, restarts doubled.
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM schema_migrations WHERE filename = '012_greeks_one_per_hour.sql'")
        conn.execute("ALTER TABLE options_greeks DROP COLUMN ticker_timestamp")
        for name, minute in [("A", 1), ("A", 31), ("A", 59), ("A", 61), ("B", 2), ("B", 45)]:
            conn.execute(
                "INSERT INTO options_greeks (timestamp, instrument_name, currency, delta) "
                "VALUES ('2025-03-01 12:00:00+00'::timestamptz + make_interval(mins => %s), "
                "%s, 'BTC', %s)",
                (minute, name, float(minute)),
            )
    apply_schema(database_url, ["BTC"], schedule_policies=False)
    got = fetch(
        database_url,
        "SELECT instrument_name, timestamp, ticker_timestamp, delta FROM options_greeks "
        "ORDER BY 1, 2",
    )
    hour = datetime(2025, 3, 1, 12, tzinfo=UTC)
    want = [
        ("A", hour, hour + timedelta(minutes=1), 1.0),
        ("A", hour + timedelta(hours=1), hour + timedelta(minutes=61), 61.0),
        ("B", hour, hour + timedelta(minutes=2), 2.0),
    ]
    assert got == want
