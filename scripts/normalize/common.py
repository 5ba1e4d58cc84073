"""Shared checks for the parsers: milliseconds to UTC datetimes, numbers, `MalformedMessage`.

The helpers are small and flat on purpose: each parser calls one of them per field, and the
collector's whole budget is about 12 µs of CPU per message. Type checks use `type(v) is ...`
so that `True` (a bool, which `isinstance` would take for an int) is rejected as a number.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

EMPTY: frozenset[str] = frozenset()

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_fromtimestamp = datetime.fromtimestamp
# Below 2**32 s a double holds ms/1000 to better than half a microsecond, so the fast
# `fromtimestamp` rounds to the exact millisecond; later dates (the perpetuals' year-3000
# expiry) take the exact, slower timedelta path.
FAST_MS_LIMIT = 2**32 * 1000
MAX_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z, the last instant datetime can hold
INT8_MIN, INT8_MAX = -(2**63), 2**63 - 1


class MalformedMessage(ValueError):
    """A message that cannot become a row: a missing field, a wrong type, NaN, a negative amount.

    `reason` is a short text for counters and logs; it names the field but never holds the data.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def ms_to_datetime(ms: Any, field: str = "timestamp") -> datetime:
    """Exchange milliseconds since the epoch -> timezone-aware UTC datetime."""
    if type(ms) is int:
        if 0 <= ms < FAST_MS_LIMIT:
            return _fromtimestamp(ms / 1000, UTC)
        if 0 <= ms <= MAX_MS:
            return _EPOCH + timedelta(milliseconds=ms)
        raise MalformedMessage(f"{field}: {ms} ms is out of range")
    raise MalformedMessage(f"{field}: expected integer milliseconds, got {type(ms).__name__}")


def opt_ms_to_datetime(ms: Any, field: str) -> datetime | None:
    return None if ms is None else ms_to_datetime(ms, field)


def check_ms(ms: Any, field: str = "timestamp") -> int:
    """Milliseconds kept as an int (for rows that carry `timestamp_ms`)."""
    if type(ms) is int and 0 <= ms <= MAX_MS:
        return ms
    raise MalformedMessage(f"{field}: expected integer milliseconds in range")


def num(v: Any, field: str) -> float:
    """A finite JSON number as a float; a str, bool, None, NaN or inf raises."""
    if type(v) is float:
        if v - v == 0.0:  # false for NaN and +-inf
            return v
        raise MalformedMessage(f"{field}: not a finite number")
    if type(v) is int:
        try:
            return float(v)
        except OverflowError:
            raise MalformedMessage(f"{field}: number too large") from None
    raise MalformedMessage(f"{field}: expected a number, got {type(v).__name__}")


def opt_num(v: Any, field: str) -> float | None:
    if v is None:
        return None
    if type(v) is float and v - v == 0.0:  # the usual case, without a second call
        return v
    return num(v, field)


def amount(v: Any, field: str) -> float:
    """A finite number that is not negative (sizes, volumes)."""
    if type(v) is float and v - v == 0.0 and v >= 0.0:
        return v
    f = num(v, field)
    if f < 0.0:
        raise MalformedMessage(f"{field}: negative")
    return f


def opt_amount(v: Any, field: str) -> float | None:
    if v is None:
        return None
    if type(v) is float and v - v == 0.0 and v >= 0.0:
        return v
    return amount(v, field)


def integer(v: Any, field: str, lo: int = INT8_MIN, hi: int = INT8_MAX) -> int:
    """A JSON integer within [lo, hi] (default: what an int8 column holds)."""
    if type(v) is int and lo <= v <= hi:
        return v
    if type(v) is int:
        raise MalformedMessage(f"{field}: integer out of range")
    raise MalformedMessage(f"{field}: expected an integer, got {type(v).__name__}")


def opt_integer(v: Any, field: str, lo: int = INT8_MIN, hi: int = INT8_MAX) -> int | None:
    if v is None:
        return None
    if type(v) is int and lo <= v <= hi:
        return v
    return integer(v, field, lo, hi)


def text(v: Any, field: str) -> str:
    """A non-empty string PostgreSQL can store (no NUL character)."""
    if type(v) is str and v and "\x00" not in v:
        return v
    if type(v) is str:
        raise MalformedMessage(f"{field}: empty or holds NUL")
    raise MalformedMessage(f"{field}: expected a string, got {type(v).__name__}")


def opt_text(v: Any, field: str) -> str | None:
    if v is None:
        return None
    if type(v) is str and v and "\x00" not in v:
        return v
    return text(v, field)


def id_text(v: Any, field: str) -> str:
    """An identifier Deribit sends as a string or as a number (`combo_trade_id`): as text."""
    if type(v) is int:
        return str(v)
    return text(v, field)


def opt_id_text(v: Any, field: str) -> str | None:
    return None if v is None else id_text(v, field)


def require_dict(data: Any, what: str) -> dict[str, Any]:
    if type(data) is dict:
        return data
    raise MalformedMessage(f"{what}: expected an object, got {type(data).__name__}")


def require_list(data: Any, what: str) -> list[Any]:
    if type(data) is list:
        return data
    raise MalformedMessage(f"{what}: expected an array, got {type(data).__name__}")


def missing(what: str, err: KeyError) -> MalformedMessage:
    """The error for a `KeyError` raised while reading required fields."""
    return MalformedMessage(f"{what}: missing field {err.args[0]!r}")


def unknown_of(known: Mapping[str, frozenset[str]], kind: str, data: Any) -> frozenset[str]:
    """Fields of `data` not in `known[kind]`; empty (and allocation-free) in the usual case."""
    try:
        fields = known[kind]
    except KeyError:
        raise ValueError(f"unknown message kind {kind!r}; known: {', '.join(known)}") from None
    if type(data) is not dict or fields.issuperset(data):
        return EMPTY
    return frozenset(data.keys() - fields)


def side(
    price: Any, size: Any, price_field: str, amount_field: str
) -> tuple[float | None, float | None]:
    """One side of a best bid/ask as (price, amount), or (None, None) when the side is empty.

    Deribit marks an empty side with amount 0 (and price 0) or with nulls. A price of 0 with a
    size is a real quote (combo spreads trade at 0 and below), so emptiness is decided by the
    amount alone.
    """
    p = None if price is None else num(price, price_field)
    a = None if size is None else amount(size, amount_field)
    if p is None or a is None or a == 0.0:
        return None, None
    return p, a
