"""The event processes of the live market, scheduled on `Market`'s heap.

Each process is a closure `proc(t) -> next t | None` with its own seeded RNG. Poisson
streams draw exponential gaps in market time, so the sequence never depends on how often
`advance_to` is called. Priority 0 (listings and expiries) runs before everything else due
at the same millisecond.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from tests.fake_deribit.books import recenter, resize, top
from tests.fake_deribit.history import MINUTE_MS, candle_payload
from tests.fake_deribit.instruments import expiry_schedule
from tests.fake_deribit.payloads import PX_IV, PX_MARK, chain_px, px, ticker

if TYPE_CHECKING:
    from tests.fake_deribit.catalog import CurrencyState
    from tests.fake_deribit.instruments import Instrument
    from tests.fake_deribit.market import Market, Process

LIFECYCLE, FLOW = 0, 1


def schedule_all(m: Market) -> None:
    cfg = m.config
    start = cfg.start_ms
    for cs in m.currencies.values():
        base = cfg.seed * 1_000_003 + cs.salt * 1000
        _poisson(m, start, cfg.quote_rate_hz, random.Random(base + 1), _book_body(m, cs))
        _poisson(m, start, cfg.trade_rate_hz, random.Random(base + 2), _option_trade_body(m, cs))
        _poisson(m, start, cfg.perp_trade_rate_hz, random.Random(base + 3), _perp_trade_body(m, cs))
        if cs.futures:
            _poisson(
                m,
                start,
                cfg.future_trade_rate_hz,
                random.Random(base + 4),
                _future_trade_body(m, cs),
            )
        first_second = start - start % 1000 + 1000
        m._push(first_second, FLOW, _second_proc(m, cs))
        for slot in range(cfg.ticker_slots):
            offset = 50 + slot * (1000 // cfg.ticker_slots)
            m._push(first_second + offset, FLOW, _ticker_proc(m, cs, slot))
        m._push(start - start % MINUTE_MS + MINUTE_MS, FLOW, _minute_proc(m, cs))
    if cfg.listing_every_s:
        m._next_listing = start + int(cfg.listing_every_s * 1000)
    nxt = _next_lifecycle(m)
    if nxt is not None:
        m._push(nxt, LIFECYCLE, _lifecycle_proc(m))


Body = Any  # Callable[[int, random.Random], None]


def _poisson(m: Market, start: int, rate: float, rng: random.Random, body: Body) -> None:
    if rate <= 0:
        return
    gap = 1000.0 / rate

    def proc(t: float) -> float:
        body(int(t), rng)
        return t + rng.expovariate(1.0) * gap

    m._push(start + rng.expovariate(1.0) * gap, FLOW, proc)


def _pick_for_book(cs: CurrencyState, rng: random.Random) -> Instrument | None:
    r = rng.random()
    if cs.perp is not None and r < 0.2:
        return cs.perp
    if cs.futures and r < 0.3:
        return cs.futures[int(rng.random() * len(cs.futures))]
    if cs.options:
        return cs.options[int(rng.random() * len(cs.options))]
    return cs.perp


def _book_body(m: Market, cs: CurrencyState) -> Body:
    def body(ts: int, rng: random.Random) -> None:
        inst = _pick_for_book(cs, rng)
        if inst is None or inst.expired:
            return
        is_bid = rng.random() < 0.5
        r = rng.random()
        old = top(inst)
        if r < 0.7:
            changes = resize(inst, is_bid, rng)
        else:
            fair = px(cs.model, inst, ts)[PX_MARK]
            changes = recenter(inst, fair, is_bid, rng, r < 0.95) or resize(inst, is_bid, rng)
        if changes:
            m.emit_book(inst, ts, changes if is_bid else [], [] if is_bid else changes, old, rng)

    return body


def _option_trade_body(m: Market, cs: CurrencyState) -> Body:
    def body(ts: int, rng: random.Random) -> None:
        if not cs.options:
            return
        if rng.random() < m.config.block_trade_probability:
            m.block_trade(cs, ts, rng)
            return
        inst = cs.options[int(rng.random() * len(cs.options))]
        m.taker_trade(cs, inst, ts, rng, 20, False)

    return body


def _perp_trade_body(m: Market, cs: CurrencyState) -> Body:
    def body(ts: int, rng: random.Random) -> None:
        if cs.perp is not None:
            m.taker_trade(cs, cs.perp, ts, rng, 300, True)

    return body


def _future_trade_body(m: Market, cs: CurrencyState) -> Body:
    def body(ts: int, rng: random.Random) -> None:
        if cs.futures:
            m.taker_trade(cs, cs.futures[int(rng.random() * len(cs.futures))], ts, rng, 300, False)

    return body


def _second_proc(m: Market, cs: CurrencyState) -> Process:
    """Index, DVOL, perpetual and the whole chain's mark prices, once per market second (each
    built only when someone listens: they are functions of time, nothing to keep)."""
    setup = cs.setup
    model = cs.model
    index_name = setup.index_name

    def proc(t: float) -> float:
        ts = int(t)
        demand = m.demand
        if demand.wants("index", index_name):
            m.emit(
                "index",
                ts,
                index_name,
                {"timestamp": ts, "price": model.index(ts), "index_name": index_name},
            )
        if setup.has_dvol and demand.wants("dvol", index_name):
            m.emit(
                "dvol",
                ts,
                index_name,
                {"index_name": index_name, "volatility": model.dvol(ts), "timestamp": ts},
            )
        perp = cs.perp
        if perp is not None and demand.wants("perpetual", perp.name):
            interest = round(model.current_funding(ts), 10)
            m.emit(
                "perpetual",
                ts,
                perp.name,
                {"index_price": model.index(ts), "interest": interest, "timestamp": ts},
            )
        if cs.options and demand.wants("markprice", index_name):
            options = cs.options
            chain_px(model, options, ts)
            rows = [
                {
                    "instrument_name": o.name,
                    "mark_price": o.px[PX_MARK],
                    "iv": o.px[PX_IV],
                    "timestamp": ts,
                }
                for o in options
            ]
            m.emit("markprice", ts, index_name, rows)
        return t + 1000

    return proc


def _ticker_proc(m: Market, cs: CurrencyState, slot: int) -> Process:
    """Tickers of every `ticker_slots`-th live instrument someone listens to, once per market
    second (REST computes its tickers from the state when asked)."""
    n = m.config.ticker_slots
    model = cs.model

    def proc(t: float) -> float:
        wanted = m.demand.wanted_keys("ticker")
        if wanted is not None and not wanted:
            return t + 1000
        ts = int(t)
        order = cs.ticker_order
        emit = m.emit
        for i in range(slot, len(order), n):
            inst = order[i]
            if not inst.expired and (wanted is None or inst.name in wanted):
                emit("ticker", ts, inst.name, ticker(model, inst, ts))
        return t + 1000

    return proc


def _minute_proc(m: Market, cs: CurrencyState) -> Process:
    """At each minute boundary the new candle of every future (a filler until it trades)."""

    def proc(t: float) -> float:
        minute = int(t)
        demand = m.demand
        for inst in ([cs.perp] if cs.perp else []) + cs.futures:
            if not demand.wants("chart", inst.name):
                continue
            bar = m.candles.bar(inst.name, minute)
            if bar is None:
                close = m.candles.last_close_before(inst.name, minute)
                if close is None:
                    close = px(cs.model, inst, minute)[PX_MARK]
                bar = [close, close, close, close, 0.0, 0.0]
            m.emit("chart", minute, inst.name, candle_payload(minute, bar))
        return t + MINUTE_MS

    return proc


def _next_lifecycle(m: Market) -> int | None:
    times = [i.expiry_ms for cs in m.currencies.values() for i in cs.active() if not i.is_perp]
    if m._next_listing is not None:
        times.append(m._next_listing)
    return min(times) if times else None


def _lifecycle_proc(m: Market) -> Process:
    def proc(t: float) -> float | None:
        ts = int(t)
        for cs in m.currencies.values():
            due = [i for i in cs.active() if not i.is_perp and i.expiry_ms <= ts]
            for inst in due:
                inst.mark_expired()
                _emit_states(m, inst.name, ts, ("settled", "closed"))
            if due:
                cs.refresh()
        if m._next_listing is not None and m._next_listing <= ts:
            for cs in m.currencies.values():
                _list_expiry(m, cs, ts)
            step = int((m.config.listing_every_s or 0) * 1000)
            m._next_listing += max(step, 1)
        return _next_lifecycle(m)

    return proc


def _emit_states(m: Market, name: str, ts: int, states: tuple[str, ...]) -> None:
    """One `instrument_state` event per state, in order, all at `ts`."""
    for state in states:
        m.emit(
            "instrument_state", ts, name, {"instrument_name": name, "state": state, "timestamp": ts}
        )


def _list_expiry(m: Market, cs: CurrencyState, ts: int) -> None:
    """A new option expiry beyond the furthest listed one: created, then started."""
    last = max((o.expiry_ms for o in cs.options), default=ts)
    expiry = expiry_schedule(max(last, ts), 1)[0]
    chain = cs.option_chain(expiry, ts, m._ids, ts)
    chain = [i for i in chain if i.name not in m.by_name]
    for inst in chain:
        m._register(inst)
        m._open_book(cs, inst, ts, m._rng_life)
        m.emit("instrument_created", ts, inst.name, inst.info)
        _emit_states(m, inst.name, ts, ("created", "started"))
    cs.options += chain
    cs.refresh()
