"""The real-time collector under faults: drops, a stall, SIGKILL and restarts, bad frames."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from scripts.collectors.realtime_service import apply_settings_schema
from scripts.config import load_settings
from tests.conftest import REPO_ROOT
from tests.fake_deribit.faults import Faults
from tests.integration.test_realtime_collector import (
    SPEED,
    assert_trades_exact,
    collector_env,
    db_quotes,
    fake_hour,  # noqa: F401 (fixture)
    hour_market,
    query,
    sent_quotes,
    start_collector,
    stop_collector,
    wait_for,
)


def spawn(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    full = {**os.environ, **env, "PYTHONPATH": str(REPO_ROOT)}
    with log.open("ab") as out:  # the child keeps its own descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "scripts.ws_tick_collector_multi"],
            env=full,
            cwd=REPO_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def wait_connected(fake: Any, n_sessions_before: int) -> None:
    await wait_for(
        lambda: (
            fake.stats.connections > n_sessions_before
            and any(len(s.channels) > 4 for s in fake.sessions)
        ),
        40,
        "collector subscribed",
    )


@pytest.mark.slow
async def test_drops_stall_and_two_sigkills_lose_no_trade_and_record_every_gap(
    database_url: str,
    tmp_path: Path,
    fake_hour: Any,  # noqa: F811
) -> None:
    faults = Faults(skip_book_change=3, seed=3)
    fake = await fake_hour(hour_market(listing_every_s=1200.0), faults)
    env = collector_env(fake, database_url, tmp_path / "spool", DATA_WATCHDOG_S="1")
    await apply_settings_schema(load_settings(env))
    log = tmp_path / "collector.log"
    step_s = 600 / SPEED  # ten simulated minutes per phase
    proc = spawn(env, log)
    try:
        await wait_connected(fake, 0)
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
            proc = spawn(env, log)
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


async def test_malformed_frames_at_1_percent_are_counted_and_trades_still_exact(
    database_url: str,
    tmp_path: Path,
    fake_hour: Any,  # noqa: F811
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
