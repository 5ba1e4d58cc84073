"""Index values -> `IndexPriceRow`s: `deribit_price_index` (kind "price"), DVOL from REST
`get_volatility_index_data` (kind "dvol")."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from scripts.models import IndexPriceRow
from scripts.normalize.common import (
    MalformedMessage,
    missing,
    ms_to_datetime,
    num,
    require_dict,
    require_list,
    text,
    unknown_of,
)

PRICE_INDEX_FIELDS = frozenset({"index_name", "price", "timestamp"})
VOLATILITY_INDEX_DATA_FIELDS = frozenset({"data", "continuation"})
KNOWN_FIELDS: dict[str, frozenset[str]] = {
    "price_index": PRICE_INDEX_FIELDS,
    "volatility_index_data": VOLATILITY_INDEX_DATA_FIELDS,
}
KIND_PRICE = "price"
KIND_DVOL = "dvol"


def unknown_fields(kind: str, data: Any) -> frozenset[str]:
    """Fields of one `kind` ("price_index", "volatility_index_data") not known here."""
    return unknown_of(KNOWN_FIELDS, kind, data)


def parse_price_index(data: Any, *, currency: str, received_at: datetime) -> IndexPriceRow:
    """A `deribit_price_index.{index}` notification's data -> row of kind "price"."""
    return _index_value(data, "price_index", "price", KIND_PRICE, currency, received_at)


def _index_value(
    data: Any, what: str, value_field: str, kind: str, currency: str, received_at: datetime
) -> IndexPriceRow:
    """An {index_name, `value_field`, timestamp} notification -> row of `kind`; `what` names
    the message in errors."""
    d = require_dict(data, what)
    try:
        name, value, ts = d["index_name"], d[value_field], d["timestamp"]
    except KeyError as e:
        raise missing(what, e) from None
    return IndexPriceRow(
        ms_to_datetime(ts),
        text(name, "index_name"),
        currency,
        kind,
        num(value, value_field),
        received_at,
    )


def parse_volatility_index_data(
    result: Any, *, index_name: str, currency: str, received_at: datetime
) -> list[IndexPriceRow]:
    """A `get_volatility_index_data` result -> DVOL rows, the candle's close as the value.

    The caller pages with `result["continuation"]` (None when finished).
    """
    d = require_dict(result, "volatility_index_data")
    try:
        candles = require_list(d["data"], "volatility_index_data.data")
    except KeyError as e:
        raise missing("volatility_index_data", e) from None
    out: list[IndexPriceRow] = []
    for i, c in enumerate(candles):
        if type(c) is not list or len(c) != 5:
            raise MalformedMessage(f"volatility_index_data[{i}]: not [ts, open, high, low, close]")
        out.append(
            IndexPriceRow(
                ms_to_datetime(c[0]),
                index_name,
                currency,
                KIND_DVOL,
                num(c[4], "close"),
                received_at,
            )
        )
    return out
