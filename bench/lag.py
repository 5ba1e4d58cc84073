"""Lag from the exchange's timestamp to the committed row, sampled on a few probe options.

Every `POLL_S` the probe reads the probe options' rows newer than the last one it saw (index
on instrument_name, "timestamp"). A row first visible in a poll was committed between the
previous poll's start and this one's: its commit time is taken as the midpoint, so each lag is
within ±POLL_S/2. The exchange timestamp is market time; `SimClock` turns it into wall time.
Rows of one option are sent, received and flushed in order, so a per-option watermark finds
every new row.
"""

from __future__ import annotations

import asyncio
import math
import time
from datetime import UTC, datetime
from typing import Any

from psycopg import AsyncConnection, sql

from scripts.clock import SimClock

POLL_S = 0.05
PROBES = 8


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of `values` (q in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def summarize(lags: list[float]) -> dict[str, float]:
    return {
        "p50_s": percentile(lags, 50),
        "p99_s": percentile(lags, 99),
        "max_s": max(lags) if lags else math.nan,
        "samples": float(len(lags)),
    }


class LagProbe:
    """Polls a quotes table for new rows of `instruments`; `lags` holds (commit wall, lag s)."""

    def __init__(self, url: str, table: str, instruments: list[str], clock: SimClock) -> None:
        self.url = url
        self.table = table
        self.instruments = instruments
        self.clock = clock
        self.samples: list[tuple[float, float]] = []
        self.backend_pid: int | None = None
        self.errors = 0

    def _wall(self, market: datetime) -> float:
        c = self.clock
        return c.wall_start + (market.timestamp() - c.sim_start) / c.speed

    def lags_between(self, t0: float, t1: float) -> list[float]:
        return [lag for at, lag in self.samples if t0 <= at < t1]

    async def run(self, stop: asyncio.Event, ready: asyncio.Event | None = None) -> None:
        query = sql.SQL(
            "SELECT p.name, q.ts FROM unnest(%s::text[], %s::timestamptz[]) AS p(name, wm) "
            'CROSS JOIN LATERAL (SELECT "timestamp" AS ts FROM {} '
            'WHERE instrument_name = p.name AND "timestamp" > p.wm) q'
        ).format(sql.Identifier(self.table))
        async with await AsyncConnection.connect(self.url, autocommit=True) as conn:
            row = await (await conn.execute("SELECT pg_backend_pid()")).fetchone()
            self.backend_pid = int(row[0]) if row else None
            if ready is not None:
                ready.set()
            start = datetime.fromtimestamp(self.clock.now(), UTC)
            marks: dict[str, datetime] = dict.fromkeys(self.instruments, start)
            prev = time.time()
            while not stop.is_set():
                now = time.time()
                try:
                    cur = await conn.execute(query, (list(marks), list(marks.values())))
                    rows: list[Any] = await cur.fetchall()
                except Exception:
                    self.errors += 1
                    rows = []
                committed = (prev + now) / 2.0
                for name, ts in rows:
                    self.samples.append((committed, max(0.0, committed - self._wall(ts))))
                    if ts > marks[name]:
                        marks[name] = ts
                prev = now
                await asyncio.sleep(POLL_S)
