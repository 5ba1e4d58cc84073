"""Forwards from option tickers, and the quote rows' `underlying_price`, `bid_iv`, `ask_iv`.

Deribit's `underlying_price` in an option ticker is the forward that expiry's options are
priced on (the future of that date, or a synthetic one). The real-time collector follows one
ticker per expiry and hands each frame's forward to `ForwardCurves.note`; `enrich` then
completes a whole batch of quote rows at once (the writer calls it as it takes a flush batch,
so the per-message path only appends rows, as before):

- `underlying_price`: the expiry's forward in force at the quote's exchange timestamp (the
  newest one stamped at or before it);
- `bid_iv`, `ask_iv`: Black-76 IVs in percent of the best bid and ask against that forward
  (`implied_vol`), time to expiry from the quote's timestamp to the expiry's 08:00 UTC,
  rounded to 0.01 like Deribit's.

A quote whose forward is older than `max_age_ms` (exchange time), or that has none yet, keeps
all three NULL: never a stale forward. A price with no IV (at or below intrinsic value, a
missing side) gives a NULL IV. Rows that already carry an `underlying_price` (made from a
ticker frame, with Deribit's own IVs) are left as they are.

Pure: no clock, no I/O; time is the rows' and frames' exchange timestamps.
"""

from __future__ import annotations

import operator
from bisect import bisect_right
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from functools import partial
from itertools import repeat
from operator import itemgetter
from typing import Any

import numpy as np

from scripts.clock import ms_from_utc
from scripts.deribit.channels import parse_instrument_name
from scripts.models import QuoteRow
from scripts.normalize.common import MalformedMessage, check_ms, missing, num, require_dict, text
from scripts.normalize.implied_vol import YEAR_S, implied_vol_pct

_timestamp = datetime.timestamp
_total_seconds = timedelta.total_seconds
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)
_MAX_OFFSET_S = 1e8  # three years: offsets in microseconds stay exact in a float64
_is_none = partial(operator.is_, None)
_TIMESTAMP, _NAME, _BID, _ASK = (itemgetter(QuoteRow._fields.index(f)) for f in (
    "timestamp", "instrument_name", "best_bid_price", "best_ask_price"))  # fmt: skip
_BID_IV, _ASK_IV, _UNDERLYING = (itemgetter(QuoteRow._fields.index(f)) for f in (
    "bid_iv", "ask_iv", "underlying_price"))  # fmt: skip
# IVs are kept to Deribit's own precision (0.01 vol point, as its mark_iv): finer digits
# carry no information at a price tick, and equal neighbours compress to almost nothing.
IV_DECIMALS = 2
HISTORY_POINTS = 600  # forwards kept per expiry: ten minutes of one-a-second tickers


def parse_forward(data: Any) -> tuple[str, int, float] | None:
    """An option ticker's (instrument_name, timestamp ms, underlying_price); None when the
    frame carries no forward (a null or absent `underlying_price`)."""
    d = require_dict(data, "ticker")
    try:
        name = d["instrument_name"]
        ts = d["timestamp"]
    except KeyError as e:
        raise missing("ticker", e) from None
    value = d.get("underlying_price")
    if value is None:
        return None
    price = num(value, "underlying_price")
    if not price > 0.0:
        raise MalformedMessage("underlying_price: not a positive price")
    return text(name, "instrument_name"), check_ms(ts), price


class ForwardCurves:
    """The recent forwards of each expiry, and the batch enrichment of quote rows."""

    def __init__(self, *, max_age_ms: int) -> None:
        self.max_age_ms = max_age_ms
        self._stamps: dict[int, list[int]] = {}  # expiry ms -> forward timestamps, ascending
        self._values: dict[int, list[float]] = {}
        # Per instrument: its index in the arrays below, -1 when not a known option.
        self._ids: dict[str, int] = {}
        self._expiry: list[float] = []
        self._strike: list[float] = []
        self._call: list[bool] = []
        self._linear: list[bool] = []
        self._arrays: tuple[np.ndarray, ...] = ()  # set with the first option registered
        self.rows_enriched = 0  # rows given an underlying_price
        self.rows_stale = 0  # rows left NULL: no forward, or one older than max_age_ms

    # ---- forwards -------------------------------------------------------------------------
    def note(self, instrument_name: str, timestamp_ms: int, forward: float) -> bool:
        """Records the forward of the instrument's expiry at `timestamp_ms`; False (nothing
        recorded) for a name that is not an option."""
        try:
            meta = parse_instrument_name(instrument_name)
        except ValueError:
            return False
        if meta.kind != "option" or meta.expires_at is None:
            return False
        expiry = ms_from_utc(meta.expires_at)
        stamps = self._stamps.get(expiry)
        if stamps is None:
            stamps = self._stamps[expiry] = []
            self._values[expiry] = []
        values = self._values[expiry]
        if not stamps or timestamp_ms >= stamps[-1]:
            stamps.append(timestamp_ms)
            values.append(forward)
        else:  # frames of two sockets may interleave
            i = bisect_right(stamps, timestamp_ms)
            stamps.insert(i, timestamp_ms)
            values.insert(i, forward)
        if len(stamps) > 2 * HISTORY_POINTS:
            del stamps[:-HISTORY_POINTS]
            del values[:-HISTORY_POINTS]
        return True

    def forget_expired(self, now_ms: int) -> None:
        """Drops the forwards of expiries that are over."""
        for expiry in [e for e in self._stamps if e <= now_ms]:
            del self._stamps[expiry]
            del self._values[expiry]

    def latest(self, expiry_ms: int) -> tuple[int, float] | None:
        """The newest (timestamp ms, forward) of an expiry."""
        stamps = self._stamps.get(expiry_ms)
        if not stamps:
            return None
        return stamps[-1], self._values[expiry_ms][-1]

    # ---- quote rows -----------------------------------------------------------------------
    def enrich(self, rows: Sequence[tuple]) -> list[tuple]:
        """The rows (QuoteRow field order) with `underlying_price`, `bid_iv` and `ask_iv`
        filled in (see the module doc); same order, same length."""
        n = len(rows)
        if n == 0:
            return list(rows)
        names = list(map(_NAME, rows))
        ids_get = self._ids.get
        ids = np.fromiter(map(ids_get, names, repeat(-2)), np.intp, n)
        if (ids == -2).any():
            for name in set(names):
                if name not in self._ids:
                    self._register(name)
            ids = np.fromiter(map(self._ids.__getitem__, names), np.intp, n)
        known = ids >= 0
        if not known.any():  # no option in the batch
            return list(rows)
        expiry, strike, is_call, linear = self._arrays
        ts_s = _seconds(list(map(_TIMESTAMP, rows)))
        ts_ms = ts_s * 1000.0
        safe = np.where(known, ids, 0)
        exp_ms = np.where(known, expiry[safe], np.nan)
        fwd = np.full(n, np.nan)
        old_und = list(map(_UNDERLYING, rows))
        todo = known & np.fromiter(map(_is_none, old_und), np.bool_, n)
        for e in np.unique(exp_ms[todo]):
            stamps = self._stamps.get(int(e))
            if not stamps:
                continue
            sel = np.nonzero(todo & (exp_ms == e))[0]
            st = np.asarray(stamps, dtype=np.float64)
            pos = np.searchsorted(st, ts_ms[sel], side="right") - 1
            has = pos >= 0
            pos_ok = np.where(has, pos, 0)
            fresh = has & (ts_ms[sel] - st[pos_ok] <= self.max_age_ms)
            vals = np.asarray(self._values[int(e)], dtype=np.float64)
            fwd[sel[fresh]] = vals[pos_ok[fresh]]
        got = ~np.isnan(fwd)
        n_got = int(got.sum())
        self.rows_enriched += n_got
        self.rows_stale += int(todo.sum()) - n_got
        if n_got == 0:
            return list(rows)
        # IVs of the rows given a forward only, both sides in one pass: bids then asks (None
        # prices become NaN).
        sel = np.nonzero(got)[0]
        f, ex, k = fwd[sel], exp_ms[sel], strike[safe[sel]]
        years = (ex / 1000.0 - ts_s[sel]) / YEAR_S
        call, lin = is_call[safe[sel]], linear[safe[sel]]
        bids = np.array(list(map(_BID, rows)), dtype=np.float64)[sel]
        asks = np.array(list(map(_ASK, rows)), dtype=np.float64)[sel]
        two = np.concatenate
        prices, forwards = two((bids, asks)), two((f, f))
        ivs = implied_vol_pct(
            prices,
            forwards,
            two((k, k)),
            two((years, years)),
            two((call, call)),
            two((lin, lin)),
            _repeats(two((ids[sel], ids[sel])), prices, forwards),
        )
        ivs = np.round(ivs, IV_DECIMALS)
        keep = None if n_got == n else np.nonzero(~got)[0].tolist()
        m = sel.size
        new_bid = _column(ivs[:m], sel, n, keep, rows, 6)
        new_ask = _column(ivs[m:], sel, n, keep, rows, 7)
        new_und = _column(f, sel, n, keep, rows, 10)
        # Plain tuples in QuoteRow's field order: the writer copies (or spools) tuples, and
        # skipping the named type's constructor saves about a tenth of this function's time.
        return [
            (t, name, bp, ba, ap, aa, b, a, miv, mp, u, recv)
            for (t, name, bp, ba, ap, aa, _, _, miv, mp, _, recv), b, a, u in zip(
                rows, new_bid, new_ask, new_und, strict=True
            )
        ]

    def _register(self, name: str) -> None:
        try:
            meta = parse_instrument_name(name)
        except ValueError:
            meta = None
        if meta is None or meta.kind != "option" or meta.expires_at is None:
            self._ids[name] = -1
            return
        self._ids[name] = len(self._expiry)
        self._expiry.append(meta.expires_at.timestamp() * 1000.0)
        self._strike.append(float(meta.strike or 0.0))
        self._call.append(meta.option_type == "call")
        self._linear.append(meta.linear)
        self._arrays = (
            np.array(self._expiry, dtype=np.float64),
            np.array(self._strike, dtype=np.float64),
            np.array(self._call, dtype=np.bool_),
            np.array(self._linear, dtype=np.bool_),
        )


def _seconds(stamps: list[datetime]) -> np.ndarray:
    """`datetime.timestamp()` of each (aware) datetime, as a float64 array: the same floats,
    exact microseconds over 1e6, from each one's small offset to the first, which costs half
    as much as `timestamp()` itself."""
    n = len(stamps)
    ref = stamps[0]
    if type(ref.tzinfo) is timezone:  # a fixed offset: subtraction is exact elapsed time
        try:
            rel = np.fromiter(
                map(_total_seconds, map(operator.sub, stamps, repeat(ref))), np.float64, n
            )
        except TypeError:  # a naive datetime among aware ones
            rel = None
        # Exact microseconds back from the offsets while they are far below 2^51 us.
        if rel is not None and np.abs(rel).max() < _MAX_OFFSET_S:
            ref_us = (ref - _EPOCH) // _ONE_US
            return (np.rint(rel * 1e6).astype(np.int64) + ref_us) / 1e6
    return np.fromiter(map(_timestamp, stamps), np.float64, n)


def _repeats(ids: np.ndarray, prices: np.ndarray, forwards: np.ndarray) -> np.ndarray | None:
    """For each quote side, the index of the first of its run of sides of the same option at
    the same price and forward (amounts change more often than prices): their IVs differ only
    by time to expiry. None when the ids are too many for numpy's radix sort."""
    n = ids.size
    if n < 2 or int(ids.max()) > np.iinfo(np.uint16).max:
        return None
    order = np.argsort(ids.astype(np.uint16), kind="stable")  # by option, then batch order
    i, p, f = ids[order], prices[order].view(np.int64), forwards[order].view(np.int64)
    same = (i[1:] == i[:-1]) & (p[1:] == p[:-1]) & (f[1:] == f[:-1])
    if not same.any():
        return None
    start = np.arange(n)
    start[1:][same] = 0
    run = order[np.maximum.accumulate(start)]
    first = np.empty(n, dtype=np.intp)
    first[order] = run
    return first


def _column(
    values: np.ndarray,
    sel: np.ndarray,
    n: int,
    keep: list[int] | None,
    rows: Sequence[tuple],
    field: int,
) -> list[Any]:
    """A column of `n` rows: `values` at the rows `sel` (None where NaN), the row's own value
    at the rows `keep` (None: there are none)."""
    full = np.full(n, np.nan)
    full[sel] = values
    out: list[Any] = full.tolist()
    nulls = np.nonzero(np.isnan(values))[0]
    for i in sel[nulls].tolist():
        out[i] = None
    if keep is not None:
        for i in keep:
            out[i] = rows[i][field]
    return out
