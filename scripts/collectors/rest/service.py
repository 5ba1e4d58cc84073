"""The frame the REST collectors share: schema, pool, writer, limiter, client, schedules, stop.

`RestService.run(stop)` opens the pool and the writer, waits for the database like the
real-time collector (`pool.start_when_database_ready`: backoff, "waiting for the database" in the
status file, exit 1 at once for a DATABASE_URL that can never work, exit 0 on SIGTERM), applies
the schema, lets the collector build its schedules (which read their cursors from the
database), runs them until `stop` is set, then stops intake (a poll in flight gets a few
seconds), drains the writer within DRAIN_DEADLINE_S and reports the REST calls per method (per
simulated hour on a simulated clock).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from scripts import __version__
from scripts.clock import Clock, SimClock, clock_from_spec
from scripts.collectors.rejects import Rejects
from scripts.collectors.rest.schedule import Schedule
from scripts.config import Settings
from scripts.deribit.limiter import LimiterSet
from scripts.deribit.rest import DeribitRestClient
from scripts.runtime import supervise
from scripts.status_log import StatusLine, log_status_every
from scripts.storage.migrate import apply_settings_schema
from scripts.storage.pool import RECONNECT_MAX_DELAY_S, new_pool, start_when_database_ready
from scripts.storage.spool import Spool
from scripts.storage.status import WriterStatus, default_collector_name, status_file_path
from scripts.storage.writer import BatchWriter

log = logging.getLogger(__name__)

POLL_GRACE_S = 5.0  # wall seconds a poll in flight may take to finish after stop


@dataclass
class ServiceParts:
    settings: Settings
    clock: Clock
    pool: AsyncConnectionPool[AsyncConnection[Any]]
    writer: BatchWriter
    limiters: LimiterSet
    rest: DeribitRestClient


def calls_per_hour(calls: dict[str, int], market_seconds: float) -> dict[str, float]:
    """Calls per method per (simulated) hour over `market_seconds` of market time."""
    hours = max(market_seconds, 1e-9) / 3600.0
    return {method: round(n / hours, 1) for method, n in sorted(calls.items())}


class RestService:
    """One REST collector process; `build` returns its schedules from the shared parts."""

    def __init__(
        self,
        settings: Settings,
        kind: str,
        build: Callable[[ServiceParts], Awaitable[list[Schedule]]],
        *,
        clock: Clock | None = None,
        use_spool: bool = True,
        apply_schema: bool = True,
    ) -> None:
        self.settings = settings
        self.kind = kind
        self.build = build
        self.clock = clock or clock_from_spec(settings.sim_clock)
        self.use_spool = use_spool
        self.apply_schema = apply_schema
        self.parts: ServiceParts | None = None
        self.schedules: list[Schedule] = []
        self.started_at = self.clock.now()
        self.report: dict[str, float] = {}

    async def run(self, stop: asyncio.Event) -> int:
        s = self.settings
        name = default_collector_name(self.kind, s)
        # Opened once the database answers (its own retries would log every attempt).
        pool = new_pool(s.database_url, max_size=4, application_name=f"chaintape-{name}")
        spool = (
            Spool(s.spool_dir, max_bytes=s.spool_max_bytes, collector_name=name)
            if self.use_spool
            else None
        )
        status = WriterStatus(name, None, __version__)
        writer = BatchWriter(
            pool,
            collector_name=name,
            currency=None,
            version=__version__,
            flush_interval_ms=s.flush_interval_ms,
            flush_max_rows=s.flush_max_rows,
            max_buffered_rows=s.writer_max_buffered_rows,
            spool=spool,
            drain_deadline_s=s.drain_deadline_s,
            status_file=status_file_path(s.spool_dir, name) if self.use_spool else None,
            retry_max_s=RECONNECT_MAX_DELAY_S,  # write again within seconds of the DB's return
            writer_status=status,
        )
        limiters = LimiterSet.build(
            self.clock, requests_per_s=s.rest_requests_per_s, burst=s.rest_burst
        )
        rest = DeribitRestClient(s.deribit_rest_url, limiter=limiters, clock=self.clock)
        rest.on_malformed = Rejects(writer, name).rest_reply  # counted, kept, retried next round
        self.parts = parts = ServiceParts(s, self.clock, pool, writer, limiters, rest)

        async def setup() -> None:
            if pool.closed:
                await pool.open(wait=False)
            if self.apply_schema:
                await apply_settings_schema(s, roles_and_retention=False)
            self.schedules = await self.build(parts)

        early = await start_when_database_ready(
            s.database_url,
            stop,
            setup,
            name=name,
            on_wait=writer.report_waiting,
            spool_bytes=lambda: spool.bytes_used if spool is not None else 0,
        )
        if early is not None:
            await writer.drain(to_database=False)
            await rest.close()
            await pool.close()
            log.info("%s: stopped before collecting (exit %d)", name, early)
            return early
        self.started_at = self.clock.now()
        line = StatusLine(name, status, rest_calls=[rest.calls])
        try:
            code = await supervise(
                name,
                stop,
                [(sch.name, sch.run) for sch in self.schedules],
                writer=writer,
                drain_deadline_s=s.drain_deadline_s,
                side=[partial(log_status_every, s.status_log_interval_s, line)],
                grace_s=POLL_GRACE_S,
            )
        finally:
            await rest.close()
            await pool.close()
            self.report = calls_per_hour(rest.calls, self.clock.now() - self.started_at)
            if isinstance(self.clock, SimClock):
                log.info("%s: REST calls per simulated hour by method: %s", name, self.report)
            else:
                log.info("%s: REST calls by method: %s", name, dict(sorted(rest.calls.items())))
        return code
