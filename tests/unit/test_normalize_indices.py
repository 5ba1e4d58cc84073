"""Price index and DVOL -> IndexPriceRow."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from scripts.models import IndexPriceRow
from scripts.normalize import indices
from scripts.normalize.common import MalformedMessage
from scripts.normalize.indices import parse_price_index, parse_volatility_index_data

RECV = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def first(shared_data: Path, stem: str) -> dict:
    return orjson.loads((shared_data / f"{stem}.jsonl").read_text().splitlines()[0])


def test_price_index(shared_data: Path) -> None:
    data = first(shared_data, "ws_price_index")["params"]["data"]
    row = parse_price_index(data, currency="BTC", received_at=RECV)
    assert row == IndexPriceRow(
        EPOCH + timedelta(milliseconds=1535098298227), "btc_usd", "BTC", "price", 6521.17, RECV
    )
    assert indices.unknown_fields("price_index", data) == frozenset()


def test_volatility_index_data_uses_close(shared_data: Path) -> None:
    result = first(shared_data, "rest_get_volatility_index_data")["result"]
    rows = parse_volatility_index_data(
        result, index_name="btc_usd", currency="BTC", received_at=RECV
    )
    assert [(r.timestamp, r.value) for r in rows] == [
        (datetime(2020, 8, 21, 14, 15, tzinfo=UTC), 0.212860821),
        (datetime(2020, 8, 21, 14, 16, tzinfo=UTC), 0.212987527),
        (datetime(2020, 8, 21, 14, 17, tzinfo=UTC), 0.212992597),
    ]
    assert {(r.index_name, r.kind, r.currency) for r in rows} == {("btc_usd", "dvol", "BTC")}
    assert indices.unknown_fields("volatility_index_data", result) == frozenset()


def test_bad_index_messages() -> None:
    with pytest.raises(MalformedMessage, match="price: expected a number"):
        parse_price_index(
            {"index_name": "btc_usd", "price": None, "timestamp": 1},
            currency="BTC",
            received_at=RECV,
        )
    with pytest.raises(MalformedMessage, match="not \\[ts, open, high, low, close\\]"):
        parse_volatility_index_data(
            {"data": [[1, 2, 3]]}, index_name="btc_usd", currency="BTC", received_at=RECV
        )
    with pytest.raises(MalformedMessage, match="close: not a finite number"):
        parse_volatility_index_data(
            {"data": [[1, 2, 3, 4, float("nan")]]},
            index_name="btc_usd",
            currency="BTC",
            received_at=RECV,
        )
