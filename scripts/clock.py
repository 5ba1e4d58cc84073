"""Time for schedules: the system clock, or a simulated one that runs faster.

A simulated clock maps wall time to market time as
``sim_now = sim_start + (wall_now - wall_start) * speed``; the fake exchange and the
collectors built with the same ``SIM_CLOCK`` value agree on it without talking. Exchange
timestamps in rows always come from the exchange; the clock only decides when to poll.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime


class Clock:
    """Wall-clock time (speed 1)."""

    speed: float = 1.0

    def now(self) -> float:
        """Seconds since the epoch, market time."""
        return time.time()

    def now_ms(self) -> int:
        return int(self.now() * 1000)

    def to_wall_seconds(self, market_seconds: float) -> float:
        return market_seconds / self.speed

    async def sleep(self, market_seconds: float) -> None:
        await asyncio.sleep(max(0.0, self.to_wall_seconds(market_seconds)))

    async def sleep_until(self, market_time: float) -> None:
        await self.sleep(market_time - self.now())


class SimClock(Clock):
    """Market time running `speed` times faster than the wall, from a fixed origin."""

    def __init__(self, wall_start: float, sim_start: float, speed: float) -> None:
        self.wall_start = wall_start
        self.sim_start = sim_start
        self.speed = speed

    @classmethod
    def starting_now(cls, sim_start: float, speed: float) -> SimClock:
        return cls(time.time(), sim_start, speed)

    @classmethod
    def parse(cls, spec: str) -> SimClock:
        wall, sim, speed = (float(p) for p in spec.split(":"))
        return cls(wall, sim, speed)

    def spec(self) -> str:
        """The SIM_CLOCK value that makes another process agree with this clock."""
        return f"{self.wall_start!r}:{self.sim_start!r}:{self.speed!r}"

    def now(self) -> float:
        return self.sim_start + (time.time() - self.wall_start) * self.speed


def clock_from_spec(spec: str) -> Clock:
    """SimClock for a SIM_CLOCK value, the system clock for an empty one."""
    return SimClock.parse(spec) if spec else Clock()


def utc_from_s(seconds: float) -> datetime:
    """Epoch seconds (market or wall) as a timezone-aware UTC datetime."""
    return datetime.fromtimestamp(seconds, UTC)
