"""What the live trade stream delivered: `TradeWatch` (see trade_repair.py's module doc).

The newest trade timestamp seen (every trade up to it was sent before it on the same socket,
so a window that starts there misses nothing; never past the receive clock), `trade_seq` per
instrument (a jump above 1 is a hole, re-read by sequence number), and the recent trade ids
(to tell recovered trades from duplicates). Per-instrument state is dropped for instruments
that are gone (`forget`, see expiry.py).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import NamedTuple

from scripts.clock import ms_from_utc
from scripts.models import TradeRow

SEEN_IDS_MAX = 200_000
SEQS_PER_INSTRUMENT = 2000  # trade ids remembered to tell recovered trades from duplicates


class SeqHole(NamedTuple):
    instrument_name: str
    start_seq: int
    end_seq: int
    start_ms: int
    end_ms: int


class TradeWatch:
    """What the live stream delivered: newest timestamp, trade_seq per instrument, recent ids."""

    def __init__(self) -> None:
        self.last_seq: dict[str, tuple[int, int]] = {}  # instrument -> (trade_seq, ts_ms)
        self.newest_ms: int | None = None
        self.seen_ids: OrderedDict[str, None] = OrderedDict()
        self.seqs: dict[str, set[int]] = {}  # recent trade_seqs seen per instrument

    def observe(self, rows: list[TradeRow], *, stream: bool = True) -> list[SeqHole]:
        """Records rows (from the stream, or re-read: `stream=False`); returns the
        `trade_seq` holes stream rows reveal that no earlier read has filled."""
        holes: list[SeqHole] = []
        for row in rows:
            ts_ms = int(row.timestamp.timestamp() * 1000 + 0.5)
            if stream and (self.newest_ms is None or ts_ms > self.newest_ms):
                # Never past the receive clock: a window starting there would skip trades
                # (timestamps far ahead are refused before they get here).
                self.newest_ms = min(ts_ms, ms_from_utc(row.received_at))
            self._remember(row.trade_id)
            seq = row.trade_seq
            if seq is None:
                continue
            name = row.instrument_name
            seen = self.seqs.setdefault(name, set())
            seen.add(seq)
            if len(seen) > SEQS_PER_INSTRUMENT:
                floor = max(seen) - SEQS_PER_INSTRUMENT // 2
                seen.difference_update([s for s in seen if s < floor])
            last = self.last_seq.get(name)
            if last is None or seq > last[0]:
                self.last_seq[name] = (seq, ts_ms)
            hole = stream and last is not None and seq > last[0] + 1
            if hole and last is not None and not self.filled(name, last[0] + 1, seq - 1):
                holes.append(SeqHole(name, last[0] + 1, seq - 1, last[1], ts_ms))
        return holes

    def forget(self, names: list[str]) -> None:
        """Drops the trade_seq state of instruments that are gone (expired)."""
        for name in names:
            self.seqs.pop(name, None)
            self.last_seq.pop(name, None)

    def filled(self, name: str, start_seq: int, end_seq: int) -> bool:
        """True when every trade_seq in [start_seq, end_seq] of `name` was seen."""
        seen = self.seqs.get(name, set())
        return end_seq - start_seq < SEQS_PER_INSTRUMENT and all(
            s in seen for s in range(start_seq, end_seq + 1)
        )

    def _remember(self, trade_id: str) -> None:
        seen = self.seen_ids
        seen[trade_id] = None
        if len(seen) > SEEN_IDS_MAX:
            seen.popitem(last=False)
