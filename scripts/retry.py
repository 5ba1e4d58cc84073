"""The one retry policy: capped exponential backoff with jitter.

The n-th retry (n from 0) waits `base_s * 2**n`, capped at `cap_s`, jittered:

- full jitter (uniform over [0, delay]) where many clients retry the same server, so they
  spread out: the exchange's sockets (`deribit/ws.py` reconnects, `deribit/ws_retry.py`
  refused channels) and its REST API (`deribit/rest.py`, through the `backoff` library, which
  is given `delays` and applies the same full jitter);
- half jitter (uniform over [delay / 2, delay]) where a retry must never be immediate: the
  database (`storage/pool.py`'s `RetrySchedule`).

A schedule resets only on success. Pure: the caller owns the clock and the random source.
"""

from __future__ import annotations

import random
from collections.abc import Generator
from typing import Any, Literal

Jitter = Literal["full", "half"]
_MAX_EXPONENT = 30  # 2**30 times any base is past every cap


def capped_delay(attempt: int, *, base_s: float, cap_s: float) -> float:
    """The un-jittered wait before retry `attempt` (0 for the first)."""
    return min(cap_s, base_s * 2 ** min(max(attempt, 0), _MAX_EXPONENT))


def backoff_delay(
    attempt: int,
    *,
    base_s: float,
    cap_s: float,
    rng: random.Random | None = None,
    jitter: Jitter = "full",
) -> float:
    """The wait before retry `attempt` (0 for the first), jittered, in seconds."""
    delay = capped_delay(attempt, base_s=base_s, cap_s=cap_s)
    uniform = (rng or random).uniform
    return uniform(0.0, delay) if jitter == "full" else uniform(delay / 2, delay)


def delays(base_s: float, cap_s: float) -> Generator[float, Any, None]:
    """The un-jittered waits as a `backoff` wait generator (`backoff.on_exception(delays,
    ..., base_s=..., cap_s=..., jitter=backoff.full_jitter)`)."""
    yield  # type: ignore[misc]  # the library primes its generators with send(None)
    attempt = 0
    while True:
        yield capped_delay(attempt, base_s=base_s, cap_s=cap_s)
        attempt += 1
