"""`python -m scripts.backfill --currency BTC --since 2025-01-01 [--until ...] [--what ...]`.

Reads a currency's history over [since, until) into the same tables the live collectors fill:
option trades (from the history host), perpetual/future 1-minute bars, funding and DVOL. Run it
again with the same arguments after an interruption and it resumes; see
`scripts/collectors/backfill/job.py` for how. It meters itself with REST_REQUESTS_PER_S (or
`--requests-per-s`) so it can run beside the live collectors within the account's credits.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from scripts import __version__
from scripts.cli import REST_ENV, command_parser, setup_command_logging
from scripts.clock import clock_from_spec
from scripts.collectors.backfill.job import (
    PARTS,
    Backfill,
    BackfillError,
    BackfillJob,
    Progress,
    parse_when,
)
from scripts.config import Settings, load_settings_or_exit
from scripts.currencies import currency_spec
from scripts.deribit.limiter import LimiterSet
from scripts.deribit.rest import DeribitRestClient, DeribitRestError
from scripts.runtime import EXIT_FAILURE, run_service, supervise, until_stopped
from scripts.storage.migrate import apply_settings_schema
from scripts.storage.pool import open_pool
from scripts.storage.writer import BatchWriter

log = logging.getLogger("scripts.backfill")

ENV = (
    "DATABASE_URL",
    *REST_ENV,
    "DERIBIT_HISTORY_URL",
    "FLUSH_MAX_ROWS",
    "WRITER_MAX_BUFFERED_ROWS",
    "DRAIN_DEADLINE_S",
    "LOG_LEVEL",
    "SIM_CLOCK",
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = command_parser("scripts.backfill", __doc__, ENV, need_currency="any")
    p.add_argument("--currency", required=True, help="BTC, ETH, SOL, ...")
    p.add_argument(
        "--since", required=True, help="start, e.g. 2025-01-01 or 2025-01-01T12:00Z (UTC)"
    )
    p.add_argument("--until", help="end (exclusive); default now")
    p.add_argument(
        "--what", default=",".join(PARTS), help=f"comma-separated parts of {','.join(PARTS)}"
    )
    p.add_argument(
        "--requests-per-s", type=float, help="REST requests/s for this run (REST_REQUESTS_PER_S)"
    )
    args = p.parse_args(argv)
    parts = tuple(w.strip() for w in args.what.split(",") if w.strip())
    bad = [w for w in parts if w not in PARTS]
    if bad or not parts:
        p.error(f"--what: unknown part(s) {', '.join(bad) or '(none)'}; known: {', '.join(PARTS)}")
    args.parts = parts
    try:
        args.spec = currency_spec(args.currency)
        args.since_ms = parse_when(args.since)
        args.until_ms = parse_when(args.until) if args.until else None
    except (KeyError, ValueError) as exc:
        p.error(str(exc.args[0]) if exc.args else str(exc))
    if args.until_ms is not None and args.until_ms <= args.since_ms:
        p.error("--until must be after --since")
    if args.requests_per_s is not None and args.requests_per_s <= 0:
        p.error("--requests-per-s must be > 0")
    return args


async def run_backfill(
    settings: Settings,
    args: argparse.Namespace,
    stop: asyncio.Event,
    *,
    apply_schema: bool = True,
    limiters: LimiterSet | None = None,
) -> int:
    """Runs the job until done or `stop`; exit code 0 when every part finished.

    `limiters`: the process's limiter set when it already has one (one set per process)."""
    clock = clock_from_spec(settings.sim_clock)
    if apply_schema:
        await apply_settings_schema(settings, (args.spec,), roles_and_retention=False)
    until_ms = args.until_ms if args.until_ms is not None else clock.now_ms()
    name = f"since={args.since}" + (f",until={args.until}" if args.until else "")
    job = BackfillJob(args.spec, args.since_ms, until_ms, args.parts, name)
    rate = args.requests_per_s or settings.rest_requests_per_s
    if limiters is None:
        # A side job: a smaller share of get_instruments than the live collectors take.
        limiters = LimiterSet.build(
            clock, requests_per_s=rate, burst=settings.rest_burst, get_instruments_share=0.4
        )
    pool = await open_pool(settings.database_url, max_size=2, application_name="chaintape-backfill")
    writer = BatchWriter(
        pool,
        collector_name=f"backfill-{args.spec.code.lower()}",
        currency=args.spec.code,
        version=__version__,
        flush_max_rows=settings.flush_max_rows,
        max_buffered_rows=max(settings.writer_max_buffered_rows, 50_000),
    )
    rest = DeribitRestClient(settings.deribit_rest_url, limiter=limiters, clock=clock)
    history = DeribitRestClient(settings.deribit_history_url, limiter=limiters, clock=clock)
    backfill = Backfill(
        job, rest=rest, history=history, writer=writer, pool=pool, clock=clock, progress=Progress()
    )
    interrupted = False

    async def run_job(stop: asyncio.Event) -> None:
        nonlocal interrupted
        finished, rows = await until_stopped(stop, backfill.run())
        if finished:
            log.info("backfill %s %s done: %s", args.spec.code, name, rows)
        else:
            log.info("backfill: stopping; progress is kept, run again to resume")
            interrupted = True

    try:
        code = await supervise(
            "backfill",
            stop,
            [("the backfill", run_job)],
            writer=writer,
            run_writer=False,  # the job flushes each page itself before its checkpoint
            drain_deadline_s=settings.drain_deadline_s,
            expected=(BackfillError, DeribitRestError),
        )
    finally:
        await rest.close()
        await history.close()
        await pool.close()
        log.info("backfill: REST calls by method: %s", dict(rest.calls + history.calls))
    return EXIT_FAILURE if interrupted else code


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = load_settings_or_exit(need_currency="any")
    setup_command_logging(settings)
    return run_service(lambda stop: run_backfill(settings, args, stop))


if __name__ == "__main__":
    sys.exit(main())
