"""Ticker, order-book and book-summary objects of the fake market, with Deribit's field names
and units (§5.3, §6.1, §7): option prices in the base coin for inverse books and in USDC for
linear ones, IVs in percent, greeks from Black-76.
"""

from __future__ import annotations

import math
from typing import Any

from tests.fake_deribit.books import top
from tests.fake_deribit.instruments import DAY_MS, EXPIRY_HOUR_UTC, Instrument
from tests.fake_deribit.pricing import HOUR_MS, MS_PER_YEAR, PriceModel, black76_iv

_SQRT2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)

# px tuple: (index, underlying, mark, iv_fraction, delta, gamma, vega, theta, rho, vega_usd);
# the greeks are raw floats, rounded by `greeks` when a ticker shows them.
PX_INDEX, PX_UNDERLYING, PX_MARK, PX_IV = 0, 1, 2, 3
_SMILE_MIN_YEARS = 1.0 / (365 * 24)  # as pricing.smile_vol
_BLACK_MIN_YEARS = 1e-7  # as pricing.black76


def compute_px(model: PriceModel, inst: Instrument, ms: int) -> tuple[float, ...]:
    index = model.index(ms)
    if inst.kind != "option":
        if inst.is_perp:
            mark = model.perp_price(ms)
        else:
            mark = round(model.forward(ms, inst.expiry_ms), inst.cur.index_digits)
        return (index, mark, mark, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    atm = model.atm_vol(ms)
    return option_px(index, atm, expiry_terms(model, ms, inst.expiry_ms, atm, inst), inst)


def expiry_terms(
    model: PriceModel, ms: int, expiry_ms: int, atm: float, inst: Instrument
) -> tuple[float, ...]:
    """What every option of one expiry shares at `ms`: (forward, underlying, smile
    denominator, years for Black-76, their square root)."""
    years = max(0.0, (expiry_ms - ms) / MS_PER_YEAR)
    fwd = model.forward(ms, expiry_ms)
    smile_t = years if years > _SMILE_MIN_YEARS else _SMILE_MIN_YEARS
    t = years if years > _BLACK_MIN_YEARS else _BLACK_MIN_YEARS
    return (fwd, round(fwd, inst.cur.index_digits), atm * math.sqrt(smile_t), t, math.sqrt(t))


def option_px(
    index: float, atm: float, terms: tuple[float, ...], inst: Instrument
) -> tuple[float, ...]:
    """pricing.smile_vol and pricing.black76 inlined, operation for operation (the markprice
    of every option, every second, runs through here; a unit test holds them equal)."""
    fwd, underlying, smile_den, t, rt = terms
    strike = inst.strike
    x = math.log(strike / fwd) / smile_den
    x = -4.0 if x < -4.0 else (4.0 if x > 4.0 else x)
    sigma = atm * (1.0 + 0.03 * x * x - 0.03 * x)
    sq = sigma * rt
    d1 = (math.log(fwd / strike) + 0.5 * sq * sq) / sq
    d2 = d1 - sq
    pdf = _INV_SQRT_2PI * math.exp(-0.5 * d1 * d1)
    if inst.is_call:
        nd1 = 0.5 * (1.0 + math.erf(d1 / _SQRT2))
        nd2 = 0.5 * (1.0 + math.erf(d2 / _SQRT2))
        value = fwd * nd1 - strike * nd2
        delta = nd1
        rho = strike * t * nd2 / 100.0
    else:
        nd1 = 0.5 * (1.0 + math.erf(-d1 / _SQRT2))
        nd2 = 0.5 * (1.0 + math.erf(-d2 / _SQRT2))
        value = strike * nd2 - fwd * nd1
        delta = -nd1
        rho = -strike * t * nd2 / 100.0
    if value < 0.0:
        value = 0.0
    gamma = pdf / (fwd * sq)
    vega = fwd * pdf * rt / 100.0
    theta = -fwd * pdf * sigma / (2.0 * rt) / 365.0
    mark = round(value, 4) if inst.cur.linear else round(value / fwd, 8)
    return (index, underlying, mark, round(sigma, 4), delta, gamma, vega, theta, rho, vega)


def greeks(p: tuple[float, ...]) -> dict[str, float]:
    """The ticker's `greeks` object from a px tuple."""
    return {
        "delta": round(p[4], 5) + 0.0,  # + 0.0 turns -0.0 into 0.0
        "gamma": round(p[5], 5) + 0.0,
        "vega": round(p[6], 5) + 0.0,
        "theta": round(p[7], 5) + 0.0,
        "rho": round(p[8], 5) + 0.0,
    }


def px(model: PriceModel, inst: Instrument, ms: int) -> tuple[float, ...]:
    """Prices and greeks of `inst` for the second of `ms` (cached: many callers per second)."""
    sec = ms // 1000
    if inst.px_sec != sec:
        # Priced at the whole second, so the cache never depends on who asked first.
        inst.px = compute_px(model, inst, sec * 1000)
        inst.px_sec = sec
    return inst.px


def chain_px(model: PriceModel, options: list[Instrument], ms: int) -> None:
    """Fill the `px` cache of a whole option chain for the second of `ms`: the values `px`
    would compute, with what one second and one expiry share worked out once."""
    sec = ms // 1000
    at = sec * 1000
    index = model.index(at)
    atm = model.atm_vol(at)
    shared: dict[int, tuple[float, ...]] = {}
    for o in options:
        if o.px_sec == sec:
            continue
        expiry = o.expiry_ms
        terms = shared.get(expiry)
        if terms is None:
            terms = shared[expiry] = expiry_terms(model, at, expiry, atm, o)
        o.px = option_px(index, atm, terms, o)
        o.px_sec = sec


def price_iv(inst: Instrument, p: tuple[float, ...], price: float) -> float:
    """IV (percent) of an option price, first order around the mark."""
    if price <= 0:
        return 0.0
    scale = 1.0 if inst.cur.linear else p[PX_UNDERLYING]
    vega_usd = p[9]
    iv = p[PX_IV] * 100.0
    if vega_usd > 1e-9:
        iv += (price - p[PX_MARK]) * scale / vega_usd
    return round(min(500.0, max(1.0, iv)), 2)


def quote_iv(inst: Instrument, p: tuple[float, ...], price: float, ms: int) -> float:
    """A ticker's bid/ask IV (percent): the exact Black-76 IV of the price against the
    ticker's `underlying_price` at the ticker's time, as Deribit's; 0.0 where none exists."""
    forward = p[PX_UNDERLYING]
    usd = price if inst.cur.linear else price * forward
    years = (inst.expiry_ms - ms) / MS_PER_YEAR
    sigma = black76_iv(usd, forward, inst.strike, years, inst.is_call)
    return 0.0 if sigma is None else round(sigma * 100.0, 2)


def usd_value(inst: Instrument, price: float, amount: float, index: float) -> float:
    """volume_usd of a trade: inverse futures are quoted in USD amounts already."""
    if inst.cur.linear:
        return amount * price
    if inst.kind == "option":
        return amount * price * index
    return amount


def base_volume(inst: Instrument, price: float, amount: float) -> float:
    """Trade size in the base coin: inverse futures amounts are USD."""
    if inst.kind == "future" and not inst.cur.linear:
        return amount / price
    return amount


def record_stats(inst: Instrument, ts: int, price: float, amount: float, index: float) -> None:
    hour = ts // HOUR_MS
    b = inst.hourly.get(hour)
    vol = base_volume(inst, price, amount)
    usd = usd_value(inst, price, amount, index)
    if b is None:
        inst.hourly[hour] = [vol, usd, price, price, price]
        if len(inst.hourly) > 30:
            for h in [h for h in inst.hourly if h < hour - 24]:
                del inst.hourly[h]
        return
    b[0] += vol
    b[1] += usd
    if price > b[2]:
        b[2] = price
    if price < b[3]:
        b[3] = price


def stats(inst: Instrument, ms: int) -> dict[str, Any]:
    """The ticker's 24 h `stats` object (shared between calls until a trade or a new hour:
    treat it as read-only)."""
    hour = ms // HOUR_MS
    cached = inst.stats_cache
    if cached[0] == hour and cached[1] == inst.trade_seq:
        return cached[2]
    vol = usd = 0.0
    high: float | None = None
    low: float | None = None
    first: float | None = None
    hourly = inst.hourly
    for h in range(hour - 23, hour + 1):
        b = hourly.get(h)
        if b is None:
            continue
        vol += b[0]
        usd += b[1]
        high = b[2] if high is None or b[2] > high else high
        low = b[3] if low is None or b[3] < low else low
        if first is None:
            first = b[4]
    change = None
    if first and inst.last_price is not None:
        change = round((inst.last_price - first) / first * 100.0, 4)
    out = {
        "volume": round(vol, 8),
        "volume_usd": round(usd, 2),
        "price_change": change,
        "low": low,
        "high": high,
    }
    inst.stats_cache = (hour, inst.trade_seq, out)
    return out


def _settlement(model: PriceModel, inst: Instrument, ms: int) -> float:
    day = ms - ms % DAY_MS + EXPIRY_HOUR_UTC * HOUR_MS
    if day > ms:
        day -= DAY_MS
    if inst.settle[0] != day:
        inst.settle = (day, compute_px(model, inst, max(day, inst.creation_ms))[PX_MARK])
    return inst.settle[1]


def _band(inst: Instrument, mark: float) -> tuple[float, float]:
    if inst.kind == "option":
        lo = max(inst.tick, mark * 0.7 - 0.005 * (1 if not inst.cur.linear else 100))
        hi = mark * 1.3 + (0.01 if not inst.cur.linear else 1.0)
    else:
        lo, hi = mark * 0.985, mark * 1.015
    d = inst.tick_digits
    return round(lo, d), round(hi, d)


def ticker(model: PriceModel, inst: Instrument, ms: int) -> dict[str, Any]:
    """The `ticker.{instrument}.{interval}` object (and `public/ticker` result) at `ms`."""
    p = px(model, inst, min(ms, inst.expiry_ms))
    bid_p, bid_a, ask_p, ask_a = top(inst)
    lo, hi = _band(inst, p[PX_MARK])
    out: dict[str, Any] = {
        "timestamp": ms,
        "instrument_name": inst.name,
        "state": "closed" if inst.expired else "open",
        "best_bid_price": bid_p,
        "best_bid_amount": bid_a,
        "best_ask_price": ask_p,
        "best_ask_amount": ask_a,
        "last_price": inst.last_price,
        "mark_price": p[PX_MARK],
        "index_price": p[PX_INDEX],
        "estimated_delivery_price": p[PX_INDEX],
        "min_price": lo,
        "max_price": hi,
        "open_interest": round(inst.open_interest, 8),
        "stats": stats(inst, ms),
    }
    if inst.expired:
        out["delivery_price"] = p[PX_INDEX]
    else:
        out["settlement_price"] = _settlement(model, inst, ms)
    if inst.kind == "option":
        out["underlying_price"] = p[PX_UNDERLYING]
        out["underlying_index"] = inst.underlying
        out["interest_rate"] = 0.0
        out["mark_iv"] = round(p[PX_IV] * 100.0, 2)
        out["bid_iv"] = quote_iv(inst, p, bid_p, ms) if bid_a else 0.0
        out["ask_iv"] = quote_iv(inst, p, ask_p, ms) if ask_a else 0.0
        out["greeks"] = greeks(p)
    elif inst.is_perp:
        hour = ms - ms % HOUR_MS
        out["current_funding"] = round(model.current_funding(ms), 8)
        out["funding_8h"] = round(model.interest_8h(hour), 8)
        out["interest_value"] = round(model.interest_8h(hour) * 100.0, 10)
    return out


def order_book(model: PriceModel, inst: Instrument, ms: int, depth: int) -> dict[str, Any]:
    """`public/get_order_book`: the ticker fields plus `bids`/`asks` and `change_id`."""
    out = ticker(model, inst, ms)
    # Like Deribit's: the time of the book's last change, not of the reply (protocol notes
    # §6.5, §13.2; the recorded replies are stamped before their usIn).
    out["timestamp"] = inst.book_ts if not inst.expired else ms
    out["change_id"] = inst.change_id
    out["bids"] = [[pr, a] for pr, a in inst.bids[:depth]]
    out["asks"] = [[pr, a] for pr, a in inst.asks[:depth]]
    return out


def book_summary(model: PriceModel, inst: Instrument, ms: int) -> dict[str, Any]:
    """One element of `get_book_summary_by_currency` / `_by_instrument` (no greeks, §7)."""
    p = px(model, inst, min(ms, inst.expiry_ms))
    bid_p, _, ask_p, _ = top(inst)
    st = stats(inst, ms)
    bid = bid_p or None
    ask = ask_p or None
    out: dict[str, Any] = {
        "volume_usd": st["volume_usd"],
        "volume": st["volume"],
        "quote_currency": inst.info["quote_currency"],
        "price_change": st["price_change"],
        "open_interest": round(inst.open_interest, 8),
        "mid_price": round((bid + ask) / 2, inst.tick_digits + 1) if bid and ask else None,
        "mark_price": p[PX_MARK],
        "low": st["low"],
        "last": inst.last_price,
        "instrument_name": inst.name,
        "high": st["high"],
        "estimated_delivery_price": p[PX_INDEX],
        "creation_timestamp": ms,
        "bid_price": bid,
        "base_currency": inst.cur.code,
        "ask_price": ask,
    }
    if inst.kind == "option":
        out["mark_iv"] = round(p[PX_IV] * 100.0, 2)
        out["underlying_price"] = p[PX_UNDERLYING]
        out["underlying_index"] = inst.underlying
        out["interest_rate"] = 0.0
    else:
        out["volume_notional"] = st["volume_usd"]
    if inst.is_perp:
        out["current_funding"] = round(model.current_funding(ms), 8)
        out["funding_8h"] = round(model.interest_8h(ms - ms % HOUR_MS), 8)
    return out
