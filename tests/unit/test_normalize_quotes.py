"""Quotes and option tickers -> QuoteRow / GreeksRow, and markprice.options -> MarkPoint."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from scripts.models import GreeksRow, QuoteRow
from scripts.normalize import quotes, tickers
from scripts.normalize.common import MalformedMessage
from scripts.normalize.quotes import parse_quote, parse_ticker_quote
from scripts.normalize.tickers import MarkPoint, parse_markprice, parse_ticker_greeks

RECV = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def data_of(shared_data: Path, stem: str) -> list[Any]:
    text = (shared_data / f"{stem}.jsonl").read_text()
    out = []
    for ln in text.splitlines():
        msg = orjson.loads(ln)
        out.append(msg["result"] if "result" in msg else msg["params"]["data"])
    return out


def at_ms(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


def test_quote_line_1(shared_data: Path) -> None:
    row = parse_quote(data_of(shared_data, "ws_quote")[0], received_at=RECV)
    assert row == QuoteRow(
        datetime(2019, 2, 20, 10, 30, 24, 149000, tzinfo=UTC),
        "BTC-PERPETUAL",
        3914.97,
        40.0,
        3996.61,
        50.0,
        None,
        None,
        None,
        None,
        None,
        RECV,
    )
    assert row.timestamp.isoformat() == "2019-02-20T10:30:24.149000+00:00"
    assert type(row.best_bid_amount) is float


def test_every_quote(shared_data: Path) -> None:
    rows = [parse_quote(d, received_at=RECV) for d in data_of(shared_data, "ws_quote")]
    assert [r.timestamp for r in rows] == [
        at_ms(ms) for ms in (1550658624149, 1567296000183, 1654012882984, 1765541767174)
    ]
    assert [(r.best_bid_price, r.best_ask_price) for r in rows] == [
        (3914.97, 3996.61),
        (9600.5, 9601.0),
        (32143.0, 32143.5),
        (92288.0, 92288.5),
    ]
    assert [(r.best_bid_amount, r.best_ask_amount) for r in rows] == [
        (40.0, 50.0),
        (162800.0, 49710.0),
        (179960.0, 20.0),
        (133440.0, 99470.0),
    ]
    assert all(
        quotes.unknown_fields("quote", d) == frozenset() for d in data_of(shared_data, "ws_quote")
    )


def test_empty_quote_side_is_none_in_both_parsers() -> None:
    data = {
        "instrument_name": "BTC-PERPETUAL",
        "timestamp": 1,
        "best_bid_price": 0.0,
        "best_bid_amount": 0.0,
        "best_ask_price": None,
        "best_ask_amount": None,
    }
    row = parse_quote(data, received_at=RECV)
    assert row[2:6] == (None, None, None, None)
    trow = parse_ticker_quote({**data, "bid_iv": 0.0, "ask_iv": 500.0}, received_at=RECV)
    assert trow[2:8] == (None, None, None, None, None, None)
    # a zero price with a size is a real quote (spreads trade at and below zero)
    spread = parse_quote(
        {**data, "best_bid_amount": 300000.0, "best_bid_price": -7.0}, received_at=RECV
    )
    assert (spread.best_bid_price, spread.best_bid_amount) == (-7.0, 300000.0)


def test_option_ticker_quote_line_2(shared_data: Path) -> None:
    row = parse_ticker_quote(data_of(shared_data, "ws_ticker_option")[1], received_at=RECV)
    assert row == QuoteRow(
        at_ms(1626993722929),
        "BTC-25MAR22-30000-C",
        0.274,
        8.0,
        0.316,
        8.0,
        71.66,
        86.14,
        81.9,
        0.3037669,
        33420.42,
        RECV,
    )


def test_every_option_ticker_quote(shared_data: Path) -> None:
    datas = data_of(shared_data, "ws_ticker_option")
    assert len(datas) == 54
    for i, d in enumerate(datas[:53]):
        row = parse_ticker_quote(d, received_at=RECV)
        assert row.instrument_name == d["instrument_name"]
        assert row.timestamp == at_ms(d["timestamp"])
        assert row.mark_iv == d["mark_iv"] and row.mark_price == d["mark_price"]
        assert row.underlying_price == d["underlying_price"]
        if d["best_bid_amount"] == 0:
            assert (row.best_bid_price, row.best_bid_amount, row.bid_iv) == (None, None, None), i
        else:
            assert (row.best_bid_price, row.best_bid_amount, row.bid_iv) == (
                d["best_bid_price"],
                d["best_bid_amount"],
                d["bid_iv"],
            )
        if d["best_ask_amount"] == 0:
            assert (row.best_ask_price, row.best_ask_amount, row.ask_iv) == (None, None, None), i
        else:
            assert row.ask_iv == d["ask_iv"]
        assert quotes.unknown_fields("ticker", d) == frozenset()
    # the closed option: empty book, ask_iv 500 is not a quote
    closed = parse_ticker_quote(datas[49], received_at=RECV)
    assert closed.instrument_name == "BTC-8JUN20-8750-P"
    assert (closed.best_ask_price, closed.ask_iv, closed.mark_iv) == (None, None, 70.0)
    # the linear MATIC option
    matic = parse_ticker_quote(datas[52], received_at=RECV)
    assert (matic.mark_iv, matic.mark_price, matic.underlying_price) == (209.64, 0.139, 1.1367)
    # line 54 was trimmed by its author: no timestamp, so no row
    with pytest.raises(MalformedMessage, match="timestamp"):
        parse_ticker_quote(datas[53], received_at=RECV)


def test_eth_option_ticker_greeks(shared_data: Path) -> None:
    row = parse_ticker_greeks(
        data_of(shared_data, "ws_ticker_option")[0], received_at=RECV, currency="ETH"
    )
    assert row == GreeksRow(
        at_ms(1626993723632),
        "ETH-23JUL21-2300-C",
        "ETH",
        0.00009,
        0.0,
        0.00022,
        -0.00146,
        0.0,
        111.4,
        None,  # bid_iv 0 under an empty bid
        227.51,
        0.000001,
        2005.38,
        "ETH-23JUL21",
        2006.72,
        3709.0,
        0.0,
        None,  # best bid price 0 with amount 0: empty
        0.001,
        RECV,
        at_ms(1626993723632),
    )


def test_every_option_ticker_greeks(shared_data: Path) -> None:
    datas = data_of(shared_data, "ws_ticker_option")
    for d in datas[:53]:
        row = parse_ticker_greeks(d, received_at=RECV, currency="BTC")
        g = d["greeks"]
        assert (row.delta, row.gamma, row.vega, row.theta, row.rho) == (
            g["delta"],
            g["gamma"],
            g["vega"],
            g["theta"],
            g["rho"],
        )
        assert row.underlying_index == d["underlying_index"]
        assert row.open_interest == d["open_interest"]
        assert row.interest_rate == d["interest_rate"]
        assert tickers.unknown_fields("ticker.greeks", g) == frozenset()
        assert tickers.unknown_fields("ticker.stats", d["stats"]) == frozenset()
    syn = parse_ticker_greeks(datas[50], received_at=RECV, currency="BTC")
    assert (syn.underlying_index, syn.delta, syn.mark_iv, syn.bid_iv) == (
        "SYN.BTC-5JUN20",
        0.62959,
        63.21,
        58.39,
    )


def test_greeks_from_rest_order_book_and_missing_greeks(shared_data: Path) -> None:
    book = data_of(shared_data, "rest_get_order_book")[2]
    row = parse_ticker_greeks(book, received_at=RECV, currency="ETH")
    assert (row.instrument_name, row.delta, row.vega, row.mark_iv, row.bid_iv, row.ask_iv) == (
        "ETH-24JUN22-1600-P",
        -0.24537,
        1.36169,
        86.54,
        85.74,
        87.07,
    )
    assert (row.best_bid_price, row.best_ask_price, row.underlying_price) == (0.033, 0.034, 1806.5)
    perp = parse_ticker_greeks(
        data_of(shared_data, "rest_ticker")[0], received_at=RECV, currency="BTC"
    )
    assert (perp.delta, perp.mark_iv, perp.underlying_index) == (None, None, None)
    assert (perp.mark_price, perp.best_bid_price, perp.open_interest) == (
        36288.31,
        36289.5,
        502231260.0,
    )


def test_markprice_iv_fraction_becomes_percent(shared_data: Path) -> None:
    points = parse_markprice(data_of(shared_data, "ws_markprice_options")[0], received_at=RECV)
    assert points == [
        MarkPoint("BTC-2JUN21-37000-P", 1622470378005, 0.0333, 90.0),
        MarkPoint("BTC-4JUN21-40500-P", 1622470378005, 0.117, 90.0),
        MarkPoint("BTC-4JUN21-38250-C", 1622470378005, 0.0177, 90.0),
        MarkPoint("BTC-1JUN21-37000-C", 1622470378005, 0.0098, 90.0),
        MarkPoint("BTC-4JUN21-36500-P", 1622470378005, 0.0371, 90.0),
    ]
    odd = parse_markprice(
        [{"instrument_name": "X", "iv": 0.29, "mark_price": 1, "timestamp": 5}], received_at=RECV
    )
    assert odd[0].mark_iv == 29.0 and odd[0].mark_price == 1.0


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"best_bid_price": "3914.97"}, "best_bid_price: expected a number"),
        ({"best_bid_amount": True}, "best_bid_amount: expected a number"),
        ({"best_ask_amount": -1}, "best_ask_amount: negative"),
        ({"best_ask_price": float("nan")}, "best_ask_price: not a finite number"),
        ({"best_ask_price": float("inf")}, "best_ask_price: not a finite number"),
        ({"timestamp": 1.5e12}, "timestamp: expected integer milliseconds"),
        ({"timestamp": -1}, "timestamp: -1 ms is out of range"),
        ({"timestamp": 10**20}, "out of range"),
        ({"instrument_name": None}, "instrument_name: expected a string"),
        ({"instrument_name": ""}, "instrument_name: empty"),
        ({"best_bid_amount": 10**400}, "best_bid_amount: number too large"),
    ],
)
def test_bad_quote_fields_raise(shared_data: Path, change: dict[str, Any], reason: str) -> None:
    data = {**data_of(shared_data, "ws_quote")[0], **change}
    with pytest.raises(MalformedMessage) as info:
        parse_quote(data, received_at=RECV)
    assert reason in info.value.reason


def test_missing_quote_fields_and_non_objects(shared_data: Path) -> None:
    base = data_of(shared_data, "ws_quote")[0]
    for key in base:
        with pytest.raises(MalformedMessage, match=f"missing field '{key}'"):
            parse_quote({k: v for k, v in base.items() if k != key}, received_at=RECV)
    for bad in (None, [], "quote", 5):
        with pytest.raises(MalformedMessage):
            parse_quote(bad, received_at=RECV)
        with pytest.raises(MalformedMessage):
            parse_ticker_quote(bad, received_at=RECV)
        with pytest.raises(MalformedMessage):
            parse_ticker_greeks(bad, received_at=RECV, currency="BTC")
        if bad == []:
            assert parse_markprice(bad, received_at=RECV) == []  # an empty frame is valid
            continue
        with pytest.raises(MalformedMessage):
            parse_markprice(bad, received_at=RECV)


def test_unknown_fields_are_reported(shared_data: Path) -> None:
    d = {**data_of(shared_data, "ws_quote")[0], "new_thing": 1, "other": 2}
    assert quotes.unknown_fields("quote", d) == frozenset({"new_thing", "other"})
    assert parse_quote(d, received_at=RECV).best_bid_price == 3914.97  # tolerated
    with pytest.raises(ValueError, match="unknown message kind"):
        quotes.unknown_fields("nope", d)


def test_markprice_iv_that_overflows_as_percent_is_rejected() -> None:
    with pytest.raises(MalformedMessage, match="iv out of range"):
        parse_markprice(
            [{"instrument_name": "X", "iv": -1e308, "mark_price": 1, "timestamp": 5}],
            received_at=RECV,
        )
