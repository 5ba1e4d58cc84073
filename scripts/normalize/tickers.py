"""Option tickers -> `GreeksRow`; `markprice.options` -> `MarkPoint`s.

`parse_ticker_greeks` reads the `ticker.{option}.{interval}` notification and the REST
`public/ticker` and `public/get_order_book` results, which share the ticker's fields (§6.1 and §7
of the protocol notes). `parse_markprice` turns Deribit's IV fraction into percent.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from scripts.models import GreeksRow
from scripts.normalize.common import (
    MalformedMessage,
    check_ms,
    missing,
    ms_to_datetime,
    num,
    opt_amount,
    opt_num,
    opt_text,
    require_dict,
    require_list,
    text,
    unknown_of,
)

_new = tuple.__new__  # builds the row without NamedTuple's Python-level __new__

TICKER_FIELDS = frozenset(
    {
        "instrument_name",
        "timestamp",
        "state",
        "best_bid_price",
        "best_bid_amount",
        "best_ask_price",
        "best_ask_amount",
        "last_price",
        "mark_price",
        "index_price",
        "min_price",
        "max_price",
        "open_interest",
        "settlement_price",
        "delivery_price",
        "estimated_delivery_price",
        "stats",
        "mark_iv",
        "bid_iv",
        "ask_iv",
        "underlying_price",
        "underlying_index",
        "interest_rate",
        "greeks",
        "current_funding",
        "funding_8h",
        "interest_value",
        "implied_bid",
        "implied_ask",
        "combo_state",
    }
)
GREEKS_FIELDS = frozenset({"delta", "gamma", "vega", "theta", "rho"})
STATS_FIELDS = frozenset({"volume", "volume_usd", "volume_notional", "high", "low", "price_change"})
MARKPRICE_FIELDS = frozenset({"instrument_name", "mark_price", "iv", "timestamp"})

KNOWN_FIELDS: dict[str, frozenset[str]] = {
    "ticker": TICKER_FIELDS,
    "ticker.greeks": GREEKS_FIELDS,
    "ticker.stats": STATS_FIELDS,
    "markprice": MARKPRICE_FIELDS,
}


def unknown_fields(kind: str, data: Any) -> frozenset[str]:
    """Fields of one `kind` of message (a key of `KNOWN_FIELDS`) this module does not know."""
    return unknown_of(KNOWN_FIELDS, kind, data)


class MarkPoint(NamedTuple):
    """One option's mark from `markprice.options.{index}`; `mark_iv` in percent."""

    instrument_name: str
    timestamp_ms: int
    mark_price: float
    mark_iv: float


def parse_ticker_greeks(data: Any, *, received_at: datetime, currency: str) -> GreeksRow:
    """An option ticker (WS notification data or REST result) -> `GreeksRow`.

    Greeks, IVs and the other optional fields may be missing (older or trimmed tickers): they
    become None. An empty side (amount 0) gives None for its best price and IV, as in
    `quotes.parse_ticker_quote`. `currency` is chaintape's currency code (BTC, ETH, SOL).
    `timestamp` and `ticker_timestamp` are both the ticker's time; the poller moves
    `timestamp` to the start of the poll interval it was read for.
    """
    d = require_dict(data, "ticker")
    try:
        name = d["instrument_name"]
        ts = d["timestamp"]
    except KeyError as e:
        raise missing("ticker", e) from None
    greeks = d.get("greeks")
    if greeks is None:
        delta = gamma = vega = theta = rho = None
    else:
        g = require_dict(greeks, "ticker.greeks")
        delta = opt_num(g.get("delta"), "greeks.delta")
        gamma = opt_num(g.get("gamma"), "greeks.gamma")
        vega = opt_num(g.get("vega"), "greeks.vega")
        theta = opt_num(g.get("theta"), "greeks.theta")
        rho = opt_num(g.get("rho"), "greeks.rho")
    get = d.get
    bid_price = _best(get("best_bid_price"), get("best_bid_amount"), "best_bid")
    ask_price = _best(get("best_ask_price"), get("best_ask_amount"), "best_ask")
    bid_iv = opt_num(get("bid_iv"), "bid_iv")
    ask_iv = opt_num(get("ask_iv"), "ask_iv")
    at = ms_to_datetime(ts)
    return _new(
        GreeksRow,
        (
            at,
            text(name, "instrument_name"),
            currency,
            delta,
            gamma,
            vega,
            theta,
            rho,
            opt_num(get("mark_iv"), "mark_iv"),
            None if bid_price is None else bid_iv,
            None if ask_price is None else ask_iv,
            opt_num(get("mark_price"), "mark_price"),
            opt_num(get("underlying_price"), "underlying_price"),
            opt_text(get("underlying_index"), "underlying_index"),
            opt_num(get("index_price"), "index_price"),
            opt_amount(get("open_interest"), "open_interest"),
            opt_num(get("interest_rate"), "interest_rate"),
            bid_price,
            ask_price,
            received_at,
            at,
        ),
    )


def _best(price: Any, size: Any, field: str) -> float | None:
    """A best price, None when its side is empty (amount 0) as in `quotes`; a ticker that
    leaves the amount out keeps its price."""
    p = opt_num(price, field + "_price")
    if size is not None and opt_amount(size, field + "_amount") == 0.0:
        return None
    return p


def parse_markprice(data: Any, *, received_at: datetime) -> list[MarkPoint]:
    """A `markprice.options.{index}` notification's data (an array) -> `MarkPoint`s.

    Deribit sends `iv` as a fraction here (0.9 = 90 %); the points carry percent like every
    other IV in chaintape. `received_at` is accepted for a uniform signature; points keep the
    exchange's milliseconds. Any bad element raises (see `parse_markprice_tolerant`).
    """
    points, errors = parse_markprice_tolerant(data, received_at=received_at)
    if errors:
        raise errors[0][0]
    return points


def parse_markprice_tolerant(
    data: Any, *, received_at: datetime
) -> tuple[list[MarkPoint], list[tuple[MalformedMessage, Any]]]:
    """Like `parse_markprice`, but a bad element costs only itself: (good points, one
    (error naming its index, the element) per bad element). A `data` that is not an array
    raises."""
    del received_at
    out: list[MarkPoint] = []
    errors: list[tuple[MalformedMessage, Any]] = []
    for i, item in enumerate(require_list(data, "markprice")):
        try:
            out.append(_mark_point(item, i))
        except MalformedMessage as e:
            errors.append((e, item))  # the element, for the record
    return out, errors


def _mark_point(item: Any, i: int) -> MarkPoint:
    if type(item) is not dict:
        raise MalformedMessage(f"markprice[{i}]: expected an object")
    try:
        name = item["instrument_name"]
        ts = item["timestamp"]
        mark = item["mark_price"]
        iv = item["iv"]
    except KeyError as e:
        raise missing(f"markprice[{i}]", e) from None
    try:
        iv_pct = num(iv, "iv") * 100.0
        if iv_pct - iv_pct != 0.0:  # a finite fraction near the float limit overflows
            raise MalformedMessage("iv out of range")
        # round() drops the float noise of the x100 (0.29 * 100 = 28.999999999999996).
        return MarkPoint(
            text(name, "instrument_name"), check_ms(ts), num(mark, "mark_price"), round(iv_pct, 10)
        )
    except MalformedMessage as e:
        raise MalformedMessage(f"markprice[{i}]: {e.reason}") from None
