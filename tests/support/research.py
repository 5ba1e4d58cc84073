"""A database filled by the real collectors from the fake exchange, for the research tests.

The real-time collector (quotes, trades, book snapshots, instruments; dropped connections give
`data_gaps`, malformed frames `rejected_messages`) and the REST collectors (bars, greeks,
indices, funding) run in-process on the fake exchange's simulated clock for about 40 market
minutes, then stop. Everything is then read back by the tests through the exporter and loader.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import psycopg

from scripts.collectors.rest.polls import RealtimeRest
from scripts.collectors.rest.service import RestService
from scripts.config import load_settings
from scripts.funding_rates_collector import build_funding
from scripts.storage.migrate import apply_settings_schema
from tests.fake_deribit.faults import Faults
from tests.support.realtime import (
    collector_env,
    hour_market,
    sim_fakes,
    start_collector,
    stop_collector,
)
from tests.support.rest import fake_settings

SPEED = 120.0  # a market minute per half wall second
RUN_WALL_S = 20.0


async def populate(database_url: str, tmp_path: Path) -> None:
    config = hour_market(
        quote_rate_hz=8.0,
        trade_rate_hz=1.0,
        strikes_per_expiry=3,
        listing_every_s=None,
        first_expiry_in_s=None,
        history_s=2 * 3600.0,
    )
    faults = Faults(malformed_rate=0.003, drop_every_s=7.0, seed=4)
    async with sim_fakes(SPEED) as make:
        fake = await make(config, faults=faults)
        env = collector_env(
            fake, database_url, tmp_path / "spool-ws", ORDERBOOK_SNAPSHOT_INTERVAL_S="120"
        )
        settings = load_settings(env)
        await apply_settings_schema(settings)
        run = await start_collector(settings, fake)
        rest_settings = fake_settings(
            fake,
            database_url,
            tmp_path,
            CURRENCIES="ETH",
            SPOOL_DIR=str(tmp_path / "spool-rest"),
            FUNDING_BACKFILL_HOURS="6",
        )
        stop = asyncio.Event()
        services = [
            RestService(rest_settings, "rest", RealtimeRest(stop).build, clock=fake.clock),
            RestService(rest_settings, "funding", build_funding, clock=fake.clock),
        ]
        tasks = [asyncio.create_task(s.run(stop)) for s in services]
        await asyncio.sleep(RUN_WALL_S)
        stop.set()
        codes = await asyncio.wait_for(asyncio.gather(*tasks), 60)
        assert codes == [0, 0], codes
        assert await stop_collector(run) == 0


def counts(database_url: str, tables: list[str]) -> dict[str, int]:
    with psycopg.connect(database_url) as conn:
        return {
            t: int(conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0])  # type: ignore[index]
            for t in tables
        }


def fetch_all(database_url: str, query: str, params: tuple[Any, ...] = ()) -> list[tuple]:
    with psycopg.connect(database_url) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        return conn.execute(query, params).fetchall()  # type: ignore[arg-type]
