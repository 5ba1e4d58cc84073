"""Deribit's JSON-RPC 2.0 envelopes, error classes and credit costs; pure (no I/O).

See ../shared/docs/deribit-protocol.md §2 (framing), §3 (heartbeats), §4 (credits, errors).
`parse_frame` sorts every incoming frame into a `Notification`, a `Response` or a `Heartbeat`,
and raises `MalformedFrame` for anything else so the WebSocket client can count it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, NamedTuple

import orjson

MAX_FRAME_BYTES = 32 * 1024  # a request frame above this gets -32600 (§2.5)
SUBSCRIBE_FRAME_MARGIN_BYTES = 512
MAX_CHANNELS_PER_SUBSCRIBE = 250

TOO_MANY_REQUESTS = 10028

_loads = orjson.loads
_new = tuple.__new__
_JSONDecodeError = orjson.JSONDecodeError


# ---- frames -------------------------------------------------------------------------------


class MalformedFrame(ValueError):
    """A frame that is not a JSON-RPC object Deribit would send; `reason` is short and fixed."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Notification(NamedTuple):
    """`method: subscription`: route on `channel`, exactly the string subscribed to."""

    channel: str
    data: Any


class RpcErrorInfo(NamedTuple):
    code: int
    message: str
    data: Any


class Response(NamedTuple):
    """A reply to a request; `id` is None for the server's reply to unparsable input."""

    id: int | str | None
    result: Any
    error: RpcErrorInfo | None
    us_in: int | None
    us_out: int | None


class Heartbeat(NamedTuple):
    """`method: heartbeat`; a `test_request` must be answered with `public/test` at once."""

    type: str

    @property
    def needs_answer(self) -> bool:
        return self.type == "test_request"


Frame = Notification | Response | Heartbeat


def encode_request(request_id: int, method: str, params: dict[str, Any]) -> bytes:
    """A JSON-RPC request as the bytes to send."""
    return orjson.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})


def parse_frame(raw: str | bytes) -> Frame:
    """One received frame -> `Notification` | `Response` | `Heartbeat`, else `MalformedFrame`."""
    try:
        obj = _loads(raw)
    except _JSONDecodeError:
        raise MalformedFrame("not JSON") from None
    # Nearly every frame is a notification: read it without the checks, which run (and decide)
    # below when any lookup fails.
    try:
        if obj["method"] == "subscription":
            params = obj["params"]
            channel = params["channel"]
            if type(channel) is str:
                # tuple.__new__ skips NamedTuple's Python-level __new__: this runs per message
                return _new(Notification, (channel, params["data"]))
    except (KeyError, TypeError, IndexError):
        pass
    if type(obj) is not dict:
        raise MalformedFrame("not a JSON object")
    method = obj.get("method")
    if method == "subscription":
        params = obj.get("params")
        if type(params) is dict:
            channel = params.get("channel")
            if type(channel) is str and "data" in params:
                return _new(Notification, (channel, params["data"]))
        raise MalformedFrame("subscription without params.channel and params.data")
    if method is None:
        return _response(obj)
    if method == "heartbeat":
        params = obj.get("params")
        if type(params) is dict and type(params.get("type")) is str:
            return Heartbeat(params["type"])
        raise MalformedFrame("heartbeat without params.type")
    raise MalformedFrame("unknown method")


def _response(obj: dict[str, Any]) -> Response:
    rid = obj.get("id")
    if rid is not None and type(rid) is not int and type(rid) is not str:
        raise MalformedFrame("response id is not an integer or string")
    us_in = obj.get("usIn")
    us_out = obj.get("usOut")
    if (us_in is not None and type(us_in) is not int) or (
        us_out is not None and type(us_out) is not int
    ):
        raise MalformedFrame("usIn/usOut are not integers")
    if "error" in obj:
        err = obj["error"]
        if type(err) is not dict:
            raise MalformedFrame("error is not an object")
        code = err.get("code")
        message = err.get("message")
        if type(code) is not int or type(message) is not str:
            raise MalformedFrame("error without an integer code and a string message")
        return Response(rid, None, RpcErrorInfo(code, message, err.get("data")), us_in, us_out)
    if "result" not in obj:
        raise MalformedFrame("neither method, result nor error")
    return Response(rid, obj["result"], None, us_in, us_out)


# ---- errors -------------------------------------------------------------------------------


class ErrorClass(StrEnum):
    """How to treat an error code; equal to the plain strings "retry", "rate_limited", "fatal"."""

    RETRY = "retry"
    RATE_LIMITED = "rate_limited"
    FATAL = "fatal"

    @property
    def retryable(self) -> bool:
        """Worth trying again later (after a backoff, or after credits refill)."""
        return self is not ErrorClass.FATAL


# Temporary conditions: the same request may succeed later, after a backoff (§4.3).
RETRY_CODES = frozenset(
    {
        10040,  # retry
        11051,  # system_maintenance
        13028,  # temporarily_unavailable
        11094,  # internal_server_error
        10066,  # too_many_concurrent_requests
        10041,  # settlement_in_progress
        11056,  # unauthenticated_public_requests_temporarily_disabled
    }
)
# Over the credit limit: Deribit ends the session; wait for credits to refill (§3, §4.1).
RATE_LIMITED_CODES = frozenset({TOO_MANY_REQUESTS})
# Known codes where repeating the request cannot help: fix the request, the auth or the name.
FATAL_CODES = frozenset(
    {
        -32700,  # parse error
        -32602,  # invalid params (e.g. instrument not found)
        -32601,  # method not found
        -32600,  # request entity too large: split the frame instead
        -32000,  # missing params
        13009,  # unauthorized
        13019,  # orderbook_closed
        13020,  # not_found
        10030,  # must_be_websocket_request
        11050,  # bad_request
        13778,  # raw_subscriptions_not_available_for_unauthorized
        11052,  # subscribe_error_unsubscribed
    }
)


def classify_error(code: int) -> ErrorClass:
    """ "retry" (back off, repeat), "rate_limited" (the session ends; wait for credits), or
    "fatal" (repeating cannot help). Codes not listed count as fatal: a request is never
    retried forever on an error nobody has looked at."""
    if code in RETRY_CODES:
        return ErrorClass.RETRY
    if code in RATE_LIMITED_CODES:
        return ErrorClass.RATE_LIMITED
    return ErrorClass.FATAL


class DeribitError(Exception):
    """An error reply. `from_info` returns the subclass that matches `classify_error`."""

    kind: ErrorClass = ErrorClass.FATAL

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{code} {message}" + ("" if data is None else f" {data!r}"))
        self.code = code
        self.message = message
        self.data = data

    @staticmethod
    def from_info(info: RpcErrorInfo) -> DeribitError:
        cls = _ERROR_CLASSES[classify_error(info.code)]
        return cls(info.code, info.message, info.data)


class RetryableError(DeribitError):
    kind: ErrorClass = ErrorClass.RETRY


class RateLimitedError(DeribitError):
    kind: ErrorClass = ErrorClass.RATE_LIMITED


class FatalError(DeribitError):
    kind: ErrorClass = ErrorClass.FATAL


_ERROR_CLASSES: dict[ErrorClass, type[DeribitError]] = {
    ErrorClass.RETRY: RetryableError,
    ErrorClass.RATE_LIMITED: RateLimitedError,
    ErrorClass.FATAL: FatalError,
}


# ---- credits ------------------------------------------------------------------------------


class CreditSpec(NamedTuple):
    """A token bucket: each call costs `cost`; at most `pool`; refills `refill_per_s`."""

    cost: int
    pool: int
    refill_per_s: float


DEFAULT_CREDITS = CreditSpec(500, 50_000, 10_000)  # ~20 requests/s, burst 100
SUBSCRIBE_CREDITS = CreditSpec(3_000, 30_000, 10_000)  # ~3.3 calls/s, burst 10
# Deribit's docs gave 1 per 10 s, burst 5 (Jan 2026) and later 1/s, burst 50: budget the stricter.
GET_INSTRUMENTS_CREDITS = CreditSpec(10_000, 50_000, 1_000)

CREDITS: dict[str, CreditSpec] = {
    "default": DEFAULT_CREDITS,
    "public/subscribe": SUBSCRIBE_CREDITS,
    "private/subscribe": SUBSCRIBE_CREDITS,
    "public/get_instruments": GET_INSTRUMENTS_CREDITS,
}


def credit_spec(method: str) -> CreditSpec:
    """The credit bucket `method` draws from."""
    return CREDITS.get(method, DEFAULT_CREDITS)


# ---- subscribe batching -------------------------------------------------------------------

_ID_PLACEHOLDER = 2**53  # as many digits as any id we send


def batch_channels(
    channels: list[str],
    *,
    max_frame_bytes: int = MAX_FRAME_BYTES - SUBSCRIBE_FRAME_MARGIN_BYTES,
    max_per_batch: int = MAX_CHANNELS_PER_SUBSCRIBE,
    method: str = "public/subscribe",
) -> list[list[str]]:
    """Split `channels` into subscribe lists whose encoded request stays within
    `max_frame_bytes` and `max_per_batch`; order is kept. A channel that cannot fit alone
    raises ValueError."""
    if max_per_batch < 1:
        raise ValueError("max_per_batch must be at least 1")
    base = len(encode_request(_ID_PLACEHOLDER, method, {"channels": []}))
    batches: list[list[str]] = []
    current: list[str] = []
    size = base
    for ch in channels:
        item = len(orjson.dumps(ch)) + (1 if current else 0)  # + the comma
        if current and (size + item > max_frame_bytes or len(current) >= max_per_batch):
            batches.append(current)
            current, size = [], base
            item -= 1
        if size + item > max_frame_bytes:
            raise ValueError(f"channel {ch[:80]!r} does not fit in a {max_frame_bytes}-byte frame")
        current.append(ch)
        size += item
    if current:
        batches.append(current)
    return batches
