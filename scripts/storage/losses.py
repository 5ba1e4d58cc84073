"""Where rows go when the database cannot take them: the spool, or an accounted loss.

Every row handed over ends in exactly one place: the spool (`rows_spooled`), or, when the
spool refuses it (full, absent, or an I/O error at open, write, fsync or rotation), in
`rows_dropped` with its window in `data_gaps` (scope "spool_full") and `on_rows_lost` told, so
a collector with a repair path (trades: REST) re-reads the window. Gap rows themselves are
never dropped: they stay in memory until the database takes them. A row the database refuses
(a bad value) is replaced by its `rejected_messages` row.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from scripts.models import GapRow, RejectedMessageRow
from scripts.storage import status
from scripts.storage.copy import Batch, split_batches
from scripts.storage.spool import Spool, SpoolBatch, split_rows
from scripts.storage.tables import DATA_GAPS, REJECTED_MESSAGES, TableSpec

log = logging.getLogger(__name__)


class LossAccounting:
    """Spools batches for one writer and accounts for every row the spool refuses."""

    def __init__(
        self,
        collector_name: str,
        spool: Spool | None,
        writer_status: status.WriterStatus,
        *,
        frame_rows: int,
        on_rows_lost: Callable[[GapRow], None] | None,
    ) -> None:
        self.collector_name = collector_name
        self.spool = spool
        self.status = writer_status
        self.frame_rows = frame_rows
        self.on_rows_lost = on_rows_lost
        self.held_gaps: list[GapRow] = []
        self.open_losses: dict[str, datetime] = {}  # table -> start of its loss window

    def spool_batches(self, batches: list[Batch], why: str, batch_id: int = 0) -> None:
        """Spools `batches` (rows of transaction `batch_id` when its outcome is unknown)."""
        frames: list[tuple[TableSpec, SpoolBatch]] = [
            (spec, SpoolBatch(spec.name_template, currency, chunk, batch_id))
            for spec, currency, rows in batches
            for chunk in split_rows(rows, self.frame_rows)
        ]
        durable = self.spool.append_many([f for _, f in frames]) if self.spool else 0
        now = datetime.now(UTC)
        for i, (spec, frame) in enumerate(frames):
            if i < durable:
                self.status.rows_spooled += len(frame.rows)
                self.open_losses.pop(spec.table_name(frame.currency), None)
            elif spec is DATA_GAPS:  # tiny, and the record of every loss: kept until written
                self.held_gaps.extend(frame.rows)  # type: ignore[arg-type]
            else:
                self._record_loss(spec, frame.currency, frame.rows, why, now)
        if self.spool is not None:
            self.status.spool_bytes = self.spool.bytes_used

    def _record_loss(
        self, spec: TableSpec, currency: str | None, rows: list[tuple], why: str, now: datetime
    ) -> None:
        self.status.rows_dropped += len(rows)
        # An I/O error counts as full (Spool.io_errors tells them apart in the status).
        reason = "spool full: rows dropped" if self.spool is not None else "no spool: rows dropped"
        held = self.held_gaps
        gap, new = status.record_loss(held, self.open_losses, spec, currency, rows, reason, now)
        if self.on_rows_lost is not None:
            try:
                self.on_rows_lost(gap)
            except Exception:  # the caller's bug must not stop the writer
                log.exception("writer %s: on_rows_lost failed", self.collector_name)
        if new:
            self.status.note_gap()
            log.error(
                "writer %s: DROPPING rows of %s from %s (%s, %s); the window goes to data_gaps, "
                "the count to rows_dropped (%d so far)",
                *(self.collector_name, spec.table_name(currency), held[-1].gap_start, why),
                reason,
                self.status.rows_dropped,
            )

    def split_refused(self, part: list[Batch], exc: Exception) -> list[list[Batch]]:
        """What to try next of a part the database refused: its halves, or, once it is one
        row, that row's `rejected_messages` row (none when that row was itself one)."""
        halves = split_batches(part)
        if halves is not None:
            return halves
        spec, currency, rows = part[0]
        if spec is REJECTED_MESSAGES:
            self.status.note_rejected()
            return []
        return [[(REJECTED_MESSAGES, None, [self.rejected_row(spec, currency, rows[0], exc)])]]

    def rejected_row(
        self, spec: TableSpec, currency: str | None, row: tuple, exc: Exception
    ) -> RejectedMessageRow:
        """The `rejected_messages` row that replaces a row the database refused (counted)."""
        reason = f"database refused row for {spec.table_name(currency)}: {exc}"[:500]
        log.error("writer %s: %s", self.collector_name, reason)
        self.status.note_rejected()
        return RejectedMessageRow(
            datetime.now(UTC),
            self.collector_name,
            spec.table_name(currency),
            reason,
            repr(row)[:8192],
        )
