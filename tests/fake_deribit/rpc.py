"""JSON-RPC framing as Deribit does it (shared/docs/deribit-protocol.md §2): envelopes, errors.

Shared by the WebSocket sessions and the HTTP handlers.
"""

from __future__ import annotations

from typing import Any

import orjson

from tests.fake_deribit.errors import RpcError

SERVER_VERSION = "1.2.26"

# Methods that exist on WebSocket only (§2.1); over HTTP they answer 10030.
WS_ONLY_METHODS = frozenset(
    {
        "public/hello",
        "public/set_heartbeat",
        "public/disable_heartbeat",
        "public/subscribe",
        "public/unsubscribe",
        "public/unsubscribe_all",
        "private/subscribe",
        "private/unsubscribe",
        "private/unsubscribe_all",
    }
)

_NO_ID = object()


def too_many_requests() -> RpcError:
    return RpcError(10028, "too_many_requests", None)


def bad_request(data: Any = "invalid json") -> RpcError:
    return RpcError(11050, "bad_request", data)


def entity_too_large() -> RpcError:
    return RpcError(-32600, "request entity too large", None)


def method_not_found() -> RpcError:
    return RpcError(-32601, "Method not found", None)


def invalid_params(reason: str, param: str | None = None) -> RpcError:
    data: dict[str, Any] = {"reason": reason}
    if param is not None:
        data["param"] = param
    return RpcError(-32602, "Invalid params", data)


def must_be_websocket() -> RpcError:
    return RpcError(10030, "must_be_websocket_request", None)


def raw_unauthorized() -> RpcError:
    return RpcError(13778, "raw_subscriptions_not_available_for_unauthorized", None)


def unauthorized() -> RpcError:
    return RpcError(13009, "unauthorized", {"reason": "invalid_token"})


def internal_error(message: str) -> RpcError:
    return RpcError(11094, "internal_server_error", {"reason": message})


def error_object(err: RpcError) -> dict[str, Any]:
    obj: dict[str, Any] = {"code": err.code, "message": err.message}
    if err.code == 10028 or err.data is not None:
        obj["data"] = err.data  # Deribit sends `"data":null` with 10028
    return obj


def response(
    req_id: Any,
    *,
    result: Any = None,
    error: RpcError | None = None,
    us_in: int,
    us_out: int,
) -> bytes:
    """A JSON-RPC response frame; no `id` key when the request had none (`req_id` _NO_ID)."""
    env: dict[str, Any] = {"jsonrpc": "2.0"}
    if req_id is not _NO_ID:
        env["id"] = req_id
    if error is not None:
        env["error"] = error_object(error)
    else:
        env["result"] = result
    env["usIn"] = us_in
    env["usOut"] = us_out
    env["usDiff"] = us_out - us_in
    env["testnet"] = False
    return orjson.dumps(env)


def request_id(msg: dict[str, Any]) -> Any:
    return msg.get("id", _NO_ID)


NO_ID = _NO_ID


def notification(channel: str, data: Any) -> bytes:
    return orjson.dumps(
        {"jsonrpc": "2.0", "method": "subscription", "params": {"channel": channel, "data": data}}
    )


TEST_REQUEST = orjson.dumps(
    {"jsonrpc": "2.0", "method": "heartbeat", "params": {"type": "test_request"}}
)
