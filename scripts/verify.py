"""`python -m scripts.verify [--max-age-s N] [--require-all] [--json]`: is data arriving?

Prints, per table and currency, the row count, the newest `timestamp`, its age and, on the full
edition, the compressed size and ratio (see scripts/storage/verify_queries.py for the rules).
Exit 0 when nothing is stale, 1 when a table is stale (or, with --require-all, empty) or the
database cannot be read, 2 on bad settings. The threshold defaults to STALE_AFTER_S (900 s).
`schema/verify.sql` runs the same checks from psql.
"""

from __future__ import annotations

import argparse
import json
import sys

import psycopg

from scripts.cli import command_parser
from scripts.config import load_settings_or_exit
from scripts.logs import mask_secrets
from scripts.runtime import EXIT_FAILURE, EXIT_OK
from scripts.storage.verify_queries import check_tables, failing, format_table


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    env = ("DATABASE_URL", "STALE_AFTER_S")
    parser = command_parser("scripts.verify", __doc__, env, need_currency="any")
    parser.add_argument(
        "--max-age-s",
        type=float,
        default=None,
        help="a table whose newest row is older than this is stale (default STALE_AFTER_S)",
    )
    parser.add_argument(
        "--require-all", action="store_true", help="count empty tables as failures too"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = load_settings_or_exit(need_currency="any")
    max_age_s = settings.stale_after_s if args.max_age_s is None else args.max_age_s
    if not max_age_s > 0:
        print("chaintape: --max-age-s must be a number > 0", file=sys.stderr)
        return 2
    try:
        with psycopg.connect(settings.database_url, connect_timeout=10) as conn:
            if conn.execute("SELECT to_regprocedure('chaintape_verify()')").fetchone() == (None,):
                print(
                    "chaintape: this database has no chaintape schema: run "
                    "`python -m scripts.migrate` first",
                    file=sys.stderr,
                )
                return EXIT_FAILURE
            checks = check_tables(conn, max_age_s=max_age_s)
            row = conn.execute("SELECT chaintape_full_edition()").fetchone()
            full = bool(row and row[0])
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"chaintape: cannot read the database: {mask_secrets(reason)}", file=sys.stderr)
        return EXIT_FAILURE
    bad = failing(checks, require_all=args.require_all)
    if args.json:
        doc = {
            "max_age_s": max_age_s,
            "ok": not bad,
            "tables": [c.as_json() for c in checks],
        }
        print(json.dumps(doc, indent=2))
    else:
        print(format_table(checks, show_compression=full))
        what = "stale or empty" if args.require_all else "stale"
        verdict = f"{len(bad)} {what}" if bad else "all fresh"
        print(f"\n{verdict} (threshold {max_age_s:g} s)")
    return EXIT_FAILURE if bad else EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
