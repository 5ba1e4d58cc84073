"""Order books: REST `get_order_book` results and grouped `book` notifications ->
`BookSnapshotRow`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from scripts.models import BookSnapshotRow
from scripts.normalize.common import (
    MalformedMessage,
    amount,
    missing,
    ms_to_datetime,
    num,
    opt_amount,
    opt_integer,
    opt_num,
    require_dict,
    require_list,
    text,
    unknown_of,
)
from scripts.normalize.tickers import TICKER_FIELDS

_new = tuple.__new__  # builds the row without NamedTuple's Python-level __new__

ORDER_BOOK_FIELDS = TICKER_FIELDS | {"bids", "asks", "change_id"}
GROUPED_BOOK_FIELDS = frozenset({"timestamp", "instrument_name", "change_id", "bids", "asks"})
KNOWN_FIELDS: dict[str, frozenset[str]] = {
    "order_book": ORDER_BOOK_FIELDS,
    "book_grouped": GROUPED_BOOK_FIELDS,
}


def unknown_fields(kind: str, data: Any) -> frozenset[str]:
    """Fields of one `kind` ("order_book", "book_grouped") this module does not know."""
    return unknown_of(KNOWN_FIELDS, kind, data)


def _levels2(raw: Any, field: str, depth: int) -> tuple[list[float], list[float]]:
    prices: list[float] = []
    amounts: list[float] = []
    pf, af = field + ".price", field + ".amount"
    for lv in require_list(raw, field)[:depth]:
        if type(lv) is not list or len(lv) != 2:
            raise MalformedMessage(f"{field}: a level is not [price, amount]")
        prices.append(num(lv[0], pf))
        amounts.append(amount(lv[1], af))
    return prices, amounts


def parse_order_book(result: Any, *, received_at: datetime, depth: int) -> BookSnapshotRow:
    """A REST `public/get_order_book` result -> `BookSnapshotRow`, levels cut to `depth`.

    Also takes a grouped `book.{inst}.{group}.{depth}.{interval}` notification's data (same
    `[price, amount]` levels, no ticker fields: those become None).
    """
    if depth < 1:
        raise ValueError("depth must be at least 1")
    d = require_dict(result, "order_book")
    try:
        name = d["instrument_name"]
        ts = d["timestamp"]
        bids = d["bids"]
        asks = d["asks"]
    except KeyError as e:
        raise missing("order_book", e) from None
    get = d.get
    bid_prices, bid_amounts = _levels2(bids, "bids", depth)
    ask_prices, ask_amounts = _levels2(asks, "asks", depth)
    return BookSnapshotRow(
        ms_to_datetime(ts),
        text(name, "instrument_name"),
        opt_integer(get("change_id"), "change_id"),
        bid_prices,
        bid_amounts,
        ask_prices,
        ask_amounts,
        opt_num(get("mark_price"), "mark_price"),
        opt_num(get("mark_iv"), "mark_iv"),
        opt_num(get("bid_iv"), "bid_iv"),
        opt_num(get("ask_iv"), "ask_iv"),
        opt_num(get("underlying_price"), "underlying_price"),
        opt_amount(get("open_interest"), "open_interest"),
        received_at,
    )
