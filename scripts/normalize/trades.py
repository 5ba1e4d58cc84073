"""Trades -> `TradeRow`s, from `trades.*` notifications and REST `result.trades`.

A trade of a combo instrument (one with `legs`) is not a row itself: each leg is a trade of its
own instrument and becomes the row, with `combo_id`/`combo_trade_id` pointing back at the combo
(filled from the parent when a leg leaves them out). Counting the combo trade too would count
the same contracts twice.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from scripts.models import TradeRow
from scripts.normalize.common import (
    MalformedMessage,
    amount,
    id_text,
    missing,
    ms_to_datetime,
    num,
    opt_amount,
    opt_id_text,
    opt_integer,
    opt_num,
    opt_text,
    require_list,
    text,
    unknown_of,
)

_new = tuple.__new__  # builds the row without NamedTuple's Python-level __new__

TRADE_FIELDS = frozenset(
    {
        "trade_id",
        "trade_seq",
        "timestamp",
        "instrument_name",
        "price",
        "amount",
        "contracts",
        "direction",
        "tick_direction",
        "index_price",
        "mark_price",
        "iv",
        "liquidation",
        "block_trade_id",
        "block_trade_leg_count",
        "block_rfq_id",
        "combo_id",
        "combo_trade_id",
        "legs",
    }
)
KNOWN_FIELDS: dict[str, frozenset[str]] = {"trade": TRADE_FIELDS}

_DIRECTIONS = frozenset({"buy", "sell"})
_INT2_MIN, _INT2_MAX = -(2**15), 2**15 - 1
_INT4_MIN, _INT4_MAX = -(2**31), 2**31 - 1


def unknown_fields(kind: str, data: Any) -> frozenset[str]:
    """Fields of one trade (kind "trade") this module does not know."""
    return unknown_of(KNOWN_FIELDS, kind, data)


def _trade(
    t: Any,
    received_at: datetime,
    combo_id: str | None = None,
    combo_trade_id: str | None = None,
) -> TradeRow:
    if type(t) is not dict:
        raise MalformedMessage(f"trade: expected an object, got {type(t).__name__}")
    try:
        ts = t["timestamp"]
        name = t["instrument_name"]
        trade_id = t["trade_id"]
        price = t["price"]
        size = t["amount"]
        direction = t["direction"]
    except KeyError as e:
        raise missing("trade", e) from None
    if type(direction) is not str or direction not in _DIRECTIONS:
        raise MalformedMessage("trade: direction is not buy/sell")
    get = t.get
    leg_combo_id = get("combo_id")
    leg_combo_trade_id = get("combo_trade_id")
    return _new(
        TradeRow,
        (
            ms_to_datetime(ts),
            text(name, "instrument_name"),
            id_text(trade_id, "trade_id"),
            opt_integer(get("trade_seq"), "trade_seq"),
            num(price, "price"),
            amount(size, "amount"),
            opt_amount(get("contracts"), "contracts"),
            direction,
            opt_integer(get("tick_direction"), "tick_direction", _INT2_MIN, _INT2_MAX),
            opt_num(get("iv"), "iv"),
            opt_num(get("index_price"), "index_price"),
            opt_num(get("mark_price"), "mark_price"),
            opt_text(get("liquidation"), "liquidation"),
            opt_id_text(get("block_trade_id"), "block_trade_id"),
            opt_integer(
                get("block_trade_leg_count"), "block_trade_leg_count", _INT4_MIN, _INT4_MAX
            ),
            opt_integer(get("block_rfq_id"), "block_rfq_id"),
            combo_id if leg_combo_id is None else text(leg_combo_id, "combo_id"),
            combo_trade_id
            if leg_combo_trade_id is None
            else id_text(leg_combo_trade_id, "combo_trade_id"),
            received_at,
        ),
    )


def _rows_of(t: Any, received_at: datetime) -> list[TradeRow]:
    """The rows of one element of a trades array: itself, or the legs of a combo trade."""
    legs = t.get("legs") if type(t) is dict else None
    if legs is None:
        return [_trade(t, received_at)]
    parent = _trade(t, received_at)  # the combo trade must be valid for its legs to be
    legs = require_list(legs, "trade.legs")
    if not legs:
        raise MalformedMessage("trade.legs: empty")
    return [_trade(leg, received_at, parent.instrument_name, parent.trade_id) for leg in legs]


def parse_trades(data: Any, *, received_at: datetime) -> list[TradeRow]:
    """A trades array -> rows; the first bad trade raises `MalformedMessage` for the batch.

    `data` is a `trades.*` notification's data or a REST `result["trades"]`.
    """
    out: list[TradeRow] = []
    for i, t in enumerate(require_list(data, "trades")):
        try:
            if type(t) is dict and "legs" not in t:
                out.append(_trade(t, received_at))  # the common case, without a list per trade
            else:
                out.extend(_rows_of(t, received_at))
        except MalformedMessage as e:
            raise MalformedMessage(f"trades[{i}]: {e.reason}") from None
    return out


def parse_trades_tolerant(
    data: Any, *, received_at: datetime
) -> tuple[list[TradeRow], list[MalformedMessage]]:
    """Like `parse_trades`, but a bad trade costs only itself: (good rows, one error per bad
    element, each naming its index). A `data` that is not an array raises."""
    rows: list[TradeRow] = []
    errors: list[MalformedMessage] = []
    for i, t in enumerate(require_list(data, "trades")):
        try:
            rows.extend(_rows_of(t, received_at))
        except MalformedMessage as e:
            errors.append(MalformedMessage(f"trades[{i}]: {e.reason}"))
    return rows, errors
