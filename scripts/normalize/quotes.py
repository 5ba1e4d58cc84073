"""Best bid/ask -> `QuoteRow`, from `quote.{inst}` and from option tickers.

An empty side (amount 0, or nulls) becomes None for its price and amount, in both parsers, and
on a ticker the IV of an empty side is None too: Deribit sends `bid_iv: 0` under an empty bid
and `ask_iv: 500` under an empty ask of a closed option, which are not quotes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from scripts.models import QuoteRow
from scripts.normalize.common import (
    FAST_MS_LIMIT,
    MalformedMessage,
    missing,
    ms_to_datetime,
    opt_num,
    require_dict,
    side,
    text,
    unknown_of,
)
from scripts.normalize.future import FUTURE_REASON
from scripts.normalize.tickers import TICKER_FIELDS

_new = tuple.__new__  # builds the row without NamedTuple's Python-level __new__
_fromtimestamp = datetime.fromtimestamp

QUOTE_FIELDS = frozenset(
    {
        "instrument_name",
        "timestamp",
        "best_bid_price",
        "best_bid_amount",
        "best_ask_price",
        "best_ask_amount",
    }
)
KNOWN_FIELDS: dict[str, frozenset[str]] = {"quote": QUOTE_FIELDS, "ticker": TICKER_FIELDS}


def unknown_fields(kind: str, data: Any) -> frozenset[str]:
    """Fields of one `kind` of message ("quote" or "ticker") this module does not know."""
    return unknown_of(KNOWN_FIELDS, kind, data)


def parse_quote(
    data: Any,
    *,
    received_at: datetime,
    marks: Mapping[str, tuple[float | None, float | None, int]] | None = None,
    mark_max_age_ms: int = 0,
    ts_limit_ms: int = FAST_MS_LIMIT,
) -> QuoteRow:
    """A `quote.{instrument}` notification's data -> `QuoteRow` (IV and mark fields None).

    `marks` maps an instrument to its latest (mark_iv, mark_price, exchange ms); when it holds
    the quote's instrument with a mark at most `mark_max_age_ms` older than the quote, those
    fill the row's mark columns (an older mark is left out: NULL, not stale). A `timestamp` at
    or after `ts_limit_ms` (the receive time plus a tolerance, see `future.py`) raises.
    """
    try:
        name = data["instrument_name"]
        ts = data["timestamp"]
        bp = data["best_bid_price"]
        ba = data["best_bid_amount"]
        ap = data["best_ask_price"]
        aa = data["best_ask_amount"]
    except KeyError as e:
        raise missing("quote", e) from None
    except TypeError:
        require_dict(data, "quote")
        raise
    # This runs for every quote: the usual case (finite floats, a size on both sides, a
    # millisecond int, a plain name) is checked inline; anything else takes the helpers,
    # which decide and raise exactly as for a ticker.
    if not (
        type(ba) is float and ba > 0.0 and ba - ba == 0.0 and type(bp) is float and bp - bp == 0.0
    ):
        bp, ba = side(bp, ba, "best_bid_price", "best_bid_amount")
    if not (
        type(aa) is float and aa > 0.0 and aa - aa == 0.0 and type(ap) is float and ap - ap == 0.0
    ):
        ap, aa = side(ap, aa, "best_ask_price", "best_ask_amount")
    if type(ts) is int and 0 <= ts < ts_limit_ms:  # (the caller's limit is below FAST_MS_LIMIT)
        when = _fromtimestamp(ts / 1000, UTC)
    else:
        when = ms_to_datetime(ts)
        ts = int(when.timestamp() * 1000)
        if ts >= ts_limit_ms:
            raise MalformedMessage(f"quote: {FUTURE_REASON}")
    if type(name) is not str or not name or "\x00" in name:
        text(name, "instrument_name")  # raises
    mark = None if marks is None else marks.get(name)
    if mark is None or ts - mark[2] > mark_max_age_ms:
        return _new(
            QuoteRow, (when, name, bp, ba, ap, aa, None, None, None, None, None, received_at)
        )
    return _new(
        QuoteRow, (when, name, bp, ba, ap, aa, None, None, mark[0], mark[1], None, received_at)
    )


def parse_ticker_quote(data: Any, *, received_at: datetime) -> QuoteRow:
    """A `ticker.{option}.{interval}` notification's data -> `QuoteRow` with IVs and marks."""
    try:
        name = data["instrument_name"]
        ts = data["timestamp"]
        bp = data["best_bid_price"]
        ba = data["best_bid_amount"]
        ap = data["best_ask_price"]
        aa = data["best_ask_amount"]
    except KeyError as e:
        raise missing("ticker", e) from None
    except TypeError:
        require_dict(data, "ticker")
        raise
    bid_price, bid_amount = side(bp, ba, "best_bid_price", "best_bid_amount")
    ask_price, ask_amount = side(ap, aa, "best_ask_price", "best_ask_amount")
    get = data.get
    bid_iv = opt_num(get("bid_iv"), "bid_iv")
    ask_iv = opt_num(get("ask_iv"), "ask_iv")
    return _new(
        QuoteRow,
        (
            ms_to_datetime(ts),
            text(name, "instrument_name"),
            bid_price,
            bid_amount,
            ask_price,
            ask_amount,
            None if bid_price is None else bid_iv,
            None if ask_price is None else ask_iv,
            opt_num(get("mark_iv"), "mark_iv"),
            opt_num(get("mark_price"), "mark_price"),
            opt_num(get("underlying_price"), "underlying_price"),
            received_at,
        ),
    )
