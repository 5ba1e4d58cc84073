"""JSON-RPC envelopes, error classes and subscribe batching, on the recorded frames."""

from __future__ import annotations

import itertools
from pathlib import Path

import orjson
import pytest

from scripts.deribit.protocol import (
    CREDITS,
    MAX_FRAME_BYTES,
    TOO_MANY_REQUESTS,
    DeribitError,
    ErrorClass,
    FatalError,
    Heartbeat,
    MalformedFrame,
    Notification,
    RateLimitedError,
    Response,
    RetryableError,
    batch_channels,
    classify_error,
    credit_spec,
    encode_request,
    parse_frame,
)


def lines(shared_data: Path, name: str) -> list[str]:
    return [ln for ln in (shared_data / name).read_text().splitlines() if ln.strip()]


def test_every_recorded_frame_parses_to_its_kind(shared_data: Path) -> None:
    seen = 0
    for path in sorted(shared_data.glob("*.jsonl")):
        if path.name == "rest_error_bodies_partial.jsonl":  # bare error objects, no envelope
            continue
        for line in lines(shared_data, path.name):
            frame = parse_frame(line)
            raw = orjson.loads(line)
            if path.name == "ws_heartbeat.jsonl":
                assert frame == Heartbeat("test_request")
                assert frame.needs_answer
            elif path.name.startswith("ws_") and path.name != "ws_subscribe_response.jsonl":
                assert isinstance(frame, Notification), path.name
                assert frame.channel == raw["params"]["channel"]
                assert frame.data == raw["params"]["data"]
            else:
                assert isinstance(frame, Response), path.name
                assert frame.id == raw.get("id")
                assert frame.result == raw.get("result")
                assert frame.us_in == raw.get("usIn")
            seen += 1
    assert seen > 190


def test_parse_frame_takes_bytes_and_str_alike(shared_data: Path) -> None:
    line = lines(shared_data, "ws_quote.jsonl")[0]
    assert parse_frame(line.encode()) == parse_frame(line)


def test_subscribe_ack_lists_channels(shared_data: Path) -> None:
    acks = [parse_frame(ln) for ln in lines(shared_data, "ws_subscribe_response.jsonl")]
    assert isinstance(acks[2], Response)
    assert len(acks[2].result) == 30
    assert acks[2].result[0] == "trades.ETH-30JUL21-2800-C.raw"
    assert acks[2].us_in == 1626993723846980 and acks[2].us_out == 1626993723847561
    assert acks[4].result == [] and acks[4].error is None  # a bad channel: empty ack, no error


def test_error_responses_carry_code_message_data(shared_data: Path) -> None:
    bad_request, too_many = (parse_frame(ln) for ln in lines(shared_data, "rpc_error.jsonl"))
    assert isinstance(bad_request, Response) and bad_request.error is not None
    assert bad_request.id == 8163
    assert bad_request.error.code == 11050
    assert bad_request.error.message == "bad_request"
    assert bad_request.us_in == 1535037392434763
    assert classify_error(bad_request.error.code) == "fatal"
    assert isinstance(too_many, Response) and too_many.error is not None
    assert too_many.error.code == TOO_MANY_REQUESTS == 10028
    assert classify_error(too_many.error.code) == ErrorClass.RATE_LIMITED
    err = DeribitError.from_info(too_many.error)
    assert isinstance(err, RateLimitedError) and err.kind == "rate_limited"
    assert err.code == 10028 and err.message == "too_many_requests"


def test_rest_error_bodies_in_an_envelope(shared_data: Path) -> None:
    codes = []
    for body in lines(shared_data, "rest_error_bodies_partial.jsonl"):
        frame = parse_frame(b'{"jsonrpc":"2.0","id":7,"error":' + body.encode() + b"}")
        assert isinstance(frame, Response) and frame.error is not None
        codes.append(frame.error.code)
        assert isinstance(DeribitError.from_info(frame.error), FatalError)
    assert codes == [-32602, -32601, 13009]
    first = parse_frame(
        b'{"id":1,"error":'
        + lines(shared_data, "rest_error_bodies_partial.jsonl")[0].encode()
        + b"}"
    )
    assert isinstance(first, Response) and first.error is not None
    assert first.error.data == {"reason": "instrument not found", "param": "instrument_name"}


@pytest.mark.parametrize("code", [10040, 11051, 13028, 11094, 10066, 10041, 11056])
def test_temporary_codes_are_retried(code: int) -> None:
    assert classify_error(code) == "retry"
    assert classify_error(code).retryable
    assert isinstance(DeribitError(code, "x"), DeribitError)
    assert type(DeribitError.from_info(parse_error(code))) is RetryableError


@pytest.mark.parametrize(
    "code",
    [
        -32700,
        -32602,
        -32601,
        -32600,
        -32000,
        13009,
        13019,
        13020,
        10030,
        11050,
        13778,
        11052,
        99999,
    ],
)
def test_fatal_codes_fail_fast(code: int) -> None:
    assert classify_error(code) == "fatal"
    assert not classify_error(code).retryable
    assert type(DeribitError.from_info(parse_error(code))) is FatalError


def test_rate_limit_is_its_own_class_and_worth_retrying_later() -> None:
    assert classify_error(TOO_MANY_REQUESTS) == "rate_limited"
    assert classify_error(TOO_MANY_REQUESTS).retryable


def parse_error(code: int):  # type: ignore[no-untyped-def]
    frame = parse_frame(
        orjson.dumps({"jsonrpc": "2.0", "id": 1, "error": {"code": code, "message": "m"}})
    )
    assert isinstance(frame, Response) and frame.error is not None
    return frame.error


def test_encode_request_is_json_rpc() -> None:
    raw = encode_request(42, "public/subscribe", {"channels": ["quote.BTC-PERPETUAL"]})
    assert isinstance(raw, bytes)
    assert orjson.loads(raw) == {
        "jsonrpc": "2.0",
        "id": 42,
        "method": "public/subscribe",
        "params": {"channels": ["quote.BTC-PERPETUAL"]},
    }


@pytest.mark.parametrize(
    "raw, reason",
    [
        (b"not json", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b"42", "not a JSON object"),
        (b'{"jsonrpc":"2.0"}', "neither method, result nor error"),
        (b'{"method":"subscription"}', "subscription without params.channel and params.data"),
        (b'{"method":"subscription","params":{"channel":5,"data":{}}}', "subscription without"),
        (b'{"method":"subscription","params":{"channel":"quote.X"}}', "subscription without"),
        (b'{"method":"heartbeat","params":{}}', "heartbeat without params.type"),
        (b'{"method":"heartbeat"}', "heartbeat without params.type"),
        (b'{"method":"private/whatever","params":{}}', "unknown method"),
        (b'{"id":1,"error":"boom"}', "error is not an object"),
        (b'{"id":1,"error":{"code":"10028","message":"x"}}', "error without an integer code"),
        (b'{"id":1,"error":{"code":true,"message":"x"}}', "error without an integer code"),
        (b'{"id":1.5,"result":1}', "response id is not an integer or string"),
        (b'{"id":1,"result":1,"usIn":"now"}', "usIn/usOut are not integers"),
    ],
)
def test_malformed_frames_raise_with_a_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(MalformedFrame) as info:
        parse_frame(raw)
    assert info.value.reason.startswith(reason)


def test_reply_to_invalid_json_has_no_id() -> None:
    frame = parse_frame(
        b'{"jsonrpc":"2.0","error":{"code":11050,"message":"bad_request","data":"invalid json"}}'
    )
    assert isinstance(frame, Response) and frame.id is None and frame.error is not None
    assert frame.error.data == "invalid json"


def _option_channels(n: int) -> list[str]:
    return [f"book.SOL_USDC-25SEP26-{100 + i}d625-C.100ms" for i in range(n)]


def test_batch_channels_fits_frames_and_keeps_order() -> None:
    channels = _option_channels(1200) + [f"ticker.BTC-27DEC24-{i}000-P.100ms" for i in range(800)]
    batches = batch_channels(channels)
    assert [c for b in batches for c in b] == channels
    assert all(1 <= len(b) <= 250 for b in batches)
    for b in batches:
        assert (
            len(encode_request(2**53, "public/subscribe", {"channels": b})) <= MAX_FRAME_BYTES - 512
        )


def test_batch_channels_splits_on_bytes_exactly_at_the_limit() -> None:
    channels = _option_channels(300)
    limit = 4096
    batches = batch_channels(channels, max_frame_bytes=limit, max_per_batch=10_000)
    assert len(batches) > 1
    for b, nxt in itertools.pairwise(batches):
        assert len(encode_request(2**53, "public/subscribe", {"channels": b})) <= limit
        # one more channel would not have fitted: the batches are as full as the limit allows
        assert len(encode_request(2**53, "public/subscribe", {"channels": [*b, nxt[0]]})) > limit


def test_batch_channels_count_limit_and_edge_cases() -> None:
    assert batch_channels([]) == []
    assert [len(b) for b in batch_channels(_option_channels(7), max_per_batch=3)] == [3, 3, 1]
    with pytest.raises(ValueError, match="does not fit"):
        batch_channels(["x" * 40_000])


def test_credit_specs_follow_the_published_numbers() -> None:
    assert credit_spec("public/get_order_book") == CREDITS["default"]
    assert CREDITS["default"] == (500, 50_000, 10_000)
    assert credit_spec("public/subscribe") == (3_000, 30_000, 10_000)
    gi = credit_spec("public/get_instruments")
    assert gi.pool / gi.cost == 5  # burst 5
    assert gi.cost / gi.refill_per_s == 10  # one per 10 s
