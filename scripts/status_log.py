"""One status line per STATUS_LOG_INTERVAL_S from each long-running process, so a user watching
the log sees it work: per table rows/s over the interval and the total since start, the lag
exchange -> received (p50/p99 of the interval's samples), reconnects, open gaps, spool bytes
and REST requests and credits used.

The real-time router samples the lag once per socket read (`LagSamples.add`), never per
message, so the hot path does not pay for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable

from scripts.deribit.protocol import credit_spec
from scripts.storage.status import WriterStatus

log = logging.getLogger("scripts.status")

MAX_LAG_SAMPLES = 20_000


class LagSamples:
    """Recent lags in seconds (bounded); `take` empties it for the next interval."""

    def __init__(self, maxlen: int = MAX_LAG_SAMPLES) -> None:
        self._samples: deque[float] = deque(maxlen=maxlen)

    def add(self, lag_s: float) -> None:
        self._samples.append(lag_s)

    def take(self) -> list[float]:
        out = sorted(self._samples)
        self._samples.clear()
        return out


def percentile(sorted_values: list[float], q: float) -> float | None:
    """The q-quantile (0..1) by nearest rank; None for no values."""
    if not sorted_values:
        return None
    rank = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[rank]


def credits_used(calls: dict[str, int]) -> int:
    """Deribit credits the counted REST calls cost (`calls`: method without `public/`)."""
    return sum(n * credit_spec(f"public/{method}").cost for method, n in calls.items())


class StatusLine:
    """Builds the status line from counters; keeps the previous totals for the rates."""

    def __init__(
        self,
        name: str,
        status: WriterStatus,
        *,
        rest_calls: Iterable[dict[str, int]] = (),
        lag: LagSamples | None = None,
        open_gaps: Callable[[], int] | None = None,
    ) -> None:
        self.name = name
        self.status = status
        self.rest_calls = list(rest_calls)
        self.lag = lag
        self.open_gaps = open_gaps
        self._prev: dict[str, int] = dict(status.rows_by_table)
        self._prev_at = time.monotonic()

    def render(self, now: float | None = None) -> str:
        now = time.monotonic() if now is None else now
        span = max(now - self._prev_at, 1e-9)
        st = self.status
        tables = []
        for table, total in sorted(st.rows_by_table.items()):
            rate = (total - self._prev.get(table, 0)) / span
            tables.append(f"{table} {rate:,.1f} rows/s ({total:,} total)")
        self._prev, self._prev_at = dict(st.rows_by_table), now
        parts = [", ".join(tables) or "no rows yet"]
        if self.lag is not None:
            lags = self.lag.take()
            p50, p99 = percentile(lags, 0.5), percentile(lags, 0.99)
            parts.append(
                f"lag p50 {p50:.2f} s p99 {p99:.2f} s"
                if p50 is not None and p99 is not None
                else "lag n/a (no messages)"
            )
        if st.connected is not None:
            parts.append(f"reconnects {st.reconnects}")
        if self.open_gaps is not None:
            parts.append(f"open gaps {self.open_gaps()}")
        parts.append(f"gaps recorded {st.gaps_total}")
        parts.append(f"spool {st.spool_bytes:,} B")
        if self.rest_calls:
            calls: dict[str, int] = {}
            for counter in self.rest_calls:
                for method, n in counter.items():
                    calls[method] = calls.get(method, 0) + n
            parts.append(
                f"REST {sum(calls.values()):,} requests, {credits_used(calls):,} credits used"
            )
        db = "db ok" if st.db_ok else "db down: spooling"
        return f"status {self.name}: {'; '.join(parts)}; {db}"


async def log_status_every(interval_s: float, line: StatusLine, stop: asyncio.Event) -> None:
    """Logs `line` every `interval_s` wall seconds until `stop` (nothing when 0)."""
    if interval_s <= 0:
        return
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_s)
        if stop.is_set():
            return
        try:
            log.info("%s", line.render())
        except Exception:  # a status line must never stop a collector
            log.exception("status %s: cannot build the status line", line.name)
