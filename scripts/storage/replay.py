"""Spool replay: exactly once, in order, interruptible between transactions.

Each group of frames is one transaction that also records the segment's offset
(`spool_offsets`), so a replay cut short by a kill, a lost connection or a stop request
resumes after the last committed part and never writes a row twice:

- A group the database refuses a row of is written again frame by frame, and a frame with the
  refused row in halves down to that row; every part, and the `rejected_messages` row that
  replaces the refused one, commits its own offset `(last whole frame, rows done of the next)`.
- Frames spooled after a COMMIT whose outcome was unknown carry that transaction's batch id.
  Before writing them the id is claimed in `writer_batches` (the claim waits for a transaction
  still holding it); when the original transaction committed, the frames are skipped.
- `stop_requested` is asked before every transaction: on a stop request the rest stays
  spooled for the next start (SIGTERM must not wait for a large spool to empty).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

from psycopg import AsyncConnection

from scripts.storage import copy
from scripts.storage.losses import LossAccounting
from scripts.storage.spool import Spool, SpoolBatch
from scripts.storage.tables import ALL_TABLES, REJECTED_MESSAGES
from scripts.storage.txn import REFUSED_ERRORS, TRANSIENT_ERRORS, WriterDb

log = logging.getLogger(__name__)

SPEC_BY_TEMPLATE = {s.name_template: s for s in ALL_TABLES}
Offset = tuple[int, int]  # (last whole frame's seq, rows done of the next frame)
Frame = tuple[int, int, SpoolBatch]  # (seq, rows of it already in, batch)


class SpoolReplayer:
    """Replays one writer's spool through that writer's transactions."""

    def __init__(
        self,
        db: WriterDb,
        losses: LossAccounting,
        spool: Spool,
        group_rows: int,
        *,
        stop_requested: Callable[[], bool],
    ) -> None:
        self.db = db
        self.losses = losses
        self.collector_name = db.collector_name
        self.should_stop = stop_requested
        self.spool = spool
        self.group_rows = group_rows
        self.transient = TRANSIENT_ERRORS
        self.rows_replayed = 0
        self.rows_skipped_committed = 0  # rows of an unknown COMMIT that had in fact committed
        self._committed_ids: dict[int, bool] = {}

    async def replay(self, limit_s: float) -> bool:
        """Replays sealed segments in order; False when a stop request cut it short."""
        spool = self.spool
        started, replayed_before = time.monotonic(), self.rows_replayed
        try:
            while not spool.is_empty:
                if self.should_stop():
                    return False
                spool.seal()
                offsets = await self.db.in_txn(self._read_offsets, limit_s)
                for segment in spool.segments():
                    if not await self._segment(segment, offsets.get(segment, (0, 0)), limit_s):
                        return False
            return True
        finally:
            n = self.rows_replayed - replayed_before
            if n:
                log.info(
                    "writer %s replayed %d spooled rows in %.1f s%s",
                    self.collector_name,
                    n,
                    time.monotonic() - started,
                    "" if spool.is_empty else f"; {spool.bytes_used} bytes still spooled",
                )

    async def _segment(self, segment: int, done: Offset, limit_s: float) -> bool:
        frames: list[Frame] = []
        for seq, batch in self.spool.read_segment(segment):
            if seq <= done[0]:
                continue
            frames.append((seq, done[1] if seq == done[0] + 1 else 0, batch))
        for group in _groups(frames, self.group_rows):
            if self.should_stop():
                return False
            await self._group(segment, group, limit_s)
        self.spool.remove_segment(segment)
        name = self.collector_name
        await self.db.in_txn(
            lambda c: c.execute(copy.delete_offset_statement(), (name, str(segment))), limit_s
        )
        return True

    async def _group(self, segment: int, group: list[Frame], limit_s: float) -> None:
        await self._resolve_ids({b.batch_id for _, _, b in group if b.batch_id}, limit_s)
        todo: list[Frame] = []
        for seq, skip, b in group:
            if b.batch_id and self._committed_ids[b.batch_id]:
                self.rows_skipped_committed += len(b.rows) - skip
            else:
                todo.append((seq, skip, b))
        end: Offset = (group[-1][0], 0)
        batches = [_batch(b, skip) for _, skip, b in todo]
        try:
            await self.db.write_txn(batches, limit_s, offset=(segment, end))
        except self.transient:
            raise
        except REFUSED_ERRORS:
            for frame in todo:
                if self.should_stop():
                    return  # the offset says how far it got
                await self._frame(segment, frame, limit_s)
        self.rows_replayed += sum(len(b[2]) for b in batches)

    async def _frame(self, segment: int, frame: Frame, limit_s: float) -> None:
        """One frame in parts, each with its own offset, down to the row the database refuses."""
        seq, skip, batch = frame
        spec = SPEC_BY_TEMPLATE[batch.table]
        ranges = [(skip, len(batch.rows))]
        while ranges:
            lo, hi = ranges.pop()
            rows = batch.rows[lo:hi]
            offset: Offset = (seq, 0) if hi == len(batch.rows) else (seq - 1, hi)
            try:
                await self.db.write_txn(
                    [(spec, batch.currency, rows)], limit_s, offset=(segment, offset)
                )
                continue
            except self.transient:
                raise
            except REFUSED_ERRORS as exc:
                if hi - lo > 1:
                    mid = (lo + hi) // 2
                    ranges += [(mid, hi), (lo, mid)]  # the lower half first: offsets only grow
                    continue
                bad: list[tuple]
                if spec is REJECTED_MESSAGES:
                    bad = []  # a rejected_messages row the database refuses is only counted
                    self.db.status.note_rejected()
                else:
                    bad = [self.losses.rejected_row(spec, batch.currency, rows[0], exc)]
            await self.db.write_txn(
                [(REJECTED_MESSAGES, None, bad)] if bad else [],
                limit_s,
                offset=(segment, offset),
            )

    async def _resolve_ids(self, ids: set[int], limit_s: float) -> None:
        new = sorted(i for i in ids if i not in self._committed_ids)
        if not new:
            return
        name = self.collector_name

        async def resolve(conn: AsyncConnection[Any]) -> set[int]:
            await conn.execute(copy.claim_batch_ids_statement(), (name, new))
            cur = await conn.execute(copy.committed_batch_ids_statement(), (name, new))
            return {int(r[0]) for r in await cur.fetchall()}

        committed = await self.db.in_txn(resolve, limit_s)
        for i in new:
            self._committed_ids[i] = i in committed
        if committed:
            log.info(
                "writer %s: %d spooled batch(es) of an unknown COMMIT had committed: not "
                "written again",
                name,
                len(committed),
            )

    async def _read_offsets(self, conn: AsyncConnection[Any]) -> dict[int, Offset]:
        cur = await conn.execute(copy.select_offsets_statement(), (self.collector_name,))
        return {int(seg): (int(seq or 0), int(rows)) for seg, seq, rows in await cur.fetchall()}


def _batch(b: SpoolBatch, skip: int) -> copy.Batch:
    return (SPEC_BY_TEMPLATE[b.table], b.currency, b.rows[skip:] if skip else b.rows)


def _groups(frames: list[Frame], group_rows: int) -> Iterator[list[Frame]]:
    group: list[Frame] = []
    rows = 0
    for frame in frames:
        group.append(frame)
        rows += len(frame[2].rows) - frame[1]
        if rows >= group_rows:
            yield group
            group, rows = [], 0
    if group:
        yield group
