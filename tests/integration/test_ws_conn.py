"""FastClientConnection against a real websockets server on loopback: every way a frame can
arrive (split across reads, many in one read, 16- and 64-bit lengths, fragmented, between
pings) comes out whole and in order, and the closing handshake still works."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import websockets
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

from bench.load import ws_frame
from scripts.deribit.ws_conn import FastClientConnection

Handler = Callable[[ServerConnection], Awaitable[None]]


@pytest.fixture
async def server() -> AsyncIterator[Callable[[Handler], Awaitable[str]]]:
    servers: list[Any] = []

    async def start(handler: Handler) -> str:
        srv = await serve(handler, "127.0.0.1", 0, compression=None)
        servers.append(srv)
        port = next(iter(srv.sockets)).getsockname()[1]
        return f"ws://127.0.0.1:{port}"

    yield start
    for srv in servers:
        srv.close()
        await srv.wait_closed()


async def _collect(url: str, until: int) -> tuple[list[bytes], FastClientConnection]:
    got: list[bytes] = []
    reads: list[int] = []
    async with connect(
        url, create_connection=FastClientConnection, compression=None, max_size=1 << 20
    ) as conn:
        assert isinstance(conn, FastClientConnection)

        def sink(payloads: list[bytes]) -> None:
            reads.append(len(payloads))
            got.extend(payloads)

        conn.set_sink(sink)
        for _ in range(500):
            if len(got) >= until:
                break
            await asyncio.sleep(0.01)
        await conn.close()
    return got, conn


async def test_frames_split_across_reads_and_batched_in_one_read(server: Any) -> None:
    small = b'{"a":1}'
    medium = b'{"m":"' + b"x" * 300 + b'"}'  # 16-bit length
    large = b'{"l":"' + b"y" * 70_000 + b'"}'  # 64-bit length
    raw = b"".join(ws_frame(p) for p in (small, medium, large, small))

    async def handler(ws: ServerConnection) -> None:
        transport = ws.transport
        for i in range(len(raw)):  # a byte at a time: every header and payload is split
            transport.write(raw[i : i + 1])
            if i % 97 == 0:
                await asyncio.sleep(0)
        transport.write(raw * 5)  # many frames in one write
        await ws.wait_closed()

    got, _ = await _collect(await server(handler), until=24)
    assert got == [small, medium, large, small] * 6


async def test_fragments_pings_and_close_go_through_websockets(server: Any) -> None:
    pongs: list[float] = []

    async def handler(ws: ServerConnection) -> None:
        await ws.send("first")
        await ws.send(["frag", "men", "ted"])  # one message in three frames
        pong = await ws.ping()
        pongs.append(await asyncio.wait_for(pong, 5))
        await ws.send(b"binary")
        await ws.send("last")
        await ws.wait_closed()

    got, conn = await _collect(await server(handler), until=4)
    assert got == [b"first", b"fragmented", b"binary", b"last"]
    assert len(pongs) == 1  # the client answered the ping
    assert conn.protocol.close_code == 1000  # a clean closing handshake


async def test_frame_above_max_size_fails_the_connection(server: Any) -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.send("ok")
        await ws.send("z" * (2 << 20))
        await ws.wait_closed()

    url = await server(handler)
    got: list[bytes] = []
    async with connect(
        url, create_connection=FastClientConnection, compression=None, max_size=1 << 20
    ) as conn:
        assert isinstance(conn, FastClientConnection)
        conn.set_sink(got.extend)
        await asyncio.wait_for(conn.wait_closed(), 10)
    assert got == [b"ok"]
    sent = conn.protocol.close_sent
    assert sent is not None and sent.code == 1009  # message too big, as websockets says it
    with pytest.raises(websockets.exceptions.ConnectionClosedError):
        raise conn.protocol.close_exc
