"""Issue 11 scenario 6: a quote is stored once, through reconnects, kills and restarts.

Deribit sends the current quote again on every (re)subscribe, stamped with its own time
(deribit-protocol.md section 13); the fake exchange does the same. The collector must not store
that repeat: a duplicate is a second row with the same instrument, timestamp and values.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

from scripts.config import load_settings
from scripts.storage.migrate import apply_settings_schema
from tests.fake_deribit.faults import Faults
from tests.support.collector_proc import spawn_collector
from tests.support.realtime import (
    SPEED,
    collector_env,
    hour_market,
    query,
    wait_connected,
)

DUPLICATES = (
    'SELECT count(*) - count(DISTINCT (instrument_name, "timestamp", best_bid_price, '
    "best_bid_amount, best_ask_price, best_ask_amount)), count(*) FROM eth_option_quotes"
)


async def test_reconnects_and_restarts_store_no_quote_twice(
    database_url: str,
    tmp_path: Path,
    fake_hour: Any,
) -> None:
    faults = Faults(seed=6)
    fake = await fake_hour(hour_market(listing_every_s=1200.0), faults)
    env = collector_env(fake, database_url, tmp_path / "spool", DATA_WATCHDOG_S="1")
    await apply_settings_schema(load_settings(env))
    log = tmp_path / "collector.log"
    step_s = 600 / SPEED
    proc = spawn_collector(env, log)
    try:
        await wait_connected(fake, 0)
        await asyncio.sleep(step_s / 2)
        faults.drop_every_s = 120 / SPEED  # a reconnect every two simulated minutes
        await asyncio.sleep(step_s)
        faults.drop_every_s = None
        await asyncio.sleep(step_s / 4)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            proc.send_signal(sig)
            proc.wait(30)
            before = fake.stats.connections
            proc = spawn_collector(env, log)
            await wait_connected(fake, before)
            await asyncio.sleep(step_s / 2)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    dups, total = (await query(database_url, DUPLICATES))[0]
    print(
        f"\n{total} quote rows, {dups} duplicates; {fake.stats.dropped_connections} drops, "
        "2 restarts (SIGTERM, SIGKILL)"
    )
    assert fake.stats.dropped_connections >= 3 and total > 0
    assert dups == 0
