"""The REST client over real sockets: retry classification, fail-fast errors, the limiter.

A scripted aiohttp server on loopback answers what each test needs (5xx, 429, Deribit error
bodies); the fake exchange checks that the limiter keeps a busy client clear of 10028.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pytest
from aiohttp import web

from scripts.clock import SimClock
from scripts.deribit.limiter import LimiterSet
from scripts.deribit.rest import DeribitRestClient, DeribitRestError

Reply = tuple[int, Any]  # HTTP status, JSON body (or bytes)


class Scripted:
    """An HTTP server that answers each request with the next scripted reply."""

    def __init__(self, replies: list[Reply]) -> None:
        self.replies = list(replies)
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((request.match_info["method"], dict(request.query)))
        status, body = self.replies.pop(0) if self.replies else (200, {"result": "default"})
        payload = body if isinstance(body, bytes) else orjson.dumps({"jsonrpc": "2.0", **body})
        return web.Response(status=status, body=payload, content_type="application/json")

    async def __aenter__(self) -> Scripted:
        app = web.Application()
        app.router.add_get("/api/v2/public/{method}", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/api/v2"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.runner is not None
        await self.runner.cleanup()


def _client(url: str, clock: SimClock | None = None, **kw: Any) -> DeribitRestClient:
    clock = clock or SimClock.starting_now(1_780_000_000.0, 1.0)
    limiter = LimiterSet.build(clock, requests_per_s=50.0, burst=50)
    kw.setdefault("retry_base_s", 0.01)
    kw.setdefault("retry_cap_s", 0.05)
    return DeribitRestClient(url, limiter=limiter, clock=clock, **kw)


@pytest.fixture
async def scripted() -> AsyncIterator[Callable[[list[Reply]], Scripted]]:
    servers: list[Scripted] = []

    def make(replies: list[Reply]) -> Scripted:
        server = Scripted(replies)
        servers.append(server)
        return server

    yield make
    for s in servers:
        if s.runner is not None:
            await s.runner.cleanup()


async def test_temporary_failures_are_retried_until_a_result(scripted: Any) -> None:
    replies: list[Reply] = [
        (503, b"Service Unavailable"),
        (429, b"too many connections"),
        (400, {"error": {"code": 10028, "message": "too_many_requests", "data": None}}),
        (400, {"error": {"code": 13028, "message": "temporarily_unavailable"}}),
        (200, {"result": {"index_price": 101.5}, "usOut": 1_780_000_000_123_000}),
    ]
    async with scripted(replies) as server, _client(server.url) as client:
        result = await client.get_index_price("btc_usd")
    assert result == {"index_price": 101.5, "_server_time_ms": 1_780_000_000_123}
    assert len(server.requests) == 5
    assert client.retries["get_index_price"] == 4
    assert client.calls["get_index_price"] == 5
    assert client.errors_by_code == {10028: 1, 13028: 1}
    assert server.requests[-1] == ("get_index_price", {"index_name": "btc_usd"})


async def test_argument_errors_fail_fast_naming_method_and_params(scripted: Any) -> None:
    bad = {
        "error": {
            "code": -32602,
            "message": "Invalid params",
            "data": {"reason": "instrument not found", "param": "instrument_name"},
        }
    }
    async with scripted([(400, bad)]) as server, _client(server.url) as client:
        with pytest.raises(DeribitRestError) as caught:
            await client.ticker("BTC-1JAN30-1-C")
    assert len(server.requests) == 1  # no retry
    err = caught.value
    assert err.code == -32602
    assert "public/ticker(instrument_name='BTC-1JAN30-1-C')" in str(err)
    assert "instrument not found" in str(err)


async def test_bools_and_none_params_are_sent_as_deribit_expects(scripted: Any) -> None:
    async with scripted([(200, {"result": []})]) as server, _client(server.url) as client:
        assert await client.get_instruments("BTC", None, expired=True) == []
    assert server.requests == [("get_instruments", {"currency": "BTC", "expired": "true"})]


async def test_network_errors_are_retried_then_reported(unused_port: int) -> None:
    client = _client(f"http://127.0.0.1:{unused_port}/api/v2", max_retries=3)
    async with client:
        with pytest.raises(DeribitRestError, match=r"gave up after retries: network error"):
            await client.get_time()
    assert client.calls["get_time"] == 3
    assert client.retries["get_time"] == 2


async def test_unexpected_reply_is_a_clear_error(scripted: Any) -> None:
    async with (
        scripted([(200, b"<html>maintenance</html>")]) as server,
        _client(server.url) as client,
    ):
        with pytest.raises(DeribitRestError, match="unexpected HTTP 200 reply"):
            await client.get_time()


async def test_limiter_paces_the_calls_on_market_time(scripted: Any) -> None:
    clock = SimClock.starting_now(1_780_000_000.0, 50.0)
    async with scripted([]) as server:
        limiter = LimiterSet.build(clock, requests_per_s=10.0, burst=5)
        async with DeribitRestClient(server.url, limiter=limiter, clock=clock) as client:
            start = clock.now()
            await asyncio.gather(*(client.call("get_time") for _ in range(25)))
            elapsed = clock.now() - start
    assert len(server.requests) == 25
    assert elapsed >= 2.0 - 1e-6  # (25 - 5 burst) / 10 per second


@pytest.fixture
def unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
