"""What the real-time collector's integration tests share: fake exchanges on a simulated clock,
and quotes put in the form their rows store, to compare what the fake sent with the database."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from scripts.clock import SimClock
from scripts.collectors.realtime.collector import OptionsRealtimeCollector
from scripts.collectors.realtime.service import run_realtime
from scripts.config import Settings
from tests.fake_deribit.faults import Faults
from tests.fake_deribit.market import DEFAULT_START_MS, MarketConfig
from tests.fake_deribit.server import FakeDeribit
from tests.support.trades import assert_trade_fields

MakeFake = Callable[..., Awaitable[FakeDeribit]]

# The fake's heartbeat period per second of the interval a client asks for: a collector's 10 s
# interval becomes 2 s of wall time, so heartbeats run all through a simulated hour, and a
# loaded CI machine that stalls a process for half a second does not close its socket (the
# close itself is proven in test_fake_exchange.py, at a much shorter scale).
SIM_HEARTBEAT_SCALE = 0.2


@contextlib.asynccontextmanager
async def sim_fakes(speed: float) -> AsyncIterator[MakeFake]:
    """`make(config, faults=None, before_start=None)` starts a fake whose market starts at
    DEFAULT_START_MS and runs `speed` times faster than the wall; every fake made stops on exit.
    `before_start(fake)` runs before the fake starts (to shape its market first)."""
    fakes: list[FakeDeribit] = []

    async def make(
        config: MarketConfig,
        faults: Faults | None = None,
        before_start: Callable[[FakeDeribit], None] | None = None,
    ) -> FakeDeribit:
        clock = SimClock.starting_now(DEFAULT_START_MS / 1000, speed)
        fake = FakeDeribit(config, clock=clock, faults=faults, heartbeat_scale=SIM_HEARTBEAT_SCALE)
        if before_start is not None:
            before_start(fake)
        await fake.start()
        fakes.append(fake)
        return fake

    try:
        yield make
    finally:
        for fake in fakes:
            await fake.stop()


class LoopStalls:
    """The wall-time intervals in which this process's event loop did not run (a 5 ms timer
    fired more than 20 ms late): on a loaded machine the loop shared by the fake exchange and
    an in-process collector stops for a moment, and at a simulated speed of 120 half a second
    is a market minute in which neither side could act. A latency measured in market time is
    judged net of these."""

    def __init__(self) -> None:
        self.intervals: list[tuple[float, float]] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> LoopStalls:
        self._task = asyncio.get_running_loop().create_task(self._watch())
        return self

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _watch(self) -> None:
        last = time.time()
        while True:
            await asyncio.sleep(0.005)
            now = time.time()
            if now - last > 0.02:
                self.intervals.append((last, now))
            last = now

    def market_ms_within(self, clock: SimClock, lo_ms: int, hi_ms: int) -> int:
        """The market milliseconds of [lo_ms, hi_ms] that fell in a stall."""

        def wall(ms: int) -> float:
            return clock.wall_start + (ms / 1000 - clock.sim_start) / clock.speed

        lo, hi = wall(lo_ms), wall(hi_ms)
        stalled = sum(max(0.0, min(hi, b) - max(lo, a)) for a, b in self.intervals)
        return int(stalled * clock.speed * 1000)


def quote_key(name: str, ts_ms: int, bp: Any, ba: Any, ap: Any, aa: Any) -> tuple[Any, ...]:
    """A quote as the row stores it: an empty side (amount 0 or null) is NULL, NULL."""
    bid = (None, None) if not ba else (float(bp), float(ba))
    ask = (None, None) if not aa else (float(ap), float(aa))
    return (name, ts_ms, *bid, *ask)


def sent_quote_key(data: dict[str, Any]) -> tuple[Any, ...]:
    """The `quote_key` of a `quote.*` notification's data, as the fake sent it."""
    return quote_key(
        data["instrument_name"],
        data["timestamp"],
        data["best_bid_price"],
        data["best_bid_amount"],
        data["best_ask_price"],
        data["best_ask_amount"],
    )


SPEED = 120.0  # a market hour in 30 wall seconds
HOUR_S = 3600.0


async def wait_for(cond: Callable[[], Any], timeout_s: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        ok = cond()
        if asyncio.iscoroutine(ok):
            ok = await ok
        if ok:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or cond}")
        await asyncio.sleep(0.1)


async def market_past(fake: FakeDeribit, ms: int) -> None:
    """Waits until the fake's market has made every event up to `ms`: on a busy machine it
    lags its clock, so ground truth read at a cut taken from the clock may still grow."""
    await wait_for(lambda: fake.market.now_ms >= ms, 30, "the market past the cut")


def hour_market(**kw: Any) -> MarketConfig:
    base: dict[str, Any] = {
        "currencies": ("ETH",),
        "expiries": 2,
        "strikes_per_expiry": 4,
        "quote_rate_hz": 10.0,
        "trade_rate_hz": 2.0,
        "listing_every_s": 900.0,
        "first_expiry_in_s": 1500.0,
        "history_s": 3 * 3600.0,
    }
    base.update(kw)
    return MarketConfig(**base)


def collector_env(
    fake: FakeDeribit, database_url: str, spool: Path, **extra: str
) -> dict[str, str]:
    env = {
        "DATABASE_URL": database_url,
        "CURRENCY": "ETH",
        "DERIBIT_WS_URL": fake.ws_url,
        "DERIBIT_REST_URL": fake.rest_url,
        "DERIBIT_HISTORY_URL": fake.history_url,
        "SIM_CLOCK": fake.sim_clock_spec(),
        "SPOOL_DIR": str(spool),
        "FLUSH_INTERVAL_MS": "200",
        "TRADE_REPAIR_MAX_AGE_S": "7200",
        "ORDERBOOK_SNAPSHOT_INTERVAL_S": "600",
        "DATA_WATCHDOG_S": "3",
        "DRAIN_DEADLINE_S": "10",
        "LOG_LEVEL": "INFO",
    }
    env.update(extra)
    return env


class SubscribeLog:
    """When each channel was first subscribed and last unsubscribed on the fake, in the fake
    market's own time (`market.now_ms` as the request is handled), recorded by wrapping its
    router: the latency of a listing is then the market time that passed on the exchange, not
    wall time scaled by the speed, which a busy test process stretches (the fake falls behind
    the clock and catches up in bursts, and a 0.5 s pause is a market minute at speed 120)."""

    def __init__(self, fake: FakeDeribit) -> None:
        self.first: dict[str, int] = {}
        self.removed: dict[str, int] = {}
        router = fake.router
        add, remove = router.add, router.remove

        def logged_add(session: Any, channel: str) -> bool:
            self.first.setdefault(channel, fake.market.now_ms)
            return add(session, channel)

        def logged_remove(session: Any, channel: str) -> bool:
            self.removed[channel] = fake.market.now_ms
            return remove(session, channel)

        router.add = logged_add  # type: ignore[method-assign]
        router.remove = logged_remove  # type: ignore[method-assign]
        self.router = router

    def subscribed_now(self) -> set[str]:
        return set(self.router.subscribers)


@dataclass
class Running:
    fake: FakeDeribit
    settings: Settings
    stop: asyncio.Event
    task: asyncio.Task[int]
    collector: OptionsRealtimeCollector


async def start_collector(settings: Settings, fake: FakeDeribit) -> Running:
    stop = asyncio.Event()
    ready: asyncio.Future[OptionsRealtimeCollector] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(
        run_realtime(settings, stop, clock=fake.clock, apply_schema=False, collector_ready=ready)
    )
    collector = await asyncio.wait_for(ready, 30)
    await asyncio.wait_for(collector.started.wait(), 30)
    return Running(fake, settings, stop, task, collector)


async def stop_collector(run: Running) -> int:
    run.stop.set()
    return await asyncio.wait_for(run.task, 60)


async def query(database_url: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        cur = await conn.execute(sql, args or None)
        return await cur.fetchall()


def is_option(name: str, prefix: str = "ETH-") -> bool:
    return name.startswith(prefix) and len(name.split("-")) == 4


def truth_trades(
    fake: FakeDeribit, lo_ms: int, hi_ms: int, prefix: str = "ETH-"
) -> dict[str, dict[str, Any]]:
    return {
        t["trade_id"]: t
        for t in fake.truth.trades
        if is_option(t["instrument_name"], prefix) and lo_ms <= t["timestamp"] <= hi_ms
    }


async def db_trades(database_url: str, lo_ms: int, hi_ms: int) -> list[tuple[Any, ...]]:
    return await query(
        database_url,
        "SELECT trade_id, instrument_name, trade_seq, price, amount, direction, "
        "(extract(epoch from timestamp) * 1000)::bigint FROM eth_option_trades "
        "WHERE timestamp BETWEEN to_timestamp(%s / 1000.0) AND to_timestamp(%s / 1000.0)",
        lo_ms,
        hi_ms,
    )


def sent_quotes(fake: FakeDeribit, hi_ms: int) -> Counter[tuple[Any, ...]]:
    """Each quote the fake sent, once: a (re)subscribe re-sends the current quote, which is the
    same quote again (deribit-protocol.md section 13), not a new one."""
    keys = {sent_quote_key(s.data) for s in fake.truth.sent_on("quote.")}
    return Counter(k for k in keys if k[1] <= hi_ms)


async def db_quotes(database_url: str, hi_ms: int) -> Counter[tuple[Any, ...]]:
    rows = await query(
        database_url,
        "SELECT instrument_name, (extract(epoch from timestamp) * 1000)::bigint, best_bid_price, "
        "best_bid_amount, best_ask_price, best_ask_amount FROM eth_option_quotes "
        "WHERE timestamp <= to_timestamp(%s / 1000.0)",
        hi_ms,
    )
    return Counter(quote_key(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows)


async def assert_trades_exact(
    database_url: str, fake: FakeDeribit, lo_ms: int, hi_ms: int, *, wait_s: float = 20.0
) -> None:
    """Every option trade the market made in [lo, hi] is stored once, with its fields."""
    await market_past(fake, hi_ms)
    truth = truth_trades(fake, lo_ms, hi_ms)

    async def caught_up() -> bool:
        return len(await db_trades(database_url, lo_ms, hi_ms)) >= len(truth)

    with contextlib.suppress(AssertionError):  # the comparison below says what is missing
        await wait_for(caught_up, wait_s, "trades stored")
    rows = await db_trades(database_url, lo_ms, hi_ms)
    ids = Counter(r[0] for r in rows)
    assert [i for i, n in ids.items() if n > 1] == []  # no duplicate
    missing = sorted(
        (truth[i]["timestamp"], i, truth[i]["instrument_name"]) for i in set(truth) - set(ids)
    )
    extra = sorted(set(ids) - set(truth))
    if extra:
        known = fake.truth.trade_by_id
        print("EXTRA", [(r, known.get(r[0], {}).get("timestamp")) for r in rows if r[0] in extra])
    if missing:
        gaps = await query(database_url, "SELECT * FROM data_gaps ORDER BY gap_start")
        print("MISSING", len(missing), missing[0], missing[-1], "\n".join(map(str, gaps)))
    assert (missing, extra) == ([], [])  # no loss, nothing invented
    assert_trade_fields(rows, truth)


@pytest.fixture
async def fake_hour() -> AsyncIterator[Callable[..., Any]]:
    async with sim_fakes(SPEED) as make:

        async def hour(
            config: MarketConfig | None = None, faults: Faults | None = None
        ) -> FakeDeribit:
            return await make(config or hour_market(), faults)

        yield hour


@pytest.fixture
async def stalls() -> AsyncIterator[LoopStalls]:
    watch = LoopStalls().start()
    yield watch
    watch.stop()


async def wait_connected(fake: Any, n_sessions_before: int) -> None:
    """Waits for a collector's session newer than the first `n_sessions_before` to subscribe."""
    await wait_for(
        lambda: (
            fake.stats.connections > n_sessions_before
            and any(s.conn_id > n_sessions_before and len(s.channels) > 4 for s in fake.sessions)
        ),
        40,
        "collector subscribed",
    )
