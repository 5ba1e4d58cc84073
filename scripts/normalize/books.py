"""Order books: REST/grouped snapshots -> `BookSnapshotRow`; incremental `book.{inst}.{interval}`
messages -> `BookMessage`; `BookChain` checks their `prev_change_id` chains.

Continuity rule (protocol notes §9): a change is in sequence only when its `prev_change_id`
EQUALS the last `change_id` seen for that instrument. Change ids are shared between instruments,
so they jump; never expect +1. A `prev_change_id` of 0 is a gap.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, NamedTuple

from scripts.models import BookSnapshotRow
from scripts.normalize.common import (
    MalformedMessage,
    amount,
    check_ms,
    integer,
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

BOOK_MESSAGE_FIELDS = frozenset(
    {"type", "timestamp", "instrument_name", "change_id", "prev_change_id", "bids", "asks"}
)
ORDER_BOOK_FIELDS = TICKER_FIELDS | {"bids", "asks", "change_id"}
GROUPED_BOOK_FIELDS = frozenset({"timestamp", "instrument_name", "change_id", "bids", "asks"})
KNOWN_FIELDS: dict[str, frozenset[str]] = {
    "book": BOOK_MESSAGE_FIELDS,
    "order_book": ORDER_BOOK_FIELDS,
    "book_grouped": GROUPED_BOOK_FIELDS,
}

Action = Literal["new", "change", "delete"]
Level = tuple[str, float, float]  # (action, price, amount)
_ACTIONS = frozenset({"new", "change", "delete"})


def unknown_fields(kind: str, data: Any) -> frozenset[str]:
    """Fields of one `kind` ("book", "order_book", "book_grouped") this module does not know."""
    return unknown_of(KNOWN_FIELDS, kind, data)


class BookMessage(NamedTuple):
    """One `book.{instrument}.{interval}` notification; levels are (action, price, amount)."""

    instrument_name: str
    timestamp_ms: int
    kind: Literal["snapshot", "change"]
    change_id: int
    prev_change_id: int | None
    bids: list[Level]
    asks: list[Level]


def _levels3(raw: Any, field: str) -> list[Level]:
    out: list[Level] = []
    append = out.append
    pf, af = field + ".price", field + ".amount"
    for lv in require_list(raw, field):
        if type(lv) is not list or len(lv) != 3:
            raise MalformedMessage(f"{field}: a level is not [action, price, amount]")
        action, price, size = lv
        if type(action) is not str or action not in _ACTIONS:
            raise MalformedMessage(f"{field}: unknown action")
        append((action, num(price, pf), amount(size, af)))
    return out


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


def parse_book_message(data: Any) -> BookMessage:
    """A `book.{instrument}.{interval}` notification's data -> `BookMessage`.

    Snapshot or change is decided by `type`; the 2019 format has no `type`, and there a message
    without `prev_change_id` is the snapshot. A snapshot may carry a `prev_change_id` (seen on
    LINK_USDC-PERPETUAL); it is kept but means nothing.
    """
    d = require_dict(data, "book")
    try:
        name = d["instrument_name"]
        ts = d["timestamp"]
        change_id = d["change_id"]
        bids = d["bids"]
        asks = d["asks"]
    except KeyError as e:
        raise missing("book", e) from None
    prev = opt_integer(d.get("prev_change_id"), "prev_change_id")
    typ = d.get("type")
    kind: Literal["snapshot", "change"]
    if typ == "change":
        kind = "change"
    elif typ == "snapshot":
        kind = "snapshot"
    elif typ is None:
        kind = "snapshot" if prev is None else "change"
    else:
        raise MalformedMessage("book: unknown type")
    if kind == "change" and prev is None:
        raise MalformedMessage("book: change without prev_change_id")
    return _new(
        BookMessage,
        (
            text(name, "instrument_name"),
            check_ms(ts),
            kind,
            integer(change_id, "change_id"),
            prev,
            _levels3(bids, "bids"),
            _levels3(asks, "asks"),
        ),
    )


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


ChainVerdict = Literal["ok", "gap", "snapshot"]


class BookChain:
    """The last `change_id` per instrument, and whether each new message continues it.

    `observe` answers "snapshot" for a snapshot (the chain restarts), "ok" for a change whose
    `prev_change_id` equals the last `change_id`, and "gap" otherwise: a changed link, a
    `prev_change_id` of 0, or a change for an instrument with no snapshot yet. After a gap the
    chain continues from that message, so one lost message is one gap; the instrument stays in
    `broken` until its next snapshot, because its book is no longer known.
    """

    __slots__ = ("_last", "broken")

    def __init__(self) -> None:
        self._last: dict[str, int] = {}
        self.broken: set[str] = set()

    def observe(self, msg: BookMessage) -> ChainVerdict:
        name = msg.instrument_name
        if msg.kind == "snapshot":
            self._last[name] = msg.change_id
            self.broken.discard(name)
            return "snapshot"
        last = self._last.get(name)
        self._last[name] = msg.change_id
        if last is not None and msg.prev_change_id == last and last != 0:
            return "ok"
        self.broken.add(name)
        return "gap"

    def last_change_id(self, instrument_name: str) -> int | None:
        return self._last.get(instrument_name)

    def is_synced(self, instrument_name: str) -> bool:
        """True when the instrument has had a snapshot and no gap since."""
        return instrument_name in self._last and instrument_name not in self.broken

    def reset(self, instrument_name: str | None = None) -> None:
        """Forget one instrument, or all (after a reconnect, new snapshots restart the chains)."""
        if instrument_name is None:
            self._last.clear()
            self.broken.clear()
        else:
            self._last.pop(instrument_name, None)
            self.broken.discard(instrument_name)
