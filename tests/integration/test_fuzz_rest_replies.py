"""Issue 11 scenario 8: malformed REST replies never crash a collector; they are counted, kept
in `rejected_messages` and the call is tried again at the next round.

The fake exchange replaces a fraction of its HTTP results with broken ones (a `null` result, a
string for a list, `null` inside a list such as `"trades":[null]`, a missing key, a bad value),
as the WebSocket fuzz test (test_fuzz_write_path.py) does with frames. Part one calls every
REST method the collectors use; part two runs the REST collectors' polls (instruments, bars,
option bars, greeks, indices) for several rounds; a poll may fail a round (the Schedule tries
again), but no exception may come from anything but a counted, kept rejection.
"""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from pathlib import Path
from typing import Any

from psycopg_pool import AsyncConnectionPool

from scripts.clock import SimClock
from scripts.collectors.rejects import Rejects
from scripts.collectors.rest.polls import RealtimeRest
from scripts.collectors.rest.service import ServiceParts
from scripts.config import load_settings
from scripts.deribit.limiter import LimiterSet
from scripts.deribit.rest import DeribitRestClient, DeribitRestError, MalformedReply
from scripts.storage.migrate import apply_settings_schema
from scripts.storage.writer import BatchWriter
from tests.fake_deribit.faults import Faults
from tests.fake_deribit.market import MarketConfig
from tests.fake_deribit.server import FakeDeribit
from tests.support.collector_proc import spawn_collector
from tests.support.realtime import (
    SPEED,
    collector_env,
    hour_market,
    query,
    wait_connected,
)
from tests.support.rest import fake_settings, fetch, make_schema

ROUNDS = 25


def _market() -> MarketConfig:
    return MarketConfig(
        seed=8,
        currencies=("BTC",),
        expiries=2,
        strikes_per_expiry=2,
        quote_rate_hz=0.05,
        trade_rate_hz=0.2,
        history_s=7200,
        history_trade_rate_hz=0.05,
        ticker_slots=1,
        record_books=False,
    )


def _calls(now_ms: int, option: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(client method, Deribit method, arguments) for every REST method the collectors call."""
    start = now_ms - 3_600_000
    return [
        ("get_time", "get_time", {}),
        ("get_instruments", "get_instruments", {"currency": "BTC", "kind": "option"}),
        (
            "get_tradingview_chart_data",
            "get_tradingview_chart_data",
            {"instrument_name": "BTC-PERPETUAL", "start_timestamp": start, "end_timestamp": now_ms},
        ),
        (
            "get_funding_rate_history",
            "get_funding_rate_history",
            {"instrument_name": "BTC-PERPETUAL", "start_timestamp": start, "end_timestamp": now_ms},
        ),
        (
            "get_last_trades_by_currency_and_time",
            "get_last_trades_by_currency_and_time",
            {
                "currency": "BTC",
                "start_timestamp": start,
                "end_timestamp": now_ms,
                "kind": "option",
            },
        ),
        (
            "get_last_trades_by_instrument",
            "get_last_trades_by_instrument",
            {"instrument_name": option, "start_timestamp": start, "end_timestamp": now_ms},
        ),
        ("ticker", "ticker", {"instrument_name": option}),
        ("get_order_book", "get_order_book", {"instrument_name": option, "depth": 5}),
        ("get_book_summary_by_currency", "get_book_summary_by_currency", {"currency": "BTC"}),
        (
            "get_volatility_index_data",
            "get_volatility_index_data",
            {"currency": "BTC", "start_timestamp": start, "end_timestamp": now_ms},
        ),
        ("get_index_price", "get_index_price", {"index_name": "btc_usd"}),
    ]


async def test_every_rest_method_survives_malformed_replies_counted_and_kept(
    database_url: str,
) -> None:
    config = _market()
    clock = SimClock.starting_now(config.start_ms / 1000 + 3600, 10.0)
    make_schema(database_url, ("BTC",))
    writer = BatchWriter(database_url, collector_name="rest", currency=None, version="test")
    rejects = Rejects(writer, "rest")
    outcomes: Counter[str] = Counter()
    async with FakeDeribit(config, clock=clock) as fake:
        fake.faults.rest_malformed_rate = 0.5
        limiters = LimiterSet.build(clock, requests_per_s=1000, burst=1000)
        async with DeribitRestClient(fake.rest_url, limiter=limiters, clock=clock) as rest:
            rest.on_malformed = rejects.rest_reply
            option = next(n for n, i in fake.market.by_name.items() if i.kind == "option")
            for _ in range(ROUNDS):
                for name, method, args in _calls(fake.market.now_ms, option):
                    try:
                        await getattr(rest, name)(**args)
                        outcomes[f"{method}:ok"] += 1
                    except MalformedReply:
                        outcomes[f"{method}:malformed"] += 1
            sent = sum(fake.stats.rest_malformed_sent.values())
            malformed = sum(rest.malformed.values())
    assert await writer.flush()
    await writer.drain()
    kept = fetch(database_url, "SELECT channel FROM rejected_messages")
    print(f"\n{sent} malformed replies sent; outcomes: {dict(sorted(outcomes.items()))}")
    # Every method met a malformed reply and was refused cleanly, and still worked otherwise.
    for _, method, _ in _calls(0, option):
        assert outcomes[f"{method}:malformed"] > 0 and outcomes[f"{method}:ok"] > 0, method
    # Counted and kept: every reply the client refused (element-level faults such as
    # "trades":[null] keep the right shape and are the parsers' to refuse, per element).
    assert malformed == sum(n for k, n in outcomes.items() if k.endswith(":malformed"))
    assert writer.status.rejected_total == rejects.total == malformed == len(kept)
    assert {c for (c,) in kept} == {f"public/{m}" for _, m, _ in _calls(0, option)}


async def test_rest_collector_polls_survive_malformed_replies_and_recover(
    database_url: str, tmp_path: Path
) -> None:
    config = _market()
    clock = SimClock.starting_now(config.start_ms / 1000 + 3600, 60.0)
    make_schema(database_url, ("BTC",))
    async with FakeDeribit(config, clock=clock) as fake:
        s = fake_settings(fake, database_url, tmp_path, GREEKS_POLL_INTERVAL_S="600")
        writer = BatchWriter(database_url, collector_name="rest", currency=None, version="test")
        rejects = Rejects(writer, "rest")
        limiters = LimiterSet.build(clock, requests_per_s=1000, burst=1000)
        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(database_url, open=False)
        await pool.open()
        stop = asyncio.Event()
        async with DeribitRestClient(fake.rest_url, limiter=limiters, clock=clock) as rest:
            rest.on_malformed = rejects.rest_reply
            parts = ServiceParts(s, clock, pool, writer, limiters, rest)
            schedules = await RealtimeRest(stop, max_lookback_s=3600).build(parts)
            fake.faults.rest_malformed_rate = 0.3
            escaped: Counter[str] = Counter()
            for _ in range(6):
                for sched in schedules:
                    try:
                        await sched.job(clock.now())
                    except DeribitRestError:
                        escaped[sched.name] += 1  # refused and counted: the round is retried
                await writer.flush()
            broken = sum(fake.stats.rest_malformed_sent.values())
            # The faults stop: the next round of every poll works again.
            fake.faults.rest_malformed_rate = 0.0
            greeks_before = fetch(database_url, "SELECT count(*) FROM options_greeks")[0][0]
            for sched in schedules:
                await sched.job(clock.now())
            await writer.flush()
        await pool.close()
        await writer.drain()
    greeks_after = fetch(database_url, "SELECT count(*) FROM options_greeks")[0][0]
    kept = fetch(database_url, "SELECT count(*) FROM rejected_messages")[0][0]
    print(
        f"\n{broken} malformed replies sent to the polls; rounds that gave up: {dict(escaped)}; "
        f"{rest.malformed.total()} refused by the client, "
        f"{writer.status.rejected_total} rejections counted"
    )
    assert broken > 0 and rejects.total > 0
    # The client's refusals (`rejects`) and the polls' (greeks keep theirs) share the writer.
    total = writer.status.rejected_total
    assert kept == total >= rejects.total, "every rejection is kept in rejected_messages"
    assert greeks_after >= greeks_before


async def test_realtime_collector_survives_malformed_rest_replies_during_repairs(
    database_url: str,
    tmp_path: Path,
    fake_hour: Any,
) -> None:
    """The real-time collector's REST calls (trade repair after each drop, order book
    snapshots, instruments) under malformed replies: it keeps running, exits 0 on SIGTERM, and
    every refused reply is counted and kept."""
    faults = Faults(seed=8)
    fake = await fake_hour(hour_market(listing_every_s=1200.0), faults)
    env = collector_env(
        fake,
        database_url,
        tmp_path / "spool",
        DATA_WATCHDOG_S="1",
        ORDERBOOK_SNAPSHOT_INTERVAL_S="30",
    )
    await apply_settings_schema(load_settings(env))
    log = tmp_path / "collector.log"
    step_s = 600 / SPEED
    proc = spawn_collector(env, log)
    try:
        await wait_connected(fake, 0)
        faults.rest_malformed_rate = 0.4
        faults.drop_every_s = 60 / SPEED  # a repair after every drop, through broken replies
        await asyncio.sleep(step_s)
        faults.drop_every_s = None
        faults.rest_malformed_rate = 0.0
        await asyncio.sleep(step_s / 2)
        assert proc.poll() is None, f"the collector died:\n{log.read_text()[-4000:]}"
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
        assert code == 0, f"exit {code}:\n{log.read_text()[-4000:]}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    text = log.read_text()
    kept = await query(
        database_url, "SELECT count(*) FROM rejected_messages WHERE channel LIKE 'public/%%'"
    )
    sent = dict(fake.stats.rest_malformed_sent)
    print(f"\nmalformed REST replies sent: {sent}; kept: {kept[0][0]}")
    assert sum(sent.values()) > 0 and kept[0][0] > 0, (sent, kept, text[-4000:])
    assert "Traceback" not in text, text[text.find("Traceback") - 2000 :][:4000]
