"""Request handling shared by WebSocket and HTTP: limits, session methods, subscriptions.

Market-data methods go to `RestApi.handle` (or to the recorded answers in replay mode).
"""

from __future__ import annotations

import logging
import random
import secrets
from typing import TYPE_CHECKING, Any

import orjson

from tests.fake_deribit import rpc
from tests.fake_deribit.errors import RpcError
from tests.fake_deribit.routing import OK, RAW_UNAUTHORIZED

if TYPE_CHECKING:
    from tests.fake_deribit.server import FakeDeribit
    from tests.fake_deribit.session import WsSession

log = logging.getLogger(__name__)

MIN_HEARTBEAT_INTERVAL_S = 10
TOO_MANY_REQUESTS_CLOSE = (1008, "too_many_requests")


class Dispatcher:
    def __init__(self, server: FakeDeribit) -> None:
        self.server = server

    # -- WebSocket frames ------------------------------------------------------------------
    def on_ws_text(self, session: WsSession, text: str) -> None:
        """Handle one client frame; everything it causes is queued on the session in order."""
        if session.closing:
            return
        server = self.server
        us_in = server.now_us()
        limit = server.limits.max_frame_bytes
        if len(text) > limit // 4 and len(text.encode()) > limit:
            self._ws_error(session, _id_of_large(text), rpc.entity_too_large(), us_in)
            return
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            self._ws_error(session, rpc.NO_ID, rpc.bad_request(), us_in)
            return
        if not isinstance(msg, dict):
            self._ws_error(session, rpc.NO_ID, rpc.bad_request(), us_in)
            return
        req_id = rpc.request_id(msg)
        method = msg.get("method")
        params = msg.get("params")
        if not isinstance(method, str):
            self._ws_error(session, req_id, rpc.method_not_found(), us_in)
            return
        server.stats.ws_calls_by_method[method] += 1
        followup: list[str] = []
        try:
            if method in ("public/subscribe", "private/subscribe"):
                server.stats.subscribe_calls += 1
                self._charge(session.ip, method)
                result, followup = self._subscribe(
                    session, params, private=method.startswith("private/")
                )
            else:
                result = self.call(method, params, ip=session.ip, session=session, history=False)
        except RpcError as err:
            self._ws_error(session, req_id, err, us_in)
            if err.code == 10028:
                session.close(*TOO_MANY_REQUESTS_CLOSE)
            return
        session.send(rpc.response(req_id, result=result, us_in=us_in, us_out=server.now_us()))
        if followup:
            self._after_subscribe(session, followup)

    def _ws_error(self, session: WsSession, req_id: Any, err: RpcError, us_in: int) -> None:
        self.server.count_error(err)
        session.send(rpc.response(req_id, error=err, us_in=us_in, us_out=self.server.now_us()))

    def _charge(self, ip: str, method: str) -> None:
        server = self.server
        if not server.limiter.charge(ip, method) or server.faults.roll_10028():
            raise rpc.too_many_requests()

    # -- methods ---------------------------------------------------------------------------
    def call(
        self,
        method: str,
        params: Any,
        *,
        ip: str,
        session: WsSession | None,
        history: bool,
    ) -> Any:
        """The result of one request, or RpcError. Subscribe is handled in `on_ws_text`."""
        self._charge(ip, method)
        if params is None:
            params = {}
        if not isinstance(params, dict):
            raise rpc.invalid_params("params must be an object")
        if method in rpc.WS_ONLY_METHODS:
            if session is None:
                raise rpc.must_be_websocket()
            return self._session_method(session, method, params)
        if method == "public/test":
            if params.get("expected_result") == "exception":
                raise rpc.internal_error("expected_result exception")
            if session is not None:
                session.test_pending = False
            return {"version": rpc.SERVER_VERSION}
        if method == "public/get_time":
            return self.server.clock.now_ms()
        if method == "public/status":
            return {"locked": "false", "locked_indices": []}
        if method == "public/auth":
            return self._auth(session, params)
        server = self.server
        if server.replay is not None:
            return server.replay.rest_result(method, params)
        try:
            return server.rest.handle(method, params, history=history)
        except RpcError:
            raise
        except Exception as exc:
            log.exception("fake exchange: %s failed on %r", method, params)
            raise rpc.internal_error(f"{type(exc).__name__}: {exc}") from exc

    def _session_method(self, session: WsSession, method: str, params: dict[str, Any]) -> Any:
        if method == "public/hello":
            session.client_name = str(params.get("client_name", ""))
            return {"version": rpc.SERVER_VERSION}
        if method == "public/set_heartbeat":
            interval = params.get("interval")
            if (
                not isinstance(interval, int | float)
                or isinstance(interval, bool)
                or interval < MIN_HEARTBEAT_INTERVAL_S
            ):
                raise rpc.invalid_params("interval must be >= 10", "interval")
            session.set_heartbeat(float(interval))
            return "ok"
        if method == "public/disable_heartbeat":
            session.disable_heartbeat()
            return "ok"
        if method in ("public/unsubscribe", "private/unsubscribe"):
            channels = _channel_list(params)
            removed = [c for c in dict.fromkeys(channels) if c in session.channels]
            for channel in removed:
                session.channels.discard(channel)
                self.server.router.remove(session, channel)
            return removed
        if method in ("public/unsubscribe_all", "private/unsubscribe_all"):
            self.server.router.remove_all(session, session.channels)
            session.channels.clear()
            return "ok"
        raise rpc.method_not_found()

    def _auth(self, session: WsSession | None, params: dict[str, Any]) -> Any:
        if params.get("grant_type") != "client_credentials" or not params.get("client_id"):
            raise rpc.invalid_params("client_credentials grant with client_id required")
        if session is not None:
            session.authorized = True
        return {
            "access_token": secrets.token_hex(16),
            "expires_in": 900,
            "refresh_token": secrets.token_hex(16),
            "scope": "connection mainaccount",
            "token_type": "bearer",
        }

    # -- subscriptions ---------------------------------------------------------------------
    def _subscribe(
        self, session: WsSession, params: Any, *, private: bool
    ) -> tuple[list[str], list[str]]:
        """(ack list, channels newly subscribed on this socket)."""
        server = self.server
        if not isinstance(params, dict):
            raise rpc.invalid_params("params must be an object")
        if private and not session.authorized:
            raise rpc.unauthorized()
        channels = _channel_list(params)
        authorized = session.authorized or server.allow_raw_without_auth
        ack: list[str] = []
        raw_refused = 0
        for channel in dict.fromkeys(channels):
            verdict = server.catalog.check(channel, authorized=authorized)
            if channel in server.faults.refuse_channels:  # left out of the ack, like Deribit
                server.stats.refused_channels += 1
                continue
            if verdict == OK:
                ack.append(channel)
            elif verdict == RAW_UNAUTHORIZED:
                raw_refused += 1
        if not ack and raw_refused:
            raise rpc.raw_unauthorized()
        new: list[str] = []
        for channel in ack:
            if channel not in session.channels:
                session.channels.add(channel)
                server.router.add(session, channel)
                new.append(channel)
        # Deribit may answer in another order; shuffle the same way for the same request.
        random.Random("\n".join(ack)).shuffle(ack)
        return ack, new

    def _after_subscribe(self, session: WsSession, new: list[str]) -> None:
        """Initial frames: book snapshots, grouped windows, incremental ticker, replay."""
        server = self.server
        first = not session.subscribed_once
        session.subscribed_once = True
        if server.faults.stall:
            return
        if server.replay is not None:
            frames = (
                server.replay.all_frames()
                if first and server.firehose
                else server.replay.frames_for(new)
            )
            for channel, frame, data in frames:
                session.send_notification(channel, frame, data, None)
            return
        publisher = server.publisher
        for channel in new:
            p = channel.split(".")
            if p[0] == "book" and len(p) == 3:
                snapshot = server.market.book_snapshot(p[1])
                if snapshot is not None:
                    publisher.send_to([session], channel, snapshot)
            elif p[0] == "book" and len(p) == 5:
                window = publisher.grouped_frame(channel)
                if window is not None:
                    publisher.send_to([session], channel, window)
            elif p[0] == "incremental_ticker":
                publisher.incremental_snapshot(session, p[1])
            elif p[0] == "quote" and len(p) == 2 and p[1] in publisher.last_quote:
                publisher.send_to([session], channel, publisher.last_quote[p[1]])


def _channel_list(params: dict[str, Any]) -> list[str]:
    channels = params.get("channels")
    if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
        raise rpc.invalid_params("channels must be a list of strings", "channels")
    return channels


def _id_of_large(text: str) -> Any:
    """Echo the id of an oversized request when it parses, so the caller is not left waiting."""
    try:
        msg = orjson.loads(text)
    except orjson.JSONDecodeError:
        return rpc.NO_ID
    return rpc.request_id(msg) if isinstance(msg, dict) else rpc.NO_ID
