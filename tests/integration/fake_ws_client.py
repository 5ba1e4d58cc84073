"""A bare WebSocket JSON-RPC client for tests of the fake exchange (no retries, no magic).

It keeps every frame it received, raw, so tests can assert on exactly what the server sent.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
import websockets
from websockets.asyncio.client import ClientConnection


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
