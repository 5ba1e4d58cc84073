"""The trade checkpoint: the exchange time up to which every trade is in the database, kept
across restarts in a small JSON file next to the spool (`{collector}.trades-complete.json`).

Each status round the collector offers the coverage's `complete_through_ms()` (the exchange
time up to which every trade has been handed to the writer). A candidate becomes the
checkpoint once two database flushes have completed after it was offered: the second one began
after it, so it took every row added before. A restart re-reads trades from the older of the
checkpoint and the newest stored trade, so a process killed while a repair was pending or in
flight leaves no hole behind the newest stored trade. Without the file (first run, a new
volume) the newest stored trade is used.

When the writer drops trades (the spool full or failing), candidates not yet written are held
back to the drop's start: they counted those trades as handed over.

Pure: the caller passes wall times in, and the file is `trade_checkpoint_file.py`'s.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

CANDIDATES_KEPT = 600  # one a second waiting for two flushes (the database may be down)


@dataclass(slots=True)
class _Candidate:
    at: float  # wall time it was offered
    mark_ms: int
    first_flush: float | None = None  # the end of the first database flush after `at`


class TradeCheckpoint:
    """The checkpoint of one collector's trades; see the module doc. `on_durable(mark_ms)` is
    called with each new checkpoint (to write it down)."""

    def __init__(self, on_durable: Callable[[int], None] | None = None) -> None:
        self.on_durable = on_durable
        self._candidates: deque[_Candidate] = deque(maxlen=CANDIDATES_KEPT)
        self.durable_ms: int | None = None  # the checkpoint last made durable

    def candidates(self) -> list[int]:
        """The offered marks still waiting for their two flushes, oldest first."""
        return [c.mark_ms for c in self._candidates]

    def offer(self, mark_ms: int | None, last_db_flush_at: float | None, now: float) -> None:
        """Offers `mark_ms` (None: nothing known yet) at wall time `now`; the newest candidate
        that two completed database flushes (`last_db_flush_at`, wall time) have passed becomes
        the checkpoint."""
        if mark_ms is not None:
            self._candidates.append(_Candidate(now, mark_ms))
        if last_db_flush_at is None:
            return
        for c in self._candidates:
            if c.first_flush is None and last_db_flush_at > c.at:
                c.first_flush = last_db_flush_at
        safe: int | None = None
        while self._candidates:
            first = self._candidates[0].first_flush
            if first is None or last_db_flush_at <= first:
                break
            safe = self._candidates.popleft().mark_ms
        if safe is not None and safe != self.durable_ms:
            self.durable_ms = safe
            if self.on_durable is not None:
                self.on_durable(safe)

    def hold_back(self, start_ms: int) -> None:
        """The writer dropped trades from `start_ms` on: no candidate may pass it."""
        for c in self._candidates:
            c.mark_ms = min(c.mark_ms, start_ms)
