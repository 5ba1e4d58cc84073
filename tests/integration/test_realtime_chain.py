"""The real-time collector's chain and budgets: TOP_N_INSTRUMENTS, the instrument reconcile,
trade pagination inside one millisecond, and the fleet's connection budget."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from scripts.config import load_settings
from scripts.deribit.limiter import GET_INSTRUMENTS_BURST
from scripts.storage.migrate import apply_settings_schema
from tests.fake_deribit.faults import Faults
from tests.fake_deribit.market import DEFAULT_START_MS
from tests.fake_deribit.server import FakeDeribit
from tests.support.realtime import (
    SubscribeLog,
    assert_trades_exact,
    collector_env,
    hour_market,
    query,
    sim_fakes,
    start_collector,
    stop_collector,
    wait_for,
)

SPEED = 60.0  # a market minute per wall second


@pytest.fixture
async def make_fake() -> AsyncIterator[Callable[..., Any]]:
    async with sim_fakes(SPEED) as make:
        yield make


def quote_channels(names: set[str]) -> set[str]:
    return {c for c in names if c.startswith("quote.")}


def top_by_open_interest(fake: FakeDeribit, n: int) -> set[str]:
    """The collector's documented rule: largest open interest first, ties by name."""
    live = fake.market.instruments("ETH", "option", False)
    ranked = sorted(
        live,
        key=lambda i: (
            -round(fake.market.by_name[i["instrument_name"]].open_interest, 8),
            i["instrument_name"],
        ),
    )
    return {f"quote.{i['instrument_name']}" for i in ranked[:n]}


async def test_top_n_follows_exactly_the_top_by_open_interest_through_listings_and_expiries(
    database_url: str, tmp_path: Path, make_fake: Any
) -> None:
    # No live option trades: open interest (from the history) stays put, so the top N is known.
    config = hour_market(
        trade_rate_hz=0.0, listing_every_s=60.0, first_expiry_in_s=100.0, strikes_per_expiry=4
    )
    fake = await make_fake(config)
    subs = SubscribeLog(fake)
    peak = [0]
    add = subs.router.add

    def counting_add(session: Any, channel: str) -> bool:
        added = add(session, channel)
        peak[0] = max(peak[0], len(quote_channels(subs.subscribed_now())))
        return added

    subs.router.add = counting_add  # type: ignore[method-assign]
    env = collector_env(
        fake,
        database_url,
        tmp_path / "spool",
        TOP_N_INSTRUMENTS="5",
        INSTRUMENT_RECONCILE_INTERVAL_S="60",
    )
    settings = load_settings(env)
    await apply_settings_schema(settings)
    run = await start_collector(settings, fake)
    assert quote_channels(subs.subscribed_now()) == top_by_open_interest(fake, 5)
    start_s = fake.clock.now()
    # Listings (every 60 s), an expiry of eight of the sixteen options (100 s), reconciles.
    await wait_for(lambda: fake.market.now_ms > (start_s + 200) * 1000, 30, "listings, expiry")
    await wait_for(
        lambda: quote_channels(subs.subscribed_now()) == top_by_open_interest(fake, 5),
        20,
        "the new top 5",
    )
    listed = [
        i["instrument_name"]
        for i in fake.market.instruments("ETH", "option", False)
        if i["creation_timestamp"] / 1000 > start_s
    ]
    expired = [
        i["instrument_name"]
        for i in fake.market.instruments("ETH", "option", True)
        if i["expiration_timestamp"] / 1000 > start_s
    ]
    assert listed and expired
    assert peak[0] == 5  # never more than N, not even between a listing and a reconcile
    assert run.collector.chain.reconciles >= 3

    # Listings are stored in `instruments` whether or not they rank in the top N.
    async def stored() -> bool:
        rows = await query(database_url, "SELECT instrument_name FROM instruments")
        return set(listed) <= {r[0] for r in rows}

    await wait_for(stored, 20, "listings in instruments")
    assert await stop_collector(run) == 0
    assert fake.stats.errors_sent_by_code.get(10028, 0) == 0


async def test_a_listing_whose_push_was_lost_is_followed_after_the_reconcile(
    database_url: str, tmp_path: Path, make_fake: Any
) -> None:
    listing_s = 150.0
    faults = Faults()
    fake = await make_fake(hour_market(listing_every_s=listing_s, trade_rate_hz=0.5), faults)
    subs = SubscribeLog(fake)
    env = collector_env(
        fake, database_url, tmp_path / "spool", INSTRUMENT_RECONCILE_INTERVAL_S="120"
    )
    settings = load_settings(env)
    await apply_settings_schema(settings)
    start_s = fake.clock.now()
    run = await start_collector(settings, fake)
    listing_ms = DEFAULT_START_MS + int(listing_s * 1000)
    await wait_for(lambda: fake.market.now_ms > listing_ms - 90_000, 30, "before the listing")
    # The collector's socket is down while the market lists: the pushes go to nobody.
    faults.refuse_connections_until = 1e12
    await fake.drop_all_connections()
    await wait_for(lambda: fake.market.now_ms > listing_ms + 1000, 30, "the listing")
    faults.refuse_connections_until = None
    listed = [
        i["instrument_name"]
        for i in fake.market.instruments("ETH", "option", False)
        if i["creation_timestamp"] == listing_ms
    ]
    assert len(listed) == 8
    pushed = {s.data["instrument_name"] for s in fake.truth.sent_on("instrument.")}
    assert not set(listed) & pushed  # every push of this listing was lost
    wanted = {f"quote.{n}" for n in listed}
    await wait_for(lambda: wanted <= subs.subscribed_now(), 40, "the lost listing followed")
    # Within the get_instruments credits: a burst of 5, then one per 10 market seconds.
    await asyncio.sleep(0.5)
    elapsed_s = fake.clock.now() - start_s
    calls = fake.stats.rest_calls_by_method["public/get_instruments"]
    assert 2 <= calls <= GET_INSTRUMENTS_BURST + elapsed_s / 10 + 1
    assert run.collector.chain.reconciles >= 1  # (the reconnect's and the periodic may be one)
    assert await stop_collector(run) == 0
    assert fake.stats.errors_sent_by_code.get(10028, 0) == 0


async def test_more_than_a_page_of_trades_in_one_millisecond_is_repaired_whole(
    database_url: str, tmp_path: Path, make_fake: Any
) -> None:
    burst: list[int] = []

    def inject(fake: FakeDeribit) -> None:
        name = fake.market.instruments("ETH", "option", False)[0]["instrument_name"]
        burst.append(fake.market.add_trade_burst(name, 2500))

    fake = await make_fake(hour_market(listing_every_s=None), before_start=inject)
    settings = load_settings(collector_env(fake, database_url, tmp_path / "spool"))
    await apply_settings_schema(settings)
    run = await start_collector(settings, fake)
    await wait_for(lambda: run.collector.repairer.windows_repaired >= 1, 30, "first-start read")
    cut_ms = int((fake.clock.now() - 10.0) * 1000)
    lo_ms = run.collector.repair_from_ms
    assert lo_ms is not None and lo_ms < burst[0] < cut_ms
    await assert_trades_exact(database_url, fake, lo_ms, cut_ms)
    assert run.collector.repairer.id_pages >= 2  # 2,500 trades in one ms: paged by start_id
    assert run.collector.repairer.windows_failed == 0
    assert await stop_collector(run) == 0


async def test_three_collectors_stay_within_their_sockets_and_the_per_ip_limit(
    database_url: str, tmp_path: Path, make_fake: Any
) -> None:
    faults = Faults()
    config = hour_market(
        currencies=("BTC", "ETH", "SOL"), expiries=3, strikes_per_expiry=6, listing_every_s=None
    )
    fake = await make_fake(config, faults)
    peak = {"ip": 0}
    per_collector: dict[str, int] = {}
    open_connection = fake.limiter.open_connection

    def counting_open(ip: str) -> bool:
        ok = open_connection(ip)
        peak["ip"] = max(peak["ip"], fake.limiter.connections(ip))
        return ok

    fake.limiter.open_connection = counting_open  # type: ignore[method-assign]

    async def watch_sessions(stop: asyncio.Event) -> None:
        while not stop.is_set():
            counts: dict[str, int] = {"all": len(fake.sessions)}
            for s in list(fake.sessions):
                if s.client_name is not None:  # (None until its public/hello)
                    counts[s.client_name] = counts.get(s.client_name, 0) + 1
            for name, n in counts.items():
                per_collector[name] = max(per_collector.get(name, 0), n)
            await asyncio.sleep(0.02)

    runs = []
    for code in ("BTC", "ETH", "SOL"):
        env = collector_env(
            fake,
            database_url,
            tmp_path / f"spool-{code}",
            CURRENCY=code,
            WS_CHANNELS_PER_CONNECTION="12",
            WS_MAX_CONNECTIONS="3",
            ORDERBOOK_SNAPSHOT_INTERVAL_S="60",
        )
        settings = load_settings(env)
        await apply_settings_schema(settings)
        runs.append(await start_collector(settings, fake))
    stop_watch = asyncio.Event()
    watcher = asyncio.create_task(watch_sessions(stop_watch))
    try:
        await asyncio.sleep(1.0)
        faults.drop_every_s = 0.8  # reconnects must not open a socket beside the old one
        await asyncio.sleep(2.5)
        faults.drop_every_s = None
        await asyncio.sleep(0.5)
    finally:
        stop_watch.set()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    for run in runs:
        pool = run.collector.pool
        # 36 options + 4 fixed channels + 3 forward tickers (one per expiry) over sockets of
        # 12: three sockets, seven quote channels left out (forward tickers go first).
        assert len(pool.clients) == 3 and len(pool.unassigned) == 7
        assert all(c.startswith("quote.") for c in pool.unassigned)
        assert pool.stats().reconnects >= 2
    assert per_collector.pop("all") <= 9
    assert per_collector == {f"chaintape-ws-{c}": 3 for c in ("btc", "eth", "sol")}
    assert fake.stats.dropped_connections >= 6
    assert fake.stats.refused == 0
    assert peak["ip"] <= 32
    assert await asyncio.gather(*(stop_collector(run) for run in runs)) == [0, 0, 0]
    assert fake.stats.errors_sent_by_code.get(10028, 0) == 0
