"""Every trade the market made (history and live), indexed for Deribit's trade pagination, and
the 1-minute candles of futures and perpetuals built from them.

The trade dicts stored here are the very objects the stream sent, so REST pages and stream
messages are equal by construction.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable
from typing import Any

from tests.fake_deribit.instruments import Instrument

MINUTE_MS = 60_000

Trade = dict[str, Any]


class Series:
    """Trades in generation order with parallel sort keys (all non-decreasing)."""

    __slots__ = ("ords", "seqs", "trades", "ts")

    def __init__(self) -> None:
        self.trades: list[Trade] = []
        self.ts: list[int] = []
        self.ords: list[int] = []
        self.seqs: list[int] = []


class Page:
    __slots__ = ("has_more", "trades")

    def __init__(self, trades: list[Trade], has_more: bool) -> None:
        self.trades = trades
        self.has_more = has_more

    def as_result(self) -> dict[str, Any]:
        return {"trades": self.trades, "has_more": self.has_more}


def _bounds(keys: list[int], lo: int | None, hi: int | None, a: int, b: int) -> tuple[int, int]:
    if lo is not None:
        a = max(a, bisect_left(keys, lo))
    if hi is not None:
        b = min(b, bisect_right(keys, hi))
    return a, b


def select(
    series: Series,
    *,
    seq: tuple[int | None, int | None] = (None, None),
    ts: tuple[int | None, int | None] = (None, None),
    ords: tuple[int | None, int | None] = (None, None),
    count: int,
    ascending: bool,
    keep: Callable[[Trade], bool] | None = None,
) -> Page:
    """Up to `count` trades inside every given inclusive range, oldest first when
    `ascending` (from the low end of the range) else newest first (from the high end);
    `has_more` says whether the range holds more trades than were returned."""
    a, b = 0, len(series.trades)
    a, b = _bounds(series.seqs, seq[0], seq[1], a, b)
    a, b = _bounds(series.ts, ts[0], ts[1], a, b)
    a, b = _bounds(series.ords, ords[0], ords[1], a, b)
    trades = series.trades
    if b <= a:
        return Page([], False)
    if keep is None:
        if ascending:
            return Page(trades[a : min(b, a + count)], b - a > count)
        out = trades[max(a, b - count) : b]
        out.reverse()
        return Page(out, b - a > count)
    picked: list[Trade] = []
    indices = range(a, b) if ascending else range(b - 1, a - 1, -1)
    for i in indices:
        t = trades[i]
        if keep(t):
            if len(picked) == count:
                return Page(picked, True)
            picked.append(t)
    return Page(picked, False)


class TradeStore:
    """Trades by instrument, by (api currency, kind) and by trade id."""

    def __init__(self) -> None:
        self.by_instrument: dict[str, Series] = {}
        self.by_currency: dict[tuple[str, str], Series] = {}
        self.ordinal_of: dict[str, int] = {}
        self._next_ordinal = 0

    def add(self, inst: Instrument, trade: Trade) -> None:
        ordinal = self._next_ordinal
        self._next_ordinal += 1
        self.ordinal_of[trade["trade_id"]] = ordinal
        ts = trade["timestamp"]
        seq = trade["trade_seq"]
        series = self.by_instrument.get(inst.name)
        if series is None:
            series = self.by_instrument[inst.name] = Series()
        for s in (
            series,
            self._currency(inst.group, inst.kind),
            self._currency(inst.group, "any"),
            self._currency("any", inst.kind),
            self._currency("any", "any"),
        ):
            s.trades.append(trade)
            s.ts.append(ts)
            s.ords.append(ordinal)
            s.seqs.append(seq)

    def _currency(self, group: str, kind: str) -> Series:
        key = (group, kind)
        s = self.by_currency.get(key)
        if s is None:
            s = self.by_currency[key] = Series()
        return s

    def instrument(self, name: str) -> Series:
        return self.by_instrument.get(name) or Series()

    def currency(self, group: str, kind: str) -> Series:
        return self.by_currency.get((group, kind)) or Series()

    def all_trades(self) -> list[Trade]:
        return list(self.currency("any", "any").trades)


class Candles:
    """1-minute OHLCV per instrument, updated per trade; `[open, high, low, close, volume, cost]`
    with volume in the base currency and cost in the quote currency (§6.7)."""

    def __init__(self) -> None:
        self.bars: dict[str, dict[int, list[float]]] = {}
        self.minutes: dict[str, list[int]] = {}

    def add_trade(
        self, name: str, ts: int, price: float, volume: float, cost: float
    ) -> list[float]:
        minute = ts - ts % MINUTE_MS
        bars = self.bars.get(name)
        if bars is None:
            bars = self.bars[name] = {}
            self.minutes[name] = []
        bar = bars.get(minute)
        if bar is None:
            bar = bars[minute] = [price, price, price, price, 0.0, 0.0]
            self.minutes[name].append(minute)
        elif price > bar[1]:
            bar[1] = price
        elif price < bar[2]:
            bar[2] = price
        bar[3] = price
        bar[4] += volume
        bar[5] += cost
        return bar

    def last_close_before(self, name: str, minute: int) -> float | None:
        minutes = self.minutes.get(name)
        if not minutes:
            return None
        i = bisect_left(minutes, minute)
        if i == 0:
            return None
        return self.bars[name][minutes[i - 1]][3]

    def bar(self, name: str, minute: int) -> list[float] | None:
        bars = self.bars.get(name)
        return None if bars is None else bars.get(minute)

    def series(
        self, name: str, first_minute: int, last_minute: int, fallback: Callable[[int], float]
    ) -> list[tuple[int, list[float]]]:
        """Every minute in [first, last]: the traded bar, or a filler from the previous close."""
        close = self.last_close_before(name, first_minute)
        if close is None:
            close = fallback(first_minute)
        bars = self.bars.get(name, {})
        out: list[tuple[int, list[float]]] = []
        for minute in range(first_minute, last_minute + 1, MINUTE_MS):
            bar = bars.get(minute)
            if bar is None:
                bar = [close, close, close, close, 0.0, 0.0]
            close = bar[3]
            out.append((minute, bar))
        return out


def candle_payload(minute: int, bar: list[float]) -> dict[str, Any]:
    """The `chart.trades` data object of a bar (same numbers as tradingview REST)."""
    return {
        "tick": minute,
        "open": bar[0],
        "high": bar[1],
        "low": bar[2],
        "close": bar[3],
        "volume": round(bar[4], 8),
        "cost": round(bar[5], 8),
    }
