"""A database filled by chaintape's own collectors from the fake exchange, for the Grafana tests:
the real-time collector (quotes, trades, books, instruments with listings and expiries, gaps
and rejected frames from injected faults), the REST collector (bars, greeks, indices) and the
funding collector, all in-process on the exchange's simulated clock."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from scripts.clock import SimClock
from scripts.collectors.realtime.service import run_realtime
from scripts.collectors.rest.polls import RealtimeRest
from scripts.collectors.rest.service import RestService
from scripts.config import load_settings
from scripts.funding_rates_collector import build_funding
from scripts.storage.migrate import apply_schema
from tests.fake_deribit.faults import Faults
from tests.fake_deribit.market import MarketConfig
from tests.fake_deribit.server import FakeDeribit
from tests.support.realtime import SIM_HEARTBEAT_SCALE
from tests.support.rest import until_market

SPEED = 120.0  # market seconds per wall second: the real-time collector keeps up on 2 cores
MARKET_S = 3600.0


@dataclass(frozen=True)
class Recorded:
    start: datetime  # market time the collectors started
    end: datetime  # market time they stopped


def market() -> MarketConfig:
    return MarketConfig(
        seed=14,
        currencies=("BTC",),
        expiries=3,
        strikes_per_expiry=6,
        quote_rate_hz=10.0,
        trade_rate_hz=1.0,
        listing_every_s=1200.0,
        first_expiry_in_s=1500.0,
        history_s=86_400.0,
        block_trade_probability=0.1,
    )


async def record(
    database_url: str, tmp_path: Path, grafana_user: str, grafana_password: str
) -> Recorded:
    """Migrates (with the read-only role), then runs the three collectors for MARKET_S."""
    config = market()
    await asyncio.to_thread(
        apply_schema,
        database_url,
        ["BTC"],
        grafana_user=grafana_user,
        grafana_password=grafana_password,
        schedule_policies=False,
    )
    clock = SimClock.starting_now(config.start_ms / 1000, SPEED)
    # A malformed frame now and then (rejected_messages) and a dropped connection every 8 wall
    # seconds (reconnects, gaps in quotes).
    faults = Faults(malformed_rate=0.002, drop_every_s=8.0, seed=14)
    async with FakeDeribit(
        config, clock=clock, faults=faults, heartbeat_scale=SIM_HEARTBEAT_SCALE
    ) as fake:
        base = {
            "DATABASE_URL": database_url,
            "DERIBIT_WS_URL": fake.ws_url,
            "DERIBIT_REST_URL": fake.rest_url,
            "DERIBIT_HISTORY_URL": fake.history_url,
            "SIM_CLOCK": fake.sim_clock_spec(),
            "FLUSH_INTERVAL_MS": "200",
            "DRAIN_DEADLINE_S": "10",
            "DATA_WATCHDOG_S": "3",
            "TRADE_REPAIR_MAX_AGE_S": "7200",
            "ORDERBOOK_SNAPSHOT_INTERVAL_S": "300",
            "OHLCV_POLL_INTERVAL_S": "60",
            "INDEX_POLL_INTERVAL_S": "60",
            "GREEKS_POLL_INTERVAL_S": "600",
            "FUNDING_POLL_INTERVAL_S": "600",
            "LOG_LEVEL": "WARNING",
        }
        ws = load_settings({**base, "CURRENCY": "BTC", "SPOOL_DIR": str(tmp_path / "ws")})
        rest = load_settings(
            {**base, "CURRENCIES": "BTC", "SPOOL_DIR": str(tmp_path / "rest")},
            need_currency="many",
        )
        funding = load_settings(
            {**base, "CURRENCIES": "BTC", "SPOOL_DIR": str(tmp_path / "funding")},
            need_currency="many",
        )
        stop = asyncio.Event()
        start_s = clock.now()
        tasks = [
            asyncio.create_task(run_realtime(ws, stop, clock=clock, apply_schema=False)),
            asyncio.create_task(
                RestService(rest, "rest", RealtimeRest(stop).build, clock=clock,
                            apply_schema=False).run(stop)
            ),
            asyncio.create_task(
                RestService(funding, "funding", build_funding, clock=clock,
                            apply_schema=False).run(stop)
            ),
        ]  # fmt: skip
        await until_market(clock, start_s + MARKET_S, wall_timeout_s=MARKET_S / SPEED + 120)
        faults.drop_every_s = None
        await asyncio.sleep(2)
        end_s = clock.now()
        stop.set()
        codes = await asyncio.wait_for(asyncio.gather(*tasks), 120)
        assert codes == [0, 0, 0], codes
    return Recorded(datetime.fromtimestamp(start_s, UTC), datetime.fromtimestamp(end_s, UTC))
