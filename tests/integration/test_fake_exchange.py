"""The fake Deribit over real sockets: framing, heartbeats, subscriptions, limits, REST.

Each test runs its own `FakeDeribit` on 127.0.0.1 port 0 with a small BTC-only market.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from typing import Any

import aiohttp
import orjson
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from scripts.clock import SimClock
from tests.fake_deribit.server import FakeDeribit
from tests.support.ws_client import (
    PERP,
    RawClient,
    closed_code,
    running,
    small_config,
    wait_for,
)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def option_names(fake: FakeDeribit) -> list[str]:
    return sorted(i["instrument_name"] for i in fake.market.instruments("BTC", "option", False))


# -- framing ----------------------------------------------------------------------------------
async def test_session_methods_have_deribit_framing() -> None:
    async with running() as fake:
        client = await RawClient.connect(fake.ws_url)
        hello = await client.call("public/hello", {"client_name": "t", "client_version": "1"})
        assert hello["id"] == 1 and hello["jsonrpc"] == "2.0" and hello["testnet"] is False
        assert hello["result"] == {"version": "1.2.26"}
        assert hello["usIn"] <= hello["usOut"]
        assert hello["usDiff"] == hello["usOut"] - hello["usIn"]
        assert (await client.call("public/test"))["result"] == {"version": "1.2.26"}
        before = fake.clock.now_ms()
        got = (await client.call("public/get_time"))["result"]
        assert before <= got <= fake.clock.now_ms()
        status = (await client.call("public/status"))["result"]
        assert status["locked"] == "false"
        # A request without an id still gets a result, without an id.
        await client.ws.send('{"jsonrpc":"2.0","method":"public/test"}')
        await client.read_until(lambda: client.no_id)
        assert client.no_id[0]["result"] == {"version": "1.2.26"} and "id" not in client.no_id[0]
        # Text that is not JSON: 11050 with no id; the socket stays open.
        await client.ws.send("{not json")
        await client.read_until(lambda: len(client.no_id) == 2)
        assert client.no_id[1]["error"] == {
            "code": 11050,
            "message": "bad_request",
            "data": "invalid json",
        }
        unknown = await client.call("public/no_such_method")
        assert unknown["error"]["code"] == -32601
        instruments = await client.call(
            "public/get_instruments", {"currency": "BTC", "kind": "option"}
        )
        assert sorted(i["instrument_name"] for i in instruments["result"]) == option_names(fake)
        await client.close()
        assert fake.stats.errors_sent_by_code[11050] == 1


async def test_oversized_frame_is_refused_and_session_stays_open() -> None:
    async with running() as fake:
        client = await RawClient.connect(fake.ws_url)
        channels = [f"book.{PERP}.100ms"] * 2000  # ~50 kB
        reply = await client.call("public/subscribe", {"channels": channels})
        assert reply["error"]["code"] == -32600
        assert reply["error"]["message"] == "request entity too large"
        assert isinstance((await client.call("public/get_time"))["result"], int)
        await client.close()


# -- heartbeats -------------------------------------------------------------------------------
async def test_unanswered_test_request_closes_with_4000() -> None:
    async with running() as fake:
        client = await RawClient.connect(fake.ws_url)
        assert (await client.call("public/set_heartbeat", {"interval": 10}))["result"] == "ok"
        code, reason = await closed_code(client)
        assert (code, reason) == (4000, "heartbeat close")
        assert client.heartbeats == [
            {"jsonrpc": "2.0", "method": "heartbeat", "params": {"type": "test_request"}}
        ]
        assert fake.stats.heartbeat_closes == 1


async def test_answered_heartbeats_keep_the_session_open() -> None:
    async with running() as fake:
        client = await RawClient.connect(fake.ws_url)
        client.answer_heartbeats = True
        await client.call("public/set_heartbeat", {"interval": 10})
        await client.read_until(lambda: len(client.heartbeats) >= 6, within=20)
        assert (await client.call("public/get_time"))["result"] > 0
        assert fake.stats.heartbeat_closes == 0
        low = await client.call("public/set_heartbeat", {"interval": 5})
        assert low["error"]["code"] == -32602
        assert (await client.call("public/disable_heartbeat"))["result"] == "ok"
        await client.close()


# -- subscriptions ----------------------------------------------------------------------------
async def test_subscribe_acks_valid_channels_only() -> None:
    async with running() as fake:
        option = option_names(fake)[0]
        valid = [
            f"book.{PERP}.100ms",
            f"ticker.{option}.100ms",
            "trades.option.BTC.100ms",
            "deribit_price_index.btc_usd",
            "markprice.options.btc_usd",
            f"book.{PERP}.none.10.100ms",
            f"chart.trades.{PERP}.1",
            "instrument.state.any.any",
        ]
        invalid = [
            "book.BTC-1JAN20-1000-C.100ms",
            "foo.bar",
            f"ticker.{PERP}.1s",
            f"book.{PERP}.3.10.100ms",
            "deribit_price_index.xyz_usd",
            f"trades.{PERP}.raw",  # raw needs auth: dropped from a mixed request
        ]
        client = await RawClient.connect(fake.ws_url)
        ack = await client.call("public/subscribe", {"channels": invalid + valid})
        assert sorted(ack["result"]) == sorted(valid)
        only_raw = await client.call("public/subscribe", {"channels": [f"book.{PERP}.raw"]})
        assert only_raw["error"]["code"] == 13778
        assert (await client.call("public/subscribe", {"channels": ["foo"]}))["result"] == []
        removed = await client.call(
            "public/unsubscribe", {"channels": [f"book.{PERP}.100ms", "foo.bar"]}
        )
        assert removed["result"] == [f"book.{PERP}.100ms"]
        assert fake.router.subscribers.get(f"book.{PERP}.100ms") is None
        assert (await client.call("public/unsubscribe_all"))["result"] == "ok"
        assert fake.router.subscribers == {}
        await client.read_for(0.3)
        seen = len(client.notifications)
        await client.read_for(0.5)
        assert len(client.notifications) == seen  # nothing after unsubscribe_all
        await client.close()


async def test_private_subscribe_after_auth_allows_raw() -> None:
    async with running() as fake:
        client = await RawClient.connect(fake.ws_url)
        auth = await client.call(
            "public/auth",
            {"grant_type": "client_credentials", "client_id": "x", "client_secret": "y"},
        )
        assert auth["result"]["token_type"] == "bearer"
        ack = await client.call("private/subscribe", {"channels": [f"book.{PERP}.raw"]})
        assert ack["result"] == [f"book.{PERP}.raw"]
        await client.read_until(lambda: client.on(f"book.{PERP}.raw"))
        await client.close()


async def test_repeated_subscribe_sends_no_second_snapshot() -> None:
    async with running() as fake:
        channel = f"book.{PERP}.100ms"
        client = await RawClient.connect(fake.ws_url)
        await client.call("public/subscribe", {"channels": [channel]})
        await client.read_until(lambda: len(client.on(channel)) >= 3)
        again = await client.call("public/subscribe", {"channels": [channel]})
        assert again["result"] == [channel]
        await client.read_for(0.5)
        kinds = [d["type"] for d in client.on(channel)]
        assert kinds[0] == "snapshot" and kinds.count("snapshot") == 1
        await client.close()


async def test_book_chain_holds_and_breaks_once_per_skipped_change() -> None:
    async with running(speed=10.0) as fake:
        books = [PERP, *option_names(fake)[:3]]
        channels = [f"book.{name}.100ms" for name in books]
        client = await RawClient.connect(fake.ws_url)
        await client.call("public/subscribe", {"channels": channels})
        await client.read_until(lambda: len(client.on(channels[0])) >= 5)
        fake.faults.skip_book_change = {PERP}
        await client.read_for(2.0)
        breaks: dict[str, int] = {}
        for name, channel in zip(books, channels, strict=True):
            msgs = client.on(channel)
            assert msgs and msgs[0]["type"] == "snapshot", name
            last = msgs[0]["change_id"]
            breaks[name] = 0
            for msg in msgs[1:]:
                assert msg["type"] == "change"
                breaks[name] += msg["prev_change_id"] != last
                last = msg["change_id"]
        assert breaks == {name: int(name == PERP) for name in books}
        assert fake.stats.book_changes_skipped == 1
        fake.faults.skip_book_change = 2  # a count: the next two changes of any book
        await client.read_for(1.0)
        assert fake.stats.book_changes_skipped == 3 and fake.faults.skip_book_change == 0
        assert len(client.on(channels[0])) > 10
        # What arrived is what the server says it sent to this connection.
        sent = [s.data for s in fake.truth.sent_on(channels[0])]
        assert client.on(channels[0]) == sent[: len(client.on(channels[0]))]
        await client.close()


async def test_grouped_book_windows_and_incremental_ticker() -> None:
    async with running(speed=10.0) as fake:
        grouped = f"book.{PERP}.none.10.100ms"
        inc = f"incremental_ticker.{PERP}"
        client = await RawClient.connect(fake.ws_url)
        await client.call("public/subscribe", {"channels": [grouped, inc]})
        await client.read_until(lambda: len(client.on(grouped)) >= 3 and len(client.on(inc)) >= 3)
        window = client.on(grouped)[-1]
        assert set(window) == {"timestamp", "instrument_name", "change_id", "bids", "asks"}
        prices = [p for p, _ in window["bids"]]
        assert prices == sorted(prices, reverse=True) and len(prices) <= 10
        tickers = client.on(inc)
        assert tickers[0]["type"] == "snapshot" and "mark_price" in tickers[0]
        assert all(t["type"] == "change" for t in tickers[1:])
        await client.close()


async def test_listed_instruments_are_announced_and_become_subscribable() -> None:
    config = small_config(listing_every_s=20.0)
    async with running(speed=60.0, config=config) as fake:
        client = await RawClient.connect(fake.ws_url)
        channels = ["instrument.creation.option.BTC", "instrument.state.any.any"]
        assert sorted(
            (await client.call("public/subscribe", {"channels": channels}))["result"]
        ) == (sorted(channels))
        await client.read_until(lambda: client.on(channels[0]), within=20)
        created = client.on(channels[0])[0]
        name = created["instrument_name"]
        assert created["kind"] == "option" and name not in option_names_at_start(fake)
        await client.read_until(
            lambda: any(s["instrument_name"] == name for s in client.on(channels[1]))
        )
        book = f"book.{name}.100ms"
        assert (await client.call("public/subscribe", {"channels": [book]}))["result"] == [book]
        await client.read_until(lambda: client.on(book))
        assert client.on(book)[0]["type"] == "snapshot"
        await client.close()


def option_names_at_start(fake: FakeDeribit) -> set[str]:
    start = fake.market.config.start_ms
    return {
        i["instrument_name"]
        for i in fake.market.instruments("BTC", "option", False)
        if i["creation_timestamp"] < start
    }


# -- REST and stream agree --------------------------------------------------------------------
async def rest(session: aiohttp.ClientSession, url: str, method: str, **params: Any) -> Any:
    query = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in params.items()}
    async with session.get(f"{url}/public/{method}", params=query) as resp:
        body = await resp.json()
        assert resp.status == 200, body
        return body["result"]


async def test_trades_stream_equals_rest_pages() -> None:
    async with running(speed=20.0) as fake:
        channel = "trades.option.BTC.100ms"
        client = await RawClient.connect(fake.ws_url)
        await client.call("public/subscribe", {"channels": [channel]})
        await client.read_until(lambda: sum(map(len, client.on(channel))) >= 25, within=30)
        streamed = [t for batch in client.on(channel) for t in batch]
        first, last = streamed[0]["timestamp"], streamed[-1]["timestamp"]
        inside = {t["trade_id"]: t for t in streamed if first < t["timestamp"] < last}
        assert len(inside) >= 10
        paged: dict[str, Any] = {}
        start = first + 1
        async with aiohttp.ClientSession() as http:
            while True:
                page = await rest(
                    http,
                    fake.rest_url,
                    "get_last_trades_by_currency_and_time",
                    currency="BTC",
                    kind="option",
                    start_timestamp=start,
                    end_timestamp=last - 1,
                    count=7,
                    sorting="asc",
                )
                for t in page["trades"]:
                    paged[t["trade_id"]] = t
                if not page["has_more"]:
                    break
                start = page["trades"][-1]["timestamp"]
        assert paged == inside
        await client.close()


async def test_candles_stream_equals_tradingview() -> None:
    async with running(speed=120.0) as fake:
        channel = f"chart.trades.{PERP}.1"
        client = await RawClient.connect(fake.ws_url)
        await client.call("public/subscribe", {"channels": [channel]})
        await client.read_until(
            lambda: len({c["tick"] for c in client.on(channel)}) >= 4, within=30
        )
        final: dict[int, dict[str, Any]] = {}
        for candle in client.on(channel):
            final[candle["tick"]] = candle
        done = sorted(final)[:-1]  # the newest minute may still change
        async with aiohttp.ClientSession() as http:
            chart = await rest(
                http,
                fake.rest_url,
                "get_tradingview_chart_data",
                instrument_name=PERP,
                start_timestamp=done[0],
                end_timestamp=done[-1],
                resolution="1",
            )
        by_tick = {
            tick: {f: chart[f][i] for f in ("open", "high", "low", "close", "volume", "cost")}
            for i, tick in enumerate(chart["ticks"])
        }
        for tick in done:
            candle = {k: v for k, v in final[tick].items() if k != "tick"}
            assert by_tick[tick] == pytest.approx(candle), tick
        await client.close()


# -- limits -----------------------------------------------------------------------------------
async def test_request_burst_draws_10028_then_session_ends() -> None:
    async with running(speed=0.001) as fake:  # credits barely refill during the test
        client = await RawClient.connect(fake.ws_url)
        for _ in range(130):
            await client.send("public/get_time")
        code, _ = await closed_code(client)
        assert code is not None
        ok = [r for r in client.responses.values() if "result" in r]
        errors = [r["error"] for r in client.responses.values() if "error" in r]
        assert len(ok) == 100  # 50,000 credits / 500 per request
        assert errors == [{"code": 10028, "message": "too_many_requests", "data": None}]
        assert fake.stats.errors_sent_by_code[10028] == 1


async def test_subscribe_burst_draws_10028_then_session_ends() -> None:
    async with running(speed=0.001) as fake:
        client = await RawClient.connect(fake.ws_url)
        for _ in range(12):
            await client.send("public/subscribe", {"channels": ["deribit_price_index.btc_usd"]})
        await closed_code(client)
        ok = [r for r in client.responses.values() if "result" in r]
        errors = [r["error"]["code"] for r in client.responses.values() if "error" in r]
        assert len(ok) == 10 and errors == [10028]  # 30,000 credits / 3,000 per call
        assert fake.stats.subscribe_calls == 11


async def test_get_instruments_has_the_stricter_limit_over_http() -> None:
    async with running(speed=0.001) as fake:
        url = f"{fake.rest_url}/public/get_instruments"
        statuses = []
        async with aiohttp.ClientSession() as http:
            for _ in range(6):
                async with http.get(url, params={"currency": "BTC"}) as resp:
                    statuses.append((resp.status, (await resp.json()).get("error")))
            async with http.get(f"{fake.rest_url}/public/get_time") as resp:
                assert resp.status == 200  # the general bucket is untouched
            async with http.get(f"{fake.rest_url}/public/set_heartbeat?interval=10") as resp:
                assert resp.status == 400
                assert (await resp.json())["error"]["code"] == 10030
        assert statuses[:5] == [(200, None)] * 5
        assert statuses[5] == (400, {"code": 10028, "message": "too_many_requests", "data": None})
        assert fake.stats.rest_calls_by_method["public/get_instruments"] == 6


async def test_http_post_bodies_and_the_history_host() -> None:
    async with running() as fake, aiohttp.ClientSession() as http:
        body = {"jsonrpc": "2.0", "id": 42, "method": "public/get_time", "params": {}}
        async with http.post(f"{fake.rest_url}/public/get_time", json=body) as resp:
            reply = await resp.json()
            assert resp.status == 200 and reply["id"] == 42 and reply["testnet"] is False
        big = {**body, "params": {"pad": "x" * 40_000}}
        async with http.post(f"{fake.rest_url}/public/get_time", json=big) as resp:
            assert resp.status == 400
            assert (await resp.json())["error"]["code"] == -32600
        async with http.post(f"{fake.rest_url}/public/get_time", data=b"{nope") as resp:
            assert resp.status == 400
            assert (await resp.json())["error"] == {
                "code": 11050,
                "message": "bad_request",
                "data": "invalid json",
            }
        async with http.get(f"{fake.rest_url}/public/ticker?instrument_name=NOPE") as resp:
            assert resp.status == 400
            assert (await resp.json())["error"]["code"] == -32602
        trades = await rest(
            http, fake.history_url, "get_last_trades_by_instrument", instrument_name=PERP, count=5
        )
        assert len(trades["trades"]) == 5
        assert fake.stats.rest_calls_by_method["public/get_last_trades_by_instrument"] == 1


async def test_33rd_connection_is_refused_with_429() -> None:
    async with running() as fake:
        clients = [await RawClient.connect(fake.ws_url) for _ in range(32)]
        with pytest.raises(InvalidStatus) as info:
            await websockets.connect(fake.ws_url, open_timeout=10)
        assert info.value.response.status_code == 429
        await clients.pop().close()
        await wait_for(lambda: fake.limiter.connections("127.0.0.1") < 32)
        clients.append(await RawClient.connect(fake.ws_url))
        assert fake.stats.refused == 1
        for client in clients:
            await client.close()


# -- standalone -------------------------------------------------------------------------------
async def test_main_prints_urls_and_stops_on_sigterm() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.fake_deribit",
        "--seed",
        "3",
        "--speed",
        "30",
        "--currencies",
        "BTC",
        "--expiries",
        "1",
        "--strikes",
        "2",
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        info = orjson.loads(line)
        clock = SimClock.parse(info["sim_clock"])
        assert clock.speed == 30.0
        async with aiohttp.ClientSession() as http:
            now = await rest(http, info["rest_url"], "get_time")
            assert abs(now - clock.now_ms()) < 30_000
            hist = info["history_url"]
            assert hist.endswith("/history/api/v2")
        client = await RawClient.connect(info["ws_url"])
        await client.call("public/subscribe", {"channels": ["deribit_price_index.btc_usd"]})
        await client.read_until(lambda: client.notifications)
        await client.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
