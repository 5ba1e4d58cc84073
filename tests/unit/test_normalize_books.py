"""Order books: REST and grouped snapshots."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from scripts.models import BookSnapshotRow
from scripts.normalize import books
from scripts.normalize.books import parse_order_book
from scripts.normalize.common import MalformedMessage

RECV = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def data_of(shared_data: Path, stem: str) -> list[Any]:
    out = []
    for ln in (shared_data / f"{stem}.jsonl").read_text().splitlines():
        msg = orjson.loads(ln)
        out.append(msg["result"] if "result" in msg else msg["params"]["data"])
    return out


def at_ms(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


def test_rest_order_book_option(shared_data: Path) -> None:
    row = parse_order_book(
        data_of(shared_data, "rest_get_order_book")[2], received_at=RECV, depth=2
    )
    assert row == BookSnapshotRow(
        at_ms(1654247489923),
        "ETH-24JUN22-1600-P",
        24460060432,
        [0.033, 0.0325],
        [226.0, 797.0],
        [0.034, 0.0345],
        [595.0, 779.0],
        0.0336,
        86.54,
        85.74,
        87.07,
        1806.5,
        15009.0,
        RECV,
    )


def test_every_rest_order_book(shared_data: Path) -> None:
    results = data_of(shared_data, "rest_get_order_book")
    rows = [parse_order_book(r, received_at=RECV, depth=10) for r in results]
    assert rows[0].ask_prices == [] and rows[0].bid_prices == [3955.75, 3940.75, 3423.0]
    assert rows[0].mark_iv is None and rows[0].open_interest == 45.27600333464605
    assert rows[1].instrument_name == "BTC-30SEP22" and rows[1].ask_amounts == [
        3000.0,
        29470.0,
        1380.0,
    ]
    assert (
        len(rows[3].bid_prices) == 10
        and rows[3].bid_prices[0] == 87002.5
        and rows[3].ask_prices[-1] == 87021.0
    )
    assert rows[3].change_id == 133112427566
    full = parse_order_book(results[3], received_at=RECV, depth=1000)
    assert len(full.bid_prices) == len(full.ask_prices) == 20
    for r in results:
        assert books.unknown_fields("order_book", r) == frozenset()


def test_grouped_book_notifications(shared_data: Path) -> None:
    rows = [
        parse_order_book(d, received_at=RECV, depth=20)
        for d in data_of(shared_data, "ws_book_grouped")
    ]
    assert (rows[0].instrument_name, rows[0].bid_prices, rows[0].ask_amounts) == (
        "ETH-PERPETUAL",
        [160.0],
        [20.0],
    )
    assert rows[2].bid_prices == [0.011, 0.0105, 0.01] and rows[2].mark_price is None
    assert rows[3].timestamp == at_ms(1769246173071) and len(rows[3].ask_prices) == 10


def test_bad_order_books(shared_data: Path) -> None:
    base = data_of(shared_data, "rest_get_order_book")[2]
    with pytest.raises(MalformedMessage, match="bids: a level is not"):
        parse_order_book({**base, "bids": [["new", 1.0, 2.0]]}, received_at=RECV, depth=5)
    with pytest.raises(MalformedMessage, match="missing field 'asks'"):
        parse_order_book({k: v for k, v in base.items() if k != "asks"}, received_at=RECV, depth=5)
    with pytest.raises(MalformedMessage, match="mark_iv"):
        parse_order_book({**base, "mark_iv": "86"}, received_at=RECV, depth=5)
    with pytest.raises(ValueError):
        parse_order_book(base, received_at=RECV, depth=0)
