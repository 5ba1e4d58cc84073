"""The real-time collector's windows around its own lifecycle (issue 11, scenarios 1, 3, 4):
what happens before the first connect, exchange timestamps from the future, and channels the
exchange refuses. Fake exchange over real sockets, real database."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from typing import Any

from scripts.config import load_settings
from scripts.normalize.future import FUTURE_REASON
from scripts.storage.migrate import apply_settings_schema
from tests.fake_deribit.faults import Faults
from tests.support.realtime import (
    assert_trades_exact,
    collector_env,
    hour_market,
    query,
    start_collector,
    stop_collector,
    wait_for,
)


async def test_a_failed_first_connect_keeps_the_collector_was_not_running_window(
    database_url: str,
    tmp_path: Path,
    fake_hour: Any,
) -> None:
    # The exchange answers 429 to the first upgrades (a NAS booting before DNS is up does
    # the same with an OSError): the first connects fail before any succeeds.
    faults = Faults(refuse_connections_until=time.time() + 3600.0, refuse_status=429)
    fake = await fake_hour(hour_market(listing_every_s=None), faults)
    settings = load_settings(collector_env(fake, database_url, tmp_path / "spool"))
    await apply_settings_schema(settings)
    # The previous run's newest quote, ten market minutes ago.
    last_ms = int((fake.clock.now() - 600.0) * 1000)
    await query(
        database_url,
        "INSERT INTO eth_option_quotes (timestamp, instrument_name, best_bid_price, "
        "best_bid_amount, received_at) VALUES (to_timestamp(%s / 1000.0), 'ETH-X', 1, 1, now()) "
        "RETURNING 1",
        last_ms,
    )
    starting = asyncio.create_task(start_collector(settings, fake))
    await wait_for(lambda: fake.stats.refused >= 2, 30, "two refused connects")
    faults.refuse_connections_until = None
    run = await starting
    connected_ms = int(fake.clock.now() * 1000)

    async def gaps() -> list[tuple[Any, ...]]:
        return await query(
            database_url,
            "SELECT (extract(epoch from gap_start) * 1000)::bigint, "
            "(extract(epoch from gap_end) * 1000)::bigint, reason FROM data_gaps "
            "WHERE table_name = 'eth_option_quotes' ORDER BY gap_start",
        )

    await wait_for(gaps, 20, "a quotes gap row")
    assert await stop_collector(run) == 0
    rows = await gaps()
    # One window from the newest stored quote to the first connect, whatever failed before.
    assert len(rows) == 1, rows
    start, end, reason = rows[0]
    assert reason == "collector was not running"
    assert start == last_ms and end <= connected_ms


async def test_a_trade_stamped_in_the_future_is_refused_and_repair_keeps_working(
    database_url: str,
    tmp_path: Path,
    fake_hour: Any,
) -> None:
    faults = Faults()
    fake = await fake_hour(hour_market(listing_every_s=None), faults)
    settings = load_settings(collector_env(fake, database_url, tmp_path / "spool"))
    await apply_settings_schema(settings)
    run = await start_collector(settings, fake)
    lo_ms = run.collector.repair_from_ms or 0
    await asyncio.sleep(1.0)
    faults.future_trade_ms = 86_400_000  # one trade a day ahead, on the wire only
    await wait_for(lambda: fake.stats.future_trades_sent == 1, 20, "the future trade sent")
    await asyncio.sleep(1.0)
    drops = fake.stats.dropped_connections
    await fake.drop_all_connections()  # trades sent while it reconnects must be re-read
    assert fake.stats.dropped_connections > drops
    await asyncio.sleep(3.0)
    cut_ms = int((fake.clock.now() - 10.0) * 1000)
    await assert_trades_exact(database_url, fake, lo_ms, cut_ms)
    # Counter keys carry the kind of problem with its numbers replaced (rejects.py).
    kind = re.sub(r"\d+", "N", FUTURE_REASON)
    refused = {r: n for r, n in run.collector.rejects.by_reason.items() if kind in r}
    assert sum(refused.values()) == 1, run.collector.rejects.by_reason
    newest = await query(database_url, "SELECT max(timestamp) FROM eth_option_trades")
    now_ms = int(fake.clock.now() * 1000)
    assert int(newest[0][0].timestamp() * 1000) <= now_ms
    assert (run.collector.coverage.complete_through_ms() or 0) <= now_ms
    assert await stop_collector(run) == 0
    # The next start re-reads from a time in the past, not from the future.
    again = await start_collector(settings, fake)
    assert again.collector.repair_from_ms is not None
    assert again.collector.repair_from_ms <= int(fake.clock.now() * 1000)
    assert await stop_collector(again) == 0


async def test_refused_channels_are_asked_again_and_their_absence_is_recorded(
    database_url: str,
    tmp_path: Path,
    fake_hour: Any,
) -> None:
    fake = await fake_hour(hour_market(listing_every_s=None))
    option = fake.market.instruments("ETH", "option", False)[0]["instrument_name"]
    trades_channel = "trades.option.ETH.100ms"
    refused = {trades_channel, f"quote.{option}"}
    fake.faults.refuse_channels = set(refused)
    settings = load_settings(collector_env(fake, database_url, tmp_path / "spool"))
    await apply_settings_schema(settings)
    started_ms = int(fake.clock.now() * 1000)
    run = await start_collector(settings, fake)
    # Asked again on the same socket (no reconnect), with backoff.
    await wait_for(lambda: fake.stats.refused_channels >= 3 * len(refused), 30, "asked again")
    refused_until_ms = int(fake.clock.now() * 1000)
    assert fake.stats.connections == 1
    fake.faults.refuse_channels = set()
    session = max(fake.sessions, key=lambda x: x.conn_id)
    await wait_for(lambda: refused <= session.channels, 30, "the refused channels subscribed")
    await asyncio.sleep(2.0)
    cut_ms = int((fake.clock.now() - 10.0) * 1000)
    # Trades: the markprice stream on the same socket did not close the first start's window;
    # the trades channel did, once it flowed, and everything from the first start's horizon
    # was re-read.
    await assert_trades_exact(database_url, fake, run.collector.repair_from_ms or 0, cut_ms)
    unrepaired = await query(
        database_url,
        "SELECT count(*) FROM data_gaps WHERE table_name = 'eth_option_trades' AND NOT repaired",
    )
    assert unrepaired == [(0,)]
    assert await stop_collector(run) == 0
    assert fake.stats.connections == 1
    # Quotes of the refused channel: its absence is a recorded gap.
    gaps = await query(
        database_url,
        "SELECT scope, (extract(epoch from gap_start) * 1000)::bigint, "
        "(extract(epoch from gap_end) * 1000)::bigint, reason, repaired FROM data_gaps "
        "WHERE table_name = 'eth_option_quotes'",
    )
    mine = [g for g in gaps if g[0] == option]
    assert len(mine) == 1, gaps
    _, start, end, reason, repaired = mine[0]
    assert "refused" in reason and not repaired
    assert started_ms <= start <= started_ms + 120_000 and end >= refused_until_ms


async def test_trades_of_an_option_that_expired_during_an_outage_are_repaired_from_history(
    database_url: str,
    tmp_path: Path,
    fake_hour: Any,
) -> None:
    # The nearest expiry 1200 market seconds after the start; the socket is refused from
    # shortly before it to well after it, so its last trades are missed by the stream and
    # can only be read once the option has expired (the main host no longer has them).
    fake = await fake_hour(hour_market(listing_every_s=None, first_expiry_in_s=1200.0))
    expiring = [
        i
        for i in fake.market.instruments("ETH", "option", False)
        if i["expiration_timestamp"]
        == min(j["expiration_timestamp"] for j in fake.market.instruments("ETH", "option", False))
    ]
    expiry_ms = expiring[0]["expiration_timestamp"]
    settings = load_settings(collector_env(fake, database_url, tmp_path / "spool"))
    await apply_settings_schema(settings)
    run = await start_collector(settings, fake)
    await wait_for(lambda: fake.clock.now() * 1000 >= expiry_ms - 120_000, 60, "near expiry")
    before = fake.stats.connections
    fake.faults.refuse_connections_until = time.time() + 3600.0
    await fake.drop_all_connections()
    lost_from_ms = int(fake.clock.now() * 1000)
    assert lost_from_ms < expiry_ms - 30_000, "the start took too long to test before expiry"
    await wait_for(lambda: fake.clock.now() * 1000 >= expiry_ms + 60_000, 60, "past expiry")
    fake.faults.refuse_connections_until = None
    await wait_for(lambda: fake.stats.connections > before, 60, "reconnected")
    await asyncio.sleep(3.0)
    cut_ms = int((fake.clock.now() - 10.0) * 1000)
    names = {i["instrument_name"] for i in expiring}
    lost = [
        t
        for t in fake.truth.trades
        if t["instrument_name"] in names and lost_from_ms <= t["timestamp"] <= expiry_ms
    ]
    assert lost  # the expiring options traded while the socket was down
    await assert_trades_exact(database_url, fake, lost_from_ms - 60_000, cut_ms)
    assert run.collector.repairer.history_reads >= 1  # the window was read from history too
    assert await stop_collector(run) == 0
