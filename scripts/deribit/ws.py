"""The Deribit WebSocket session: hello, heartbeats, batched subscribe, reconnect, watchdog.

One `DeribitWsClient` is one socket (see shared/docs/deribit-protocol.md §2-4, §10):

- after connecting it sends `public/hello` and `public/set_heartbeat`, and answers every
  `test_request` with `public/test` at once, from the read loop (a late answer closes the
  socket with 4000);
- it keeps a wanted set of channels and subscribes what is not acknowledged yet, in batches
  that fit Deribit's 32 kB frame (`protocol.batch_channels`), each batch paying its subscribe
  credits from `subscribe_limiter` first (3,000 credits of a 30,000 pool refilled at 10,000/s,
  i.e. ~3.3 calls/s, burst 10; on the market clock, shared by every socket of the process);
- each ack is compared with its request: a channel the exchange left out was refused
  (Deribit drops unknown channels silently), is logged loudly, counted, reported to
  `on_refused`, and asked for again on the same socket after a capped, jittered backoff
  (`ws_retry.py`);
  a channel acknowledged after it was refused is reported to `on_accepted`;
- `add_channels` / `remove_channels` change the wanted set while it runs (new listings,
  expiries); after a reconnect every wanted channel is subscribed again;
- reconnects back off exponentially with full jitter, capped, and the backoff resets only
  once a notification arrived on the new socket (a socket that opens and dies at once does
  not reset it);
- a watchdog reconnects when no notification arrived for `data_watchdog_s` although the
  socket is up and heartbeats flow (data liveness is not socket liveness);
- a 10028 (`too_many_requests`) ends the session on Deribit's side: the client drains its
  subscribe limiter, waits for it to refill and reconnects;
- a frame that is not a valid JSON-RPC message is counted and handed to `on_malformed`; it
  never ends the session.

Transport timing (heartbeats, watchdog, backoff) is wall time; credits and `received_at` are
on the `Clock` (market time), like the rows' exchange timestamps. `received_at` is read once
per socket read: every frame of one read shares it (they arrived together).

Frames are read by `ws_conn.FastClientConnection`, which hands the client every data frame of
one socket read in one synchronous call (no per-message queue or task switch).

Callbacks are synchronous and run on the event loop: `on_notification(channel, data,
received_at)` per notification, `on_connect(client)` when the socket is up and its first
subscribe round is acknowledged, `on_disconnect(client, reason)` when a socket ends.

The channel sets and the batched subscribe rounds are in `ws_subscriptions.py`; reading the
frames (heartbeat answers, responses, notifications) in `ws_frames.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import websockets
from websockets.asyncio.client import connect

from scripts.clock import Clock
from scripts.deribit.limiter import CreditLimiter
from scripts.deribit.protocol import (
    SUBSCRIBE_CREDITS,
    DeribitError,
    RateLimitedError,
    Response,
    encode_request,
)
from scripts.deribit.ws_conn import FastClientConnection
from scripts.deribit.ws_frames import (
    FrameReading,
    NotificationHandler,
    RateLimited,
    SessionEnded,
)
from scripts.deribit.ws_retry import RefusedRetry
from scripts.deribit.ws_subscriptions import Subscriptions
from scripts.retry import backoff_delay
from scripts.runtime import first_finished

log = logging.getLogger(__name__)

MAX_FRAME_RECEIVE_BYTES = 64 * 1024 * 1024  # markprice.options of a whole chain is large
REQUEST_TIMEOUT_S = 30.0
BACKOFF_BASE_S = 0.5
BACKOFF_CAP_S = 30.0
WATCHDOG_CHECK_S = 0.25

MalformedHandler = Callable[["DeribitWsClient", bytes | str, str], None]


def subscribe_limiter(clock: Clock, share: float = 1.0) -> CreditLimiter:
    """A limiter for subscribe/unsubscribe calls: `share` of Deribit's subscribe pool."""
    spec = SUBSCRIBE_CREDITS
    return CreditLimiter(spec.refill_per_s * share, spec.pool * share, clock, name="subscribe")


@dataclass
class WsStats:
    """Counters of one client; read by the collector for status and tests."""

    connects: int = 0
    reconnects: int = 0
    notifications: int = 0
    malformed: int = 0
    refused_channels: int = 0
    subscribe_calls: int = 0
    unsubscribe_calls: int = 0
    heartbeats_answered: int = 0
    watchdog_reconnects: int = 0
    rate_limited: int = 0
    callback_errors: int = 0


class DeribitWsClient(FrameReading):
    """One WebSocket session to Deribit that keeps a wanted set of channels subscribed."""

    def __init__(
        self,
        url: str,
        *,
        on_notification: NotificationHandler,
        client_name: str,
        client_version: str,
        heartbeat_interval_s: int = 10,
        data_watchdog_s: float = 30.0,
        subscribe_limiter: CreditLimiter,
        clock: Clock | None = None,
        on_connect: Callable[[DeribitWsClient], None] | None = None,
        on_disconnect: Callable[[DeribitWsClient, str], None] | None = None,
        on_malformed: MalformedHandler | None = None,
        on_refused: Callable[[DeribitWsClient, list[str]], None] | None = None,
        on_accepted: Callable[[DeribitWsClient, list[str]], None] | None = None,
        channels: Iterable[str] = (),
        name: str = "ws",
        backoff_base_s: float = BACKOFF_BASE_S,
        backoff_cap_s: float = BACKOFF_CAP_S,
        request_timeout_s: float = REQUEST_TIMEOUT_S,
        seed: int | None = None,
    ) -> None:
        self.url = url
        self.name = name
        self.on_notification = on_notification
        self.client_name = client_name
        self.client_version = client_version
        self.heartbeat_interval_s = heartbeat_interval_s
        self.data_watchdog_s = data_watchdog_s
        self.subscribe_limiter = subscribe_limiter
        self.clock = clock or Clock()
        self.on_connect = on_connect
        self.on_disconnect = on_disconnect
        self.on_malformed = on_malformed
        self.on_refused = on_refused
        self.on_accepted = on_accepted
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self.request_timeout_s = request_timeout_s
        self.stats = WsStats()
        self.connected = False
        self.last_data_at: float | None = None  # wall (monotonic) time of the last notification
        self.last_data_market_s: float | None = None  # market time of the last notification
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Response]] = {}
        self._rng = random.Random(seed)
        self.subs = Subscriptions(
            name, channels, subscribe_limiter, RefusedRetry(self._rng), self.stats
        )
        self._ws: FastClientConnection | None = None
        self._session_had_data = False
        self._read_failed: asyncio.Future[None] | None = None

    # ---- wanted channels (ws_subscriptions.py) ----------------------------------------------
    def add_channels(self, channels: Iterable[str]) -> None:
        """Wants these channels too; subscribed soon if the socket is up, else on connect.
        A channel refused on this socket is asked for again."""
        self.subs.add(channels)

    def remove_channels(self, channels: Iterable[str]) -> None:
        """No longer wants these channels; unsubscribed soon if the socket is up."""
        self.subs.remove(channels)

    @property
    def wanted(self) -> dict[str, None]:
        return self.subs.wanted

    @property
    def acked(self) -> set[str]:
        return self.subs.acked

    @property
    def refused(self) -> set[str]:
        return self.subs.refused

    @property
    def was_refused(self) -> set[str]:
        return self.subs.was_refused

    @property
    def subscribed(self) -> set[str]:
        """Channels acknowledged on the current socket (empty while disconnected)."""
        return set(self.acked) if self.connected else set()

    # ---- the loop -----------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Connects, keeps the session alive and reconnects until `stop` is set."""
        attempt = 0
        while not stop.is_set():
            reason = "stopped"
            data_flowed = False
            wait_market_s = 0.0
            self._session_had_data = False
            try:
                async with connect(
                    self.url,
                    max_size=MAX_FRAME_RECEIVE_BYTES,
                    open_timeout=self.request_timeout_s,
                    close_timeout=2.0,
                    compression=None,
                    create_connection=FastClientConnection,
                ) as conn:
                    assert isinstance(conn, FastClientConnection)
                    ws = conn
                    self.stats.connects += 1
                    if self.stats.connects > 1:
                        self.stats.reconnects += 1
                    reason = await self._session(ws, stop)
            except RateLimited as exc:
                reason = f"rate limited: {exc}"
                self.stats.rate_limited += 1
                # Deribit ended the session: let the credits refill before coming back.
                self.subscribe_limiter.drain()
                wait_market_s = (
                    self.subscribe_limiter.capacity / self.subscribe_limiter.refill_per_s
                )
            except SessionEnded as exc:
                reason = str(exc)
            except (OSError, websockets.exceptions.WebSocketException, TimeoutError) as exc:
                reason = f"{type(exc).__name__}: {exc}"
            finally:
                data_flowed = self._session_had_data
                self._end_session()
            if reason != "stopped" or not stop.is_set():
                log.warning("%s: session ended: %s", self.name, reason)
                if self.on_disconnect is not None:
                    self._safe(self.on_disconnect, self, reason)
            if stop.is_set():
                break
            attempt = 0 if data_flowed else attempt + 1
            delay = backoff_delay(
                attempt, base_s=self.backoff_base_s, cap_s=self.backoff_cap_s, rng=self._rng
            )
            if wait_market_s:
                delay = max(delay, self.clock.to_wall_seconds(wait_market_s))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)

    def _end_session(self) -> None:
        self.connected = False
        self._ws = None
        self.subs.session_ended()
        for fut in self._pending.values():
            if not fut.done():
                fut.cancel()
        self._pending.clear()

    async def _session(self, ws: FastClientConnection, stop: asyncio.Event) -> str:
        self._ws = ws
        self._session_had_data = False
        # The reader and the control loop run together; the first to end ends the session.
        first = await first_finished(self._read_loop(ws), self._control(ws, stop))
        exc = first.error
        if exc is None:
            return first.value if first.index == 1 else "socket closed by the exchange"
        if isinstance(exc, SessionEnded):
            raise exc
        raise SessionEnded(f"{type(exc).__name__}: {exc}")

    async def _control(self, ws: FastClientConnection, stop: asyncio.Event) -> str:
        hello = {"client_name": self.client_name, "client_version": self.client_version}
        await self._call(ws, "public/hello", hello)
        await self._call(ws, "public/set_heartbeat", {"interval": self.heartbeat_interval_s})
        self.connected = True
        self.last_data_at = time.monotonic()
        await self._sync(ws)
        log.info("%s: connected, %d channels subscribed", self.name, len(self.acked))
        if self.on_connect is not None:
            self._safe(self.on_connect, self)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.subs.dirty.wait(), WATCHDOG_CHECK_S)
            if stop.is_set():
                break
            self.subs.retry_refused()
            if self.subs.dirty.is_set():
                await self._sync(ws)
            self._check_watchdog()
        with contextlib.suppress(Exception):
            await ws.close()
        return "stopped"

    def _check_watchdog(self) -> None:
        if not self.acked or self.last_data_at is None:
            return
        silent = time.monotonic() - self.last_data_at
        if silent > self.data_watchdog_s:
            self.stats.watchdog_reconnects += 1
            raise SessionEnded(f"watchdog: no data for {silent:.1f}s although the socket is up")

    async def _sync(self, ws: FastClientConnection) -> None:
        def call(method: str, params: dict[str, Any]) -> Awaitable[Any]:
            return self._call(ws, method, params)

        def accepted(channels: list[str]) -> None:
            if self.on_accepted is not None:
                self._safe(self.on_accepted, self, channels)

        def refused(channels: list[str]) -> None:
            if self.on_refused is not None:
                self._safe(self.on_refused, self, channels)

        await self.subs.sync(call, accepted, refused)

    # ---- requests -----------------------------------------------------------------------------
    async def _call(self, ws: FastClientConnection, method: str, params: dict[str, Any]) -> Any:
        req_id = next(self._ids)
        fut: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self._pending[req_id] = fut
        try:
            await ws.send(encode_request(req_id, method, params).decode())
            try:
                resp = await asyncio.wait_for(fut, self.request_timeout_s)
            except TimeoutError:
                raise SessionEnded(f"no answer to {method} in {self.request_timeout_s}s") from None
        finally:
            self._pending.pop(req_id, None)
        if resp.error is not None:
            err = DeribitError.from_info(resp.error)
            if isinstance(err, RateLimitedError):
                raise RateLimited(f"{method}: {err}")
            raise SessionEnded(f"{method} failed: {err}")
        return resp.result
