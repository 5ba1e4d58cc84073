"""Replay mode: the real recorded Deribit messages, served over real sockets, byte for byte."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from tests.fake_deribit.replay import ReplayCorpus, channel_base, parse_line
from tests.fake_deribit.server import FakeDeribit
from tests.support.ws_client import RawClient

SUBSCRIBE_BATCH = 100


def recorded_lines(shared_data: Path, pattern: str) -> list[tuple[str, bytes]]:
    out = []
    for path in sorted(shared_data.glob(pattern)):
        for line in path.read_bytes().splitlines():
            if line.strip():
                out.append((path.name, line))
    return out


def notification_lines(shared_data: Path) -> list[tuple[str, bytes]]:
    """(channel, exact bytes) of every recorded notification, in file order."""
    out = []
    for _, line in recorded_lines(shared_data, "ws_*.jsonl"):
        msg = parse_line(line)
        if msg.get("method") == "subscription":
            out.append((msg["params"]["channel"], line))
    return out


def test_every_recorded_file_loads(shared_data: Path) -> None:
    corpus = ReplayCorpus.load(shared_data)
    ws_lines = recorded_lines(shared_data, "ws_*.jsonl")
    assert len(corpus.notifications) + sum(
        n for name, n in corpus.skipped.items() if name.startswith("ws_")
    ) == len(ws_lines)
    # Only heartbeats and subscribe acks are not notifications.
    assert {name for name in corpus.skipped if name.startswith("ws_")} == {
        "ws_heartbeat.jsonl",
        "ws_subscribe_response.jsonl",
    }
    rest_files = {p.stem.removeprefix("rest_") for p in shared_data.glob("rest_*.jsonl")}
    assert {m.removeprefix("public/") for m in corpus.rest} == rest_files - {"error_bodies_partial"}


async def test_recorded_channels_replay_verbatim_in_file_order(shared_data: Path) -> None:
    expected = notification_lines(shared_data)
    channels = list(dict.fromkeys(ch for ch, _ in expected))
    async with FakeDeribit(replay_dir=shared_data) as fake:
        client = await RawClient.connect(fake.ws_url)
        acked: list[str] = []
        batches = range(0, len(channels), SUBSCRIBE_BATCH)
        for i in batches:
            reply = await client.call(
                "public/subscribe", {"channels": channels[i : i + SUBSCRIBE_BATCH]}
            )
            acked += reply["result"]
        assert sorted(acked) == sorted(channels)
        subscribed = set(channels)
        # Each recorded line arrives verbatim on its own channel, and once more, rewritten,
        # on each subscribed sibling channel that differs only in the interval.
        want = sum(
            1 + sum(1 for c in subscribed if c != ch and channel_base(c) == channel_base(ch))
            for ch, _ in expected
        )
        await client.read_until(lambda: len(client.raw) >= want + len(batches), within=30)
        await client.read_for(0.3)
        assert len(client.raw) == want + len(batches)  # the notifications and the acks
        received = [frame.encode() for frame in client.raw]
        verbatim = [f for f in received if any(f == line for _, line in expected)]
        assert verbatim == [line for _, line in expected]  # all of them, in file order
        assert client.unparsable == []  # odd but valid lines (duplicate keys, NaN-free) parse
        await client.close()
        assert fake.stats.notifications_sent == want


async def test_other_interval_gets_the_recording_with_only_the_channel_rewritten(
    shared_data: Path,
) -> None:
    source = "book.BTC-24SEP21-8000-P.raw"
    lines = [line for ch, line in notification_lines(shared_data) if ch == source]
    assert len(lines) >= 2
    target = "book.BTC-24SEP21-8000-P.100ms"
    async with FakeDeribit(replay_dir=shared_data) as fake:
        client = await RawClient.connect(fake.ws_url)
        assert (await client.call("public/subscribe", {"channels": [target]}))["result"] == [target]
        await client.read_until(lambda: len(client.notifications) >= len(lines))
        await client.read_for(0.2)
        got = client.raw[1:]  # after the ack
        assert [f.replace(target, source).encode() for f in got] == lines
        assert [n["params"]["channel"] for n in client.notifications] == [target] * len(lines)
        await client.close()


async def test_firehose_sends_every_recording_after_the_first_subscribe(shared_data: Path) -> None:
    expected = [line for _, line in notification_lines(shared_data)]
    async with FakeDeribit(replay_dir=shared_data, firehose=True) as fake:
        client = await RawClient.connect(fake.ws_url)
        ack = await client.call("public/subscribe", {"channels": ["deribit_price_index.btc_usd"]})
        assert ack["result"] == ["deribit_price_index.btc_usd"]
        await client.read_until(lambda: len(client.raw) >= len(expected) + 1)
        assert [f.encode() for f in client.raw[1:]] == expected
        # A second subscribe on the same socket does not replay again.
        await client.call("public/subscribe", {"channels": ["deribit_price_index.eth_usd"]})
        await client.read_for(0.3)
        assert len(client.raw) == len(expected) + 2
        await client.close()


def _first_result(shared_data: Path, method: str) -> Any:
    line = (shared_data / f"rest_{method}.jsonl").read_bytes().splitlines()[0]
    return parse_line(line)["result"]


def recorded_rest_methods(shared_data: Path) -> list[str]:
    return sorted(
        p.stem.removeprefix("rest_")
        for p in shared_data.glob("rest_*.jsonl")
        if p.stem not in ("rest_error_bodies_partial", "rest_get_instruments")
    )


async def test_rest_answers_from_the_recordings(shared_data: Path) -> None:
    methods = recorded_rest_methods(shared_data)
    async with FakeDeribit(replay_dir=shared_data) as fake, aiohttp.ClientSession() as http:
        for method in methods:
            async with http.get(f"{fake.rest_url}/public/{method}") as resp:
                body = await resp.json()
                assert resp.status == 200, (method, body)
                assert body["result"] == _first_result(shared_data, method), method
        union: dict[str, Any] = {}
        for line in (shared_data / "rest_get_instruments.jsonl").read_bytes().splitlines():
            for inst in orjson.loads(line)["result"]:
                union.setdefault(inst["instrument_name"], inst)
        async with http.get(f"{fake.rest_url}/public/get_instruments") as resp:
            got = (await resp.json())["result"]
        assert {i["instrument_name"] for i in got} == set(union)
        async with http.get(
            f"{fake.rest_url}/public/get_instruments", params={"currency": "BTC", "kind": "option"}
        ) as resp:
            btc_options = (await resp.json())["result"]
        assert btc_options and all(
            i["kind"] == "option" and i.get("settlement_currency", i["base_currency"]) == "BTC"
            for i in btc_options
        )
        async with http.get(f"{fake.rest_url}/public/get_order_book_by_instrument_id") as resp:
            assert resp.status == 400
            assert (await resp.json())["error"]["code"] == -32601


@pytest.mark.parametrize("name", ["ws_book_change.jsonl", "ws_ticker_option.jsonl"])
async def test_replay_over_ws_session_methods_still_work(shared_data: Path, name: str) -> None:
    async with FakeDeribit(replay_dir=shared_data) as fake:
        client = await RawClient.connect(fake.ws_url)
        assert (await client.call("public/test"))["result"]["version"]
        first = parse_line((shared_data / name).read_bytes().splitlines()[0])
        channel = first["params"]["channel"]
        await client.call("public/subscribe", {"channels": [channel]})
        await client.read_until(lambda: client.on(channel))
        assert client.on(channel)[0] == first["params"]["data"]
        await client.close()
