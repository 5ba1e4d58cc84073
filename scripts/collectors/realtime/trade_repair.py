"""Trades without gaps: notice what the stream missed, re-read it through REST, record the rest.

The live stream is `trades.option.{api_currency}.100ms`. Trades go missing when the socket
drops, when the process is down, and when a frame cannot be read; this module finds each
such window and re-reads it (shared/docs/deribit-protocol.md §7-8):

- `TradeWatch` (trade_watch.py) follows the stream: the newest trade timestamp seen (every
  trade up to it was sent before it on the same socket, so a window that starts there misses
  nothing) and `trade_seq` per instrument (a jump above 1 is a hole: re-read by sequence
  number).
- `TradeRepairer` re-reads windows by time and instrument holes by `trade_seq` (the paging is
  in collectors/trade_pages.py; windows, merged, in trade_windows.py), deduplicated by trade_id.
  Rows go to the writer; `{cur}_option_trades` is unique on (trade_id, timestamp), so what
  the stream already delivered is skipped by the database. Requests wait for REST credits.
- A repaired window is recorded in `data_gaps` with repaired=True when it was a disconnect or
  a restart, or when it recovered trades the stream had not delivered; a window that cannot
  be read (REST keeps failing, older than TRADE_REPAIR_MAX_AGE_S) with repaired=False.
- Trades the writer dropped (spool full during a long database outage) arrive as the
  writer's `data_gaps` row (`request_lost`). They are re-read only once the writer's last
  round went to the database (its spool replayed): re-read earlier, they would only fill the
  spool again. Success records that same row (same key) with repaired=True, which the
  database merges into the writer's repaired=False row.
- `floor_ms()` is the oldest exchange time still queued or being read, for the durable
  "complete through" mark (trade_coverage.py).
- Expired options: Deribit documents no `get_last_trades_*` answer for an option that has
  expired, and its history host (`DERIBIT_HISTORY_URL`, with `include_old=true`) serves every
  trade of every instrument, about 5 s after it happens (protocol notes §13.3). A window from
  before an expiry (any 08:00 UTC, or an expiry the chain saw) to now is therefore read from
  the history host, then its last HISTORY_LAG_MS from the main host (the history host may not
  have the newest seconds yet), de-duplicated by trade_id. The windows of a start, a
  disconnect or a writer's loss are read that way too (options may have expired where the
  chain did not see it). A hole of an expired option (by its name) is read from the history
  host.

Windows wait `settle_s` (market time) before they are read, so trades still on the wire land
first and neighbouring windows merge into one read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable
from datetime import datetime
from typing import Any

from scripts.clock import Clock, floor_ms_from_utc, utc_from_ms
from scripts.collectors.realtime.expiry import expired_names
from scripts.collectors.realtime.trade_watch import SeqHole, TradeWatch
from scripts.collectors.realtime.trade_windows import (
    HISTORY_LAG_MS,
    Window,
    expiry_between,
    gap_key,
    merge_windows,
)
from scripts.collectors.rejects import Rejects
from scripts.collectors.trade_pages import TradePager
from scripts.currencies import CurrencySpec
from scripts.deribit.rest import DeribitRestClient, DeribitRestError
from scripts.models import GapRow, TradeRow
from scripts.normalize.common import MalformedMessage
from scripts.normalize.future import FUTURE_REASON, future_limit
from scripts.normalize.trades import parse_trades_tolerant
from scripts.storage.status import WriterStatus
from scripts.storage.tables import DATA_GAPS, OPTION_TRADES
from scripts.storage.writer import BatchWriter

__all__ = ["SeqHole", "TradeRepairer", "TradeWatch", "Window"]  # (re-exports)

log = logging.getLogger(__name__)


class TradeRepairer:
    """Reads missed windows and instrument holes through REST; see the module doc."""

    def __init__(
        self,
        spec: CurrencySpec,
        *,
        rest: DeribitRestClient,
        writer: BatchWriter,
        clock: Clock,
        watch: TradeWatch,
        max_age_s: float,
        settle_s: float = 2.0,
        history: DeribitRestClient | None = None,
        expired_since: Callable[[int], bool] = lambda start_ms: False,
        status: WriterStatus | None = None,
    ) -> None:
        self.spec = spec
        self.status = (
            status if status is not None else writer.status
        )  # the service's; the writer's when alone
        self.rest = rest
        self.history = history
        self.expired_since = expired_since  # did an option of this chain expire after start?
        self.writer = writer
        self.clock = clock
        self.rejects: Rejects | None = None  # where refused repaired trades are kept
        self.watch = watch
        self.max_age_s = max_age_s
        self.settle_s = settle_s
        self.table = OPTION_TRADES.table_name(spec.code)
        self._windows: list[Window] = []
        self._holes: list[SeqHole] = []
        self._lost: dict[tuple[str, str, datetime, str], GapRow] = {}  # writer's loss rows
        self._wake = asyncio.Event()
        self.windows_repaired = 0
        self.windows_failed = 0
        self.trades_recovered = 0
        self.pager = TradePager(spec.api_currency)
        self.history_reads = 0  # windows also read from the history host
        self.busy = False
        self._reading_from_ms: int | None = None

    @property
    def rest_pages(self) -> int:
        return self.pager.rest_pages

    @property
    def id_pages(self) -> int:
        """Pages read by start_id (a millisecond holding over 1000 trades)."""
        return self.pager.id_pages

    # ---- intake -------------------------------------------------------------------------------
    def request_window(
        self,
        start_ms: int,
        end_ms: int,
        reason: str,
        *,
        always_record: bool = False,
        as_of_s: float | None = None,
    ) -> None:
        """Re-read [start_ms, end_ms] (exchange time, inclusive); what is older than
        TRADE_REPAIR_MAX_AGE_S before `as_of_s` (default now) is recorded, not read."""
        as_of = self.clock.now() if as_of_s is None else as_of_s
        oldest_ms = int((as_of - self.max_age_s) * 1000)
        if start_ms < oldest_ms - 60_000:  # (not for the clock moving while we compute)
            self._record(start_ms, oldest_ms, f"{reason}: older than TRADE_REPAIR_MAX_AGE_S", False)
            start_ms = oldest_ms
        if end_ms < start_ms:
            return
        self._windows.append(Window(start_ms, end_ms, reason, always_record))
        self._wake.set()

    def request_holes(self, holes: list[SeqHole]) -> None:
        if holes:
            self._holes.extend(holes)
            self._wake.set()

    def request_lost(self, gap: GapRow) -> None:
        """The writer dropped trades in `gap`'s window (its `data_gaps` row, repaired=False):
        re-read it once the database takes writes again, then record `gap` as repaired."""
        key = gap_key(gap)
        known = self._lost.get(key)
        if known is None or gap.gap_end > known.gap_end:  # (an extended row: read to its end)
            self._lost[key] = gap

    @property
    def open_windows(self) -> int:
        """Windows, seq holes and lost spans queued for repair (the status line's open gaps)."""
        return len(self._windows) + len(self._holes) + len(self._lost)

    @property
    def pending(self) -> bool:
        return bool(self._windows or self._holes or self._lost or self.busy)

    def floor_ms(self) -> int | None:
        """The oldest exchange time of a window or hole queued or being read, else None."""
        starts = [w.start_ms for w in self._windows] + [h.start_ms for h in self._holes]
        starts += [floor_ms_from_utc(g.gap_start) for g in self._lost.values()]
        if self._reading_from_ms is not None:
            starts.append(self._reading_from_ms)
        return min(starts) if starts else None

    # ---- the worker ---------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 0.5)
            if stop.is_set():
                break
            lost_ready = bool(self._lost) and self.status.db_ok
            if not self._wake.is_set() and not lost_ready:
                continue
            self._wake.clear()
            self.busy = True
            try:
                await self._settle(stop)
                await self.repair_pending()
            finally:
                self.busy = False

    async def _settle(self, stop: asyncio.Event) -> None:
        wall = self.clock.to_wall_seconds(self.settle_s)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), wall)

    async def repair_pending(self) -> None:
        """Reads every queued window and hole now."""
        windows, self._windows = merge_windows(self._windows), []
        holes, self._holes = self._holes, []
        lost: list[GapRow] = []
        if self.status.db_ok:
            lost, self._lost = sorted(self._lost.values(), key=lambda g: g.gap_start), {}
        starts = [w.start_ms for w in windows] + [h.start_ms for h in holes]
        starts += [floor_ms_from_utc(g.gap_start) for g in lost]
        self._reading_from_ms = min(starts) if starts else None
        try:
            for g in lost:
                start_ms, end_ms = (
                    floor_ms_from_utc(g.gap_start),
                    math.ceil(g.gap_end.timestamp() * 1000),
                )
                # (always_record: a long outage may span expiries; see `_use_history`)
                await self._repair_window(Window(start_ms, end_ms, g.reason, True), lost=g)
            for w in windows:
                await self._repair_window(w)
            for h in holes:
                if any(w.start_ms <= h.start_ms and h.end_ms <= w.end_ms for w in windows):
                    continue  # the window read covered it
                await self._repair_hole(h)
        finally:
            self._reading_from_ms = None

    def _use_history(self, w: Window) -> bool:
        """Window `w` is read from the history host too (see the module doc). A start or a
        disconnect window always: options may have expired while this process was not
        listening, and the chain only knows the expiries it saw."""
        if self.history is None:
            return False
        start_ms = w.start_ms
        return (
            w.always_record
            or expiry_between(start_ms, self.clock.now_ms())
            or self.expired_since(start_ms)
        )

    async def _repair_window(self, w: Window, *, lost: GapRow | None = None) -> None:
        """Re-reads `w`; `lost`: the writer's loss row it repairs, recorded repaired=True."""
        start = w.start_ms
        seen: set[str] = set()
        recovered = 0

        def sink(raw: Any) -> int:
            return self._write_fresh(raw, seen)

        try:
            if self.history is not None and self._use_history(w):
                # The history host first, oldest first like the main host (a read cut short
                # by a kill has then stored the oldest trades of every option), then the main
                # host for what the history host may not have yet.
                self.history_reads += 1
                history = {"include_old": True}
                recovered += await self.pager.read_window(
                    self.history, history, start, w.end_ms, sink
                )
                start = max(w.start_ms, w.end_ms - HISTORY_LAG_MS)
            recovered += await self.pager.read_window(self.rest, {}, start, w.end_ms, sink)
        except (DeribitRestError, MalformedMessage, TypeError, ValueError) as exc:
            self.windows_failed += 1
            log.error(
                "%s: trades %s..%s not repaired: %s",
                self.table,
                utc_from_ms(start),
                utc_from_ms(w.end_ms),
                exc,
            )
            self._record(start, w.end_ms, f"{w.reason}: not repaired: {exc}", False)
            return
        self.windows_repaired += 1
        self.trades_recovered += recovered
        if lost is not None:
            log.info(
                "%s: re-read %d trades of %s..%s that the writer had dropped",
                *(self.table, len(seen), lost.gap_start, lost.gap_end),
            )
            now = self.clock.utc_now()
            self.writer.add(DATA_GAPS, None, lost._replace(repaired=True, detected_at=now))
            return
        if recovered or w.always_record:
            log.info("%s: repaired %s (%d trades recovered)", self.table, w.reason, recovered)
            self._record(w.start_ms, w.end_ms, f"{w.reason}: {recovered} trades recovered", True)

    def _write_fresh(self, trades: list[Any], seen: set[str]) -> int:
        """Writes the trades not read before in this window; returns how many were missed."""
        rows = self._rows(trades)
        fresh = [r for r in rows if r.trade_id not in seen]
        seen.update(r.trade_id for r in fresh)
        return self._write(fresh)

    async def _repair_hole(self, h: SeqHole) -> None:
        if self.watch.filled(h.instrument_name, h.start_seq, h.end_seq):
            return  # a window read since the hole was seen filled it
        client, extra = self.rest, {}
        if self.history is not None and expired_names([h.instrument_name], self.clock.now(), 0):
            client, extra = self.history, {"include_old": True}
        try:
            recovered = await self.pager.read_seqs(
                client,
                extra,
                h.instrument_name,
                h.start_seq,
                h.end_seq,
                lambda raw: self._write(self._rows(raw)),
            )
        except (DeribitRestError, MalformedMessage, TypeError, ValueError) as exc:
            self.windows_failed += 1
            self._record(
                h.start_ms,
                h.end_ms,
                f"trade_seq {h.start_seq}..{h.end_seq} of {h.instrument_name}: not repaired: {exc}",
                False,
                h.instrument_name,
            )
            return
        self.trades_recovered += recovered
        self._record(
            h.start_ms,
            h.end_ms,
            f"trade_seq {h.start_seq}..{h.end_seq} missing: {recovered} trades recovered",
            True,
            h.instrument_name,
        )

    def _rows(self, trades: list[Any]) -> list[TradeRow]:
        received_at = self.clock.utc_now()
        rows, errors = parse_trades_tolerant(trades, received_at=received_at)
        for err in errors:
            if self.rejects is not None:  # counted, logged once per kind, kept
                self.rejects.rejected(REPAIR_SOURCE, err.reason, trades, received_at)
            else:
                log.warning("%s: a repaired trade was refused: %s", self.table, err.reason)
        limit = future_limit(received_at)
        if any(r.timestamp > limit for r in rows):
            log.warning("%s: a repaired trade was refused: %s", self.table, FUTURE_REASON)
            rows = [r for r in rows if r.timestamp <= limit]
        prefix = self.spec.instrument_prefix
        return [r for r in rows if r.instrument_name.startswith(prefix)]

    def _write(self, rows: list[TradeRow]) -> int:
        """Writes rows (the database skips known keys); returns how many the stream missed."""
        if not rows:
            return 0
        seen = self.watch.seen_ids
        missed = sum(1 for r in rows if r.trade_id not in seen)
        self.watch.observe(rows, stream=False)
        self.writer.add_many(OPTION_TRADES, self.spec.code, rows)
        return missed

    def _record(
        self, start_ms: int, end_ms: int, reason: str, repaired: bool, scope: str = "all"
    ) -> None:
        now = self.clock.utc_now()
        row = GapRow(
            self.table,
            self.spec.code,
            scope,
            utc_from_ms(start_ms),
            utc_from_ms(end_ms),
            reason,
            repaired,
            now,
        )
        self.writer.add(DATA_GAPS, None, row)
        self.status.note_gap()


REPAIR_SOURCE = "public/get_last_trades_by_currency_and_time"
