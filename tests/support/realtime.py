"""What the real-time collector's integration tests share: fake exchanges on a simulated clock,
and quotes put in the form their rows store, to compare what the fake sent with the database."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from scripts.clock import SimClock
from tests.fake_deribit.faults import Faults
from tests.fake_deribit.market import DEFAULT_START_MS, MarketConfig
from tests.fake_deribit.server import FakeDeribit

MakeFake = Callable[..., Awaitable[FakeDeribit]]


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
        fake = FakeDeribit(config, clock=clock, faults=faults, heartbeat_scale=0.05)
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
