"""The real-time collector process: schema, writer (with spool), REST client, collector, stop.

Start: a database that is not up yet (a NAS booting, the database container restarting) is
waited for, with capped jittered backoff, the status file saying "waiting for the database"
(the health check reports it), SIGTERM ending the wait with exit 0. A DATABASE_URL that can
never work (authentication, a missing database, no TimescaleDB) exits 1 at once with one
line. Once the database answers: the schema, the collector's `prepare` (where the previous
run stopped), then the writer, which replays the spool first.

Trades the writer drops (spool full) are re-read through REST once the database is back
(`BatchWriter.on_rows_lost` -> `OptionsRealtimeCollector.on_rows_lost`).

SIGTERM (the `stop` event) stops intake: the sockets close, the repairer and pollers stop;
then the writer drains to the database, or to the spool, within DRAIN_DEADLINE_S and records
state 'stopped'. A collector crash stops the process with exit 1 after the same drain.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from functools import partial

from scripts import __version__
from scripts.clock import Clock, clock_from_spec
from scripts.collectors.realtime.collector import OptionsRealtimeCollector
from scripts.collectors.realtime.listing import (
    CurrencyNotListed,
    check_listing,
    health_problem,
    refused_channels,
)
from scripts.config import EXIT_CONFIG_ERROR, Settings
from scripts.deribit.limiter import LimiterSet
from scripts.deribit.rest import DeribitRestClient
from scripts.runtime import supervise
from scripts.status_log import LagSamples, StatusLine, log_status_every
from scripts.storage.migrate import apply_settings_schema
from scripts.storage.pool import RECONNECT_MAX_DELAY_S, start_when_database_ready
from scripts.storage.spool import Spool
from scripts.storage.status import WriterStatus, default_collector_name, status_file_path
from scripts.storage.writer import BatchWriter

log = logging.getLogger(__name__)

PROBLEM_CHECK_S = 1.0


async def run_realtime(
    settings: Settings,
    stop: asyncio.Event,
    *,
    clock: Clock | None = None,
    apply_schema: bool = True,
    collector_ready: asyncio.Future[OptionsRealtimeCollector] | None = None,
) -> int:
    """Runs the collector of `settings.currency` until `stop`; returns the exit code."""
    s = settings
    clock = clock or clock_from_spec(s.sim_clock)
    name = default_collector_name("ws", s)
    spool = Spool(s.spool_dir, max_bytes=s.spool_max_bytes, collector_name=name)
    status = WriterStatus(name, s.currency.code, __version__)
    writer = BatchWriter(
        s.database_url,
        collector_name=name,
        currency=s.currency.code,
        version=__version__,
        flush_interval_ms=s.flush_interval_ms,
        flush_max_rows=s.flush_max_rows,
        max_buffered_rows=s.writer_max_buffered_rows,
        spool=spool,
        drain_deadline_s=s.drain_deadline_s,
        status_file=status_file_path(s.spool_dir, name),
        retry_max_s=RECONNECT_MAX_DELAY_S,  # write again within seconds of the database's return
        writer_status=status,
    )
    limiters = LimiterSet.build(clock, requests_per_s=s.rest_requests_per_s, burst=s.rest_burst)
    rest = DeribitRestClient(s.deribit_rest_url, limiter=limiters, clock=clock)
    # Trades of options that expired are served by the history host (trade_repair.py).
    history = DeribitRestClient(s.deribit_history_url, limiter=limiters, clock=clock)
    collector = OptionsRealtimeCollector(
        s,
        writer=writer,
        rest=rest,
        clock=clock,
        client_version=__version__,
        subscribe_share=s.subscribe_share,
        history=history,
        status=status,
    )
    writer.on_rows_lost = collector.on_rows_lost
    rest.on_malformed = collector.rejects.rest_reply
    if collector_ready is not None:
        collector_ready.set_result(collector)

    try:
        listing = await check_listing(rest, s.currency)
    except CurrencyNotListed as exc:
        log.error("%s: %s", name, exc)
        await writer.drain(to_database=False)
        await rest.close()
        return EXIT_CONFIG_ERROR

    async def setup() -> None:
        if apply_schema:
            await apply_settings_schema(s)
        # Rows an earlier run spooled go in first, so what `prepare` reads (the newest stored
        # quote of each option, for repeats and the not-running gap) includes them.
        await writer.flush()
        await collector.prepare()

    code = await start_when_database_ready(
        s.database_url,
        stop,
        setup,
        name=name,
        on_wait=writer.report_waiting,
        spool_bytes=lambda: spool.bytes_used,
    )
    if code is not None:
        await writer.drain(to_database=False)
        await rest.close()
        await history.close()
        log.info("%s: stopped before collecting (exit %d)", name, code)
        return code
    collector.router.lag = LagSamples()
    line = StatusLine(
        name,
        status,
        rest_calls=[rest.calls],
        lag=collector.router.lag,
        open_gaps=lambda: collector.repairer.open_windows,
    )

    async def watch_problems(stop: asyncio.Event) -> None:
        await _watch_problems(collector, status, listing, stop)

    try:
        code = await supervise(
            name,
            stop,
            [("the collector", collector.run)],
            writer=writer,
            drain_deadline_s=s.drain_deadline_s,
            side=[partial(log_status_every, s.status_log_interval_s, line), watch_problems],
        )
    finally:
        await rest.close()
        await history.close()
    log.info("%s: stopped (exit %d)", name, code)
    return code


async def _watch_problems(
    collector: OptionsRealtimeCollector,
    status: WriterStatus,
    listing: str | None,
    stop: asyncio.Event,
) -> None:
    """Keeps `status.problem` (the health check's reason) in step: refused channels until they
    are granted, no live options."""
    while not stop.is_set():
        problem = health_problem(
            refused=refused_channels(collector.pool.clients),
            connected=status.connected,
            live_options=len(collector.chain.live),
            listing=listing,
        )
        if problem != status.problem:
            (log.warning if problem else log.info)(
                "%s: %s", status.collector_name, problem or "healthy again"
            )
            status.problem = problem
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), PROBLEM_CHECK_S)
