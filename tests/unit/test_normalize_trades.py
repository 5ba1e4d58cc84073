"""Trades (WS channels and REST results) -> TradeRow, including combo legs and bad elements."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from scripts.models import TradeRow
from scripts.normalize import trades
from scripts.normalize.common import MalformedMessage
from scripts.normalize.trades import parse_trades, parse_trades_tolerant

RECV = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def trades_of(shared_data: Path, stem: str) -> list[list[Any]]:
    out = []
    for ln in (shared_data / f"{stem}.jsonl").read_text().splitlines():
        msg = orjson.loads(ln)
        out.append(msg["result"]["trades"] if "result" in msg else msg["params"]["data"])
    return out


def at_ms(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


def test_option_trade_by_kind(shared_data: Path) -> None:
    (rows,) = (
        parse_trades(d, received_at=RECV) for d in trades_of(shared_data, "ws_trades_by_kind")
    )
    assert rows == [
        TradeRow(
            at_ms(1590484589306),
            "BTC-27MAY20-9000-C",
            "48079289",
            2,
            0.0075,
            3.0,
            None,
            "sell",
            2,
            47.58,  # trade iv is already percent
            8956.17,
            0.01062686,
            None,
            None,
            None,
            None,
            None,
            None,
            RECV,
        )
    ]


def test_every_ws_trade(shared_data: Path) -> None:
    batches = [parse_trades(d, received_at=RECV) for d in trades_of(shared_data, "ws_trades")]
    assert [len(b) for b in batches] == [1, 2, 1, 1, 2, 2]
    first = batches[0][0]
    assert (first.trade_id, first.trade_seq, first.price, first.amount, first.direction) == (
        "48079269",
        30289442,
        8950.0,
        10.0,
        "sell",
    )
    assert (first.timestamp, first.mark_price, first.index_price, first.tick_direction) == (
        at_ms(1590484512188),
        8948.9,
        8955.88,
        2,
    )
    assert batches[1][1].trade_id == "39355899" and batches[1][1].tick_direction == 3
    assert batches[1][0].mark_price is None  # the 2019 trades carry no mark price
    assert batches[2][0].liquidation == "M"
    assert batches[3][0].instrument_name == "BTC-26MAR21" and batches[3][0].amount == 6000.0
    assert batches[4][0].contracts == 1.0 and batches[4][0].combo_trade_id == "43"
    assert batches[4][1].combo_trade_id is None and batches[4][1].contracts == 75.0
    for d in trades_of(shared_data, "ws_trades"):
        assert all(trades.unknown_fields("trade", t) == frozenset() for t in d)


def test_combo_trade_becomes_its_legs(shared_data: Path) -> None:
    legs = parse_trades(trades_of(shared_data, "ws_trades")[5], received_at=RECV)
    assert [
        (r.instrument_name, r.trade_id, r.trade_seq, r.iv, r.direction, r.price) for r in legs
    ] == [
        ("BTC-19MAY26-75000-C", "244365195", 8, 41.01, "buy", 0.0174),
        ("BTC-19MAY26-70000-C", "244365194", 20, 83.39, "sell", 0.0813),
    ]
    assert {(r.combo_id, r.combo_trade_id) for r in legs} == {
        ("BTC-CS-19MAY26-70000_75000", "244365193")
    }
    assert legs[0].timestamp == at_ms(1779118041757)


def test_legs_without_combo_ids_take_the_parents() -> None:
    parent = {
        "timestamp": 1,
        "price": 0.06,
        "amount": 0.1,
        "direction": "sell",
        "instrument_name": "BTC-CS-19MAY26-70000_75000",
        "trade_id": "900",
        "legs": [
            {
                "timestamp": 1,
                "price": 0.01,
                "amount": 0.1,
                "direction": "buy",
                "instrument_name": "BTC-19MAY26-75000-C",
                "trade_id": "901",
            }
        ],
    }
    (leg,) = parse_trades([parent], received_at=RECV)
    assert (leg.trade_id, leg.combo_id, leg.combo_trade_id) == (
        "901",
        "BTC-CS-19MAY26-70000_75000",
        "900",
    )


def test_rest_trades(shared_data: Path) -> None:
    (by_currency,) = (
        parse_trades(d, received_at=RECV)
        for d in trades_of(shared_data, "rest_get_last_trades_by_currency")
    )
    assert [(r.trade_id, r.trade_seq, r.price, r.amount, r.mark_price) for r in by_currency] == [
        ("277976", 36798, 8767.08, 100.0, 8829.7)
    ]
    (by_time,) = (
        parse_trades(d, received_at=RECV)
        for d in trades_of(shared_data, "rest_get_last_trades_by_currency_and_time")
    )
    assert (by_time[0].instrument_name, by_time[0].iv, by_time[0].trade_id) == (
        "BTC-25SEP20-6000-P",
        74.74,
        "48077291",
    )
    (inst_time,) = (
        parse_trades(d, received_at=RECV)
        for d in trades_of(shared_data, "rest_get_last_trades_by_instrument_and_time")
    )
    assert (inst_time[0].trade_id, inst_time[0].direction) == ("ETH-2696055", "buy")
    by_inst = [
        parse_trades(d, received_at=RECV)
        for d in trades_of(shared_data, "rest_get_last_trades_by_instrument")
    ]
    assert [len(b) for b in by_inst] == [1, 10, 2, 7]
    eth = by_inst[1]
    assert [r.trade_seq for r in eth] == list(range(203024587, 203024597))
    assert (
        eth[0].trade_id == "ETH-284830839"
        and eth[-1].amount == 106.0
        and eth[-1].direction == "buy"
    )
    assert [r.instrument_name for r in by_inst[2]] == ["BTC-19MAY26-75000-C", "BTC-19MAY26-70000-C"]
    perp = by_inst[3]
    assert [r.trade_seq for r in perp] == list(range(133407041, 133407048))
    assert all(r.combo_id == "BTC-FS-25DEC26_PERP" for r in perp)
    assert perp[0].combo_trade_id == "244343034" and perp[-1].combo_trade_id == "244343053"


def test_numeric_ids_become_text() -> None:
    (row,) = parse_trades(
        [
            {
                "timestamp": 5,
                "price": 1,
                "amount": 1,
                "direction": "buy",
                "instrument_name": "X",
                "trade_id": 77,
                "combo_trade_id": 244343053,
                "block_trade_id": 12,
            }
        ],
        received_at=RECV,
    )
    assert (row.trade_id, row.combo_trade_id, row.block_trade_id) == ("77", "244343053", "12")


GOOD = {
    "timestamp": 5,
    "price": 1.5,
    "amount": 2,
    "direction": "buy",
    "instrument_name": "BTC-PERPETUAL",
    "trade_id": "1",
    "trade_seq": 1,
}


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"price": "1.5"}, "price: expected a number"),
        ({"amount": -2}, "amount: negative"),
        ({"amount": None}, "amount: expected a number"),
        ({"direction": "up"}, "direction is not buy/sell"),
        ({"direction": ["buy"]}, "direction is not buy/sell"),
        ({"trade_seq": 1.0}, "trade_seq: expected an integer"),
        ({"trade_seq": 2**63}, "trade_seq: integer out of range"),
        ({"tick_direction": 40000}, "tick_direction: integer out of range"),
        ({"iv": float("nan")}, "iv: not a finite number"),
        ({"trade_id": None}, "trade_id: expected a string"),
        ({"trade_id": "a\x00b"}, "trade_id: empty or holds NUL"),
        ({"legs": []}, "trade.legs: empty"),
        ({"legs": {"a": 1}}, "trade.legs: expected an array"),
    ],
)
def test_bad_trade_raises_with_its_index(change: dict[str, Any], reason: str) -> None:
    with pytest.raises(MalformedMessage) as info:
        parse_trades([GOOD, {**GOOD, **change}], received_at=RECV)
    assert info.value.reason.startswith("trades[1]: ")
    assert reason in info.value.reason


def test_missing_required_trade_fields() -> None:
    for key in ("timestamp", "price", "amount", "direction", "instrument_name", "trade_id"):
        with pytest.raises(MalformedMessage, match=f"trades\\[0\\]: trade: missing field '{key}'"):
            parse_trades([{k: v for k, v in GOOD.items() if k != key}], received_at=RECV)
    (row,) = parse_trades([{k: v for k, v in GOOD.items() if k != "trade_seq"}], received_at=RECV)
    assert row.trade_seq is None


def test_tolerant_parse_keeps_the_good_trades(shared_data: Path) -> None:
    batch = trades_of(shared_data, "rest_get_last_trades_by_instrument")[1]
    broken = [*batch[:3], {**batch[3], "price": None}, "junk", *batch[5:]]
    rows, errors = parse_trades_tolerant(broken, received_at=RECV)
    assert [r.trade_seq for r in rows] == [
        203024587,
        203024588,
        203024589,
        *range(203024592, 203024597),
    ]
    assert [e.reason for e in errors] == [
        "trades[3]: price: expected a number, got NoneType",
        "trades[4]: trade: expected an object, got str",
    ]
    with pytest.raises(MalformedMessage, match="expected an array"):
        parse_trades_tolerant({"trades": batch}, received_at=RECV)
    assert parse_trades([], received_at=RECV) == []
