"""`python -m scripts.report [--start ISO] [--end ISO] [--currency C] [--out FILE]`: the
data-quality report per currency and day as one self-contained HTML file.

Rows per table, quote coverage per hour, gaps (open, repaired), rejected messages and the
agreement of option bars with trades, with plots (scripts/research/report_html.py). Defaults:
the last 7 full days up to now, every recorded currency, `chaintape-report.html`.
Exit 0 written, 1 the database cannot be read, 2 bad arguments or settings.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from scripts.config import EXIT_CONFIG_ERROR, load_settings_or_exit
from scripts.export import parse_time
from scripts.logs import mask_secrets
from scripts.research.report_data import read_report
from scripts.research.report_html import render
from scripts.runtime import EXIT_FAILURE, EXIT_OK


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.report", description=__doc__)
    parser.add_argument("--start", help="ISO date or time (UTC); default 7 days before --end")
    parser.add_argument("--end", help="ISO date or time (UTC), exclusive; default now")
    parser.add_argument("--currency", action="append", help="BTC, ETH, ... (repeatable)")
    parser.add_argument("--out", type=Path, default=Path("chaintape-report.html"))
    args = parser.parse_args(argv)
    try:
        end = parse_time(args.end) if args.end else datetime.now(UTC)
        start = parse_time(args.start) if args.start else end - timedelta(days=7)
    except ValueError as exc:
        print(f"chaintape: --start/--end must be ISO dates or times: {exc}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    if start >= end:
        print(
            f"chaintape: empty range: {start.isoformat()} is not before {end.isoformat()}",
            file=sys.stderr,
        )
        return EXIT_CONFIG_ERROR
    settings = load_settings_or_exit(need_currency="any")
    try:
        with psycopg.connect(settings.database_url, connect_timeout=10, autocommit=True) as conn:
            data = read_report(conn, start, end, args.currency)
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"chaintape: cannot read the database: {mask_secrets(reason)}", file=sys.stderr)
        return EXIT_FAILURE
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(f".{args.out.name}.tmp")
    tmp.write_text(render(data), encoding="utf-8")
    tmp.replace(args.out)
    print(f"report written to {args.out}")
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
