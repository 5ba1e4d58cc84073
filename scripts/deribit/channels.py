"""Deribit channel names (build, classify) and instrument names (parse); pure.

See ../shared/docs/deribit-protocol.md §5.1 (instrument naming) and §6 (channels). Instrument
names hold no dots (a linear strike writes its decimal point as `d`), so a channel splits on
dots unambiguously.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time
from functools import lru_cache
from typing import Literal, NamedTuple

# ---- builders -----------------------------------------------------------------------------


def quote_channel(inst: str) -> str:
    return f"quote.{inst}"


def ticker_channel(inst: str, interval: str = "100ms") -> str:
    return f"ticker.{inst}.{interval}"


def trades_by_kind_channel(kind: str, api_currency: str, interval: str = "100ms") -> str:
    """All trades of a kind (option, future, ...) in an API currency (BTC, ETH, USDC, any)."""
    return f"trades.{kind}.{api_currency}.{interval}"


def markprice_channel(index: str) -> str:
    return f"markprice.options.{index}"


def instrument_state_channel(kind: str, api_currency: str) -> str:
    return f"instrument.state.{kind}.{api_currency}"


def instrument_creation_channel(kind: str, api_currency: str) -> str:
    return f"instrument.creation.{kind}.{api_currency}"


# ---- families -----------------------------------------------------------------------------

QUOTE = "quote"
TICKER = "ticker"
INCREMENTAL_TICKER = "incremental_ticker"
TRADES = "trades"  # trades.{instrument}.{interval}
TRADES_BY_KIND = "trades_by_kind"  # trades.{kind}.{currency}.{interval}
BOOK = "book"  # book.{instrument}.{interval}: incremental
BOOK_GROUPED = "book_grouped"  # book.{instrument}.{group}.{depth}.{interval}
CHART_TRADES = "chart.trades"
PERPETUAL = "perpetual"
MARKPRICE_OPTIONS = "markprice.options"
PRICE_INDEX = "deribit_price_index"
PRICE_RANKING = "deribit_price_ranking"
PRICE_STATISTICS = "deribit_price_statistics"
VOLATILITY_INDEX = "deribit_volatility_index"
ESTIMATED_EXPIRATION_PRICE = "estimated_expiration_price"
INSTRUMENT_STATE = "instrument.state"
INSTRUMENT_CREATION = "instrument.creation"
PLATFORM_STATE = "platform_state"
PLATFORM_PUBLIC_METHODS_STATE = "platform_state.public_methods_state"
ANNOUNCEMENTS = "announcements"
UNKNOWN = "unknown"

_SIMPLE = {
    f: f
    for f in (
        QUOTE,
        TICKER,
        INCREMENTAL_TICKER,
        PERPETUAL,
        PRICE_INDEX,
        PRICE_RANKING,
        PRICE_STATISTICS,
        VOLATILITY_INDEX,
        ESTIMATED_EXPIRATION_PRICE,
        ANNOUNCEMENTS,
    )
}


def channel_family(channel: str) -> str:
    """What kind of channel this is, one of the constants above (UNKNOWN if none)."""
    head, _, rest = channel.partition(".")
    family = _SIMPLE.get(head)
    if family is not None:
        return family
    if head == "trades":
        return TRADES if rest.count(".") == 1 else TRADES_BY_KIND
    if head == "book":
        return BOOK if rest.count(".") == 1 else BOOK_GROUPED
    if head == "chart" and rest.startswith("trades."):
        return CHART_TRADES
    if head == "markprice" and rest.startswith("options."):
        return MARKPRICE_OPTIONS
    if head == "instrument":
        if rest.startswith("state."):
            return INSTRUMENT_STATE
        if rest.startswith("creation."):
            return INSTRUMENT_CREATION
    if head == "platform_state":
        return PLATFORM_PUBLIC_METHODS_STATE if rest == "public_methods_state" else PLATFORM_STATE
    return UNKNOWN


_SUBJECT_INDEX = {
    CHART_TRADES: 2,
    MARKPRICE_OPTIONS: 2,
    INSTRUMENT_STATE: 2,
    INSTRUMENT_CREATION: 2,
}


def channel_subject(channel: str) -> str | None:
    """The instrument, index or kind a channel is about: `chart.trades.BTC-PERPETUAL.1` ->
    `BTC-PERPETUAL`, `markprice.options.btc_usd` -> `btc_usd`; None when it names nothing.
    (For `trades.{kind}.{currency}` and `instrument.*` it is the kind.)"""
    family = channel_family(channel)
    parts = channel.split(".")
    i = _SUBJECT_INDEX.get(family, 1)
    return parts[i] if len(parts) > i else None


# ---- instrument names ---------------------------------------------------------------------

InstrumentKind = Literal["option", "future", "perpetual", "combo", "spot"]
EXPIRY_TIME_UTC = time(8, 0, tzinfo=UTC)  # every future and option expires at 08:00 UTC

_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
    )
}
_DATE_RE = re.compile(r"(0?[1-9]|[12][0-9]|3[01])([A-Z]{3})([0-9]{2})")
_BASE_RE = re.compile(r"[A-Z0-9]+")
_COMBO_TYPE_RE = re.compile(r"[A-Z][A-Z0-9]*")  # FS, CS, STRD, CSR12, ...
_STRIKE_RE = re.compile(r"[0-9]+(?:d[0-9]+)?")


class InstrumentName(NamedTuple):
    base: str  # BTC, SOL, 1000PEPE
    linear: bool  # USDC/USDT-quoted (`SOL_USDC-...`, spot `BTC_USDC`); False for inverse books
    kind: InstrumentKind
    expiry: date | None  # for a combo, its nearest leg's expiry
    expires_at: datetime | None  # expiry at 08:00 UTC
    strike: float | None
    option_type: Literal["call", "put"] | None
    quote: str  # USD for the inverse books, else the suffix: USDC, USDT


def _date(token: str) -> date | None:
    m = _DATE_RE.fullmatch(token)
    if m is None:
        return None
    month = _MONTHS.get(m.group(2))
    if month is None:
        return None
    try:
        return date(2000 + int(m.group(3)), month, int(m.group(1)))
    except ValueError:
        return None


def _at_8(d: date | None) -> datetime | None:
    return None if d is None else datetime.combine(d, EXPIRY_TIME_UTC)


@lru_cache(maxsize=16384)
def parse_instrument_name(name: str) -> InstrumentName:
    """Deribit instrument name -> its parts (§5.1); ValueError for a name of no known shape.

    Cached: the same few thousand names come back all day.
    """
    parts = name.split("-")
    head = parts[0]
    base, sep, quote = head.partition("_")
    if not _BASE_RE.fullmatch(base) or (sep and not _BASE_RE.fullmatch(quote)):
        raise ValueError(f"not a Deribit instrument name: {name!r}")
    linear = bool(sep)
    quote = quote if sep else "USD"
    n = len(parts)
    if n == 1:
        if linear:
            return InstrumentName(base, True, "spot", None, None, None, None, quote)
    elif n == 2 and parts[1] == "PERPETUAL":
        return InstrumentName(base, linear, "perpetual", None, None, None, None, quote)
    elif n == 2:
        d = _date(parts[1])
        if d is not None:
            return InstrumentName(base, linear, "future", d, _at_8(d), None, None, quote)
    elif n == 4 and parts[3] in ("C", "P"):
        d = _date(parts[1])
        if d is not None and _STRIKE_RE.fullmatch(parts[2]):
            strike = float(parts[2].replace("d", "."))
            option_type: Literal["call", "put"] = "call" if parts[3] == "C" else "put"
            return InstrumentName(base, linear, "option", d, _at_8(d), strike, option_type, quote)
    elif n >= 3 and _COMBO_TYPE_RE.fullmatch(parts[1]):
        d = _combo_expiry(parts[1], parts[2])
        if d is not None:
            return InstrumentName(base, linear, "combo", d, _at_8(d), None, None, quote)
    raise ValueError(f"not a Deribit instrument name: {name!r}")


def _combo_expiry(type_code: str, legs: str) -> date | None:
    """`FS` + `30SEP22_PERP` or `22MAY26_19MAY26`; option combos + `19MAY26`."""
    if type_code == "FS":
        dates = [_date(t) for t in legs.split("_") if t != "PERP"]
        if not dates or any(d is None for d in dates):
            return None
        return min(d for d in dates if d is not None)
    return _date(legs)


def currency_of_instrument(name: str) -> str:
    """The base currency an instrument belongs to: `BTC-PERPETUAL` -> BTC,
    `SOL_USDC-25SEP26-118-C` -> SOL. Cheap (no full parse)."""
    head = name.split("-", 1)[0]
    return head.split("_", 1)[0]
