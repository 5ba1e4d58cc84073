"""One-minute option bars across a database outage (issue 11, scenario 5): trades the real-time
collector spools during the outage reach the database late, after the bar poller has moved
on; their minutes must still get bars whose volume and count are the recorded trades'.

The real collector process (spool and all) against a private cluster that is stopped under
it, the real `OptionBarsPoller` polling that database every simulated minute in this process.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from scripts.collectors.rest.bars import OptionBarsPoller
from scripts.currencies import currency_spec
from scripts.deribit.limiter import LimiterSet
from scripts.deribit.rest import DeribitRestClient
from tests.support.collector_proc import start_database, stop_database
from tests.support.durability import MINUTE_WALL_S, Collector, market_cut_ms
from tests.support.pgcluster import PgCluster
from tests.support.realtime import (
    hour_market,
    query,
    wait_for,
)

OUTAGE_S = 900.0  # market seconds: longer than the poller's 10 recomputed minutes


async def poll_once(poller: OptionBarsPoller) -> bool:
    """One poll; False when the database refused it (down, or a connection it broke)."""
    try:
        await poller.poll()
    except (psycopg.Error, OSError, TimeoutError):
        return False
    return True


async def test_bars_of_minutes_spooled_during_an_outage_match_the_recorded_trades(
    db: str,
    private_cluster: PgCluster,
    tmp_path: Path,
    fake_hour: Any,
    deployments: list[Collector],
) -> None:
    fake = await fake_hour(hour_market(listing_every_s=None, trade_rate_hz=4.0))
    c = Collector(fake, db, tmp_path, FLUSH_INTERVAL_MS="200", TRADE_REPAIR_MAX_AGE_S="0")
    deployments.append(c)
    await c.apply_schema()
    rest = DeribitRestClient(
        fake.rest_url,
        limiter=LimiterSet.build(fake.clock, requests_per_s=5, burst=5),
        clock=fake.clock,
    )
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        db,
        min_size=1,
        max_size=2,
        open=False,
        timeout=5.0,
        check=AsyncConnectionPool.check_connection,
    )
    await pool.open()
    poller = OptionBarsPoller(
        rest, pool, currency_spec("ETH"), fake.clock, max_lookback_s=7200, fetch_marks=False
    )
    try:
        await c.start()
        start_ms = int(fake.clock.now() * 1000)
        await poller.load_cursor()
        for _ in range(4):
            assert await poll_once(poller)
            await asyncio.sleep(MINUTE_WALL_S)

        await stop_database(private_cluster, "immediate")
        outage_start = fake.clock.now()
        await wait_for(
            lambda: c.status_file().get("last_flush_to") == "spool", 30, "flushes to the spool"
        )
        while fake.clock.now() - outage_start < OUTAGE_S:
            await poll_once(poller)  # fails: the database is down
            await asyncio.sleep(MINUTE_WALL_S)
        # The collector is held (SIGSTOP) while the database comes back, so the poller is
        # back before the spool is replayed: it passes the outage's minutes while their trades
        # are still spooled (the race a slow writer reconnect or a long replay gives).
        assert c.proc is not None
        c.proc.send_signal(signal.SIGSTOP)
        try:
            await start_database(private_cluster)
            await wait_for(lambda: poll_once(poller), 30, "a poll after the outage")
            assert c.status_file().get("spool_bytes", 0) > 0, "the spool was replayed first"
        finally:
            c.proc.send_signal(signal.SIGCONT)
        await wait_for(lambda: c.status_file().get("spool_bytes") == 0, 60, "spool replayed")
        for _ in range(7):  # past the poller's next look a day back (LATE_SCAN_EVERY)
            await asyncio.sleep(MINUTE_WALL_S)
            await poll_once(poller)
        cut_ms = market_cut_ms(fake, 180.0)
        assert await c.stop() == 0
        await poll_once(poller)
    finally:
        await pool.close()
        await rest.close()

    # Every minute from the start to the cut: bars' volume and count are the trades'.
    window = (start_ms - start_ms % 60_000 + 60_000, cut_ms - cut_ms % 60_000)
    trades = await query(
        db,
        "SELECT instrument_name, date_trunc('minute', timestamp), sum(amount), count(*) "
        "FROM eth_option_trades WHERE timestamp >= to_timestamp(%s / 1000.0) "
        "AND timestamp < to_timestamp(%s / 1000.0) GROUP BY 1, 2",
        *window,
    )
    bars = await query(
        db,
        "SELECT instrument_name, timestamp, volume, trade_count FROM options_ohlcv "
        "WHERE currency = 'ETH' AND resolution = '1' AND trade_count > 0 "
        "AND timestamp >= to_timestamp(%s / 1000.0) AND timestamp < to_timestamp(%s / 1000.0)",
        *window,
    )
    want = {(r[0], r[1]): (round(float(r[2]), 9), r[3]) for r in trades}
    got = {(r[0], r[1]): (round(float(r[2]), 9), r[3]) for r in bars}
    outage_minutes = {k for k in want if outage_start <= k[1].timestamp() < outage_start + OUTAGE_S}
    assert len(outage_minutes) >= 10  # the outage's trades are in the check
    wrong = {
        k: (want.get(k), got.get(k)) for k in set(want) | set(got) if want.get(k) != got.get(k)
    }
    assert wrong == {}, f"{len(wrong)} bars differ from the trades: {sorted(wrong.items())[:5]}"
