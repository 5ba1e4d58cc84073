"""The writer's database side: its pool, the one shape of a write transaction, housekeeping.

Both the flush (`writer`) and the spool replay (`replay`) write through `WriterDb.write_txn`:
the batch id first (`writer_batches`, so a COMMIT of unknown outcome can be looked up), every
batch by COPY, the spool offset when replaying, then the `collector_status` row. The status
counters are raised inside the transaction and lowered again when it fails, so they count
committed rows only.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import psycopg
from psycopg import AsyncConnection, errors
from psycopg_pool import AsyncConnectionPool

from scripts.storage import copy, housekeeping, status
from scripts.storage.losses import LossAccounting
from scripts.storage.pool import open_pool
from scripts.storage.spool import Spool

log = logging.getLogger(__name__)
T = TypeVar("T")

CONNECT_WAIT_S = 5.0  # how long a transaction waits for a connection before giving up
IDLE_PROBE_S = 5.0  # how often a writer with nothing to write checks the database
SpoolOffset = tuple[int, tuple[int, int]]  # (segment, (last whole frame, rows done of the next))
Unwritten = list[tuple[list[copy.Batch], int]]  # parts not known committed, with batch ids
# Errors after which the database, not the batch, is the problem: spool and retry later.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    psycopg.OperationalError,  # connection lost, server shut down, PoolTimeout
    errors.UndefinedTable,
    errors.UndefinedColumn,
    errors.InvalidSchemaName,
    errors.InsufficientPrivilege,
    TimeoutError,
    OSError,
)
# What the database refuses about a row (as opposed to being unavailable: TRANSIENT_ERRORS).
REFUSED_ERRORS = (psycopg.Error, TypeError, ValueError, OverflowError)


class WriterDb:
    """One writer's transactions, on a pool it opens from a URL or one it is given."""

    def __init__(
        self,
        database: str | AsyncConnectionPool[Any],
        *,
        collector_name: str,
        writer_status: status.WriterStatus,
        spool: Spool | None,
        losses: LossAccounting,
    ) -> None:
        self._url = database if isinstance(database, str) else None
        self.pool: AsyncConnectionPool[Any] | None = None if self._url else database  # type: ignore[assignment]
        self.collector_name = collector_name
        self.status = writer_status
        self.spool = spool
        self.losses = losses
        self.next_housekeeping = 0.0
        self._next_probe = 0.0

    async def ensure_pool(self) -> None:
        if self.pool is None and self._url is not None:
            self.pool = await open_pool(
                self._url, max_size=2, application_name=f"chaintape-{self.collector_name}"
            )

    async def close(self) -> None:
        """Closes the pool if this writer opened it (a pool it was given is the caller's)."""
        if self._url and self.pool is not None:
            await self.pool.close()
            self.pool = None

    async def in_txn(
        self, body: Callable[[AsyncConnection[Any]], Awaitable[T]], limit_s: float
    ) -> T:
        """`body(conn)` in one transaction, bounded by `limit_s` (connection wait included)."""
        assert self.pool is not None

        async def txn() -> T:
            assert self.pool is not None
            wait_s = min(limit_s, CONNECT_WAIT_S)
            async with self.pool.connection(timeout=wait_s) as conn, conn.transaction():
                return await body(conn)

        return await asyncio.wait_for(txn(), limit_s)

    async def write_txn(
        self,
        batches: list[copy.Batch],
        limit_s: float,
        *,
        offset: SpoolOffset | None = None,
        batch_id: int = 0,
    ) -> None:
        """One transaction: the batches, a spool offset, the status row; counters on commit."""
        counts: list[tuple[str, int, int]] = []
        body = functools.partial(
            self._write, batches=batches, offset=offset, counts=counts, batch_id=batch_id
        )
        try:
            await self.in_txn(body, limit_s)
        except BaseException:
            for table, written, ignored in counts:
                self.status.note_rows(table, -written, -ignored)
            raise

    async def write_isolating(
        self, batches: list[copy.Batch], limit_s: float, unwritten: Unwritten
    ) -> None:
        """Writes batches in one transaction; if the database refuses a row, bisects to it.

        Each transaction carries a fresh batch id. On a transient error `unwritten` holds the
        parts not known to be committed: the failed one with its id (its COMMIT may have gone
        through), the ones never tried with id 0.
        """
        stack = [copy.merge_batches(batches)] if batches else []
        while stack:
            part = stack.pop()
            batch_id = secrets.randbits(63) or 1
            try:
                await self.write_txn(part, limit_s, batch_id=batch_id)
            except BaseException as exc:
                if isinstance(exc, REFUSED_ERRORS) and not isinstance(exc, TRANSIENT_ERRORS):
                    stack.extend(reversed(self.losses.split_refused(part, exc)))
                    continue
                unwritten[:] = [(part, batch_id), *((p, 0) for p in reversed(stack))]
                raise

    async def _write(
        self,
        conn: AsyncConnection[Any],
        batches: list[copy.Batch],
        offset: SpoolOffset | None,
        counts: list[tuple[str, int, int]],
        batch_id: int,
    ) -> None:
        """Every batch, the spool offset and the status row, in the caller's transaction.

        `counts` is filled as the status counters are raised, so a failed commit can undo them.
        """
        if batch_id:  # first, so a replay's claim of this id waits for this transaction
            await conn.execute(copy.insert_batch_id_statement(), (self.collector_name, batch_id))
        done: list[tuple[str, int, int]] = []
        for spec, currency, rows in copy.merge_batches(batches):
            table = spec.table_name(currency)
            written, ignored = await copy.write_rows(conn, spec, table, rows)
            done.append((table, written, ignored))
        if offset is not None:
            segment, (seq, rows_done) = offset
            await conn.execute(
                copy.upsert_offset_statement(),
                (self.collector_name, str(segment), seq, rows_done),
            )
        for table, written, ignored in done:
            self.status.note_rows(table, written, ignored)
            self.losses.open_losses.pop(table, None)
        counts.extend(done)
        self.status.spool_bytes = self.spool.bytes_used if self.spool else 0
        await status.upsert_status(conn, self.status)

    async def take_previous_run(
        self, limit_s: float, prev_file: dict[str, Any] | None
    ) -> status.PreviousRun | None:
        """Reads the previous run's status row and replaces it with this run's; an unclean
        stop is amended from the previous run's status file and its loss logged."""

        async def swap(conn: AsyncConnection[Any]) -> status.PreviousRun | None:
            prev = await status.previous_run(conn, self.collector_name)
            await status.upsert_status(conn, self.status)
            return prev

        prev = await self.in_txn(swap, limit_s)
        if prev is not None and prev.unclean:
            prev = status.amend_previous_run(prev, prev_file)
        if prev is not None and prev.unclean:
            start, end = prev.lost_window or (prev.detected_at, prev.detected_at)
            log.warning(
                "writer %s: previous run (pid %s) did not stop cleanly; rows between %s and %s "
                "that were only in its memory are lost",
                self.collector_name,
                prev.pid,
                start.isoformat(),
                end.isoformat(),
            )
        return prev

    async def mark_stopped(self, limit_s: float) -> None:
        await self.in_txn(lambda c: status.mark_stopped(c, self.status), limit_s)

    async def housekeeping(self, limit_s: float, *, idle: bool) -> None:
        now = time.monotonic()
        if now < self.next_housekeeping:
            # An idle writer (a REST collector between polls) still asks the database now and
            # then, so `db_ok` (health check, status line) notices an outage without rows.
            if idle and now >= self._next_probe:
                self._next_probe = now + IDLE_PROBE_S
                await self.in_txn(housekeeping.probe, limit_s)
            return
        self.next_housekeeping = now + housekeeping.HOUSEKEEPING_INTERVAL_S
        empty = self.spool is None or self.spool.is_empty
        body = functools.partial(housekeeping.prune, collector_name=self.collector_name)
        try:
            await self.in_txn(lambda c: body(c, spool_empty=empty), limit_s)
        except TRANSIENT_ERRORS as exc:  # housekeeping waits for the next time
            log.warning("writer %s: housekeeping failed: %r", self.collector_name, exc)
