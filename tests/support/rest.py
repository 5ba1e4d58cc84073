"""Shared pieces of the REST collector tests: settings for a fake exchange, running a service
in-process on the exchange's clock, waiting on market time, and the calls-per-hour report."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import psycopg

from scripts.config import Settings, load_settings
from tests.support.writer_db import create_schema


def fake_settings(fake: Any, database_url: str, tmp_path: Path, **env: str) -> Settings:
    base = {
        "DATABASE_URL": database_url,
        "CURRENCIES": "BTC",
        "DERIBIT_REST_URL": fake.rest_url,
        "DERIBIT_HISTORY_URL": fake.history_url,
        "DERIBIT_WS_URL": fake.ws_url,
        "SIM_CLOCK": fake.sim_clock_spec(),
        "SPOOL_DIR": str(tmp_path / "spool"),
        "FLUSH_INTERVAL_MS": "100",
        "DRAIN_DEADLINE_S": "10",
        "LOG_LEVEL": "INFO",
    }
    base.update(env)
    return load_settings(base, need_currency="many")


def make_schema(database_url: str, codes: tuple[str, ...]) -> None:
    """The real schema (migrate) when it exists, else the registry's tables (writer_db)."""
    create_schema(database_url, codes)


async def until_market(clock: Any, market_s: float, *, wall_timeout_s: float) -> None:
    """Waits until the clock reaches `market_s` (fails after `wall_timeout_s` of wall time)."""
    deadline = time.monotonic() + wall_timeout_s
    while clock.now() < market_s:
        if time.monotonic() > deadline:
            raise AssertionError(f"market time did not reach {market_s} in {wall_timeout_s}s")
        await asyncio.sleep(min(0.05, max(0.001, clock.to_wall_seconds(market_s - clock.now()))))


async def wait_for(cond: Callable[[], Awaitable[bool]], *, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not await cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        await asyncio.sleep(0.05)


def fetch(database_url: str, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(query, params).fetchall()


def report_calls(label: str, calls: dict[str, int], market_seconds: float) -> str:
    """One printed line: REST calls per method per simulated hour."""
    hours = market_seconds / 3600.0
    per_hour = {m: round(n / hours, 1) for m, n in sorted(calls.items())}
    line = f"[{label}] REST calls per simulated hour over {hours:.2f} h: {per_hour}"
    print(line)
    return line
