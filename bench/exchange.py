"""The benchmark's exchange process: the fake Deribit with a full-chain market and a
`QuoteBlaster`, controlled by lines on stdin.

    python -m bench.exchange --expiries 10 --strikes 40 [--book-rate-hz 400]

Run from the repository root (it imports tests.fake_deribit). Prints one JSON line when it
listens (ws_url, rest_url, history_url, sim_clock, options), then answers each command line
with one JSON line: `rate <msgs/s>` sets the offered extra quote rate, `stats` reports
counters, `channels` lists the subscribed quote channels, `templates` every option's
quote channel, `quit` stops.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
import time
from typing import Any

import orjson


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.exchange", description=__doc__)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--currencies", default="BTC")
    p.add_argument("--expiries", type=int, default=10)
    p.add_argument("--strikes", type=int, default=40)
    p.add_argument("--book-rate-hz", type=float, default=400.0, help="natural book changes/s")
    return p.parse_args(argv)


def build(args: argparse.Namespace) -> tuple[Any, Any]:
    from bench.load import QuoteBlaster, build_templates
    from tests.fake_deribit.limits import Limits
    from tests.fake_deribit.market import MarketConfig
    from tests.fake_deribit.server import FakeDeribit

    config = MarketConfig(
        seed=args.seed,
        currencies=tuple(c.strip().upper() for c in args.currencies.split(",")),
        expiries=args.expiries,
        strikes_per_expiry=args.strikes,
        quote_rate_hz=args.book_rate_hz,
        history_s=3600.0,
        record_books=False,
    )
    fake = FakeDeribit(config, limits=Limits.unmetered())
    # Every frame sent would be kept as ground truth: a memory leak at benchmark rates.
    fake.truth = None
    return fake, QuoteBlaster(fake, build_templates(fake.market, args.seed))


def stats(fake: Any, blaster: Any) -> dict[str, Any]:
    return {
        "wall": time.time(),
        "offered": blaster.offered,
        "sent": blaster.sent,
        "direct": blaster.direct,
        "withheld": blaster.withheld,
        "queued": blaster.queued(),
        "frames_sent": fake.stats.frames_sent,
        "notifications": fake.stats.notifications_sent,
        "sessions": len(fake.sessions),
        "quote_channels": len(blaster.subscribed_quote_channels()),
        "now_ms": fake.clock.now_ms(),
        "pump_errors": fake.stats.pump_errors,
    }


async def serve(args: argparse.Namespace) -> int:
    fake, blaster = build(args)
    await fake.start()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    blast = asyncio.create_task(blaster.run(), name="blaster")
    options = sum(1 for c in blaster.templates)
    ready = {
        "ws_url": fake.ws_url,
        "rest_url": fake.rest_url,
        "history_url": fake.history_url,
        "sim_clock": fake.sim_clock_spec(),
        "options": options,
    }
    _reply(ready)
    try:
        while True:
            line = (await reader.readline()).decode().strip()
            if not line or line == "quit":
                break
            cmd, _, arg = line.partition(" ")
            if cmd == "rate":
                blaster.set_rate(float(arg))
                _reply({"rate": blaster.rate})
            elif cmd == "stats":
                _reply(stats(fake, blaster))
            elif cmd == "templates":
                _reply({"channels": sorted(blaster.templates)})
            elif cmd == "channels":
                _reply({"channels": blaster.subscribed_quote_channels()})
            else:
                _reply({"error": f"unknown command {cmd!r}"})
    finally:
        blast.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await blast
        await fake.stop()
    return 0


def _reply(obj: dict[str, Any]) -> None:
    sys.stdout.write(orjson.dumps(obj).decode() + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(serve(parse_args(argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
