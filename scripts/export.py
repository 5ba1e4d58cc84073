"""`python -m scripts.export TABLE --start ISO --end ISO [--currency C] [--instrument NAME]
[--format parquet|csv|tardis] --out DIR`: a table or union view, for a time range, to files.

Parquet (default, zstd) or CSV: `DIR/<table>/date=YYYY-MM-DD/part.<ext>` and
`DIR/<table>/_manifest.json`. Tardis: TABLE is `options_chain`, `trades` or `quotes` (or our
option quote/trade tables) and the files are Tardis.dev's daily CSV datasets,
`DIR/deribit_<type>_<date>_OPTIONS.csv.gz` (see scripts/research/tardis.py).
Resumable: run it again and days already exported with the database's row count are skipped.
`--jobs N` (default 2) writes N days at once, each over its own connection.
Exit 0 done, 1 the database cannot be read, 2 bad arguments or settings.
"""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from scripts.config import EXIT_CONFIG_ERROR, load_settings_or_exit
from scripts.logs import mask_secrets, setup_logging
from scripts.research.catalog import CatalogError
from scripts.research.exporter import DEFAULT_JOBS, ExportRequest, export_table
from scripts.research.query import Filters
from scripts.research.stream import ReadFailed
from scripts.research.tardis import export_tardis
from scripts.runtime import EXIT_FAILURE, EXIT_OK

log = logging.getLogger("scripts.export")
MAX_JOBS = 16


def parse_time(text: str) -> datetime:
    """ISO date or date-time; a time without a zone is UTC."""
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.export",
        description="Export a chaintape table or view for a time range to Parquet, CSV or "
        "Tardis-format CSV, one file per day, resumable.",
    )
    parser.add_argument("table", help="e.g. btc_option_quotes, option_trades, options_greeks")
    parser.add_argument("--start", required=True, help="ISO date or time (UTC), inclusive")
    parser.add_argument("--end", required=True, help="ISO date or time (UTC), exclusive")
    parser.add_argument("--currency", help="only this currency (BTC, ETH, ...)")
    parser.add_argument("--instrument", help="only this instrument (index name for index_prices)")
    parser.add_argument("--format", choices=("parquet", "csv", "tardis"), default="parquet")
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument(
        "--jobs",
        type=_jobs,
        default=DEFAULT_JOBS,
        help=f"days written at once, each over its own connection (default {DEFAULT_JOBS}; "
        "1 is the gentlest on a database the collectors are writing to)",
    )
    return parser.parse_args(argv)


def _jobs(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_JOBS:
        raise argparse.ArgumentTypeError(f"a whole number from 1 to {MAX_JOBS}, not {text!r}")
    return value


def _bad(message: str) -> int:
    print(f"chaintape: {message}", file=sys.stderr)
    return EXIT_CONFIG_ERROR


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        start, end = parse_time(args.start), parse_time(args.end)
    except ValueError as exc:
        return _bad(f"--start/--end must be ISO dates or times (2025-03-01T12:00Z): {exc}")
    if start >= end:
        return _bad(
            f"empty range: --start {start.isoformat()} is not before --end {end.isoformat()}"
        )
    settings = load_settings_or_exit(need_currency="any")
    setup_logging(settings.log_level, settings.secrets)
    filters = Filters(currency=args.currency, instrument=args.instrument)
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return _bad(f"cannot create --out {args.out}: {exc.strerror}")
    try:
        with psycopg.connect(settings.database_url, connect_timeout=10, autocommit=True) as conn:
            if args.format == "tardis":
                manifest = export_tardis(
                    conn, args.table, start, end, args.out, filters, jobs=args.jobs
                )
            else:
                req = ExportRequest(
                    args.table, start, end, args.out, args.format, filters, args.jobs
                )
                manifest = export_table(conn, req)
    except CatalogError as exc:
        return _bad(str(exc))
    except ReadFailed as exc:
        print(f"chaintape: cannot read the database: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"chaintape: cannot read the database: {mask_secrets(reason)}", file=sys.stderr)
        return EXIT_FAILURE
    rows = manifest.get("rows", 0)
    if not rows:
        log.warning("no rows in %s for %s .. %s", args.table, start.isoformat(), end.isoformat())
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
