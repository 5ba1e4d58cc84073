"""Deribit's request limits: credit buckets per client IP, frame size, connections per IP.

The numbers are the published ones (shared/docs/deribit-protocol.md §2.5, §3, §4.1); for
`get_instruments` the stricter documented variant (1 request per 10 s, burst 5). Credits
refill on market time (the exchange's clock), so a client that meters itself on the same
`SimClock` never draws a 10028 at any speed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from scripts.clock import Clock

SUBSCRIBE_METHODS = frozenset(
    {
        "public/subscribe",
        "public/unsubscribe",
        "private/subscribe",
        "private/unsubscribe",
    }
)
GET_INSTRUMENTS_METHODS = frozenset({"public/get_instruments"})


@dataclass
class Limits:
    """Every limit the fake enforces; the defaults are Deribit's."""

    credits_max: float = 50_000.0
    credits_refill_per_s: float = 10_000.0
    credits_per_request: float = 500.0
    subscribe_credits_max: float = 30_000.0
    subscribe_credits_refill_per_s: float = 10_000.0
    subscribe_credits_per_call: float = 3_000.0
    get_instruments_credits_max: float = 50_000.0  # burst 5
    get_instruments_credits_refill_per_s: float = 1_000.0  # 1 request per 10 s
    get_instruments_credits_per_call: float = 10_000.0
    max_frame_bytes: int = 32 * 1024
    max_connections_per_ip: int = 32
    credits_enabled: bool = True

    @classmethod
    def unmetered(cls) -> Limits:
        """No credit limits (frame size and connection count still apply)."""
        return cls(credits_enabled=False)


class CreditBucket:
    """A leaky bucket of credits that refills continuously on `clock` (market time)."""

    def __init__(self, clock: Clock, capacity: float, refill_per_s: float) -> None:
        self._clock = clock
        self.capacity = capacity
        self.refill_per_s = refill_per_s
        self._credits = capacity
        self._at = clock.now()

    def available(self) -> float:
        now = self._clock.now()
        elapsed = max(0.0, now - self._at)
        self._credits = min(self.capacity, self._credits + elapsed * self.refill_per_s)
        self._at = now
        return self._credits

    def take(self, cost: float) -> bool:
        """Spend `cost` credits if the bucket holds them; False (and nothing spent) if not."""
        if self.available() < cost:
            return False
        self._credits -= cost
        return True


@dataclass
class _IpState:
    general: CreditBucket
    subscribe: CreditBucket
    get_instruments: CreditBucket
    connections: int = 0


@dataclass
class IpLimiter:
    """Credits and connection slots per client IP, shared by its WS sessions and HTTP calls."""

    limits: Limits
    clock: Clock
    _ips: dict[str, _IpState] = field(default_factory=dict)

    def _state(self, ip: str) -> _IpState:
        state = self._ips.get(ip)
        if state is None:
            lim = self.limits
            state = _IpState(
                CreditBucket(self.clock, lim.credits_max, lim.credits_refill_per_s),
                CreditBucket(
                    self.clock, lim.subscribe_credits_max, lim.subscribe_credits_refill_per_s
                ),
                CreditBucket(
                    self.clock,
                    lim.get_instruments_credits_max,
                    lim.get_instruments_credits_refill_per_s,
                ),
            )
            self._ips[ip] = state
        return state

    def charge(self, ip: str, method: str) -> bool:
        """Charge one request of `method`; False means the caller is over its limit (10028)."""
        if not self.limits.credits_enabled:
            return True
        state = self._state(ip)
        lim = self.limits
        if method in SUBSCRIBE_METHODS:
            return state.subscribe.take(lim.subscribe_credits_per_call)
        if method in GET_INSTRUMENTS_METHODS:
            return state.get_instruments.take(lim.get_instruments_credits_per_call)
        return state.general.take(lim.credits_per_request)

    def open_connection(self, ip: str) -> bool:
        """Take a connection slot; False when the IP already holds the maximum (HTTP 429)."""
        state = self._state(ip)
        if state.connections >= self.limits.max_connections_per_ip:
            return False
        state.connections += 1
        return True

    def close_connection(self, ip: str) -> None:
        state = self._state(ip)
        state.connections = max(0, state.connections - 1)

    def connections(self, ip: str) -> int:
        return self._state(ip).connections
