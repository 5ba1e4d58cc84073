"""Order book snapshots by REST (issue 11, open question on `get_order_book`'s timestamp):
Deribit stamps the reply with the time of the book's last change, so a book that did not
change between two polls answers the same `timestamp` twice; each poll must still store its
row (the fake exchange answers like Deribit)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

from scripts.config import load_settings
from scripts.storage.migrate import apply_settings_schema
from tests.support.realtime import (
    collector_env,
    hour_market,
    query,
    start_collector,
    stop_collector,
    wait_for,
)


async def test_an_unchanged_book_still_gets_a_row_every_interval(
    database_url: str,
    tmp_path: Path,
    fake_hour: Any,
) -> None:
    # Few book changes (quotes and trades move books), a snapshot a minute.
    fake = await fake_hour(
        hour_market(listing_every_s=None, quote_rate_hz=0.02, trade_rate_hz=0.01)
    )
    env = collector_env(fake, database_url, tmp_path / "spool", ORDERBOOK_SNAPSHOT_INTERVAL_S="60")
    settings = load_settings(env)
    await apply_settings_schema(settings)
    run = await start_collector(settings, fake)
    snapshotter = run.collector.snapshotter
    await wait_for(lambda: snapshotter.rounds >= 4, 60, "four rounds of snapshots")
    await asyncio.sleep(1.0)
    assert await stop_collector(run) == 0
    taken = snapshotter.snapshots
    rows = await query(
        database_url,
        "SELECT instrument_name, timestamp, change_id, received_at "
        "FROM eth_option_orderbook_depth ORDER BY instrument_name, timestamp",
    )
    assert len(rows) == taken  # one row per poll, none merged into an earlier one
    by_name: dict[str, list[tuple[Any, ...]]] = {}
    for r in rows:
        by_name.setdefault(r[0], []).append(r)
    unchanged = 0
    for snaps in by_name.values():
        assert len(snaps) >= 4
        for a, b in pairwise(snaps):
            assert b[3] - a[3] >= timedelta(seconds=30)  # polls a round apart, not duplicates
            if a[2] == b[2]:
                unchanged += 1
    # Books that did not change between two polls: the exchange stamped them alike.
    assert unchanged >= 3
