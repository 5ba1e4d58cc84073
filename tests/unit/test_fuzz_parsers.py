"""Mutated real messages through `parse_frame` and the parsers: only MalformedFrame or
MalformedMessage may escape, and whatever parses is a clean row (finite floats, aware
datetimes, no NUL in text, ints that fit int8).

Mutations: drop a field, swap a value for one of another type, NaN/inf, huge numbers, at any
depth; and byte-level damage: truncation, flipped, inserted and deleted bytes. Example counts
are bounded and the Hypothesis database is off, so this runs in seconds and writes nothing.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scripts.deribit.protocol import MalformedFrame, Notification, Response, parse_frame
from scripts.normalize import bars, books, funding, indices, instruments, quotes, tickers, trades
from scripts.normalize.common import MalformedMessage

RECV = datetime(2026, 1, 2, tzinfo=UTC)
FUZZ = settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _rows_quote(d: Any) -> list[Any]:
    return [quotes.parse_quote(d, received_at=RECV), quotes.unknown_fields("quote", d)]


def _rows_ticker(d: Any) -> list[Any]:
    return [
        quotes.parse_ticker_quote(d, received_at=RECV),
        tickers.parse_ticker_greeks(d, received_at=RECV, currency="BTC"),
        tickers.unknown_fields("ticker", d),
    ]


def _rows_trades(d: Any) -> list[Any]:
    rows, errors = trades.parse_trades_tolerant(d, received_at=RECV)
    assert all(isinstance(e, MalformedMessage) for e in errors)
    return [*rows, *trades.parse_trades(d, received_at=RECV)]


def _rows_rest_trades(result: Any) -> list[Any]:
    return _rows_trades(result.get("trades") if type(result) is dict else result)


def _rows_order_book(d: Any) -> list[Any]:
    return [books.parse_order_book(d, received_at=RECV, depth=5)]


def _rows_markprice(d: Any) -> list[Any]:
    return list(tickers.parse_markprice(d, received_at=RECV))


def _rows_instruments(result: Any) -> list[Any]:
    if type(result) is not list:
        raise MalformedMessage("instruments: not a list")  # what a collector would do
    return [instruments.parse_instrument(i, currency="BTC", seen_at=RECV) for i in result[:12]]


def _rows_state(d: Any) -> list[Any]:
    return [instruments.parse_instrument_state(d)]


_BAR_KW: dict[str, Any] = {
    "instrument_name": "X",
    "currency": "BTC",
    "resolution": "1",
    "received_at": RECV,
}


def _rows_tradingview(r: Any) -> list[Any]:
    return bars.parse_tradingview(r, **_BAR_KW)


def _rows_funding(r: Any) -> list[Any]:
    return funding.parse_funding_history(r, instrument_name="X", currency="BTC", received_at=RECV)


def _rows_price_index(d: Any) -> list[Any]:
    return [indices.parse_price_index(d, currency="BTC", received_at=RECV)]


def _rows_dvol_history(r: Any) -> list[Any]:
    return indices.parse_volatility_index_data(
        r, index_name="btc_usd", currency="BTC", received_at=RECV
    )


# file stem -> the parser a collector would call on its data (notifications) or result (REST)
ROUTES: dict[str, Callable[[Any], list[Any]]] = {
    "ws_quote": _rows_quote,
    "ws_ticker_option": _rows_ticker,
    "ws_trades": _rows_trades,
    "ws_trades_by_kind": _rows_trades,
    "rest_get_last_trades_by_instrument": _rows_rest_trades,
    "rest_get_last_trades_by_currency_and_time": _rows_rest_trades,
    "ws_book_grouped": _rows_order_book,
    "rest_get_order_book": _rows_order_book,
    "ws_markprice_options": _rows_markprice,
    "rest_get_instruments": _rows_instruments,
    "ws_instrument_state": _rows_state,
    "rest_get_tradingview_chart_data": _rows_tradingview,
    "rest_get_funding_rate_history": _rows_funding,
    "ws_price_index": _rows_price_index,
    "rest_get_volatility_index_data": _rows_dvol_history,
}

REPLACEMENTS: list[Any] = [
    None,
    True,
    False,
    "",
    "x",
    "1.5",
    "a\x00b",
    0,
    -1,
    1.5,
    -1e-300,
    2**63,
    -(2**63) - 1,
    10**30,
    10**400,
    1e308,
    -1e308,
    float("nan"),
    float("inf"),
    float("-inf"),
    [],
    {},
    [1, 2],
    ["new", 1.0],
    ["new", 1.0, 2.0, 3.0],
    {"a": 1},
]


def _messages(shared_data: Path) -> list[tuple[str, str]]:
    out = []
    for stem in ROUTES:
        for line in (shared_data / f"{stem}.jsonl").read_text().splitlines():
            if stem == "rest_get_instruments" and len(line) > 20_000:
                continue  # the 398-instrument list: the small lists cover the same fields
            out.append((stem, line))
    return out


def _check_clean(value: Any) -> None:
    """A parsed row holds only values the writer can store."""
    if isinstance(value, float):
        assert math.isfinite(value)
    elif isinstance(value, bool) or value is None:
        pass
    elif isinstance(value, int):
        assert -(2**63) <= value < 2**63
    elif isinstance(value, str):
        assert "\x00" not in value
    elif isinstance(value, datetime):
        assert value.tzinfo is not None
    elif isinstance(value, tuple | list | frozenset):
        for v in value:
            _check_clean(v)
    else:
        raise AssertionError(f"unexpected value in a row: {value!r}")


def _route(stem: str, frame: Any) -> None:
    if isinstance(frame, Notification):
        payload = frame.data
    elif isinstance(frame, Response) and frame.error is None:
        payload = frame.result
    else:
        return
    try:
        rows = ROUTES[stem](payload)
    except MalformedMessage:
        return
    for row in rows:
        _check_clean(row)


def _frame_of(msg: Any) -> Any:
    """The frame `parse_frame` would give for `msg`, built without JSON (so NaN and huge ints
    reach the parsers, which orjson would refuse at the frame layer)."""
    try:
        if "params" in msg:
            return Notification(msg["params"]["channel"], msg["params"]["data"])
        return Response(msg.get("id"), msg["result"], None, None, None)
    except (KeyError, TypeError, AttributeError):
        return None


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, (*prefix, i))


def _mutate(msg: Any, path: tuple[Any, ...], op: str, value: Any) -> Any:
    if not path:
        return value
    parent = msg
    for key in path[:-1]:
        parent = parent[key]
    if op == "drop":
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return msg


@pytest.fixture(scope="module")
def corpus(shared_data: Path) -> list[tuple[str, str]]:
    return _messages(shared_data)


def test_every_route_parses_its_recorded_messages(corpus: list[tuple[str, str]]) -> None:
    """The unmutated corpus goes through cleanly (line 54 of the option tickers, trimmed by its
    author, is the one expected rejection)."""
    rejected = []
    for stem, line in corpus:
        frame = parse_frame(line)
        payload = frame.data if isinstance(frame, Notification) else frame.result  # type: ignore[union-attr]
        try:
            for row in ROUTES[stem](payload):
                _check_clean(row)
        except MalformedMessage:
            rejected.append(stem)
    assert rejected == ["ws_ticker_option"]


@FUZZ
@given(data=st.data())
def test_structural_mutations(corpus: list[tuple[str, str]], data: st.DataObject) -> None:
    stem, line = data.draw(st.sampled_from(corpus))
    msg = orjson.loads(line)
    for _ in range(data.draw(st.integers(1, 3))):
        paths = list(_paths(msg))
        path = data.draw(st.sampled_from(paths[1:] if len(paths) > 1 else paths))
        op = data.draw(st.sampled_from(["drop", "replace", "replace"]))
        value = copy.deepcopy(data.draw(st.sampled_from(REPLACEMENTS)))  # never share
        msg = _mutate(msg, path, op, value)
        if not isinstance(msg, dict | list):
            break
    # 1) as text through the frame layer (json writes NaN/Infinity, which orjson rejects)
    with contextlib.suppress(MalformedFrame):
        _route(stem, parse_frame(json.dumps(msg)))
    # 2) straight to the parser, so NaN, inf and huge ints reach it
    if isinstance(msg, dict):
        _route(stem, _frame_of(msg))


@FUZZ
@given(data=st.data())
def test_byte_damage(corpus: list[tuple[str, str]], data: st.DataObject) -> None:
    stem, line = data.draw(st.sampled_from(corpus))
    raw = bytearray(line.encode())
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, max(len(raw) - 1, 0)))
        op = data.draw(st.sampled_from(["truncate", "flip", "insert", "delete"]))
        if op == "truncate":
            del raw[i:]
        elif op == "flip" and raw:
            raw[i] = data.draw(st.integers(0, 255))
        elif op == "insert":
            raw[i:i] = data.draw(st.binary(min_size=1, max_size=8))
        elif raw:
            del raw[i : i + data.draw(st.integers(1, 16))]
    try:
        frame = parse_frame(bytes(raw))
    except MalformedFrame:
        return
    _route(stem, frame)


@FUZZ
@given(blob=st.binary(max_size=64) | st.text(max_size=64))
def test_random_input_never_crashes_parse_frame(blob: bytes | str) -> None:
    with contextlib.suppress(MalformedFrame):
        parse_frame(blob)
