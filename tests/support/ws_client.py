"""Helpers for tests of the fake exchange: a bare WebSocket JSON-RPC client (no retries, no
magic; it keeps every frame it received, raw) and a small running `FakeDeribit`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from scripts.clock import SimClock
from tests.fake_deribit.market import MarketConfig
from tests.fake_deribit.server import FakeDeribit

PERP = "BTC-PERPETUAL"
HB_SCALE = 0.02  # a 10 s heartbeat interval lasts 0.2 s of wall time


class RawClient:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.next_id = 0
        self.responses: dict[Any, dict[str, Any]] = {}
        self.no_id: list[dict[str, Any]] = []  # responses without an id
        self.notifications: list[dict[str, Any]] = []
        self.heartbeats: list[dict[str, Any]] = []
        self.raw: list[str] = []  # every text frame, in order
        self.unparsable: list[str] = []
        self.answer_heartbeats = False

    @classmethod
    async def connect(cls, url: str) -> RawClient:
        ws = await websockets.connect(url, max_size=None, open_timeout=10)
        return cls(ws)

    async def close(self) -> None:
        await self.ws.close()

    async def send(self, method: str, params: dict[str, Any] | None = None) -> int:
        self.next_id += 1
        msg: dict[str, Any] = {"jsonrpc": "2.0", "id": self.next_id, "method": method}
        if params is not None:
            msg["params"] = params
        await self.ws.send(orjson.dumps(msg).decode())
        return self.next_id

    async def call(
        self, method: str, params: dict[str, Any] | None = None, within: float = 10.0
    ) -> dict[str, Any]:
        rid = await self.send(method, params)
        return await self.response(rid, within)

    async def response(self, rid: Any, within: float = 10.0) -> dict[str, Any]:
        async with asyncio.timeout(within):
            while rid not in self.responses:
                await self.recv_one()
        return self.responses.pop(rid)

    async def recv_one(self) -> None:
        frame = await self.ws.recv()
        text = frame if isinstance(frame, str) else frame.decode()
        self.raw.append(text)
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            self.unparsable.append(text)
            return
        if not isinstance(msg, dict):
            self.unparsable.append(text)
        elif msg.get("method") == "subscription":
            self.notifications.append(msg)
        elif msg.get("method") == "heartbeat":
            self.heartbeats.append(msg)
            if self.answer_heartbeats:
                await self.send("public/test")
        elif "id" in msg:
            self.responses[msg["id"]] = msg
        else:
            self.no_id.append(msg)

    async def read_for(self, seconds: float) -> None:
        """Read whatever arrives for `seconds` (wall time)."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                async with asyncio.timeout(left):
                    await self.recv_one()
            except TimeoutError:
                return

    async def read_until(self, predicate: Any, within: float = 15.0) -> None:
        async with asyncio.timeout(within):
            while not predicate():
                await self.recv_one()

    def on(self, channel: str) -> list[Any]:
        return [
            n["params"]["data"] for n in self.notifications if n["params"]["channel"] == channel
        ]


def small_config(**overrides: Any) -> MarketConfig:
    base: dict[str, Any] = {
        "seed": 7,
        "currencies": ("BTC",),
        "expiries": 1,
        "strikes_per_expiry": 4,
        "history_s": 600,
    }
    base.update(overrides)
    return MarketConfig(**base)


@contextlib.asynccontextmanager
async def running(speed: float = 5.0, **kwargs: Any) -> AsyncIterator[FakeDeribit]:
    config = kwargs.pop("config", None) or small_config()
    clock = SimClock.starting_now(config.start_ms / 1000.0, speed)
    kwargs.setdefault("heartbeat_scale", HB_SCALE)
    async with FakeDeribit(config, clock=clock, **kwargs) as fake:
        yield fake


async def closed_code(client: RawClient, within: float = 10.0) -> tuple[int | None, str]:
    """Read until the server closes; the close code and reason it sent (None: no close frame)."""
    with pytest.raises(ConnectionClosed) as info:
        async with asyncio.timeout(within):
            while True:
                await client.recv_one()
    rcvd = info.value.rcvd
    return (rcvd.code, rcvd.reason) if rcvd is not None else (None, "")


async def wait_for(predicate: Any, within: float = 10.0) -> None:
    """Poll server-side state (it changes on the server's own schedule)."""
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)
