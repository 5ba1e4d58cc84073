"""Candles -> `OhlcvRow`s: REST `public/get_tradingview_chart_data` (parallel arrays)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from scripts.models import OhlcvRow
from scripts.normalize.common import (
    MalformedMessage,
    amount,
    missing,
    ms_to_datetime,
    num,
    opt_amount,
    require_dict,
    require_list,
    unknown_of,
)

TRADINGVIEW_FIELDS = frozenset(
    {"ticks", "open", "high", "low", "close", "volume", "cost", "status"}
)
KNOWN_FIELDS: dict[str, frozenset[str]] = {"tradingview": TRADINGVIEW_FIELDS}


def unknown_fields(kind: str, data: Any) -> frozenset[str]:
    """Fields of one `kind` ("tradingview") this module does not know."""
    return unknown_of(KNOWN_FIELDS, kind, data)


def parse_tradingview(
    result: Any, *, instrument_name: str, currency: str, resolution: str, received_at: datetime
) -> list[OhlcvRow]:
    """A `get_tradingview_chart_data` result -> one row per tick; `status: no_data` -> []."""
    d = require_dict(result, "tradingview")
    if d.get("status") == "no_data":
        return []
    try:
        cols = [
            require_list(d[k], f"tradingview.{k}")
            for k in ("ticks", "open", "high", "low", "close", "volume")
        ]
    except KeyError as e:
        raise missing("tradingview", e) from None
    cost = d.get("cost")
    if cost is not None:
        cols.append(require_list(cost, "tradingview.cost"))
    n = len(cols[0])
    if any(len(c) != n for c in cols):
        raise MalformedMessage("tradingview: arrays of different lengths")
    ticks, opens, highs, lows, closes, volumes = cols[:6]
    costs = cols[6] if cost is not None else [None] * n
    return [
        OhlcvRow(
            ms_to_datetime(ticks[i], "ticks"),
            instrument_name,
            currency,
            resolution,
            num(opens[i], "open"),
            num(highs[i], "high"),
            num(lows[i], "low"),
            num(closes[i], "close"),
            amount(volumes[i], "volume"),
            opt_amount(costs[i], "cost"),
            received_at,
        )
        for i in range(n)
    ]
