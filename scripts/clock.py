"""Time for schedules, and the one home of time conversions.

A clock is the system clock, or a simulated one that runs faster: it maps wall time to market
time as ``sim_now = sim_start + (wall_now - wall_start) * speed``; the fake exchange and the
collectors built with the same ``SIM_CLOCK`` value agree on it without talking. Exchange
timestamps in rows always come from the exchange; the clock only decides when to poll and
stamps `received_at`. To wait, sleep `clock.to_wall_seconds(market_seconds)`.

The conversions between epoch seconds or milliseconds and aware UTC datetimes are here too, so
that every module converts the same way (the parsers in `normalize/` keep a bound
`datetime.fromtimestamp` on the per-message path, one call fewer per row). No I/O: the pure
layers may import this module.
"""

from __future__ import annotations

import math
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

    def utc_now(self) -> datetime:
        """Market time now, as an aware UTC datetime (what `received_at` stores)."""
        return utc_from_s(self.now())

    def to_wall_seconds(self, market_seconds: float) -> float:
        """Wall seconds that `market_seconds` of market time last."""
        return market_seconds / self.speed


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


def utc_from_ms(ms: float) -> datetime:
    """Epoch milliseconds (Deribit's timestamps) as a timezone-aware UTC datetime."""
    return datetime.fromtimestamp(ms / 1000, UTC)


def ms_from_utc(at: datetime) -> int:
    """An aware datetime as epoch milliseconds, truncated towards zero."""
    return int(at.timestamp() * 1000)


def floor_ms_from_utc(at: datetime) -> int:
    """An aware datetime as epoch milliseconds, rounded down (the millisecond it falls in)."""
    return math.floor(at.timestamp() * 1000)
