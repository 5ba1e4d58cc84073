"""Candles: get_tradingview_chart_data and chart.trades -> OhlcvRow."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from scripts.models import OhlcvRow
from scripts.normalize import bars
from scripts.normalize.bars import parse_tradingview
from scripts.normalize.common import MalformedMessage

RECV = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def at_ms(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


def tradingview(shared_data: Path) -> dict[str, Any]:
    return orjson.loads((shared_data / "rest_get_tradingview_chart_data.jsonl").read_text())[
        "result"
    ]


def test_tradingview_rows(shared_data: Path) -> None:
    result = tradingview(shared_data)
    rows = parse_tradingview(
        result, instrument_name="BTC-PERPETUAL", currency="BTC", resolution="30", received_at=RECV
    )
    assert rows == [
        OhlcvRow(
            at_ms(1554373800000),
            "BTC-PERPETUAL",
            "BTC",
            "30",
            4963.42,
            5185.45,
            4728.94,
            5052.95,
            19.007942601,
            19000.0,
            RECV,
        ),
        OhlcvRow(
            at_ms(1554375600000),
            "BTC-PERPETUAL",
            "BTC",
            "30",
            4986.29,
            5250.87,
            4726.6,
            5013.59,
            20.095877981,
            23400.0,
            RECV,
        ),
    ]
    assert bars.unknown_fields("tradingview", result) == frozenset()


def test_tradingview_no_data_and_bad_shapes(shared_data: Path) -> None:
    kw: dict[str, Any] = {
        "instrument_name": "X",
        "currency": "BTC",
        "resolution": "1",
        "received_at": RECV,
    }
    assert parse_tradingview({"status": "no_data", "ticks": []}, **kw) == []
    result = tradingview(shared_data)
    with pytest.raises(MalformedMessage, match="arrays of different lengths"):
        parse_tradingview({**result, "close": [1.0]}, **kw)
    with pytest.raises(MalformedMessage, match="missing field 'ticks'"):
        parse_tradingview({k: v for k, v in result.items() if k != "ticks"}, **kw)
    with pytest.raises(MalformedMessage, match="open: expected a number"):
        parse_tradingview({**result, "open": [None, 1.0]}, **kw)
    with pytest.raises(MalformedMessage, match="volume: negative"):
        parse_tradingview({**result, "volume": [1.0, -1.0]}, **kw)
    no_cost = parse_tradingview({k: v for k, v in result.items() if k != "cost"}, **kw)
    assert [r.cost for r in no_cost] == [None, None]
