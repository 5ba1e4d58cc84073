"""One WebSocket session: an ordered outgoing queue, heartbeats, and its subscriptions.

Everything the session sends goes through one queue drained by one writer task, so an ack
always precedes the snapshot it announces and the pump never waits on a slow socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from tests.fake_deribit import rpc

if TYPE_CHECKING:
    from tests.fake_deribit.server import FakeDeribit

log = logging.getLogger(__name__)

OUTGOING_QUEUE_MAX = 200_000  # frames; a client this far behind is cut off (connection_too_slow)


class _Close:
    def __init__(self, code: int, reason: str) -> None:
        self.code = code
        self.reason = reason


class _Abort:
    pass


class WsSession:
    """State of one client socket. Created and run by `FakeDeribit`."""

    def __init__(
        self,
        server: FakeDeribit,
        conn_id: int,
        ip: str,
        request: web.Request,
        ws: web.WebSocketResponse,
    ) -> None:
        self.server = server
        self.conn_id = conn_id
        self.ip = ip
        self.request = request
        self.ws = ws
        self.channels: set[str] = set()
        self.authorized = False
        self.closing = False
        self.notifications_sent = 0
        self.subscribed_once = False
        self.test_pending = False
        self.client_name: str | None = None
        self._queue: asyncio.Queue[bytes | _Close | _Abort] = asyncio.Queue(OUTGOING_QUEUE_MAX)
        self._writer: asyncio.Task[None] | None = None
        self._heartbeat: asyncio.Task[None] | None = None

    def __hash__(self) -> int:
        return self.conn_id

    def __eq__(self, other: object) -> bool:
        return self is other

    # -- sending ---------------------------------------------------------------------------
    def start(self) -> None:
        self._writer = asyncio.create_task(self._write_loop(), name=f"ws-writer-{self.conn_id}")

    def send(self, frame: bytes) -> None:
        """Queue a frame (response, heartbeat or notification) in order."""
        if self.closing:
            return
        try:
            self._queue.put_nowait(frame)
        except asyncio.QueueFull:
            log.warning("session %s: outgoing queue full, dropping the client", self.conn_id)
            self.abort()

    def send_notification(
        self, channel: str, frame: bytes, data: Any, malformed: str | None
    ) -> None:
        """Queue a notification and record it in ground truth; may trigger drop faults."""
        if self.closing:
            return
        self.send(frame)
        self.notifications_sent += 1
        self.server.record_notification(self, channel, data, frame, malformed)
        limit = self.server.faults.drop_after_messages
        if limit is not None and self.notifications_sent >= limit:
            self.server.stats.dropped_connections += 1
            self._queue_control(_Abort())

    def close(self, code: int, reason: str) -> None:
        """Close after the frames already queued are sent; ignore the client from now on."""
        self._queue_control(_Close(code, reason))

    def abort(self) -> None:
        """Cut the TCP connection at once, without a close frame (the client sees 1006)."""
        self.closing = True
        transport = self.request.transport
        if transport is not None:
            transport.abort()

    def _queue_control(self, item: _Close | _Abort) -> None:
        if self.closing:
            return
        self.closing = True
        # The control item must not be lost to a full queue: make room by aborting instead.
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            self.abort()

    async def _write_loop(self) -> None:
        ws = self.ws
        stats = self.server.stats
        try:
            while True:
                item = await self._queue.get()
                if isinstance(item, bytes):
                    await ws.send_frame(item, WSMsgType.TEXT)
                    stats.frames_sent += 1
                elif isinstance(item, _Close):
                    await ws.close(code=item.code, message=item.reason.encode())
                    return
                else:
                    self.abort()
                    return
        except (ConnectionError, RuntimeError) as exc:
            log.debug("session %s: writer stopped: %s", self.conn_id, exc)
            self.abort()

    # -- heartbeat -------------------------------------------------------------------------
    def set_heartbeat(self, interval_s: float) -> None:
        self.disable_heartbeat()
        period = interval_s * self.server.heartbeat_scale
        self._heartbeat = asyncio.create_task(self._heartbeat_loop(period))

    def disable_heartbeat(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            self._heartbeat = None
        self.test_pending = False

    async def _heartbeat_loop(self, period: float) -> None:
        while not self.closing:
            await asyncio.sleep(period)
            if self.test_pending:
                self.server.stats.heartbeat_closes += 1
                self.close(4000, "heartbeat close")
                return
            self.test_pending = True
            self.send(rpc.TEST_REQUEST)

    # -- teardown --------------------------------------------------------------------------
    async def finish(self) -> None:
        """Stop the session's tasks (the socket is already closed or being closed)."""
        self.closing = True
        self.disable_heartbeat()
        if self._writer is not None:
            if not self._writer.done():
                self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._writer
