"""Trades, candles, funding and volatility history over REST (§7), from the market's stores.

Pagination: `sorting=asc` returns the oldest `count` trades of the requested range and
`desc`/`default` the newest, with `has_more` when the range holds more. So paging by
`start_seq = last + 1`, or by `start_timestamp = last_ts` (dropping repeated trade ids), or by
`start_id`, visits every trade exactly once. The main host hides trades of instruments that
have expired; the history host (`history=True`) serves them all.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from tests.fake_deribit.errors import instrument_not_found, invalid_params
from tests.fake_deribit.history import MINUTE_MS, Page, Series, select
from tests.fake_deribit.instruments import DAY_MS, Instrument
from tests.fake_deribit.market import Market
from tests.fake_deribit.payloads import PX_MARK, compute_px
from tests.fake_deribit.pricing import HOUR_MS
from tests.fake_deribit.rest_params import Params

MAX_COUNT = 1000
MAX_COUNT_HISTORY = 10_000
TRADE_CURRENCIES = ("BTC", "ETH", "USDC", "USDT", "EURR", "any")
TRADE_KINDS = ("future", "option", "spot", "future_combo", "option_combo", "combo", "any")
CHART_RESOLUTIONS = {
    "1": 1, "3": 3, "5": 5, "10": 10, "15": 15, "30": 30, "60": 60,
    "120": 120, "180": 180, "360": 360, "720": 720, "1D": 1440,
}  # fmt: skip
DVOL_RESOLUTIONS = {"1": 1, "60": 60, "3600": 3600, "43200": 43200, "1D": 86400}
MAX_CANDLES = 10_000
MAX_DVOL_POINTS = 1000
FUNDING_LENGTHS = {"8h": 8 * HOUR_MS, "24h": 24 * HOUR_MS, "1m": 30 * DAY_MS}


def _resolution_ms(p: Params, resolutions: dict[str, int], unit_ms: int) -> int:
    """The required `resolution` parameter, one of `resolutions` (in units of `unit_ms`)."""
    text = p.string("resolution", required=True)
    if text not in resolutions:
        raise invalid_params("wrong format", "resolution")
    return resolutions[text] * unit_ms


class TradeMethods:
    def __init__(self, market: Market) -> None:
        self.market = market

    def methods(self) -> dict[str, Callable[[Params], Any]]:
        return {
            "get_last_trades_by_instrument": self.by_instrument,
            "get_last_trades_by_instrument_and_time": self.by_instrument_and_time,
            "get_last_trades_by_currency": self.by_currency,
            "get_last_trades_by_currency_and_time": self.by_currency_and_time,
            "get_tradingview_chart_data": self.tradingview,
            "get_funding_rate_history": self.funding_history,
            "get_funding_rate_value": self.funding_value,
            "get_funding_chart_data": self.funding_chart,
            "get_volatility_index_data": self.volatility_index,
            "get_historical_volatility": self.historical_volatility,
        }

    # -- trades ----------------------------------------------------------------------------
    def _instrument(self, p: Params) -> Instrument:
        inst = self.market.instrument(p.string("instrument_name", required=True))
        if inst is None:
            raise instrument_not_found()
        return inst

    def _count_and_order(self, p: Params) -> tuple[int, bool]:
        count = p.integer("count", default=10)
        top = MAX_COUNT_HISTORY if p.history else MAX_COUNT
        if not 1 <= count <= top:
            raise invalid_params(f"must be between 1 and {top}", "count")
        sorting = p.choice("sorting", ("asc", "desc", "default"), default="default")
        return count, sorting == "asc"

    def _times(self, p: Params, required: bool) -> tuple[int | None, int | None]:
        return (
            p.integer("start_timestamp", required=required),
            p.integer("end_timestamp", required=required),
        )

    def _instrument_page(self, p: Params, required_times: bool) -> dict[str, Any]:
        inst = self._instrument(p)
        count, asc = self._count_and_order(p)
        ts = self._times(p, required_times)
        seq = (None, None) if required_times else (p.integer("start_seq"), p.integer("end_seq"))
        if not p.history and not self.market.on_main_host(inst):
            return Page([], False).as_result()
        series = self.market.trades.instrument(inst.name)
        return select(series, seq=seq, ts=ts, count=count, ascending=asc).as_result()

    def by_instrument(self, p: Params) -> dict[str, Any]:
        return self._instrument_page(p, False)

    def by_instrument_and_time(self, p: Params) -> dict[str, Any]:
        return self._instrument_page(p, True)

    def _currency_page(self, p: Params, required_times: bool) -> dict[str, Any]:
        cur = p.string("currency", required=True)
        if cur not in TRADE_CURRENCIES:
            raise invalid_params("invalid currency", "currency")
        kind = p.choice("kind", TRADE_KINDS, default="any")
        count, asc = self._count_and_order(p)
        ts = self._times(p, required_times)
        ords: tuple[int | None, int | None] = (None, None)
        if not required_times:
            ords = (self._ordinal(p, "start_id"), self._ordinal(p, "end_id"))
        series = self.market.trades.currency(cur, kind) if kind != "combo" else Series()
        keep = None if p.history else self._main_host_filter()
        return select(series, ts=ts, ords=ords, count=count, ascending=asc, keep=keep).as_result()

    def _ordinal(self, p: Params, param: str) -> int | None:
        trade_id = p.string(param)
        if trade_id is None:
            return None
        ordinal = self.market.trades.ordinal_of.get(trade_id)
        if ordinal is None:
            raise invalid_params("trade not found", param)
        return ordinal

    def _main_host_filter(self) -> Callable[[dict[str, Any]], bool] | None:
        m = self.market
        hidden = {i.name for i in m.by_name.values() if i.expired and not m.on_main_host(i)}
        if not hidden:
            return None
        return lambda t: t["instrument_name"] not in hidden

    def by_currency(self, p: Params) -> dict[str, Any]:
        return self._currency_page(p, False)

    def by_currency_and_time(self, p: Params) -> dict[str, Any]:
        return self._currency_page(p, True)

    # -- candles ---------------------------------------------------------------------------
    def tradingview(self, p: Params) -> dict[str, Any]:
        inst = self._instrument(p)
        start, end = self._times(p, True)
        assert start is not None and end is not None
        res = _resolution_ms(p, CHART_RESOLUTIONS, MINUTE_MS)
        out: dict[str, Any] = {k: [] for k in ("volume", "cost", "ticks")}
        out["status"] = "no_data"
        for k in ("open", "low", "high", "close"):
            out[k] = []
        now_minute = self.market.now_ms - self.market.now_ms % MINUTE_MS
        first_minute = max(start - start % res, inst.creation_ms - inst.creation_ms % MINUTE_MS)
        first_tick = first_minute - first_minute % res
        last_minute = min(end, now_minute, inst.expiry_ms - 1)
        last_minute -= last_minute % MINUTE_MS
        if last_minute < first_minute:
            return out
        last_minute = min(last_minute, first_minute + MAX_CANDLES * res)
        cs = self.market.currency_of(inst)

        def fallback(minute: int) -> float:
            return compute_px(cs.model, inst, minute)[PX_MARK]

        bars = self.market.candles.series(inst.name, first_minute, last_minute, fallback)
        buckets: dict[int, list[float]] = {}
        for minute, bar in bars:
            tick = minute - minute % res
            if tick < first_tick or tick > end:
                continue
            agg = buckets.get(tick)
            if agg is None:
                buckets[tick] = list(bar)
            else:
                agg[1] = max(agg[1], bar[1])
                agg[2] = min(agg[2], bar[2])
                agg[3] = bar[3]
                agg[4] += bar[4]
                agg[5] += bar[5]
        for tick in sorted(buckets):
            o, h, lo, c, v, cost = buckets[tick]
            out["ticks"].append(tick)
            out["open"].append(o)
            out["high"].append(h)
            out["low"].append(lo)
            out["close"].append(c)
            out["volume"].append(round(v, 8))
            out["cost"].append(round(cost, 8))
        if out["ticks"]:
            out["status"] = "ok"
        return out

    # -- funding ---------------------------------------------------------------------------
    def _perp(self, p: Params) -> Instrument:
        inst = self._instrument(p)
        if not inst.is_perp:
            raise invalid_params("not a perpetual instrument", "instrument_name")
        return inst

    def funding_history(self, p: Params) -> list[dict[str, Any]]:
        inst = self._perp(p)
        start, end = self._times(p, True)
        assert start is not None and end is not None
        model = self.market.currency_of(inst).model
        end = min(end, self.market.now_ms)
        start = max(start, end - 400 * DAY_MS)
        first = math.ceil(start / HOUR_MS) * HOUR_MS
        rows = []
        for hour in range(first, end + 1, HOUR_MS):
            rows.append(
                {
                    "timestamp": hour,
                    "index_price": model.index(hour),
                    "prev_index_price": model.index(hour - HOUR_MS),
                    "interest_8h": model.interest_8h(hour),
                    "interest_1h": model.interest_1h(hour),
                }
            )
        return rows

    def funding_value(self, p: Params) -> float:
        inst = self._perp(p)
        start, end = self._times(p, True)
        assert start is not None and end is not None
        model = self.market.currency_of(inst).model
        end = min(end, self.market.now_ms)
        first = (start // HOUR_MS + 1) * HOUR_MS
        return sum(model.interest_1h(h) for h in range(first, end + 1, HOUR_MS))

    def funding_chart(self, p: Params) -> dict[str, Any]:
        inst = self._perp(p)
        length = p.choice("length", tuple(FUNDING_LENGTHS), default=None)
        if length is None:
            raise invalid_params("value is required", "length")
        model = self.market.currency_of(inst).model
        now = self.market.now_ms
        last_hour = now - now % HOUR_MS
        data = [
            {"index_price": model.index(h), "interest_8h": model.interest_8h(h), "timestamp": h}
            for h in range(last_hour - FUNDING_LENGTHS[length] + HOUR_MS, last_hour + 1, HOUR_MS)
        ]
        return {
            "current_interest": round(model.current_funding(now), 10),
            "data": data,
            "interest_8h": model.interest_8h(last_hour),
        }

    # -- volatility ------------------------------------------------------------------------
    def _dvol_currency(self, p: Params) -> Any:
        cur = p.string("currency", required=True)
        cs = self.market.currencies.get(cur)
        if cs is None or not cs.setup.has_dvol:
            raise invalid_params("invalid currency", "currency")
        return cs

    def volatility_index(self, p: Params) -> dict[str, Any]:
        """OHLC of DVOL, newest page first: pass `continuation` back as `end_timestamp`."""
        cs = self._dvol_currency(p)
        start, end = self._times(p, True)
        assert start is not None and end is not None
        res = _resolution_ms(p, DVOL_RESOLUTIONS, 1000)
        end = min(end, self.market.now_ms)
        first = math.ceil(start / res) * res
        last = end - end % res
        if last < first:
            return {"data": [], "continuation": None}
        lo_tick = max(first, last - (MAX_DVOL_POINTS - 1) * res)
        model = cs.model
        step = max(1000, res // 30)
        data = []
        for tick in range(lo_tick, last + 1, res):
            samples = [model.dvol(t) for t in range(tick, min(tick + res, end + 1), step)]
            data.append([tick, samples[0], max(samples), min(samples), samples[-1]])
        continuation = lo_tick - 1 if lo_tick > first else None
        return {"data": data, "continuation": continuation}

    def historical_volatility(self, p: Params) -> list[list[float]]:
        cur = p.string("currency", required=True)
        cs = self.market.currencies.get(cur)
        if cs is None:
            raise invalid_params("invalid currency", "currency")
        now = self.market.now_ms
        last = now - now % HOUR_MS
        return [
            [h, round(cs.model.dvol_path.at_second(h // 1000) * 0.85, 6)]
            for h in range(last - 15 * DAY_MS, last + 1, HOUR_MS)
        ]
