"""The fake exchange on 127.0.0.1 in a thread of its own, for tests whose own code blocks on
the docker CLI: its event loop keeps serving the containers while a test waits on them, and
ground truth is read on that loop so it is never seen half-updated."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg

from scripts.clock import SimClock
from tests.fake_deribit.market import DEFAULT_START_MS, MarketConfig
from tests.fake_deribit.server import FakeDeribit
from tests.support.realtime import truth_trades
from tests.support.trades import assert_trade_fields

T = TypeVar("T")

# Option name prefixes as the fake lists them (SOL options are USDC-settled, linear).
OPTION_PREFIX = {"BTC": "BTC-", "ETH": "ETH-", "SOL": "SOL_USDC-"}


class ThreadedFake:
    """A FakeDeribit whose market starts at DEFAULT_START_MS and runs `speed` x the wall."""

    def __init__(self, config: MarketConfig, speed: float) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fake-deribit")
        self.thread.start()
        self.fake: FakeDeribit = self._call(self._start(config, speed))

    async def _start(self, config: MarketConfig, speed: float) -> FakeDeribit:
        clock = SimClock.starting_now(DEFAULT_START_MS / 1000, speed)
        fake = FakeDeribit(config, clock=clock, heartbeat_scale=0.2)
        await fake.start()
        return fake

    def _call(self, coro: Any, timeout: float = 60) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def on_loop(self, fn: Callable[[], T]) -> T:
        """fn() run on the fake's loop (between its steps)."""

        async def run() -> T:
            return fn()

        return self._call(run())  # type: ignore[no-any-return]

    def market_ms(self) -> int:
        return int(self.fake.clock.now() * 1000)

    def wait_market_past(self, ms: int, timeout_s: float = 60) -> None:
        """Until the market has made every event up to `ms` (it can lag its clock)."""
        deadline = time.monotonic() + timeout_s
        while self.on_loop(lambda: self.fake.market.now_ms) < ms:
            assert time.monotonic() < deadline, f"the fake's market did not reach {ms}"
            time.sleep(0.2)

    def stop(self) -> None:
        try:
            self._call(self.fake.stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(30)
            self.loop.close()

    def assert_trades_exact(
        self, dsn: str, currency: str, lo_ms: int, hi_ms: int, wait_s: float = 90
    ) -> int:
        """Every option trade of `currency` the market made in [lo, hi] is stored exactly once
        with its fields; returns how many."""
        self.wait_market_past(hi_ms)
        prefix = OPTION_PREFIX[currency]
        truth = self.on_loop(lambda: truth_trades(self.fake, lo_ms, hi_ms, prefix))
        table = f"{currency.lower()}_option_trades"
        query = (
            "SELECT trade_id, instrument_name, trade_seq, price, amount, direction, "
            f"(extract(epoch from timestamp) * 1000)::bigint FROM {table} "
            "WHERE timestamp BETWEEN to_timestamp(%s / 1000.0) AND to_timestamp(%s / 1000.0)"
        )
        deadline = time.monotonic() + wait_s
        while True:
            with psycopg.connect(dsn) as conn:
                rows = conn.execute(query, (lo_ms, hi_ms)).fetchall()
            if len(rows) >= len(truth) or time.monotonic() > deadline:
                break
            time.sleep(1)
        ids = Counter(r[0] for r in rows)
        assert [i for i, n in ids.items() if n > 1] == [], "duplicate trades"
        missing = sorted((truth[i]["timestamp"], i) for i in set(truth) - set(ids))
        extra = sorted(set(ids) - set(truth))
        assert (missing[:5], len(missing), extra[:5]) == ([], 0, []), (
            f"{currency} trades in [{lo_ms}, {hi_ms}]: {len(truth)} made, {len(rows)} stored, "
            f"missing {missing[:5]}..., extra {extra[:5]}"
        )
        assert_trade_fields(rows, truth)
        assert truth, f"the fake made no {currency} option trade in the window"
        return len(truth)
