"""`collect_realtime` over simulated hours against the fake exchange and a real database.

The collector runs as a subprocess on the exchange's clock (SIM_CLOCK), is stopped with SIGTERM
halfway and started again after a pause, while the test records the exchange's option trades
into `btc_option_trades` (the real-time collector's job). Then every bar, greeks row and DVOL
value is compared with what the exchange itself answers.

The run covers CHAINTAPE_REST_SIM_HOURS (default 24) simulated hours at CHAINTAPE_REST_SPEED
(default 750) market seconds per wall second: the full day in about two minutes.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from scripts.clock import SimClock
from scripts.normalize.trades import parse_trades
from scripts.storage.tables import OPTION_TRADES
from tests.conftest import REPO_ROOT
from tests.fake_deribit.market import MarketConfig
from tests.fake_deribit.server import FakeDeribit
from tests.support.rest import fetch, make_schema, report_calls, until_market

HOURS = float(os.environ.get("CHAINTAPE_REST_SIM_HOURS", "24"))
# Market seconds per wall second. The fake market builds only what is subscribed and keeps up
# far beyond this; the collector's polls (every market minute) set the pace: at 2000 it missed
# minutes of marks when the machine was loaded.
SPEED = float(os.environ.get("CHAINTAPE_REST_SPEED", "750"))
MIN_MS = 60_000
HOUR_MS = 3_600_000
LOOKBACK_S = 86_400  # the collector's default look-back on a first start


def _market() -> MarketConfig:
    return MarketConfig(
        seed=11,
        currencies=("BTC",),
        expiries=2,
        strikes_per_expiry=1,
        quote_rate_hz=0.05,
        trade_rate_hz=0.05,
        perp_trade_rate_hz=0.2,
        future_trade_rate_hz=0.05,
        history_s=86_400,
        history_trade_rate_hz=0.01,
        ticker_slots=1,
        record_books=False,
    )


def _env(fake: FakeDeribit, database_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "DATABASE_URL": database_url,
        "CURRENCIES": "BTC",
        "DERIBIT_REST_URL": fake.rest_url,
        "DERIBIT_HISTORY_URL": fake.history_url,
        "SIM_CLOCK": fake.sim_clock_spec(),
        "SPOOL_DIR": str(tmp_path / "spool"),
        "FLUSH_INTERVAL_MS": "200",
        "DRAIN_DEADLINE_S": "10",
        "LOG_LEVEL": "INFO",
        "OHLCV_POLL_INTERVAL_S": "60",
        "INDEX_POLL_INTERVAL_S": "60",
        "GREEKS_POLL_INTERVAL_S": "3600",
        "REST_REQUESTS_PER_S": "5",
        "REST_BURST": "20",
    }


class TradeFeeder:
    """Stands in for the real-time collector: records the exchange's option trades."""

    def __init__(self, fake: FakeDeribit, database_url: str) -> None:
        self.fake = fake
        self.database_url = database_url
        self.done = 0
        self.from_ms = fake.market.now_ms

    async def run(self, stop: asyncio.Event) -> None:
        async with await psycopg.AsyncConnection.connect(
            self.database_url, autocommit=True
        ) as conn:
            while True:
                await self.feed(conn)
                if stop.is_set():
                    return
                await asyncio.sleep(0.3)

    async def feed(self, conn: psycopg.AsyncConnection[Any]) -> None:
        series = self.fake.market.trades.currency("BTC", "option")
        new = [t for t in series.trades[self.done :] if t["timestamp"] >= self.from_ms]
        self.done = len(series.trades)
        if not new:
            return
        received = datetime.fromtimestamp(self.fake.clock.now(), UTC)
        rows = parse_trades(new, received_at=received)
        cols = ", ".join(OPTION_TRADES.columns)
        marks = ", ".join(["%s"] * len(OPTION_TRADES.columns))
        async with conn.cursor() as cur:
            await cur.executemany(
                f"INSERT INTO btc_option_trades ({cols}) VALUES ({marks}) ON CONFLICT DO NOTHING",
                [tuple(r) for r in rows],
            )


def _start(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "scripts.collect_realtime"],
            cwd=REPO_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def _stop(proc: subprocess.Popen[bytes], log: Path) -> None:
    proc.send_signal(signal.SIGTERM)
    for _ in range(600):
        if proc.poll() is not None:
            break
        await asyncio.sleep(0.05)
    else:
        proc.kill()
        raise AssertionError("collector did not stop within 30 s:\n" + _tail(log))
    assert proc.returncode == 0, _tail(log)


def _tail(log: Path) -> str:
    return log.read_text()[-3000:]


def _ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


def _check_bars(fake: FakeDeribit, db: str, first_ms: int, last_ms: int) -> int:
    futures = [i for i in fake.market.by_name.values() if i.kind == "future"]
    assert futures
    checked = 0
    for inst in futures:
        expected = fake.rest.handle(
            "public/get_tradingview_chart_data",
            {
                "instrument_name": inst.name,
                "start_timestamp": first_ms,
                "end_timestamp": last_ms,
                "resolution": "1",
            },
        )
        want = list(
            zip(
                expected["ticks"],
                expected["open"],
                expected["high"],
                expected["low"],
                expected["close"],
                expected["volume"],
                expected["cost"],
                strict=True,
            )
        )
        table = "perpetuals_ohlcv" if inst.is_perp else "futures_ohlcv"
        got = [
            (_ms(r[0]), *r[1:])
            for r in fetch(
                db,
                f"SELECT timestamp, open, high, low, close, volume, cost FROM {table} "
                "WHERE instrument_name = %s AND resolution = '1' AND timestamp BETWEEN %s AND %s "
                "ORDER BY timestamp",
                (
                    inst.name,
                    datetime.fromtimestamp(first_ms / 1000, UTC),
                    datetime.fromtimestamp(last_ms / 1000, UTC),
                ),
            )
        ]
        assert got == want, f"{inst.name}: {len(got)} bars stored, exchange has {len(want)}"
        checked += len(want)
    return checked


def _check_option_bars(db: str, first_ms: int, last_ms: int) -> int:
    lo = datetime.fromtimestamp(first_ms / 1000, UTC)
    hi = datetime.fromtimestamp(last_ms / 1000, UTC)
    traded = fetch(
        db,
        "SELECT instrument_name, date_trunc('minute', timestamp), sum(amount), count(*) "
        "FROM btc_option_trades WHERE timestamp >= %s AND timestamp < %s GROUP BY 1, 2",
        (lo, hi),
    )
    bars = {
        (name, ts): (vol, n)
        for name, ts, vol, n in fetch(
            db,
            "SELECT instrument_name, timestamp, volume, trade_count FROM options_ohlcv "
            "WHERE timestamp >= %s AND timestamp < %s AND trade_count > 0",
            (lo, hi),
        )
    }
    assert traded, "no option traded during the run"
    for name, minute, volume, count in traded:
        assert (name, minute) in bars, f"no bar for {name} at {minute}"
        got_volume, got_count = bars[(name, minute)]
        assert abs(got_volume - volume) < 1e-9 and got_count == count, (name, minute)
    assert len(bars) == len(traded)
    return len(traded)


def _check_greeks(
    fake: FakeDeribit, db: str, first_hour_ms: int, last_hour_ms: int, stopped_ms: int
) -> int:
    """Every option live through an hour has greeks in it, except in an hour the collector was
    down for entirely (from its stop to the first row after the restart)."""
    rows: dict[str, list[int]] = defaultdict(list)
    for name, ts in fetch(db, "SELECT instrument_name, timestamp FROM options_greeks"):
        rows[name].append(_ms(ts))
    back_ms = min(t for ts in rows.values() for t in ts if t > stopped_ms)
    options = [i for i in fake.market.by_name.values() if i.kind == "option"]
    checked = 0
    for hour in range(first_hour_ms, last_hour_ms, HOUR_MS):
        if stopped_ms <= hour and hour + HOUR_MS <= back_ms:
            continue
        for inst in options:
            if inst.creation_ms <= hour and inst.expiry_ms >= hour + HOUR_MS:
                assert any(hour <= t < hour + HOUR_MS for t in rows[inst.name]), (
                    f"no greeks for {inst.name} in the hour from {hour}: "
                    f"{sorted(rows[inst.name])}, back at {back_ms}"
                )
                checked += 1
    assert checked
    return checked


def _check_dvol(fake: FakeDeribit, db: str, first_ms: int, last_ms: int) -> int:
    expected: dict[int, float] = {}
    end = last_ms + MIN_MS - 1
    while True:
        page = fake.rest.handle(
            "public/get_volatility_index_data",
            {
                "currency": "BTC",
                "start_timestamp": first_ms,
                "end_timestamp": end,
                "resolution": "60",
            },
        )
        expected.update({c[0]: c[4] for c in page["data"]})
        if page["continuation"] is None:
            break
        end = page["continuation"]
    got = {
        _ms(ts): v
        for ts, v in fetch(
            db,
            "SELECT timestamp, value FROM index_prices"
            " WHERE kind = 'dvol' AND index_name = 'btc_usd' AND timestamp BETWEEN %s AND %s",
            (
                datetime.fromtimestamp(first_ms / 1000, UTC),
                datetime.fromtimestamp(last_ms / 1000, UTC),
            ),
        )
    }
    assert got == expected
    return len(got)


async def test_simulated_day_of_bars_greeks_and_indices_with_a_restart(
    database_url: str, tmp_path: Path
) -> None:
    config = _market()
    clock = SimClock.starting_now(config.start_ms / 1000, SPEED)
    make_schema(database_url, ("BTC",))
    log = tmp_path / "collector.log"
    async with FakeDeribit(config, clock=clock) as fake:
        env = _env(fake, database_url, tmp_path)
        t0 = clock.now()
        feeding = asyncio.Event()
        feeder = TradeFeeder(fake, database_url)
        feed_task = asyncio.create_task(feeder.run(feeding))
        half = t0 + HOURS * 1800 + 25 * 60  # away from an hour boundary
        proc = _start(env, log)
        await until_market(clock, half, wall_timeout_s=HOURS * 1800 / SPEED + 60)
        stopped_ms = fake.market.now_ms
        await _stop(proc, log)
        down_until = clock.now() + 1800  # 30 minutes down: the restart fills the bars
        await until_market(clock, down_until, wall_timeout_s=60)
        proc = _start(env, log)
        await until_market(clock, t0 + HOURS * 3600, wall_timeout_s=HOURS * 1800 / SPEED + 60)
        feeding.set()
        await feed_task
        await asyncio.sleep(
            clock.to_wall_seconds(150)
        )  # two more minute polls over the last trades
        seen_ms = fake.market.now_ms  # the exchange's time at the collector's last polls
        await _stop(proc, log)
        end_ms = fake.market.now_ms
        market_s = (end_ms / 1000) - t0
        report_calls("collect_realtime", dict(fake.stats.rest_calls_by_method), market_s)
        assert fake.stats.errors_sent_by_code.get(10028, 0) == 0
        assert "REST calls per simulated hour" in _tail(log)

        t0_ms = int(t0 * 1000)
        # The collector read the exchange up to where the exchange's market was at its last
        # poll; the bars it may still re-read (the newest three) are left out.
        newest, oldest = fetch(
            database_url,
            "SELECT max(timestamp), min(timestamp) FROM perpetuals_ohlcv",
        )[0]
        last_closed = _ms(newest) - 3 * MIN_MS
        first = _ms(oldest)
        print(f"lag at the end: {(clock.now_ms() - fake.market.now_ms) / 1000:.0f} market s")
        assert last_closed >= seen_ms - 10 * MIN_MS, "the collector fell behind the exchange"
        # The first start read LOOKBACK_S back from its own start (a few seconds after t0).
        assert t0_ms - LOOKBACK_S * 1000 <= first <= t0_ms - LOOKBACK_S * 1000 + HOUR_MS
        bars = _check_bars(fake, database_url, first, last_closed)
        option_bars = _check_option_bars(database_url, feeder.from_ms, last_closed)
        first_hour = t0_ms - t0_ms % HOUR_MS + HOUR_MS
        greeks = _check_greeks(
            fake, database_url, first_hour, seen_ms - seen_ms % HOUR_MS, stopped_ms
        )
        dvol = _check_dvol(fake, database_url, first + 2 * MIN_MS, last_closed)
        minutes = (last_closed - t0_ms) // MIN_MS
        prices = fetch(database_url, "SELECT count(*) FROM index_prices WHERE kind = 'price'")[0][0]
        assert prices >= 0.8 * minutes
        marks = fetch(
            database_url,
            "SELECT count(DISTINCT timestamp) FROM options_ohlcv WHERE mark_iv_close IS NOT NULL",
        )[0][0]
        assert marks >= 0.8 * (minutes - 30)  # every minute the collector was up
        print(
            f"[collect_realtime] {HOURS:g} simulated hours: {bars} future/perp bars, "
            f"{option_bars} traded option minutes, {greeks} option-hours of greeks, {dvol} DVOL "
            f"minutes, {prices} index prices, marks in {marks} minutes"
        )
