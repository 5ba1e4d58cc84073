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
from datetime import datetime
from functools import partial
from itertools import repeat
from operator import itemgetter
from typing import Any

import numpy as np

from scripts.deribit.channels import parse_instrument_name
from scripts.models import QuoteRow
from scripts.normalize.common import MalformedMessage, check_ms, missing, num, require_dict, text
from scripts.normalize.implied_vol import YEAR_S, implied_vol_pct

_timestamp = datetime.timestamp
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
        expiry = int(meta.expires_at.timestamp() * 1000)
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
        ts_s = np.fromiter(map(_timestamp, map(_TIMESTAMP, rows)), np.float64, n)
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
        self.rows_enriched += int(got.sum())
        self.rows_stale += int(todo.sum()) - int(got.sum())
        if not got.any():
            return list(rows)
        years = (exp_ms / 1000.0 - ts_s) / YEAR_S
        k = strike[safe]
        call = is_call[safe]
        lin = linear[safe]
        # Both sides in one pass: bids then asks (None prices become NaN).
        prices = np.array(list(map(_BID, rows)) + list(map(_ASK, rows)), dtype=np.float64)
        two = np.concatenate
        ivs = implied_vol_pct(
            prices,
            two((fwd, fwd)),
            two((k, k)),
            two((years, years)),
            two((call, call)),
            two((lin, lin)),
        )
        ivs = np.round(ivs, IV_DECIMALS)
        new_bid = _with_nulls(ivs[:n], got, list(map(_BID_IV, rows)))
        new_ask = _with_nulls(ivs[n:], got, list(map(_ASK_IV, rows)))
        new_und = _with_nulls(fwd, got, old_und)
        # Plain tuples in QuoteRow's field order: the writer copies (or spools) tuples, and
        # skipping the named type's constructor saves about a tenth of this function's time.
        return [
            (*r[:6], b, a, r[8], r[9], u, r[11])
            for r, b, a, u in zip(rows, new_bid, new_ask, new_und, strict=True)
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


def _with_nulls(values: np.ndarray, chosen: np.ndarray, old: Sequence[Any]) -> list[Any]:
    """`values` where chosen and not NaN, None where chosen and NaN, `old` elsewhere."""
    out = values.astype(object)
    out[np.isnan(values)] = None
    if not chosen.all():
        keep = ~chosen
        previous = np.empty(len(old), dtype=object)
        previous[:] = old
        out[keep] = previous[keep]
    result: list[Any] = out.tolist()
    return result
