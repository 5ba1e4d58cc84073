"""The reading half of a `DeribitWsClient` (ws.py): frames in, callbacks out.

Frames arrive in `_on_frames`, called by `ws_conn.FastClientConnection` once per socket read;
every frame of one read shares one `received_at`. Heartbeat `test_request`s are answered at
once from here; responses resolve their pending request; a 10028 ends the session.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import websockets

from scripts.clock import Clock, utc_from_s
from scripts.deribit.protocol import (
    TOO_MANY_REQUESTS,
    Heartbeat,
    MalformedFrame,
    Notification,
    Response,
    encode_request,
    parse_frame,
)
from scripts.deribit.ws_conn import FastClientConnection

log = logging.getLogger("scripts.deribit.ws")  # the socket's own log, as before the split

NotificationHandler = Callable[[str, Any, datetime], None]


class SessionEnded(Exception):
    """Why a socket session ended (the message is the reason, for logs and gap rows)."""


class RateLimited(SessionEnded):
    """Deribit answered 10028: its credits are spent and it ends the session."""


class FrameReading:
    """Mixed into `DeribitWsClient`: the attributes below are the client's."""

    name: str
    stats: Any
    clock: Clock
    on_notification: NotificationHandler
    on_malformed: Callable[..., None] | None
    last_data_at: float | None
    last_data_market_s: float | None
    _ids: itertools.count[int]
    _pending: dict[int, asyncio.Future[Response]]
    _ws: FastClientConnection | None
    _session_had_data: bool
    _read_failed: asyncio.Future[None] | None

    def _safe(self, fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except Exception:
            self.stats.callback_errors += 1
            log.exception("%s: callback %s failed", self.name, getattr(fn, "__name__", fn))

    # ---- reading ------------------------------------------------------------------------------
    async def _read_loop(self, ws: FastClientConnection) -> None:
        """Frames arrive in `_on_frames`, called by the connection a socket read at a time; this
        task only waits for the socket to close or a frame handler to fail."""
        loop = asyncio.get_running_loop()
        failed: asyncio.Future[None] = loop.create_future()
        self._read_failed = failed
        closed = asyncio.ensure_future(ws.wait_closed())
        ws.set_sink(self._on_frames)
        try:
            await asyncio.wait((failed, closed), return_when=asyncio.FIRST_COMPLETED)
        finally:
            ws.set_sink(None)
            self._read_failed = None
            closed.cancel()
            if not failed.done():
                failed.cancel()
        if failed.done() and not failed.cancelled():
            failed.result()  # raises what the handler raised
        # Closed: like `async for` over the connection, a clean close ends quietly.
        exc = ws.protocol.close_exc
        if not isinstance(exc, websockets.exceptions.ConnectionClosedOK):
            raise exc

    def _on_frames(self, payloads: list[bytes]) -> None:
        failed = self._read_failed
        if failed is None or failed.done():
            return
        try:
            self._handle_frames(payloads)
        except BaseException as exc:  # ends the session (a 10028, a closed socket)
            failed.set_exception(exc)

    def _handle_frames(self, payloads: list[bytes]) -> None:
        """The frames of one socket read, in order; they share one `received_at`."""
        stats = self.stats
        on_notification = self.on_notification
        now_s = self.clock.now()
        received_at = utc_from_s(now_s)
        data_seen = 0
        try:
            for raw in payloads:
                try:
                    frame = parse_frame(raw)
                except MalformedFrame as exc:
                    stats.malformed += 1
                    if self.on_malformed is not None:
                        self._safe(self.on_malformed, self, raw, exc.reason)
                    continue
                if type(frame) is Notification:
                    data_seen += 1
                    try:
                        on_notification(frame[0], frame[1], received_at)
                    except Exception:
                        stats.callback_errors += 1
                        log.exception("%s: notification handler failed on %s", self.name, frame[0])
                elif type(frame) is Heartbeat:
                    if frame.needs_answer:
                        # Answered at once from here: the control task may be waiting on credits.
                        assert self._ws is not None
                        self._ws.send_text_now(encode_request(next(self._ids), "public/test", {}))
                        stats.heartbeats_answered += 1
                else:
                    assert type(frame) is Response
                    self._on_response(frame)
        finally:
            if data_seen:
                self.last_data_at = time.monotonic()
                self.last_data_market_s = now_s
                self._session_had_data = True
                stats.notifications += data_seen

    def _on_response(self, resp: Response) -> None:
        fut = self._pending.get(resp.id) if isinstance(resp.id, int) else None
        if fut is not None:
            if not fut.done():
                fut.set_result(resp)
            return
        if resp.error is not None:
            # An error for no pending request: a public/test answer, or the server's reply
            # to something it could not parse. 10028 ends the session whatever it answers.
            if resp.error.code == TOO_MANY_REQUESTS:
                raise RateLimited(f"unsolicited 10028: {resp.error.message}")
            log.warning("%s: error reply to no pending request: %s", self.name, resp.error)
