"""BatchWriter: the one writer every collector shares.

Collectors call `add`/`add_many` (synchronous, a list append) and run `run(stop)` as one task.
Rows are buffered per table and flushed by size or time; each flush round is one transaction
holding every table's rows and the `collector_status` upsert.

Policies:
- Memory: at most `max_buffered_rows` rows wait in memory. Beyond that (database slow or
  down) the buffers go to the spool on the spot, inside `add`; the caller never waits.
- Database down (OperationalError, pool or transaction timeout, missing table): the round's
  rows go to the spool, every later round spools too, and the database is retried with capped
  jittered backoff. Once it answers, the spool is replayed in order, exactly once, before any
  new rows.
- Spool full, absent or failing: rows go to `rows_dropped` + `data_gaps` + `on_rows_lost`
  (a repair path re-reads the window); see `losses`.
- A row the database refuses (bad value): the batch is bisected down to that row, which is
  kept in `rejected_messages`; the rest is written.
- `drain`: buffered rows go to the database, or to the spool when the database cannot take
  them before the deadline; then state 'stopped'.
- COMMIT outcome unknown (connection lost, or the wait timing out during a slow commit): every
  transaction inserts its batch id into `writer_batches` first; the rows are spooled with that
  id, and replay looks it up before writing them (see `replay`), so nothing is written twice.
- Stop requested during a spool replay: the replay stops between transactions and the rest
  stays spooled for the next start (`drain` must finish within its deadline).

Spool replay lives in `replay`, what happens to rows the database cannot take in `losses`,
the transactions both write through in `txn`.
Known limits: rows of a flush that fails after `add` already spilled newer rows join the spool
after those. `drain` closes the spool; rows added after it go straight to the spool.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from psycopg_pool import AsyncConnectionPool

from scripts.models import GapRow
from scripts.runtime import wait_any
from scripts.storage import copy, status
from scripts.storage.losses import LossAccounting
from scripts.storage.pool import RetrySchedule
from scripts.storage.replay import SpoolReplayer
from scripts.storage.spool import Spool
from scripts.storage.tables import DATA_GAPS, TableSpec
from scripts.storage.txn import TRANSIENT_ERRORS, Unwritten, WriterDb

log = logging.getLogger(__name__)

Batch = copy.Batch


class _Buffer:
    __slots__ = ("currency", "rows", "spec", "transform", "writer")

    def __init__(self, spec: TableSpec, currency: str | None, writer: BatchWriter) -> None:
        self.spec, self.currency = spec, currency
        self.rows: list[tuple] = []
        self.writer = writer
        self.transform: Callable[[list[tuple]], list[tuple]] | None = None

    def add(self, row: tuple) -> None:
        """`BatchWriter.add` for this table, without finding the buffer again."""
        w = self.writer
        if w._buffered >= w.max_buffered_rows or w._closed:
            w._overflow()
        rows = self.rows
        rows.append(row)
        w._buffered += 1
        if len(rows) == w.flush_max_rows:
            w._wake.set()


class BatchWriter:
    """Buffers rows per table and writes them by binary COPY; see the module doc for policies."""

    def __init__(
        self,
        database: str | AsyncConnectionPool[Any],
        *,
        collector_name: str,
        currency: str | None,
        version: str,
        flush_interval_ms: int = 1000,
        flush_max_rows: int = 5000,
        max_buffered_rows: int = 200_000,
        spool: Spool | None = None,
        drain_deadline_s: float = 20.0,
        status_file: Path | None = None,
        db_timeout_s: float = 30.0,
        retry_base_s: float = 0.5,
        retry_max_s: float = 30.0,
        on_previous_run: Callable[[status.PreviousRun], None] | None = None,
        on_rows_lost: Callable[[GapRow], None] | None = None,
        writer_status: status.WriterStatus | None = None,
    ) -> None:
        """`writer_status`: the service's status object (a new one when None)."""
        self.collector_name = collector_name
        self.flush_interval_s = flush_interval_ms / 1000.0
        self.flush_max_rows = flush_max_rows
        self.max_buffered_rows = max_buffered_rows
        self.spool = spool
        self.drain_deadline_s = drain_deadline_s
        self.status_file = status_file
        self.db_timeout_s = db_timeout_s
        self.on_previous_run = on_previous_run
        self.status = writer_status or status.WriterStatus(collector_name, currency, version)
        self.previous_run: status.PreviousRun | None = None
        self.max_buffered_seen = 0
        self._buffers: dict[tuple[str, str | None], _Buffer] = {}
        self._buffered = 0
        self.losses = LossAccounting(
            collector_name,
            spool,
            self.status,
            frame_rows=flush_max_rows,
            on_rows_lost=on_rows_lost,
        )
        self._held_gaps = self.losses.held_gaps
        self.db = WriterDb(
            database,
            collector_name=collector_name,
            writer_status=self.status,
            spool=spool,
            losses=self.losses,
        )
        self._stop: asyncio.Event | None = None
        self.replayer = (
            SpoolReplayer(
                self.db,
                self.losses,
                spool,
                flush_max_rows * 4,
                stop_requested=lambda: self.stop_requested,
            )
            if spool
            else None
        )
        self._wake = asyncio.Event()
        self._closed = False
        self._contacted = False
        self._retry = RetrySchedule(retry_base_s, retry_max_s)
        # Read before this run overwrites it: it may know of a clean stop the DB never saw.
        self._prev_file = status.read_status_file_or_none(status_file)

    # ---- intake (synchronous, O(1)) -------------------------------------------------------
    @property
    def on_rows_lost(self) -> Callable[[GapRow], None] | None:
        """Hears of every loss window (a collector may set it after construction)."""
        return self.losses.on_rows_lost

    @on_rows_lost.setter
    def on_rows_lost(self, hook: Callable[[GapRow], None] | None) -> None:
        self.losses.on_rows_lost = hook

    @property
    def stop_requested(self) -> bool:
        return self._stop is not None and self._stop.is_set()

    @property
    def buffered_rows(self) -> int:
        return self._buffered

    def add(self, spec: TableSpec, currency: str | None, row: tuple) -> None:
        """Buffers one row for `spec`'s table of `currency` (None for shared tables)."""
        self._buffer(spec, currency).add(row)

    def appender(self, spec: TableSpec, currency: str | None) -> Callable[[tuple], None]:
        """`add` bound to one table: for a caller that adds many rows to it, one at a time."""
        return self._buffer(spec, currency).add

    def _buffer(self, spec: TableSpec, currency: str | None) -> _Buffer:
        buf = self._buffers.get((spec.name_template, currency))
        if buf is None:
            buf = self._buffers[(spec.name_template, currency)] = _Buffer(spec, currency, self)
        return buf

    def set_batch_transform(
        self,
        spec: TableSpec,
        currency: str | None,
        transform: Callable[[list[tuple]], list[tuple]] | None,
    ) -> None:
        """Runs `transform` on each batch of this table's rows as it leaves the buffer (to
        the database or the spool): per-batch work (vectorized) kept off the per-row `add`.
        It must return as many rows; if it raises, the rows go on unchanged."""
        self._buffer(spec, currency).transform = transform

    def add_many(self, spec: TableSpec, currency: str | None, rows: Iterable[tuple]) -> None:
        for row in rows:
            self.add(spec, currency, row)

    def _overflow(self) -> None:
        why = "writer closed" if self._closed else "memory bound reached"
        self._spool_batches(self._take_buffers(), why)
        self._write_status_file()

    def _take_buffers(self) -> list[Batch]:
        self.max_buffered_seen = max(self.max_buffered_seen, self._buffered)
        batches: list[Batch] = [
            (b.spec, b.currency, self._transformed(b)) for b in self._buffers.values() if b.rows
        ]
        for b in self._buffers.values():
            b.rows = []
        self._buffered = 0
        if self._held_gaps:  # first, so a loss found while spooling merges with a held gap
            batches.insert(0, (DATA_GAPS, None, list(self._held_gaps)))
            self._held_gaps.clear()
        return batches

    def _transformed(self, buf: _Buffer) -> list[tuple]:
        if buf.transform is None:
            return buf.rows
        try:
            rows = buf.transform(buf.rows)
        except Exception:  # a bug in the transform must not lose the rows
            log.exception("writer %s: batch transform failed", self.collector_name)
            return buf.rows
        if len(rows) != len(buf.rows):
            log.error("writer %s: batch transform changed the row count", self.collector_name)
            return buf.rows
        return rows

    def report_waiting(self, reason: str | None) -> None:
        """State "waiting" for the database at start, with why, in the status file (None: go)."""
        self.status.state = "waiting" if reason is not None else "running"
        self.status.waiting_for_database = reason
        if reason is not None:  # not reachable: a status file must not say otherwise
            self.status.db_ok = False
        self._write_status_file()

    # ---- the flush task ---------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Flushes by size or time until `stop` is set, then drains.

        Set `stop` after the collector stopped adding rows; rows added later go to the spool.
        A spool replay under way stops at its next transaction when `stop` is set.
        """
        await self.flush_until(stop)
        await self.drain()

    async def flush_until(self, stop: asyncio.Event) -> None:
        """`run` without the drain: services drain under their own deadline (runtime.py)."""
        self._stop = stop
        await self.db.ensure_pool()
        next_due = time.monotonic() + self.flush_interval_s
        while not stop.is_set():
            limit_s = next_due - time.monotonic()
            if limit_s > 0 and not self._wake.is_set():
                await wait_any((self._wake, stop), limit_s)
            if stop.is_set():
                break
            self._wake.clear()
            next_due = time.monotonic() + self.flush_interval_s
            try:
                await self.flush()
            except Exception:  # a bug must not stop the writer: spool the rows and go on
                log.exception("writer %s: flush round failed", self.collector_name)
                self._spool_batches(self._take_buffers(), "flush round failed")

    async def flush(self, *, txn_timeout_s: float | None = None) -> bool:
        """One round: replay the spool if any, then write the buffers. True if the DB took them."""
        await self.db.ensure_pool()
        limit_s = txn_timeout_s or self.db_timeout_s
        if self._retry.down and not self._retry.due():
            self._spool_batches(self._take_buffers(), "database down")
            self._after_round("spool")
            return False
        unwritten: Unwritten = []
        try:
            if not self._contacted:
                await self._first_contact(limit_s)
            if self.replayer is not None and not await self.replayer.replay(limit_s):
                # Stopped mid-replay: new rows join the spool behind the rest, in order.
                self._spool_batches(self._take_buffers(), "stopping during spool replay")
                self._after_round("spool")
                return False
            batches = self._take_buffers()
            await self.db.write_isolating(batches, limit_s, unwritten)
            await self.db.housekeeping(limit_s, idle=not batches)
        except TRANSIENT_ERRORS as exc:
            self._db_failed(exc)
            for part, batch_id in unwritten:
                self.losses.spool_batches(part, "database unavailable", batch_id)
            self._spool_batches(self._take_buffers(), "database unavailable")
            self._after_round("spool")
            return False
        self._db_recovered()
        self._after_round("db")
        return True

    async def drain(self, deadline_s: float | None = None, *, to_database: bool = True) -> None:
        """Puts every buffered row in the database, or in the spool after the deadline (at
        once, leaving the database alone, with `to_database=False`: it never answered)."""
        if self._closed:
            return
        deadline = time.monotonic() + (
            deadline_s if deadline_s is not None else self.drain_deadline_s
        )
        start_rows = self._buffered + len(self._held_gaps)
        spooled_before = self.status.rows_spooled
        db_rows_before = sum(self.status.rows_by_table.values())
        while self._buffered or self._held_gaps:
            remaining = deadline - time.monotonic()
            spool_busy = self.spool is not None and not self.spool.is_empty
            if remaining < 0.2 or self._retry.down or spool_busy or not to_database:
                # Behind a non-empty spool the rows keep their order by joining it.
                self._spool_batches(self._take_buffers(), "drain")
                break
            # Each transaction is bounded by what is left; one that fails spools its rows.
            try:
                await self.flush(txn_timeout_s=max(0.1, remaining - 0.1))
            except Exception:
                log.exception("writer %s: flush during drain failed", self.collector_name)
                self._spool_batches(self._take_buffers(), "drain")
        self._closed = True
        self.status.state = "stopped"
        remaining = deadline - time.monotonic()
        if not self._retry.down and to_database and remaining > 0.2:
            try:
                await self.db.mark_stopped(remaining)
            except TRANSIENT_ERRORS as exc:
                log.warning(
                    "writer %s: could not record state 'stopped': %s", self.collector_name, exc
                )
        if self.spool is not None:
            self.spool.close()
        self._write_status_file()
        to_db = sum(self.status.rows_by_table.values()) - db_rows_before
        to_spool = self.status.rows_spooled - spooled_before
        log.info(
            "writer %s drained %d rows: %d to the database, %d to the spool (%d bytes); "
            "%d dropped this run",
            *(self.collector_name, start_rows, to_db, to_spool, self.status.spool_bytes),
            self.status.rows_dropped,
        )
        await self.db.close()

    # ---- database ---------------------------------------------------------------------------
    async def _first_contact(self, limit_s: float) -> None:
        """Reads the previous run's status row before this run's first upsert replaces it."""
        prev = await self.db.take_previous_run(limit_s, self._prev_file)
        self._contacted = True
        self.previous_run = prev
        if prev is not None and self.on_previous_run is not None:
            self.on_previous_run(prev)

    # ---- spool and status ---------------------------------------------------------------------
    def _spool_batches(self, batches: list[Batch], why: str) -> None:
        self.losses.spool_batches(batches, why)

    def _db_failed(self, exc: BaseException) -> None:
        if self._retry.failed():
            log.warning("writer %s: database unavailable (%r); spooling", self.collector_name, exc)
        self.status.db_ok = False

    def _db_recovered(self) -> None:
        outage_s = self._retry.recovered()
        if outage_s is not None:
            log.info("writer %s: database back after %.1f s", self.collector_name, outage_s)
        self.status.db_ok = True

    def _after_round(self, to: str) -> None:
        if to == "db" or self.spool is not None:
            now = time.time()
            self.status.last_flush_at = now
            self.status.last_flush_to = to
            if to == "db":
                self.status.last_db_flush_at = now
        self._write_status_file()

    def _write_status_file(self) -> None:
        if self.status_file is None:
            return
        try:
            status.write_status_file(self.status_file, self.status)
        except OSError as exc:
            log.warning(
                "writer %s: cannot write status file %s: %s",
                self.collector_name,
                self.status_file,
                exc,
            )
