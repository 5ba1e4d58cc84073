"""Deribit's JSON-RPC errors, as the fake exchange raises them.

Codes and messages follow shared/docs/deribit-protocol.md §4.3; `data` is whatever Deribit puts
there (`{"reason", "param"}` for -32602, the string "invalid json" for 11050, null for 10028).
"""

from __future__ import annotations

from typing import Any

TOO_MANY_REQUESTS = 10028
MUST_BE_WEBSOCKET_REQUEST = 10030
RETRY = 10040
TOO_MANY_CONCURRENT_REQUESTS = 10066
BAD_REQUEST = 11050
SYSTEM_MAINTENANCE = 11051
SUBSCRIBE_ERROR_UNSUBSCRIBED = 11052
UNAUTHENTICATED_PUBLIC_REQUESTS_DISABLED = 11056
INTERNAL_SERVER_ERROR = 11094
UNAUTHORIZED = 13009
ORDERBOOK_CLOSED = 13019
NOT_FOUND = 13020
TEMPORARILY_UNAVAILABLE = 13028
RAW_SUBSCRIPTIONS_NOT_AVAILABLE = 13778
MISSING_PARAMS = -32000
REQUEST_ENTITY_TOO_LARGE = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
PARSE_ERROR = -32700

MESSAGES: dict[int, str] = {
    TOO_MANY_REQUESTS: "too_many_requests",
    MUST_BE_WEBSOCKET_REQUEST: "must_be_websocket_request",
    RETRY: "retry",
    TOO_MANY_CONCURRENT_REQUESTS: "too_many_concurrent_requests",
    BAD_REQUEST: "bad_request",
    SYSTEM_MAINTENANCE: "system_maintenance",
    SUBSCRIBE_ERROR_UNSUBSCRIBED: "subscribe_error_unsubscribed",
    UNAUTHENTICATED_PUBLIC_REQUESTS_DISABLED: (
        "unauthenticated_public_requests_temporarily_disabled"
    ),
    INTERNAL_SERVER_ERROR: "internal_server_error",
    UNAUTHORIZED: "unauthorized",
    ORDERBOOK_CLOSED: "orderbook_closed",
    NOT_FOUND: "not_found",
    TEMPORARILY_UNAVAILABLE: "temporarily_unavailable",
    RAW_SUBSCRIPTIONS_NOT_AVAILABLE: "raw_subscriptions_not_available_for_unauthorized",
    MISSING_PARAMS: "Missing params",
    REQUEST_ENTITY_TOO_LARGE: "request entity too large",
    METHOD_NOT_FOUND: "Method not found",
    INVALID_PARAMS: "Invalid params",
    PARSE_ERROR: "Parse error",
}


class RpcError(Exception):
    """A JSON-RPC error object `{code, message, data?}` to send back instead of a result."""

    def __init__(self, code: int, message: str | None = None, data: Any = None) -> None:
        self.code = code
        self.message = message if message is not None else MESSAGES.get(code, "error")
        self.data = data
        super().__init__(f"{self.code} {self.message} {self.data!r}")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None or self.code == TOO_MANY_REQUESTS:
            out["data"] = self.data
        return out


def invalid_params(reason: str, param: str | None = None) -> RpcError:
    """-32602 with Deribit's `data: {reason, param}`."""
    data: dict[str, Any] = {"reason": reason}
    if param is not None:
        data["param"] = param
    return RpcError(INVALID_PARAMS, None, data)


def instrument_not_found() -> RpcError:
    return invalid_params("instrument not found", "instrument_name")


def method_not_found() -> RpcError:
    return RpcError(METHOD_NOT_FOUND)
