"""get_instruments elements -> InstrumentRow; instrument.state -> InstrumentState."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from scripts.deribit.channels import parse_instrument_name
from scripts.models import InstrumentRow
from scripts.normalize import instruments
from scripts.normalize.common import MalformedMessage
from scripts.normalize.instruments import InstrumentState, parse_instrument, parse_instrument_state

SEEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def results(shared_data: Path) -> list[list[dict[str, Any]]]:
    text = (shared_data / "rest_get_instruments.jsonl").read_text()
    return [orjson.loads(ln)["result"] for ln in text.splitlines()]


def at_ms(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


def test_docs_future(shared_data: Path) -> None:
    row = parse_instrument(results(shared_data)[0][0], currency="BTC", seen_at=SEEN)
    assert row == InstrumentRow(
        "BTC-29SEP23",
        "BTC",
        "future",
        None,
        None,
        at_ms(1695974400000),
        at_ms(1664524802000),
        10.0,
        2.5,
        10.0,
        "BTC",
        "BTC",
        "USD",
        "USD",
        "month",
        "reversed",
        "btc_usd",
        138583,
        True,
        SEEN,
    )
    assert row.expiration_timestamp == datetime(2023, 9, 29, 8, tzinfo=UTC)


def test_all_five_instrument_lists(shared_data: Path) -> None:
    lists = results(shared_data)
    assert [len(r) for r in lists] == [2, 2, 398, 16, 6]
    rows = [[parse_instrument(i, currency="X", seen_at=SEEN) for i in r] for r in lists]
    # line 2: the deprecated future_type stands in for instrument_type
    assert rows[1][0].instrument_type == "reversed"
    # line 3: BTC options and futures of 2021, no instrument_id or price_index yet
    opts = [r for r in rows[2] if r.kind == "option"]
    assert len(opts) == 390
    put = next(r for r in rows[2] if r.instrument_name == "BTC-24SEP21-40000-P")
    assert (
        put.option_type,
        put.strike,
        put.contract_size,
        put.tick_size,
        put.min_trade_amount,
    ) == (
        "put",
        40000.0,
        1.0,
        0.0005,
        0.1,
    )
    assert (put.instrument_id, put.price_index, put.instrument_type) == (None, None, None)
    assert put.expiration_timestamp == datetime(2021, 9, 24, 8, tzinfo=UTC)
    assert put.creation_timestamp == at_ms(1606129458000)
    # line 4: USDC linear perpetuals, expiring in the year 3000
    uni = next(r for r in rows[3] if r.instrument_name == "UNI_USDC-PERPETUAL")
    assert (
        uni.instrument_type,
        uni.settlement_currency,
        uni.base_currency,
        uni.settlement_period,
    ) == (
        "linear",
        "USDC",
        "UNI",
        "perpetual",
    )
    assert uni.expiration_timestamp == datetime(3000, 1, 1, 8, tzinfo=UTC)  # 32503708800000 ms
    assert uni.instrument_id == 215753
    # line 5: option combos
    strg = rows[4][0]
    assert (strg.instrument_name, strg.kind, strg.instrument_id, strg.is_active) == (
        "BTC-STRG-19MAY26-74000_79000",
        "option_combo",
        584608,
        True,
    )
    for inst_list, row_list in zip(lists, rows, strict=True):
        for inst, row in zip(inst_list, row_list, strict=True):
            assert row.instrument_name == inst["instrument_name"]
            assert row.expiration_timestamp == at_ms(inst["expiration_timestamp"])
            assert row.is_active is inst["is_active"]
            assert instruments.unknown_fields("instrument", inst) == frozenset()
            name = parse_instrument_name(row.instrument_name)
            if name.kind == "option":
                assert (name.strike, name.option_type) == (row.strike, row.option_type)


def test_instrument_state(shared_data: Path) -> None:
    line = (shared_data / "ws_instrument_state.jsonl").read_text().splitlines()[0]
    data = orjson.loads(line)["params"]["data"]
    assert parse_instrument_state(data) == InstrumentState("BTC-22MAR19", "created", 1553080940000)
    assert instruments.unknown_fields("instrument_state", data) == frozenset()
    with pytest.raises(MalformedMessage, match="missing field 'state'"):
        parse_instrument_state({"instrument_name": "X", "timestamp": 1})
    with pytest.raises(MalformedMessage, match="timestamp"):
        parse_instrument_state({"instrument_name": "X", "state": "open", "timestamp": "1"})


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"option_type": "straddle"}, "option_type is not call/put"),
        ({"is_active": "yes"}, "is_active is not a boolean"),
        ({"strike": "40000"}, "strike: expected a number"),
        ({"contract_size": -1}, "contract_size: negative"),
        ({"expiration_timestamp": 1e12}, "expiration_timestamp: expected integer"),
        ({"instrument_id": True}, "instrument_id: expected an integer"),
        ({"kind": 3}, "kind: expected a string"),
    ],
)
def test_bad_instruments(shared_data: Path, change: dict[str, Any], reason: str) -> None:
    inst = {**results(shared_data)[2][0], **change}
    with pytest.raises(MalformedMessage) as info:
        parse_instrument(inst, currency="BTC", seen_at=SEEN)
    assert reason in info.value.reason


def test_new_fields_are_reported_not_fatal(shared_data: Path) -> None:
    inst = {**results(shared_data)[0][0], "underlying_type": "crypto", "brand_new": 1}
    assert instruments.unknown_fields("instrument", inst) == frozenset({"brand_new"})
    assert parse_instrument(inst, currency="BTC", seen_at=SEEN).instrument_name == "BTC-29SEP23"
