"""When a socket asks the exchange again for the channels it refused (see ws.py).

Deribit leaves a channel it will not serve out of the subscribe ack, without an error. The
refusal may be passing (a listing not live yet, a hiccup on its side), so the socket asks
again on the same connection after the retry policy's backoff (`scripts/retry.py`):
REFUSED_RETRY_BASE_S doubling up to REFUSED_RETRY_CAP_S (wall seconds), reset once a round
refuses nothing. Each retry pays
its subscribe credits like any subscribe, so retries never risk a 10028.
"""

from __future__ import annotations

import random
import time

from scripts.retry import backoff_delay

REFUSED_RETRY_BASE_S = 1.0
REFUSED_RETRY_CAP_S = 60.0


class RefusedRetry:
    """The retry schedule of one socket's refused channels (monotonic wall time)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.rounds = 0  # refusals in a row: the backoff's exponent
        self.due_at: float | None = None

    def refused(self) -> float:
        """A round refused channels: schedules the next retry; returns its delay."""
        delay = max(
            REFUSED_RETRY_BASE_S,
            backoff_delay(
                self.rounds, base_s=REFUSED_RETRY_BASE_S, cap_s=REFUSED_RETRY_CAP_S, rng=self.rng
            ),
        )
        self.rounds += 1
        self.due_at = time.monotonic() + delay
        return delay

    def reset(self) -> None:
        """Nothing is refused any more (or the socket is new): the next refusal starts over."""
        self.rounds = 0
        self.due_at = None

    def due(self) -> bool:
        """True once (the retry is consumed) when the scheduled retry time has come."""
        if self.due_at is None or time.monotonic() < self.due_at:
            return False
        self.due_at = None
        return True
