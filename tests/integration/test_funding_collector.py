"""The funding collector against the fake exchange and a real database, on simulated time."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from scripts.clock import SimClock
from scripts.collectors.rest.service import RestService
from scripts.funding_rates_collector import build_funding
from tests.fake_deribit.market import MarketConfig
from tests.fake_deribit.server import FakeDeribit
from tests.support.rest import (
    fake_settings,
    fetch,
    make_schema,
    report_calls,
    until_market,
)

HOUR_S = 3600.0
SPEED = 1200.0  # a market hour per 3 wall seconds: the fake market keeps up


def _market() -> MarketConfig:
    return MarketConfig(
        seed=5,
        currencies=("BTC", "ETH"),
        expiries=1,
        strikes_per_expiry=1,
        quote_rate_hz=0.05,
        trade_rate_hz=0.01,
        perp_trade_rate_hz=0.01,
        future_trade_rate_hz=0.01,
        history_s=3 * 86_400,
        history_trade_rate_hz=0.0,
        ticker_slots=1,
        record_books=False,
    )


def _exchange_history(
    fake: FakeDeribit, perp: str, start_ms: int, end_ms: int
) -> list[tuple[Any, ...]]:
    rows = fake.rest.handle(
        "public/get_funding_rate_history",
        {"instrument_name": perp, "start_timestamp": start_ms, "end_timestamp": end_ms},
    )
    return [
        (
            r["timestamp"],
            r["interest_8h"],
            r["interest_1h"],
            r["index_price"],
            r["prev_index_price"],
        )
        for r in rows
    ]


def _stored(database_url: str, perp: str) -> list[tuple[Any, ...]]:
    return [
        (int(ts.timestamp() * 1000), i8, i1, ip, pip)
        for ts, i8, i1, ip, pip in fetch(
            database_url,
            "SELECT timestamp, interest_8h, interest_1h, index_price, prev_index_price "
            "FROM funding_rates WHERE instrument_name = %s ORDER BY timestamp",
            (perp,),
        )
    ]


async def _run_for(fake: FakeDeribit, settings: Any, until_s: float) -> RestService:
    stop = asyncio.Event()
    service = RestService(settings, "funding", build_funding, clock=fake.clock, apply_schema=False)
    task = asyncio.create_task(service.run(stop))
    await until_market(fake.clock, until_s, wall_timeout_s=60)
    stop.set()
    assert await asyncio.wait_for(task, 30) == 0
    return service


async def test_funding_matches_exchange_history_with_48h_backfill_and_restart(
    database_url: str, tmp_path: Path
) -> None:
    config = _market()
    clock = SimClock.starting_now(config.start_ms / 1000, SPEED)
    make_schema(database_url, ("BTC", "ETH"))
    async with FakeDeribit(config, clock=clock) as fake:
        settings = fake_settings(
            fake,
            database_url,
            tmp_path,
            CURRENCIES="BTC,ETH",
            FUNDING_POLL_INTERVAL_S="600",
            FUNDING_BACKFILL_HOURS="48",
        )
        t0 = clock.now()
        first = await _run_for(fake, settings, t0 + 2 * HOUR_S)
        # Down for an hour, then up again: the restart reads from the newest stored row.
        await until_market(clock, clock.now() + HOUR_S, wall_timeout_s=30)
        second = await _run_for(fake, settings, clock.now() + 2 * HOUR_S)
        end_ms = min(clock.now_ms(), fake.market.now_ms)
        calls = first.parts.rest.calls + second.parts.rest.calls  # type: ignore[union-attr]
        report_calls("funding collector", dict(calls), clock.now() - t0 - HOUR_S)
        assert fake.stats.errors_sent_by_code.get(10028, 0) == 0

        backfill_from_ms = int((t0 - 48 * HOUR_S) * 1000)
        for perp in ("BTC-PERPETUAL", "ETH-PERPETUAL"):
            stored = _stored(database_url, perp)
            # The newest hour may have appeared after the last poll (up to 10 minutes).
            expected = _exchange_history(fake, perp, backfill_from_ms, end_ms - 600_000)
            assert len(expected) >= 48 + 4
            assert stored[: len(expected)] == expected
            assert stored == _exchange_history(fake, perp, backfill_from_ms, stored[-1][0])
            assert stored[0][0] - backfill_from_ms < 3_600_000  # the 48 h backfill at start
        # Counted per perpetual: one call per poll, no more.
        assert calls["get_funding_rate_history"] <= 2 * (2 * 2 * 6 + 4)
