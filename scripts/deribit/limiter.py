"""Deribit's credit limits as token buckets, metered on a `Clock` (market time).

Deribit charges every public request credits from a leaky bucket that refills continuously
(shared/docs/deribit-protocol.md §4.1): 500 per request from a pool of 50,000 refilled at
10,000/s, and `public/get_instruments` from a stricter pool (budgeted here at the stricter
documented variant, 1 request per 10 s with a burst of 5). A process meters its own share of
those pools with one `LimiterSet`, built once and passed to every poller, so the exchange never
has to answer 10028. On a `SimClock` the buckets refill at market speed, exactly like the fake
exchange's, so a simulated day keeps the same budget per simulated second.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from scripts.clock import Clock

CREDITS_PER_REQUEST = 500.0
GET_INSTRUMENTS_CREDITS_PER_CALL = 10_000.0
GET_INSTRUMENTS_REFILL_PER_S = 1_000.0  # 1 call per 10 s
GET_INSTRUMENTS_BURST = 5


class CreditLimiter:
    """A token bucket of credits that refills at `refill_per_s` up to `capacity`.

    `acquire` waits (on the clock) until the bucket holds the cost, then spends it. Waiters are
    served first come, first served, so a long poll cannot starve a short one forever.
    """

    def __init__(
        self, refill_per_s: float, capacity: float, clock: Clock, *, name: str = ""
    ) -> None:
        if refill_per_s <= 0 or capacity <= 0:
            raise ValueError(f"limiter {name!r}: refill_per_s and capacity must be > 0")
        self.name = name
        self.refill_per_s = refill_per_s
        self.capacity = capacity
        self._clock = clock
        self._credits = capacity
        self._at = clock.now()
        self._lock = asyncio.Lock()
        self.spent = 0.0
        self.waits = 0

    def available(self) -> float:
        """Credits in the bucket now."""
        now = self._clock.now()
        self._credits = min(
            self.capacity, self._credits + max(0.0, now - self._at) * self.refill_per_s
        )
        self._at = now
        return self._credits

    async def acquire(self, cost: float) -> None:
        """Waits until `cost` credits are available and spends them."""
        if cost > self.capacity:
            raise ValueError(f"limiter {self.name!r}: cost {cost} exceeds capacity {self.capacity}")
        async with self._lock:
            while True:
                missing = cost - self.available()
                if missing <= 0:
                    self._credits -= cost
                    self.spent += cost
                    return
                self.waits += 1
                await asyncio.sleep(
                    max(0.0, self._clock.to_wall_seconds(missing / self.refill_per_s))
                )

    def drain(self) -> None:
        """Empties the bucket: the exchange said we were over (10028), so wait a full refill."""
        self.available()
        self._credits = 0.0


@dataclass(frozen=True, slots=True)
class LimiterSet:
    """The process's limiters, one per metered scope; build once, pass to every client."""

    requests: CreditLimiter
    get_instruments: CreditLimiter

    @classmethod
    def build(
        cls,
        clock: Clock,
        *,
        requests_per_s: float,
        burst: int,
        get_instruments_share: float = 1.0,
    ) -> LimiterSet:
        """Limiters for `requests_per_s` requests (burst `burst`) and a share of get_instruments.

        `get_instruments_share` (0 < share <= 1) scales the get_instruments pool, for when
        several processes behind one IP call it.
        """
        if not 0 < get_instruments_share <= 1:
            raise ValueError("get_instruments_share must be in (0, 1]")
        requests = CreditLimiter(
            requests_per_s * CREDITS_PER_REQUEST,
            burst * CREDITS_PER_REQUEST,
            clock,
            name="requests",
        )
        gi_capacity = max(1.0, GET_INSTRUMENTS_BURST * get_instruments_share)
        get_instruments = CreditLimiter(
            GET_INSTRUMENTS_REFILL_PER_S * get_instruments_share,
            gi_capacity * GET_INSTRUMENTS_CREDITS_PER_CALL,
            clock,
            name="get_instruments",
        )
        return cls(requests, get_instruments)

    def for_method(self, method: str) -> tuple[CreditLimiter, float]:
        """The limiter and the cost of one call of `method` (a name such as "ticker")."""
        if method.rsplit("/", 1)[-1] == "get_instruments":
            return self.get_instruments, GET_INSTRUMENTS_CREDITS_PER_CALL
        return self.requests, CREDITS_PER_REQUEST
