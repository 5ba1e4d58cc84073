"""The credit limiter: never spends more than the bucket allows, on market time."""

from __future__ import annotations

import asyncio

import pytest

from scripts.clock import SimClock
from scripts.deribit.limiter import (
    CREDITS_PER_REQUEST,
    GET_INSTRUMENTS_CREDITS_PER_CALL,
    CreditLimiter,
    LimiterSet,
)
from tests.fake_deribit.limits import CreditBucket, Limits


def _max_over_window(times: list[float], capacity: int, rate: float) -> float:
    """Largest excess of calls over what a full bucket allows in any window [t_i, t_j]."""
    worst = 0.0
    for i, start in enumerate(times):
        for j in range(i, len(times)):
            allowed = capacity + rate * (times[j] - start)
            worst = max(worst, (j - i + 1) - allowed)
    return worst


async def test_acquire_never_exceeds_burst_plus_refill() -> None:
    clock = SimClock.starting_now(1_700_000_000.0, speed=20.0)
    limiter = CreditLimiter(10 * CREDITS_PER_REQUEST, 5 * CREDITS_PER_REQUEST, clock)
    times: list[float] = []
    start = clock.now()
    for _ in range(30):
        await limiter.acquire(CREDITS_PER_REQUEST)
        times.append(clock.now())
    # 30 calls with a burst of 5 at 10/s need at least 2.5 market seconds
    assert times[-1] - start >= 2.5 - 1e-6
    # times are read after each acquire, so wall-time jitter can shift one call by a little
    assert _max_over_window(times, 5, 10.0) <= 1.0
    assert limiter.waits > 0


async def test_concurrent_pollers_share_one_bucket_and_the_fake_never_refuses() -> None:
    # The exchange's own bucket (the fake's), on the same clock, at Deribit's defaults; the
    # process takes its default share (5 of 20 requests/s, burst 20 of 100), which leaves room
    # for the delay between our acquire and the exchange's charge.
    clock = SimClock.starting_now(1_700_000_000.0, speed=100.0)
    limits = Limits()
    exchange = CreditBucket(clock, limits.credits_max, limits.credits_refill_per_s)
    limiters = LimiterSet.build(clock, requests_per_s=5.0, burst=20)
    refused = 0
    done = 0

    async def poller() -> None:
        nonlocal refused, done
        for _ in range(40):
            limiter, cost = limiters.for_method("ticker")
            await limiter.acquire(cost)
            if not exchange.take(limits.credits_per_request):
                refused += 1
            done += 1

    await asyncio.gather(*(poller() for _ in range(5)))
    assert done == 200
    assert refused == 0


async def test_get_instruments_has_its_own_stricter_scope() -> None:
    clock = SimClock.starting_now(1_700_000_000.0, speed=1000.0)
    limiters = LimiterSet.build(clock, requests_per_s=5.0, burst=20)
    limiter, cost = limiters.for_method("public/get_instruments")
    assert limiter is limiters.get_instruments
    assert cost == GET_INSTRUMENTS_CREDITS_PER_CALL
    assert limiters.for_method("get_tradingview_chart_data") == (
        limiters.requests,
        CREDITS_PER_REQUEST,
    )
    start = clock.now()
    for _ in range(7):  # burst 5, then one per 10 s
        await limiter.acquire(cost)
    assert clock.now() - start >= 20.0 - 1e-6
    assert limiters.requests.spent == 0


async def test_drain_makes_the_next_caller_wait_a_refill() -> None:
    clock = SimClock.starting_now(1_700_000_000.0, speed=1000.0)
    limiter = CreditLimiter(1000.0, 5000.0, clock)
    limiter.drain()
    start = clock.now()
    await limiter.acquire(2000.0)
    assert clock.now() - start >= 2.0 - 1e-6


async def test_cost_above_capacity_is_an_error_not_a_hang() -> None:
    clock = SimClock.starting_now(1_700_000_000.0, speed=1.0)
    limiter = CreditLimiter(10.0, 100.0, clock, name="tiny")
    with pytest.raises(ValueError, match="exceeds capacity"):
        await limiter.acquire(101.0)
