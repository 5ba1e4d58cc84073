"""`FakeDeribit`: one aiohttp server with Deribit's WebSocket and HTTP APIs on loopback.

WS JSON-RPC at `/ws/api/v2`, HTTP at `/api/v2/public/{method}` and the history host at
`/history/api/v2/public/{method}`. A pump advances the market to the clock every ~10 ms and
routes its events; in replay mode recorded messages are served instead (replay.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from scripts.clock import SimClock
from tests.fake_deribit import rpc
from tests.fake_deribit.dispatch import Dispatcher
from tests.fake_deribit.errors import RpcError
from tests.fake_deribit.faults import Faults
from tests.fake_deribit.limits import IpLimiter, Limits
from tests.fake_deribit.publish import Publisher
from tests.fake_deribit.replay import ReplayCorpus
from tests.fake_deribit.routing import Catalog, Router
from tests.fake_deribit.session import WsSession

log = logging.getLogger(__name__)

PUMP_PERIOD_S = 0.01
# At most this much market time per pump step, so a market that falls behind the clock
# catches up in slices and requests are still answered in between.
PUMP_MAX_STEP_MS = 500
# A pump step catching up runs several slices back to back, for at most this much wall time
# (one event-loop turn per slice would cost more than a quiet slice itself).
PUMP_BUDGET_S = 0.02
WS_PATH = "/ws/api/v2"
# aiohttp would close on frames above its own limit; we answer -32600 ourselves instead.
AIOHTTP_MAX_MSG_BYTES = 16 * 1024 * 1024


@dataclass
class ServerStats:
    """Counters tests assert on."""

    connections: int = 0
    refused: int = 0
    frames_sent: int = 0
    notifications_sent: int = 0
    errors_sent_by_code: Counter[int] = field(default_factory=Counter)
    rest_calls_by_method: Counter[str] = field(default_factory=Counter)
    rest_malformed_sent: Counter[str] = field(default_factory=Counter)
    ws_calls_by_method: Counter[str] = field(default_factory=Counter)
    subscribe_calls: int = 0
    heartbeat_closes: int = 0
    dropped_connections: int = 0
    book_changes_skipped: int = 0
    malformed_sent: Counter[str] = field(default_factory=Counter)
    pump_errors: int = 0
    future_trades_sent: int = 0
    refused_channels: int = 0


@dataclass(frozen=True)
class MalformedFrame:
    """A notification the server broke on purpose (faults.malformed_rate)."""

    conn_id: int
    channel: str
    kind: str
    frame: bytes
    data: Any


class FakeDeribit:
    """The fake exchange; see tests/fake_deribit/README.md.

    `speed` is used only when no `clock` is given. `heartbeat_scale` multiplies heartbeat
    intervals (wall seconds) so tests can use short ones. `firehose` (replay mode) sends every
    recorded notification to each session after its first subscribe. `.raw` channels need
    `public/auth` unless `allow_raw_without_auth` (default: only in replay mode, as the
    2021 recordings subscribed to raw without auth).
    """

    def __init__(
        self,
        market_config: Any = None,
        *,
        clock: SimClock | None = None,
        speed: float = 1.0,
        replay_dir: Path | None = None,
        limits: Limits | None = None,
        faults: Faults | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        heartbeat_scale: float = 1.0,
        firehose: bool = False,
        allow_raw_without_auth: bool | None = None,
    ) -> None:
        self.host = host
        self._port = port
        self.limits = limits or Limits()
        self.faults = faults or Faults()
        self.heartbeat_scale = heartbeat_scale
        self.firehose = firehose
        self.stats = ServerStats()
        self.malformed: list[MalformedFrame] = []
        self.replay: ReplayCorpus | None = None
        self.market: Any = None
        self.truth: Any = None
        self.rest: Any = None
        if replay_dir is not None:
            self.replay = ReplayCorpus.load(Path(replay_dir))
            self.clock = clock or SimClock.starting_now(time.time(), speed)
            self.catalog = Catalog(permissive=True)
            self.catalog.extra_channels = self.replay.channels
        else:
            from tests.fake_deribit.market import Market, MarketConfig
            from tests.fake_deribit.rest_api import RestApi

            config = market_config if market_config is not None else MarketConfig()
            self.market = Market(config)
            # Without a clock, market time starts at the market's origin once it is built.
            self.clock = clock or SimClock.starting_now(self.market.now_ms / 1000.0, speed)
            self.truth = self.market.truth
            self.rest = RestApi(self.market)
            self.catalog = Catalog()
            self._load_catalog()
        self.allow_raw_without_auth = (
            self.replay is not None if allow_raw_without_auth is None else allow_raw_without_auth
        )
        self.router = Router(self.catalog)
        if self.market is not None:
            self.market.set_demand(self.router.demand)
        self.publisher = Publisher(self, self.router)
        self.limiter = IpLimiter(self.limits, self.clock)
        self.dispatcher = Dispatcher(self)
        self.sessions: set[WsSession] = set()
        self._next_conn_id = 1
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []

    # -- lifecycle -------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._port

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self._port}{WS_PATH}"

    @property
    def rest_url(self) -> str:
        return f"http://{self.host}:{self._port}/api/v2"

    @property
    def history_url(self) -> str:
        return f"http://{self.host}:{self._port}/history/api/v2"

    def sim_clock_spec(self) -> str:
        """The SIM_CLOCK value that puts a collector on this exchange's market time."""
        return self.clock.spec()

    async def start(self) -> None:
        app = web.Application(client_max_size=AIOHTTP_MAX_MSG_BYTES)
        app.router.add_get(WS_PATH, self._ws_handler)
        for prefix, history in (("/api/v2", False), ("/history/api/v2", True)):
            handler = self._http_handler(history)
            app.router.add_route("GET", prefix + "/{scope}/{method}", handler)
            app.router.add_route("POST", prefix + "/{scope}/{method}", handler)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self._port)
        await site.start()
        self._port = self._runner.addresses[0][1]
        if self.market is not None:
            self._tasks.append(asyncio.create_task(self._pump(), name="fake-deribit-pump"))
        self._tasks.append(asyncio.create_task(self._drop_timer(), name="fake-deribit-drops"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        for session in list(self.sessions):
            session.abort()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeDeribit:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def drop_all_connections(self) -> None:
        """Abort every WebSocket at once, without close frames (clients see 1006)."""
        for session in list(self.sessions):
            self.stats.dropped_connections += 1
            session.abort()
        await asyncio.sleep(0)

    # -- market ----------------------------------------------------------------------------
    def _load_catalog(self) -> None:
        from scripts.currencies import currency_spec

        for inst in self.market.instruments("any", None, False):
            self.catalog.add_instrument(inst)
        specs = [currency_spec(c) for c in self.market.config.currencies]
        self.catalog.indices.update(s.index_name for s in specs)
        self.catalog.dvol_indices.update(s.index_name for s in specs if s.has_dvol)

    async def _pump(self) -> None:
        while True:
            behind = False
            try:
                behind = self.pump_once()
            except Exception:
                self.stats.pump_errors += 1
                log.exception("fake exchange: market pump failed")
            await asyncio.sleep(0 if behind else PUMP_PERIOD_S)

    def pump_once(self) -> bool:
        """Advance the market towards the clock and route what happened (no await inside).

        Steps of at most PUMP_MAX_STEP_MS market time, for at most PUMP_BUDGET_S of wall time;
        True when the market is still behind the clock after that."""
        deadline = time.perf_counter() + PUMP_BUDGET_S
        target = self.clock.now_ms()
        market = self.market
        publisher = self.publisher
        publish = publisher.publish
        while True:
            step_to = min(target, market.now_ms + PUMP_MAX_STEP_MS)
            for ev in market.advance_to(step_to):
                publish(ev.kind, ev.key, ev.data)
            publisher.end_batch()
            if step_to >= target:
                return False
            if time.perf_counter() >= deadline:
                return True

    async def _drop_timer(self) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.05)
            every = self.faults.drop_every_s
            if every is None:
                last = time.monotonic()
                continue
            if time.monotonic() - last >= every:
                last = time.monotonic()
                await self.drop_all_connections()

    # -- bookkeeping -----------------------------------------------------------------------
    def now_us(self) -> int:
        return int(self.clock.now() * 1_000_000)

    def record_notification(
        self, session: WsSession, channel: str, data: Any, frame: bytes, malformed: str | None
    ) -> None:
        self.stats.notifications_sent += 1
        if malformed is not None:
            self.malformed.append(MalformedFrame(session.conn_id, channel, malformed, frame, data))
        if self.truth is None:
            return
        if malformed is None:
            self.truth.record_sent(session.conn_id, channel, data)
        elif hasattr(self.truth, "record_malformed"):
            self.truth.record_malformed(session.conn_id, channel, malformed, data)

    def count_error(self, err: RpcError) -> None:
        self.stats.errors_sent_by_code[err.code] += 1

    # -- WebSocket -------------------------------------------------------------------------
    async def _ws_handler(self, request: web.Request) -> web.StreamResponse:
        ip = request.remote or "?"
        if self.faults.refusing():
            self.stats.refused += 1
            return web.Response(status=self.faults.refuse_status, text="refused (fault)")
        if not self.limiter.open_connection(ip):
            self.stats.refused += 1
            return web.Response(status=429, text="too many connections from this IP")
        try:
            ws = web.WebSocketResponse(max_msg_size=AIOHTTP_MAX_MSG_BYTES, autoping=True)
            await ws.prepare(request)
            session = WsSession(self, self._next_conn_id, ip, request, ws)
            self._next_conn_id += 1
            self.stats.connections += 1
            self.sessions.add(session)
            session.start()
            try:
                async for msg in ws:
                    if msg.type == WSMsgType.TEXT:
                        self.dispatcher.on_ws_text(session, msg.data)
                    elif msg.type == WSMsgType.BINARY:
                        self.dispatcher.on_ws_text(session, msg.data.decode("utf-8", "replace"))
                    elif msg.type == WSMsgType.ERROR:
                        break
            finally:
                self.sessions.discard(session)
                self.router.remove_all(session, session.channels)
                await session.finish()
            return ws
        finally:
            self.limiter.close_connection(ip)

    # -- HTTP ------------------------------------------------------------------------------
    def _http_handler(self, history: bool) -> Any:
        async def handle(request: web.Request) -> web.StreamResponse:
            ip = request.remote or "?"
            if not self.limiter.open_connection(ip):
                self.stats.refused += 1
                return web.Response(status=429, text="too many connections from this IP")
            try:
                return await self._http_call(request, ip, history)
            finally:
                self.limiter.close_connection(ip)

        return handle

    async def _http_call(self, request: web.Request, ip: str, history: bool) -> web.Response:
        us_in = self.now_us()
        method = f"{request.match_info['scope']}/{request.match_info['method']}"
        req_id: Any = rpc.NO_ID
        params: Any
        if request.method == "POST":
            body = await request.read()
            if len(body) > self.limits.max_frame_bytes:
                return self._http_error(req_id, rpc.entity_too_large(), us_in)
            try:
                msg = orjson.loads(body) if body else {}
            except orjson.JSONDecodeError:
                return self._http_error(req_id, rpc.bad_request(), us_in)
            if not isinstance(msg, dict):
                return self._http_error(req_id, rpc.bad_request(), us_in)
            req_id = rpc.request_id(msg)
            method = msg.get("method") or method
            params = msg.get("params") or {}
        else:
            params = dict(request.query)  # RestApi reads numbers and booleans from strings
        self.stats.rest_calls_by_method[method] += 1
        try:
            result = self.dispatcher.call(method, params, ip=ip, session=None, history=history)
        except RpcError as err:
            return self._http_error(req_id, err, us_in)
        broken = self.faults.malform_rest_result(result)
        if broken is not None:
            self.stats.rest_malformed_sent[broken[0]] += 1
            result = broken[1]
        # usOut: when the exchange read the state it answers with, the market's time (which
        # may lag the clock on a busy machine), as Deribit's answer is the state at its usOut.
        us_out = self.now_us()
        if self.market is not None:  # None when replaying recordings
            us_out = min(us_out, self.market.now_ms * 1000)
        body = rpc.response(req_id, result=result, us_in=min(us_in, us_out), us_out=us_out)
        return web.Response(body=body, content_type="application/json")

    def _http_error(self, req_id: Any, err: RpcError, us_in: int) -> web.Response:
        self.count_error(err)
        body = rpc.response(req_id, error=err, us_in=us_in, us_out=self.now_us())
        return web.Response(status=400, body=body, content_type="application/json")
