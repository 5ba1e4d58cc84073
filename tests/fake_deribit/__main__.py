"""Run the fake exchange standalone until SIGTERM/SIGINT.

    python -m tests.fake_deribit --seed 1 --speed 60 [--port P] [--replay DIR]
        [--currencies BTC,ETH] [--expiries N --strikes N] [--heartbeat-scale X] [--unmetered]

Prints one JSON line on stdout (ws_url, rest_url, history_url, sim_clock) once it listens.
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

from scripts.clock import SimClock
from tests.fake_deribit.limits import Limits
from tests.fake_deribit.server import FakeDeribit


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tests.fake_deribit", description=__doc__)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--speed", type=float, default=1.0, help="market seconds per wall second")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--replay", type=Path, default=None, help="serve recorded messages from DIR")
    p.add_argument("--firehose", action="store_true", help="replay: every frame to every session")
    p.add_argument("--currencies", default=None, help="comma-separated, e.g. BTC,ETH,SOL")
    p.add_argument("--expiries", type=int, default=None, help="option expiries per currency")
    p.add_argument("--strikes", type=int, default=None, help="strikes per expiry")
    p.add_argument("--heartbeat-scale", type=float, default=1.0)
    p.add_argument("--unmetered", action="store_true", help="no credit limits")
    return p.parse_args(argv)


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
    if args.currencies:
        overrides["currencies"] = tuple(c.strip().upper() for c in args.currencies.split(","))
    if args.expiries is not None:
        overrides["expiries"] = args.expiries
    if args.strikes is not None:
        overrides["strikes_per_expiry"] = args.strikes
    config = MarketConfig(**overrides)
    return FakeDeribit(config, speed=args.speed, **common)


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
