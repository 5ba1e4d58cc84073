"""Run the fake Deribit exchange standalone, on loopback, until SIGTERM/SIGINT.

    python -m tests.fake_deribit [--port P] [--currencies BTC,ETH] [--start now|fixed|ISO]
        [--speed X] [--seed N] [--expiries N --strikes N] [--replay DIR] [--unmetered]

By default its market starts at the wall clock and runs at real speed, so collectors pointed
at it need nothing else (no SIM_CLOCK). `--start fixed` (the 2026-06-01 origin the tests use)
or `--speed` above 1 make a simulated market: give the collectors the `sim_clock` it prints
as SIM_CLOCK. Prints one JSON line on stdout (ws_url, rest_url, history_url, sim_clock, port)
once it listens. It reads no environment variables.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from scripts.cli import command_parser
from scripts.clock import SimClock
from scripts.collectors.backfill.job import parse_when
from tests.fake_deribit.limits import Limits
from tests.fake_deribit.server import FakeDeribit


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = command_parser("tests.fake_deribit", __doc__, ())
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--speed", type=float, default=1.0, help="market seconds per wall second (default 1)"
    )
    p.add_argument(
        "--start",
        default="now",
        help="market origin: now (default, the wall clock), fixed (2026-06-01, the tests'), "
        "or a UTC time such as 2026-01-01T00:00Z",
    )
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--replay", type=Path, default=None, help="serve recorded messages from DIR")
    p.add_argument("--firehose", action="store_true", help="replay: every frame to every session")
    p.add_argument("--currencies", default=None, help="comma-separated, e.g. BTC,ETH,SOL")
    p.add_argument("--expiries", type=int, default=None, help="option expiries per currency")
    p.add_argument("--strikes", type=int, default=None, help="strikes per expiry")
    p.add_argument("--heartbeat-scale", type=float, default=1.0)
    p.add_argument("--unmetered", action="store_true", help="no credit limits")
    args = p.parse_args(argv)
    if not args.speed > 0:
        p.error("--speed must be > 0")
    args.launched_at = time.time()
    try:
        args.start_ms = start_ms(args.start, args.launched_at)
    except ValueError as exc:
        p.error(f"--start: {exc}")
    return args


def start_ms(text: str, now: float) -> int | None:
    """The market origin in ms for --start; None for the market's fixed default."""
    if text == "fixed":
        return None
    if text == "now":
        return int(now * 1000)
    return parse_when(text)


def build(args: argparse.Namespace) -> FakeDeribit:
    limits = Limits.unmetered() if args.unmetered else Limits()
    common: dict[str, Any] = {
        "limits": limits,
        "host": args.host,
        "port": args.port,
        "heartbeat_scale": args.heartbeat_scale,
    }
    if args.replay is not None:
        clock = SimClock.starting_now(time.time(), args.speed)
        return FakeDeribit(replay_dir=args.replay, firehose=args.firehose, clock=clock, **common)
    from tests.fake_deribit.market import MarketConfig

    overrides: dict[str, Any] = {"seed": args.seed}
    if args.start_ms is not None:
        overrides["start_ms"] = args.start_ms
    if args.currencies:
        overrides["currencies"] = tuple(c.strip().upper() for c in args.currencies.split(","))
    if args.expiries is not None:
        overrides["expiries"] = args.expiries
    if args.strikes is not None:
        overrides["strikes_per_expiry"] = args.strikes
    config = MarketConfig(**overrides)
    if args.start_ms is None:
        return FakeDeribit(config, speed=args.speed, **common)
    # Market time = start + (wall - launch) * speed: with --start now at speed 1, the wall clock.
    clock = SimClock(args.launched_at, args.start_ms / 1000.0, args.speed)
    return FakeDeribit(config, clock=clock, **common)


async def run(args: argparse.Namespace) -> int:
    fake = build(args)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await fake.start()
    line = {
        "ws_url": fake.ws_url,
        "rest_url": fake.rest_url,
        "history_url": fake.history_url,
        "sim_clock": fake.sim_clock_spec(),
        "port": fake.port,
    }
    sys.stdout.write(orjson.dumps(line).decode() + "\n")
    sys.stdout.flush()
    try:
        await stop.wait()
    finally:
        await fake.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    args = parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
