"""Marks attached to quote rows (issue 11, scenario 11): a recorded `markprice.options` frame
with one bad element still gives every good element's mark, the bad one counted and kept; a
mark older than MARK_MAX_AGE_S is not attached; a disconnect of the socket that carries the
markprice channel clears the marks. Real router, real writer, real database."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from scripts.clock import Clock
from scripts.collectors.realtime.collector import OptionsRealtimeCollector
from scripts.collectors.realtime.router import MARK_MAX_AGE_S
from scripts.config import load_settings
from scripts.deribit.limiter import LimiterSet
from scripts.deribit.protocol import Notification, parse_frame
from scripts.deribit.rest import DeribitRestClient
from scripts.storage.migrate import apply_schema
from scripts.storage.writer import BatchWriter

RECEIVED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def recorded_marks(shared_data: Path) -> Notification:
    line = (shared_data / "ws_markprice_options.jsonl").read_text().splitlines()[0]
    frame = parse_frame(line)
    assert isinstance(frame, Notification)
    return frame


def quote(name: str, ts_ms: int) -> dict[str, Any]:
    return {
        "instrument_name": name,
        "timestamp": ts_ms,
        "best_bid_price": 0.01,
        "best_bid_amount": 1.0,
        "best_ask_price": 0.02,
        "best_ask_amount": 2.0,
    }


async def stored_marks(url: str) -> dict[tuple[str, int], tuple[Any, Any]]:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT instrument_name, (extract(epoch from timestamp) * 1000)::bigint, mark_iv, "
            "mark_price FROM btc_option_quotes"
        )
        return {(r[0], r[1]): (r[2], r[3]) for r in await cur.fetchall()}


async def test_good_marks_of_a_frame_are_used_stale_and_disconnected_ones_are_not(
    database_url: str, shared_data: Path, tmp_path: Path
) -> None:
    apply_schema(database_url, ["BTC"])
    settings = load_settings(
        {
            "DATABASE_URL": database_url,
            "CURRENCY": "BTC",
            "DERIBIT_WS_URL": "ws://127.0.0.1:9/ws/api/v2",
            "DERIBIT_REST_URL": "http://127.0.0.1:9",
            "SPOOL_DIR": str(tmp_path / "spool"),
        }
    )
    clock = Clock()
    writer = BatchWriter(database_url, collector_name="ws-btc", currency="BTC", version="t")
    rest = DeribitRestClient(
        "http://127.0.0.1:9",
        limiter=LimiterSet.build(clock, requests_per_s=5, burst=5),
        clock=clock,
    )
    collector = OptionsRealtimeCollector(
        settings, writer=writer, rest=rest, clock=clock, client_version="t"
    )
    collector.pool.add_channels(collector.fixed_channels)  # the sockets exist, not started
    route = collector.router.on_notification

    frame = recorded_marks(shared_data)
    data = copy.deepcopy(frame.data)
    bad = data[2]["instrument_name"]
    data[2]["iv"] = "not a number"  # one bad element among five
    route(frame.channel, data, RECEIVED)
    ts = data[0]["timestamp"]
    good = [p["instrument_name"] for i, p in enumerate(data) if i != 2]
    for name in good[:2]:
        route(f"quote.{name}", quote(name, ts + 1000), RECEIVED)
    route(f"quote.{bad}", quote(bad, ts + 1000), RECEIVED)
    # Older than the stated age: not attached.
    stale_ms = ts + int(MARK_MAX_AGE_S * 1000) + 1
    route(f"quote.{good[2]}", quote(good[2], stale_ms), RECEIVED)
    # The socket carrying markprice drops: the marks it gave are forgotten.
    markprice_socket = collector.pool.owner[collector.fixed_channels[1]]
    collector._on_disconnect(markprice_socket, "test: connection lost")
    route(f"quote.{good[3]}", quote(good[3], ts + 2000), RECEIVED)
    await writer.drain(5)

    rows = await stored_marks(database_url)
    want = {p["instrument_name"]: (p["iv"] * 100, p["mark_price"]) for p in data[:2]}
    for name in good[:2]:
        iv, price = rows[(name, ts + 1000)]
        assert (round(iv, 6), price) == (round(want[name][0], 6), want[name][1])
    assert rows[(bad, ts + 1000)] == (None, None)
    assert rows[(good[2], stale_ms)] == (None, None)
    assert rows[(good[3], ts + 2000)] == (None, None)
    rejects = collector.rejects
    assert rejects.rejected_messages == 1
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        kept = await (
            await conn.execute("SELECT channel, reason FROM rejected_messages")
        ).fetchall()
    assert len(kept) == 1 and kept[0][0] == frame.channel and "markprice[2]" in kept[0][1]
    await rest.close()
