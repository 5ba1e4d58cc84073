"""What the real-time collector's integration tests share: fake exchanges on a simulated clock,
and quotes put in the form their rows store, to compare what the fake sent with the database."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from scripts.clock import SimClock
from tests.fake_deribit.faults import Faults
from tests.fake_deribit.market import DEFAULT_START_MS, MarketConfig
from tests.fake_deribit.server import FakeDeribit

MakeFake = Callable[..., Awaitable[FakeDeribit]]

# The fake's heartbeat period per second of the interval a client asks for: a collector's 10 s
# interval becomes 2 s of wall time, so heartbeats run all through a simulated hour, and a
# loaded CI machine that stalls a process for half a second does not close its socket (the
# close itself is proven in test_fake_exchange.py, at a much shorter scale).
SIM_HEARTBEAT_SCALE = 0.2


@contextlib.asynccontextmanager
async def sim_fakes(speed: float) -> AsyncIterator[MakeFake]:
    """`make(config, faults=None, before_start=None)` starts a fake whose market starts at
    DEFAULT_START_MS and runs `speed` times faster than the wall; every fake made stops on exit.
    `before_start(fake)` runs before the fake starts (to shape its market first)."""
    fakes: list[FakeDeribit] = []

    async def make(
        config: MarketConfig,
        faults: Faults | None = None,
        before_start: Callable[[FakeDeribit], None] | None = None,
    ) -> FakeDeribit:
        clock = SimClock.starting_now(DEFAULT_START_MS / 1000, speed)
        fake = FakeDeribit(config, clock=clock, faults=faults, heartbeat_scale=SIM_HEARTBEAT_SCALE)
        if before_start is not None:
            before_start(fake)
        await fake.start()
        fakes.append(fake)
        return fake

    try:
        yield make
    finally:
        for fake in fakes:
            await fake.stop()


class LoopStalls:
    """The wall-time intervals in which this process's event loop did not run (a 5 ms timer
    fired more than 20 ms late): on a loaded machine the loop shared by the fake exchange and
    an in-process collector stops for a moment, and at a simulated speed of 120 half a second
    is a market minute in which neither side could act. A latency measured in market time is
    judged net of these."""

    def __init__(self) -> None:
        self.intervals: list[tuple[float, float]] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> LoopStalls:
        self._task = asyncio.get_running_loop().create_task(self._watch())
        return self

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _watch(self) -> None:
        last = time.time()
        while True:
            await asyncio.sleep(0.005)
            now = time.time()
            if now - last > 0.02:
                self.intervals.append((last, now))
            last = now

    def market_ms_within(self, clock: SimClock, lo_ms: int, hi_ms: int) -> int:
        """The market milliseconds of [lo_ms, hi_ms] that fell in a stall."""

        def wall(ms: int) -> float:
            return clock.wall_start + (ms / 1000 - clock.sim_start) / clock.speed

        lo, hi = wall(lo_ms), wall(hi_ms)
        stalled = sum(max(0.0, min(hi, b) - max(lo, a)) for a, b in self.intervals)
        return int(stalled * clock.speed * 1000)


def quote_key(name: str, ts_ms: int, bp: Any, ba: Any, ap: Any, aa: Any) -> tuple[Any, ...]:
    """A quote as the row stores it: an empty side (amount 0 or null) is NULL, NULL."""
    bid = (None, None) if not ba else (float(bp), float(ba))
    ask = (None, None) if not aa else (float(ap), float(aa))
    return (name, ts_ms, *bid, *ask)


def sent_quote_key(data: dict[str, Any]) -> tuple[Any, ...]:
    """The `quote_key` of a `quote.*` notification's data, as the fake sent it."""
    return quote_key(
        data["instrument_name"],
        data["timestamp"],
        data["best_bid_price"],
        data["best_bid_amount"],
        data["best_ask_price"],
        data["best_ask_amount"],
    )
