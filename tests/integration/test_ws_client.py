"""DeribitWsClient and DeribitWsPool against the fake exchange over real sockets."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

import pytest

from scripts.clock import SimClock
from scripts.deribit.ws import DeribitWsClient, subscribe_limiter
from scripts.deribit.ws_pool import DeribitWsPool
from tests.fake_deribit.faults import Faults
from tests.fake_deribit.market import DEFAULT_START_MS, MarketConfig
from tests.fake_deribit.server import FakeDeribit

SPEED = 60.0
HEARTBEAT_SCALE = 0.05  # 10 s heartbeat -> a test_request every 0.5 wall seconds


async def wait_for(cond: Callable[[], bool], timeout_s: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or cond}")
        await asyncio.sleep(0.02)


class Recorder:
    def __init__(self) -> None:
        self.frames: list[tuple[str, Any, datetime]] = []
        self.connects = 0
        self.disconnects: list[str] = []

    def on_notification(self, channel: str, data: Any, received_at: datetime) -> None:
        self.frames.append((channel, data, received_at))

    def channels(self) -> set[str]:
        return {c for c, _, _ in self.frames}


@pytest.fixture
async def fake_factory() -> AsyncIterator[Callable[..., Any]]:
    started: list[FakeDeribit] = []

    async def make(config: MarketConfig | None = None, faults: Faults | None = None) -> FakeDeribit:
        clock = SimClock.starting_now(DEFAULT_START_MS / 1000, SPEED)
        fake = FakeDeribit(
            config or MarketConfig(currencies=("ETH",), expiries=2, strikes_per_expiry=4),
            clock=clock,
            faults=faults,
            heartbeat_scale=HEARTBEAT_SCALE,
        )
        await fake.start()
        started.append(fake)
        return fake

    yield make
    for fake in started:
        await fake.stop()


def make_client(
    fake: FakeDeribit, rec: Recorder, channels: list[str], **kw: Any
) -> DeribitWsClient:
    kw.setdefault("data_watchdog_s", 30.0)

    def on_connect(c: DeribitWsClient) -> None:
        rec.connects += 1

    def on_disconnect(c: DeribitWsClient, reason: str) -> None:
        rec.disconnects.append(reason)

    return DeribitWsClient(
        fake.ws_url,
        on_notification=rec.on_notification,
        client_name="chaintape-test",
        client_version="0",
        subscribe_limiter=kw.pop("limiter", None) or subscribe_limiter(fake.clock),
        clock=fake.clock,
        on_connect=on_connect,
        on_disconnect=on_disconnect,
        channels=channels,
        backoff_base_s=0.05,
        backoff_cap_s=0.5,
        **kw,
    )


def option_names(fake: FakeDeribit, api_currency: str = "ETH") -> list[str]:
    return [i["instrument_name"] for i in fake.market.instruments(api_currency, "option", False)]


def session_channels(fake: FakeDeribit) -> list[set[str]]:
    return [set(s.channels) for s in fake.sessions]


async def test_hello_heartbeat_subscribe_and_refused_channels(fake_factory: Any) -> None:
    fake = await fake_factory()
    rec = Recorder()
    names = option_names(fake)
    wanted = [f"quote.{n}" for n in names] + [
        "markprice.options.eth_usd",
        "trades.option.ETH.100ms",
    ]
    client = make_client(fake, rec, [*wanted, "quote.ETH-1JAN20-1-C", "nonsense.channel"])
    stop = asyncio.Event()
    task = asyncio.create_task(client.run(stop))
    await wait_for(lambda: rec.connects == 1, what="connect")
    await wait_for(lambda: client.stats.heartbeats_answered >= 3, what="heartbeats answered")
    await wait_for(lambda: "markprice.options.eth_usd" in rec.channels(), what="markprice data")
    assert client.acked == set(wanted)
    # Refused channels are asked for again on the same socket, with backoff.
    assert client.was_refused == {"quote.ETH-1JAN20-1-C", "nonsense.channel"}
    await wait_for(lambda: client.stats.refused_channels >= 4, what="refused asked again")
    assert client.stats.connects == 1
    assert session_channels(fake) == [set(wanted)]
    calls = fake.stats.ws_calls_by_method
    assert calls["public/hello"] == 1 and calls["public/set_heartbeat"] == 1
    assert fake.stats.heartbeat_closes == 0
    assert all(isinstance(r, datetime) and r.tzinfo is not None for _, _, r in rec.frames)
    stop.set()
    await task
    assert rec.disconnects == []  # a requested stop is not a disconnect


async def test_reconnect_replays_subscriptions_and_backoff_resets_after_data(
    fake_factory: Any,
) -> None:
    fake = await fake_factory()
    rec = Recorder()
    wanted = [f"quote.{n}" for n in option_names(fake)] + ["markprice.options.eth_usd"]
    client = make_client(fake, rec, wanted)
    stop = asyncio.Event()
    task = asyncio.create_task(client.run(stop))
    for n in range(1, 4):
        await wait_for(lambda n=n: rec.connects == n and client.stats.notifications > 0)
        seen = client.stats.notifications
        await wait_for(lambda seen=seen: client.stats.notifications > seen + 5, what="data")
        await fake.drop_all_connections()
    await wait_for(lambda: rec.connects == 4, what="fourth connect")
    await wait_for(lambda: session_channels(fake) == [set(wanted)], what="resubscribed")
    assert client.stats.reconnects == 3
    assert len(rec.disconnects) == 3
    assert fake.stats.connections == 4
    stop.set()
    await task


async def test_watchdog_reconnects_a_stalled_socket_whose_heartbeats_flow(
    fake_factory: Any,
) -> None:
    faults = Faults()
    fake = await fake_factory(faults=faults)
    rec = Recorder()
    client = make_client(fake, rec, ["markprice.options.eth_usd"], data_watchdog_s=1.0)
    stop = asyncio.Event()
    task = asyncio.create_task(client.run(stop))
    await wait_for(lambda: client.stats.notifications > 0, what="first data")
    faults.stall = True
    await wait_for(lambda: any("watchdog" in r for r in rec.disconnects), what="watchdog")
    assert client.stats.watchdog_reconnects >= 1
    assert client.stats.heartbeats_answered >= 1  # the socket itself was alive
    faults.stall = False
    before = client.stats.notifications
    await wait_for(lambda: client.stats.notifications > before, what="data after the stall")
    stop.set()
    await task


async def test_channels_added_and_removed_at_run_time(fake_factory: Any) -> None:
    fake = await fake_factory()
    rec = Recorder()
    names = option_names(fake)
    client = make_client(fake, rec, [f"quote.{names[0]}"])
    stop = asyncio.Event()
    task = asyncio.create_task(client.run(stop))
    await wait_for(lambda: rec.connects == 1)
    client.add_channels([f"quote.{n}" for n in names[1:4]])
    await wait_for(lambda: session_channels(fake) == [{f"quote.{n}" for n in names[:4]}])
    client.remove_channels([f"quote.{names[0]}", f"quote.{names[2]}"])
    await wait_for(lambda: session_channels(fake) == [{f"quote.{names[1]}", f"quote.{names[3]}"}])
    assert client.stats.unsubscribe_calls == 1
    stop.set()
    await task


async def test_malformed_frames_are_counted_and_never_fatal(fake_factory: Any) -> None:
    faults = Faults(malformed_rate=0.05, seed=7)
    fake = await fake_factory(faults=faults)
    rec = Recorder()
    bad: list[tuple[str, str]] = []
    client = make_client(
        fake,
        rec,
        [f"quote.{n}" for n in option_names(fake)] + ["markprice.options.eth_usd"],
        on_malformed=lambda c, raw, reason: bad.append((reason, str(raw)[:40])),
    )
    stop = asyncio.Event()
    task = asyncio.create_task(client.run(stop))
    await wait_for(lambda: client.stats.malformed >= 20, what="20 malformed frames")
    faults.malformed_rate = 0.0
    await asyncio.sleep(0.3)  # frames in flight arrive
    stop.set()
    await task
    # Frames that are not JSON-RPC at all reach on_malformed; the others are valid envelopes
    # whose content the parsers judge (see test_realtime_faults.py).
    unparsable = [
        m for m in fake.malformed if m.kind in ("truncated", "nan_literal", "missing_data")
    ]
    assert client.stats.malformed == len(unparsable) == len(bad)
    assert rec.connects == 1 and rec.disconnects == []


async def test_10028_waits_for_credits_then_reconnects(fake_factory: Any) -> None:
    faults = Faults(random_10028_rate=1.0)
    fake = await fake_factory(faults=faults)
    rec = Recorder()
    client = make_client(fake, rec, ["markprice.options.eth_usd"])
    stop = asyncio.Event()
    task = asyncio.create_task(client.run(stop))
    await wait_for(lambda: client.stats.rate_limited >= 1, what="a 10028")
    faults.random_10028_rate = 0.0
    await wait_for(lambda: client.stats.notifications > 0, what="data after the 10028")
    assert any("rate limited" in r for r in rec.disconnects)
    stop.set()
    await task


@pytest.mark.slow
async def test_a_1000_option_chain_subscribes_over_several_sockets_without_10028(
    fake_factory: Any,
) -> None:
    fake = await fake_factory(
        MarketConfig(currencies=("BTC",), expiries=10, strikes_per_expiry=50, quote_rate_hz=50)
    )
    names = option_names(fake, "BTC")
    assert len(names) == 1000
    wanted = [f"quote.{n}" for n in names] + [
        "markprice.options.btc_usd",
        "trades.option.BTC.100ms",
    ]
    rec = Recorder()
    limiter = subscribe_limiter(fake.clock)
    pool = DeribitWsPool(
        lambda name: make_client(fake, rec, [], limiter=limiter, name=name),
        channels_per_connection=400,
        max_connections=4,
    )
    pool.add_channels(wanted)
    assert len(pool.clients) == 3
    stop = asyncio.Event()
    task = asyncio.create_task(pool.run(stop))
    await wait_for(lambda: pool.subscribed == set(wanted), timeout_s=40, what="all acks")
    # Twice more from scratch: a fleet reconnect must stay within the subscribe credits.
    for n in (2, 3):
        await fake.drop_all_connections()
        await wait_for(lambda n=n: rec.connects == 3 * n, timeout_s=40, what="reconnects")
        await wait_for(lambda: pool.subscribed == set(wanted), timeout_s=40, what="all acks")
    assert sorted(len(c) for c in session_channels(fake)) == [202, 400, 400]
    assert fake.stats.errors_sent_by_code.get(10028, 0) == 0
    assert fake.stats.errors_sent_by_code.get(-32600, 0) == 0
    stats = pool.stats()
    assert stats.refused_channels == 0 and stats.rate_limited == 0
    stop.set()
    await task
