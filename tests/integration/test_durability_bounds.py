"""Durability's bounds, end to end: peak memory during a long outage is set by the buffer, not
the outage; the health check tells from outside how the exchange and the process are.
Helpers: tests/support/durability.py."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from scripts.clock import SimClock
from tests.fake_deribit.market import DEFAULT_START_MS
from tests.fake_deribit.server import FakeDeribit
from tests.support.collector_proc import (
    proc_status_kb,
    start_database,
    stop_database,
)
from tests.support.durability import (
    QUOTES,
    Collector,
    db_status,
)
from tests.support.pgcluster import PgCluster
from tests.support.realtime import (
    SIM_HEARTBEAT_SCALE,
    hour_market,
    query,
    wait_for,
)

# ---- 4. peak memory during a long outage ---------------------------------------------------------
RSS_SPEED = 240.0  # an hour of market in 15 wall seconds
MAX_BUFFERED_ROWS = 5_000
ROW_BYTES = 1024  # a generous in-memory size of one buffered row (tuple, datetimes, floats)
BASE_RSS_KB = 150_000  # interpreter, libraries, the option chain and the sockets


@pytest.mark.slow
async def test_peak_memory_during_a_long_outage_is_bounded_by_the_buffer_not_the_outage(
    db: str, private_cluster: PgCluster, tmp_path: Path, deployments: list[Collector]
) -> None:
    clock = SimClock.starting_now(DEFAULT_START_MS / 1000, RSS_SPEED)
    config = hour_market(listing_every_s=None, quote_rate_hz=20.0, trade_rate_hz=2.0)
    async with FakeDeribit(config, clock=clock, heartbeat_scale=SIM_HEARTBEAT_SCALE) as fake:
        env = {"WRITER_MAX_BUFFERED_ROWS": str(MAX_BUFFERED_ROWS), "FLUSH_INTERVAL_MS": "1000"}
        c = Collector(fake, db, tmp_path, **env)
        deployments.append(c)
        await c.apply_schema()
        await c.start()
        await asyncio.sleep(2.0)
        base_kb = proc_status_kb(c.pid, "VmHWM")

        await stop_database(private_cluster, "fast")
        outage_start = fake.clock.now()
        await wait_for(lambda: c.status_file().get("db_ok") is False, 60, "the outage noticed")

        async def after(wall_s: float) -> tuple[int, int, float]:
            """VmHWM (kB), rows spooled and the outage's market minutes, `wall_s` from now."""
            await asyncio.sleep(wall_s)
            st = c.status_file()
            assert st["db_ok"] is False and st["rows_dropped"] == 0
            minutes = (fake.clock.now() - outage_start) / 60
            return proc_status_kb(c.pid, "VmHWM"), st["rows_spooled"], minutes

        short_kb, short_rows, short_min = await after(4.0)
        # The long outage: until 30,000 more rows came (about an hour of this market).
        await wait_for(
            lambda: c.status_file().get("rows_spooled", 0) >= short_rows + 30_000, 120, "rows"
        )
        long_kb, long_rows, long_min = await after(0.0)
        long_bytes = c.status_file()["spool_bytes"]
        await start_database(private_cluster)
        replay_started = time.monotonic()
        await wait_for(lambda: c.status_file().get("spool_bytes") == 0, 120, "spool replayed")
        replay_s = time.monotonic() - replay_started
        replay_kb = proc_status_kb(c.pid, "VmHWM")
        assert await c.stop() == 0

    bound_kb = BASE_RSS_KB + MAX_BUFFERED_ROWS * ROW_BYTES // 1024
    print(
        f"\nVmHWM: {base_kb / 1024:.0f} MB before the outage, {short_kb / 1024:.0f} MB after "
        f"{short_min:.0f} market minutes ({short_rows} rows spooled), {long_kb / 1024:.0f} MB "
        f"after {long_min:.0f} ({long_rows} rows, {long_bytes / 2**20:.1f} MB spooled), "
        f"{replay_kb / 1024:.0f} MB after the replay ({replay_s:.1f} s); "
        f"bound {bound_kb / 1024:.0f} MB "
        f"(WRITER_MAX_BUFFERED_ROWS={MAX_BUFFERED_ROWS}, FLUSH_INTERVAL_MS=1000, "
        f"SPOOL_MAX_BYTES=1 GiB default, {RSS_SPEED:.0f}x market speed)"
    )
    assert long_rows >= short_rows + 30_000 and short_rows > 0
    # Had those rows stayed in memory, the peak would have grown by some 300 bytes each (a
    # row tuple with its datetimes and floats); it grows by less than half of that (what
    # does grow is bounded elsewhere: e.g. the trade ids remembered to tell repairs from
    # duplicates), and stays under the bound the configuration sets.
    grown_kb = long_kb - short_kb
    assert long_kb / short_kb < 1.25
    assert grown_kb * 1024 < 0.5 * 300 * (long_rows - short_rows), grown_kb
    assert long_kb <= bound_kb and replay_kb <= bound_kb


# ---- 6. health from outside ----------------------------------------------------------------------
async def test_health_check_from_outside_follows_the_exchange_and_the_process(
    db: str,
    tmp_path: Path,
    fake_hour: Any,
    deployments: list[Collector],
) -> None:
    fake = await fake_hour(hour_market(listing_every_s=None))
    c = Collector(fake, db, tmp_path, FLUSH_INTERVAL_MS="200")
    deployments.append(c)
    await c.apply_schema()
    await c.start()
    strict = {"HEALTH_MAX_DISCONNECTED_S": "2", "HEALTH_MAX_FLUSH_AGE_S": "2"}
    assert await c.health(**strict) == (0, "healthy")

    async def unhealthy_because(prefix: str) -> str:
        lines: list[str] = []

        async def says() -> bool:
            code, line = await c.health(**strict)
            lines.append(line)
            return code == 1 and line.startswith(prefix)

        await wait_for(says, 60, f"health check saying {prefix!r} (said {lines[-3:]})")
        return lines[-1]

    # The exchange refuses connections (503 on the upgrade): unhealthy after 2 s, although
    # the collector goes on flushing.
    fake.faults.refuse_connections_until = time.time() + 3600
    await fake.drop_all_connections()
    line = await unhealthy_because("unhealthy: not connected to Deribit for ")
    assert c.status_file()["last_flush_at"] > time.time() - 2
    print(line)
    fake.faults.refuse_connections_until = None
    await wait_for(lambda: c.status_file().get("connected") is True, 60, "reconnected")
    assert await c.health(**strict) == (0, "healthy")
    # The exchange is gone altogether (its port closed).
    await fake.stop()
    print(await unhealthy_because("unhealthy: not connected to Deribit for "))
    # The process is killed: its last flush grows old.
    await c.kill()
    print(await unhealthy_because("unhealthy: last flush "))
    st = await db_status(db)
    assert st["state"] == "running" and st["connected"] is False  # as the dead process left it
    assert st["reconnects"] >= 2 and st["gaps_total"] >= 1
    gaps = await query(db, "SELECT reason FROM data_gaps WHERE table_name = %s", QUOTES)
    assert any(r[0].startswith("websocket down") for r in gaps)
