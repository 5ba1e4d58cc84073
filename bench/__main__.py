"""`python -m bench [--quick] [--json]`: how fast, how small, how much headroom.

Starts the fake exchange (tests/fake_deribit, a BTC full chain) and the real-time collector
(`python -m scripts.ws_tick_collector_multi`) writing into a throwaway PostgreSQL+TimescaleDB
cluster (CHAINTAPE_PG_BIN picks the install) or into DATABASE_URL (an empty scratch
database: the benchmark writes synthetic rows and compresses chunks there), and prints throughput at
rising offered rates, CPU per message and per row, peak memory, lag, this machine's limits,
and storage per row and per month. Run it from the repository root. `--quick` takes about a
minute; the full run under ten.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

import orjson

from bench.report import figures, missed, render_text, to_json
from bench.run import BenchConfig, NotScratchDatabase, run_benchmark
from scripts.cli import command_parser
from scripts.config import load_dotenv_file

EXIT_TARGET_MISSED = 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = command_parser("bench", __doc__, ("DATABASE_URL",), need_currency="any")
    p.epilog = (p.epilog or "").replace(
        "(default: required)", "(default: unset, a throwaway cluster; else an empty scratch DB)"
    ) + "\n  CHAINTAPE_PG_BIN  (default: the PostgreSQL 15 found here) the throwaway cluster's"
    p.add_argument("--quick", action="store_true", help="about a minute instead of ten")
    p.add_argument(
        "--check",
        action="store_true",
        help=f"exit {EXIT_TARGET_MISSED} when a figure misses its target (marked met/missed)",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")
    p.add_argument("--expiries", type=int, default=None, help="option expiries (default 10)")
    p.add_argument("--strikes", type=int, default=None, help="strikes per expiry (default 40)")
    p.add_argument(
        "--book-rate-hz", type=float, default=None, help="the market's own book changes/s (400)"
    )
    p.add_argument("--rates", default=None, help="offered msgs/s steps, e.g. 5000,10000,20000")
    p.add_argument("--lag-rate", type=float, default=None, help="msgs/s of the lag step (5000)")
    p.add_argument("--step-s", type=float, default=None, help="seconds measured per step")
    p.add_argument("--mix-s", type=float, default=None, help="seconds of the natural mix")
    p.add_argument("--copy-rows", type=int, default=None, help="rows of the raw COPY baseline")
    p.add_argument("--flush-interval-ms", type=int, default=None)
    p.add_argument("--profile", type=Path, default=None, help="cProfile the collector to FILE")
    p.add_argument(
        "--without-ivs",
        action="store_true",
        help="run the collector without the quote rows' forward and bid/ask IVs "
        "(an A/B of their cost; bench.without_ivs)",
    )
    return p.parse_args(argv)


def config_from(args: argparse.Namespace, env: dict[str, str]) -> BenchConfig:
    overrides: dict[str, object] = {}
    names = (
        "expiries",
        "strikes",
        "book_rate_hz",
        "lag_rate",
        "step_s",
        "mix_s",
        "copy_rows",
        "flush_interval_ms",
    )
    for name in names:
        value = getattr(args, name)
        if value is not None:
            overrides[name] = value
    if args.rates:
        overrides["rates"] = tuple(float(r) for r in args.rates.split(","))
    if args.profile is not None:
        overrides["profile"] = args.profile.resolve()
    if args.without_ivs:
        overrides["without_ivs"] = True
    if env.get("DATABASE_URL"):
        overrides["database_url"] = env["DATABASE_URL"]
    if args.quick:
        return BenchConfig.quick_settings(**overrides)
    return BenchConfig(**overrides)  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    args = parse_args(argv)
    load_dotenv_file()  # DATABASE_URL from .env, like every other command
    try:
        results = asyncio.run(run_benchmark(config_from(args, dict(os.environ))))
    except NotScratchDatabase as exc:
        sys.stderr.write(f"{exc}\n")
        return 2
    if args.json:
        sys.stdout.write(orjson.dumps(to_json(results), option=orjson.OPT_INDENT_2).decode())
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render_text(results) + "\n")
    bad = missed(figures(results))
    if args.check and bad:
        sys.stderr.write(
            f"benchmark: {len(bad)} target(s) missed: {', '.join(f.key for f in bad)}\n"
        )
        return EXIT_TARGET_MISSED
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
