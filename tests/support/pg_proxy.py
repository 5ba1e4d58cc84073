"""A TCP proxy in front of PostgreSQL that loses a COMMIT's answer, on real sockets.

`CommitCutter` forwards bytes both ways. Once armed, the next `COMMIT` a client sends is passed
to the server and then, per `mode`:
- "drop": the server's answer never reaches the client; both sockets close (the client cannot
  tell whether the transaction committed; the server did commit it);
- "stall": the answer is held for `stall_s` (a commit slower than the client's wait).
"""

from __future__ import annotations

import asyncio
import contextlib

COMMIT_QUERY = b"Q\x00\x00\x00\x0bCOMMIT\x00"


class CommitCutter:
    def __init__(self, upstream_port: int, *, mode: str = "drop", stall_s: float = 0.0) -> None:
        self.upstream_port = upstream_port
        self.mode = mode
        self.stall_s = stall_s
        self.armed = 0  # how many COMMITs to cut
        self.cut = 0
        self.commits_seen = 0
        self.port = 0
        self.sent = bytearray()  # every byte clients sent to the server
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for t in list(self._handlers):
            t.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    def url(self, database_url: str) -> str:
        """`database_url` with its port replaced by the proxy's (and no unix socket host)."""
        head, _, tail = database_url.rpartition("@")
        _hostport, _, rest = tail.partition("/")
        return f"{head}@127.0.0.1:{self.port}/{rest}"

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            await self._forward(reader, writer)
        except (asyncio.CancelledError, OSError):
            writer.close()  # the test is over, or a socket broke: nothing to report
        finally:
            self._handlers.discard(task)

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_r, up_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        hold = asyncio.Event()
        hold.set()
        cut = asyncio.Event()

        async def to_server() -> None:
            while data := await reader.read(65536):
                self.sent += data
                if COMMIT_QUERY in data:
                    self.commits_seen += 1
                    if self.armed > 0:
                        self.armed -= 1
                        self.cut += 1
                        if self.mode == "drop":
                            cut.set()
                        else:
                            hold.clear()
                up_w.write(data)
                await up_w.drain()
                if cut.is_set():
                    return

        async def to_client() -> None:
            while data := await up_r.read(65536):
                if cut.is_set():
                    await asyncio.sleep(0.2)  # let the server finish the commit
                    return
                if not hold.is_set():
                    await asyncio.sleep(self.stall_s)
                    hold.set()
                writer.write(data)
                await writer.drain()

        tasks = [asyncio.create_task(to_server()), asyncio.create_task(to_client())]
        try:
            with contextlib.suppress(Exception):
                await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                if cut.is_set():
                    await asyncio.wait(tasks, timeout=1.0)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            writer.close()
            up_w.close()
