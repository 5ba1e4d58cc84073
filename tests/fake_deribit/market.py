"""The fake exchange's market: a deterministic, seeded state machine on market time.

`Market.advance_to(now_ms)` returns every event with a timestamp in (last, now], in time order.
Events come from independent processes (book changes, option/perpetual/future trades as
Poisson streams; index, DVOL, perpetual, mark prices and tickers each market second; candles
each minute; listings and expiries), each with its own seeded RNG, merged on one heap. So the
same seed gives the same events however `advance_to` is called. `set_demand` says which
payloads someone listens to: the others are not built (the state, RNG draws and ground truth
stay the same). History before `start_ms`
(trades, hence candles) is generated at construction at a lower rate; index, DVOL and funding
are functions of time (see pricing.py).
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from tests.fake_deribit.books import (
    half_spread,
    quote_payload,
    recenter,
    snapshot_payload,
    take,
    top,
)
from tests.fake_deribit.catalog import CurrencyState, IdSource
from tests.fake_deribit.demand import Demand
from tests.fake_deribit.ground_truth import BookFact, GroundTruth, QuoteFact
from tests.fake_deribit.history import MINUTE_MS, Candles, TradeStore, candle_payload
from tests.fake_deribit.instruments import (
    DAY_MS,
    SETUPS,
    Instrument,
    at_expiry_hour,
    expiry_code,
    expiry_schedule,
)
from tests.fake_deribit.payloads import (
    PX_INDEX,
    PX_MARK,
    base_volume,
    price_iv,
    px,
    record_stats,
    ticker,
)
from tests.fake_deribit.pricing import ceil_to, floor_to, hash01, nearest

DEFAULT_START_MS = 1_780_272_000_000  # 2026-06-01T00:00:00Z


@dataclass(frozen=True)
class MarketConfig:
    seed: int = 1
    currencies: tuple[str, ...] = ("BTC", "ETH", "SOL")
    start_ms: int = DEFAULT_START_MS
    expiries: int = 4  # option expiries per currency at start
    strikes_per_expiry: int = 8  # each strike has a call and a put
    quote_rate_hz: float = 20.0  # book changes per market second per currency
    trade_rate_hz: float = 2.0  # option trades per market second per currency
    perp_trade_rate_hz: float = 2.0
    future_trade_rate_hz: float = 0.5  # dated futures, per currency
    listing_every_s: float | None = None  # list a new option expiry every N market seconds
    first_expiry_in_s: float | None = None  # nearest expiry N market seconds after start
    history_s: float = 2 * 86_400
    history_trade_rate_hz: float = 0.02  # per currency: options, perpetual; futures half
    block_trade_probability: float = 0.03
    liquidation_probability: float = 0.02
    sweep_probability: float = 0.25  # a perpetual taker takes two levels: 2 trades, 1 event
    ticker_slots: int = 10  # tickers spread over this many slots of each second
    record_books: bool = True  # ground truth keeps quotes and book changes


class MarketEvent(NamedTuple):
    kind: str
    ts_ms: int
    key: str
    data: Any


Process = Callable[[float], float | None]
_new_event = tuple.__new__  # skips NamedTuple.__new__'s Python frame on the hot path


class Market:
    def __init__(self, config: MarketConfig | None = None) -> None:
        self.config = cfg = config or MarketConfig()
        self.truth = GroundTruth(record_books=cfg.record_books)
        self.trades = TradeStore()
        self.candles = Candles()
        self.now_ms = cfg.start_ms
        self.history_start_ms = cfg.start_ms - int(cfg.history_s * 1000)
        self.by_name: dict[str, Instrument] = {}
        self.currencies: dict[str, CurrencyState] = {}
        self.by_index: dict[str, CurrencyState] = {}
        self._ids = IdSource(100_000 + (cfg.seed % 997) * 1000)
        self._change_ids: dict[str, int] = {}
        self._tick_dir: dict[str, int] = {}
        self._next_block_id = 1_000 + cfg.seed % 1000 * 10
        self._out: list[MarketEvent] = []
        self._live = False
        self.demand = Demand(everything=True)
        for n, code in enumerate(cfg.currencies):
            setup = SETUPS.get(code)
            if setup is None:
                raise ValueError(f"unknown currency {code!r}; the fake market has {list(SETUPS)}")
            cs = CurrencyState(setup, cfg.seed, n + 1, cfg.strikes_per_expiry)
            self.currencies[code] = cs
            self.by_index[setup.index_name] = cs
            self._change_ids.setdefault(setup.api_currency, 10_000_000_000 * (n + 1))
        self._hist_options: dict[str, list[Instrument]] = {}
        self._build_instruments()
        self._run_history()
        self._rng_life = random.Random(cfg.seed * 1_000_003 + 999)
        for cs in self.currencies.values():
            for inst in cs.active():
                self._open_book(cs, inst, cfg.start_ms, self._rng_life)
        self._heap: list[tuple[float, int, int, Process]] = []
        self._order = 0
        self._next_listing: int | None = None
        self._schedule()
        self._live = True

    def set_demand(self, demand: Demand) -> None:
        """Build only the payloads `demand` wants from now on (it may change in place)."""
        self.demand = demand

    # -- public queries ------------------------------------------------------------------------
    def instrument(self, name: str) -> Instrument | None:
        inst = self.by_name.get(name)
        if inst is None or inst.creation_ms > self.now_ms:
            return None
        return inst

    def instruments(
        self, api_currency: str, kind: str | None, expired: bool
    ) -> list[dict[str, Any]]:
        """`get_instruments` elements; `api_currency` BTC/ETH/USDC/... or "any"."""
        out = []
        for inst in self.by_name.values():
            if inst.expired != expired or inst.creation_ms > self.now_ms:
                continue
            if api_currency != "any" and inst.group != api_currency:
                continue
            if kind is not None and inst.kind != kind:
                continue
            out.append(inst.info)
        return out

    def book_state(
        self, name: str
    ) -> tuple[list[tuple[float, float]], list[tuple[float, float]], int]:
        """(bids best first, asks best first, change_id) of the book now."""
        inst = self.by_name[name]
        return [(p, a) for p, a in inst.bids], [(p, a) for p, a in inst.asks], inst.change_id

    def book_snapshot(self, name: str) -> dict[str, Any] | None:
        """The first `book.{instrument}.{interval}` message of a subscription (None when the
        instrument does not exist yet)."""
        inst = self.instrument(name)
        return None if inst is None else snapshot_payload(inst)

    def ticker(self, name: str) -> dict[str, Any]:
        inst = self.by_name[name]
        return ticker(self.currency_of(inst).model, inst, self.now_ms)

    def currency_of(self, inst: Instrument) -> CurrencyState:
        return self.currencies[inst.cur.code]

    def on_main_host(self, inst: Instrument) -> bool:
        """www serves trades of live instruments only. Deribit documents nothing about an
        expired option's trades on the main host; its history host serves them (protocol
        notes §13.3), so the fake takes the strict reading: gone from www at expiry."""
        return not inst.expired

    def add_trade_burst(self, instrument_name: str, count: int) -> int:
        """`count` trades of one instrument at one millisecond (the market's now), kept for
        REST and ground truth like any other trade but never streamed: tests page through
        more trades than one REST page holds in a single millisecond. Returns that ms."""
        inst = self.by_name[instrument_name]
        cs = self.currency_of(inst)
        ts = self.now_ms
        mark = px(cs.model, inst, ts)[PX_MARK]
        price = max(inst.tick, nearest(mark, inst.tick_at(mark), inst.tick_digits))
        for n in range(count):
            direction = "buy" if n % 2 else "sell"
            self._make_trade(cs, inst, ts, price, inst.min_amount, direction, None)
        return ts

    # -- time ----------------------------------------------------------------------------------
    def advance_to(self, now_ms: int) -> list[MarketEvent]:
        """Every event with ts in (last now, now_ms], in time order."""
        out: list[MarketEvent] = []
        self._out = out
        heap = self._heap
        limit = now_ms + 1
        while heap and heap[0][0] < limit:
            t, prio, _, proc = heapq.heappop(heap)
            nxt = proc(t)
            if nxt is not None:
                self._push(nxt, prio, proc)
        if now_ms > self.now_ms:
            self.now_ms = now_ms
        return out

    def _push(self, t: float, prio: int, proc: Process) -> None:
        self._order += 1
        heapq.heappush(self._heap, (t, prio, self._order, proc))

    # -- construction --------------------------------------------------------------------------
    def _register(self, inst: Instrument) -> None:
        self.by_name[inst.name] = inst

    def _build_instruments(self) -> None:
        cfg = self.config
        start = cfg.start_ms
        created = self.history_start_ms - DAY_MS
        live = expiry_schedule(start, cfg.expiries)
        if cfg.first_expiry_in_s is not None:
            first = start + int(cfg.first_expiry_in_s * 1000)
            code = expiry_code(first)
            later = [e for e in expiry_schedule(first, cfg.expiries + 3) if expiry_code(e) != code]
            live = [first, *later[: cfg.expiries - 1]]
        codes = {expiry_code(e) for e in live}
        day = datetime.fromtimestamp(self.history_start_ms / 1000, UTC)
        past = []
        while (t := at_expiry_hour(day)) < start:
            if t > self.history_start_ms and expiry_code(t) not in codes:
                past.append(t)
            day += timedelta(days=1)
        for cs in self.currencies.values():
            cs.perp = cs.make_perp(self._ids)
            cs.perp.trade_seq = 100_000_000 + int(hash01(cfg.seed, cs.salt, 5) * 100_000_000)
            self._register(cs.perp)
            for e in cs.future_expiries(start):
                fut = cs.future(e, created, self._ids)
                cs.futures.append(fut)
                self._register(fut)
            hist: list[Instrument] = []
            for e in past:
                hist += cs.option_chain(e, created, self._ids, e - DAY_MS)
            for e in live:
                cs.options += cs.option_chain(e, created, self._ids, start)
            for inst in hist + cs.options:
                self._register(inst)
            self._hist_options[cs.setup.code] = hist
            cs.refresh()

    def _run_history(self) -> None:
        """Trades before start_ms at `history_trade_rate_hz`, priced off the mark (no books)."""
        cfg = self.config
        rate = cfg.history_trade_rate_hz
        if rate <= 0 or cfg.history_s <= 0:
            return
        self._hist_pools = {
            code: (
                self._hist_options[code] + cs.options,
                [cs.perp] if cs.perp is not None else [],
                list(cs.futures),
            )
            for code, cs in self.currencies.items()
        }
        heap: list[tuple[float, int, str, int]] = []
        rngs: dict[tuple[str, int], random.Random] = {}
        for cs in self.currencies.values():
            for k in range(3):
                rng = random.Random(cfg.seed * 7_000_003 + cs.salt * 100 + k)
                rngs[(cs.setup.code, k)] = rng
                r = rate / 2 if k == 2 else rate
                heap.append(
                    (self.history_start_ms + rng.expovariate(r) * 1000, k, cs.setup.code, 0)
                )
        heapq.heapify(heap)
        while heap:
            t, k, code, _ = heapq.heappop(heap)
            if t >= cfg.start_ms:
                continue
            cs = self.currencies[code]
            rng = rngs[(code, k)]
            self._history_trade(cs, k, int(t), rng)
            r = rate / 2 if k == 2 else rate
            heapq.heappush(heap, (t + rng.expovariate(r) * 1000, k, code, 0))
        for hist in self._hist_options.values():
            for inst in hist:
                inst.mark_expired()

    def _history_trade(self, cs: CurrencyState, k: int, ts: int, rng: random.Random) -> None:
        pool = self._hist_pools[cs.setup.code][k]
        if not pool:
            return
        for _ in range(4):
            inst = pool[int(rng.random() * len(pool))]
            if inst.alive_at(ts):
                break
        else:
            return
        mark = px(cs.model, inst, ts)[PX_MARK]
        hs = half_spread(inst, mark)
        buy = rng.random() < 0.5
        raw = mark + hs if buy else mark - hs
        tick = inst.tick_at(raw)
        price = (
            ceil_to(raw, tick, inst.tick_digits) if buy else floor_to(raw, tick, inst.tick_digits)
        )
        price = max(price, inst.tick)
        lots = 1 + int(rng.random() * (20 if inst.kind == "option" else 300))
        amount = round(inst.min_amount * lots, 8)
        self._make_trade(cs, inst, ts, price, amount, "buy" if buy else "sell", None)

    def _open_book(self, cs: CurrencyState, inst: Instrument, ts: int, rng: random.Random) -> None:
        fair = px(cs.model, inst, ts)[PX_MARK]
        recenter(inst, fair, True, rng, False)
        recenter(inst, fair, False, rng, False)
        inst.change_id = self._next_change_id(inst.group, rng)
        inst.book_ts = ts
        if self.truth.record_books:
            self.truth.add_book(snapshot_payload(inst))

    def _next_change_id(self, group: str, rng: random.Random) -> int:
        value = self._change_ids[group] + 1 + int(rng.random() * 4)
        self._change_ids[group] = value
        return value

    def _schedule(self) -> None:
        from tests.fake_deribit.processes import schedule_all

        schedule_all(self)

    # -- event helpers (used by processes.py) --------------------------------------------------
    def emit(self, kind: str, ts: int, key: str, data: Any) -> None:
        self._out.append(_new_event(MarketEvent, (kind, ts, key, data)))

    def emit_book(
        self,
        inst: Instrument,
        ts: int,
        bids: list[list[Any]],
        asks: list[list[Any]],
        old_top: tuple[float, float, float, float],
        rng: random.Random,
    ) -> None:
        """One `book` change (a new change_id from the group's shared counter) and, when the
        top of book moved, a `quote`."""
        new_id = self._next_change_id(inst.group, rng)
        prev_id = inst.change_id
        inst.change_id = new_id
        inst.book_ts = ts
        name = inst.name
        out = self._out
        demand = self.demand
        record = self.truth.record_books
        if record:
            self.truth.books.append(BookFact(ts, name, new_id, prev_id, len(bids) + len(asks)))
        if demand.everything or demand.wants("book", name):
            data = {
                "type": "change",
                "timestamp": ts,
                "prev_change_id": prev_id,
                "instrument_name": name,
                "change_id": new_id,
                "bids": bids,
                "asks": asks,
            }
            out.append(_new_event(MarketEvent, ("book", ts, name, data)))
        new_top = top(inst)
        if new_top == old_top:
            return
        if record:
            self.truth.quotes.append(_new_event(QuoteFact, (ts, name, *new_top)))
        if demand.everything or demand.wants("quote", name):
            q = quote_payload(inst, ts)
            out.append(_new_event(MarketEvent, ("quote", ts, name, q)))

    def emit_trades(self, inst: Instrument, ts: int, trades: list[dict[str, Any]]) -> None:
        self._out.append(_new_event(MarketEvent, ("trades", ts, inst.name, trades)))
        if inst.kind == "future" and self.demand.wants("chart", inst.name):
            minute = ts - ts % MINUTE_MS
            bar = self.candles.bar(inst.name, minute)
            if bar is not None:
                self._out.append(MarketEvent("chart", ts, inst.name, candle_payload(minute, bar)))

    def taker_trade(
        self,
        cs: CurrencyState,
        inst: Instrument,
        ts: int,
        rng: random.Random,
        lots: int,
        perp: bool,
    ) -> None:
        """A taker order against the book: trade(s), the book change it caused, maybe a quote."""
        cfg = self.config
        buy = rng.random() < 0.5
        if not (inst.asks if buy else inst.bids):
            buy = not buy
        side = inst.asks if buy else inst.bids
        if not side:
            return
        old = top(inst)
        fills = 2 if perp and len(side) >= 2 and rng.random() < cfg.sweep_probability else 1
        extra = None
        if perp and rng.random() < cfg.liquidation_probability:
            extra = {"liquidation": ("M", "T", "MT")[int(rng.random() * 3)]}
        direction = "buy" if buy else "sell"
        trades = []
        changes: list[list[Any]] = []
        for n in range(fills):
            amount = (
                side[0][1]
                if fills == 2 and n == 0
                else round(inst.min_amount * (1 + int(rng.random() * lots)), 8)
            )
            price, filled, ch = take(inst, buy, amount)
            changes += ch
            trades.append(self._make_trade(cs, inst, ts, price, filled, direction, extra))
        if len(side) < 2:
            changes += recenter(inst, px(cs.model, inst, ts)[PX_MARK], not buy, rng, False)
        self.emit_trades(inst, ts, trades)
        self.emit_book(inst, ts, [] if buy else changes, changes if buy else [], old, rng)

    def block_trade(self, cs: CurrencyState, ts: int, rng: random.Random) -> None:
        """Two option legs off the book with one block_trade_id: one `trades` event per leg."""
        first = cs.options[int(rng.random() * len(cs.options))]
        same = [o for o in cs.options if o.expiry_ms == first.expiry_ms and o is not first]
        if not same:
            return
        second = same[int(rng.random() * len(same))]
        self._next_block_id += 1
        extra = {"block_trade_id": str(self._next_block_id), "block_trade_leg_count": 2}
        for leg in (first, second):
            mark = px(cs.model, leg, ts)[PX_MARK]
            price = max(leg.tick, nearest(mark, leg.tick_at(mark), leg.tick_digits))
            amount = round(leg.min_amount * (25 + int(rng.random() * 226)), 8)
            direction = "buy" if rng.random() < 0.5 else "sell"
            self.emit_trades(
                leg, ts, [self._make_trade(cs, leg, ts, price, amount, direction, extra)]
            )

    def _make_trade(
        self,
        cs: CurrencyState,
        inst: Instrument,
        ts: int,
        price: float,
        amount: float,
        direction: str,
        extra: dict[str, Any] | None,
    ) -> dict[str, Any]:
        last = inst.last_price
        if last is None or price > last:
            tick_dir = 0
        elif price < last:
            tick_dir = 2
        else:
            tick_dir = 1 if self._tick_dir.get(inst.name, 0) in (0, 1) else 3
        self._tick_dir[inst.name] = tick_dir
        inst.trade_seq += 1
        p = px(cs.model, inst, ts)
        trade: dict[str, Any] = {
            "timestamp": ts,
            "price": price,
            "amount": amount,
            "direction": direction,
            "index_price": p[PX_INDEX],
            "instrument_name": inst.name,
            "trade_seq": inst.trade_seq,
            "mark_price": p[PX_MARK],
            "tick_direction": tick_dir,
            "contracts": round(amount / inst.contract_size, 8),
            "trade_id": cs.new_trade_id(),
        }
        if inst.kind == "option":
            trade["iv"] = price_iv(inst, p, price)
        if extra:
            trade.update(extra)
        inst.last_price = price
        inst.open_interest = max(
            0.0, inst.open_interest + (amount if direction == "buy" else -amount / 2)
        )
        record_stats(inst, ts, price, amount, p[PX_INDEX])
        self.trades.add(inst, trade)
        self.truth.add_trade(trade)
        volume = base_volume(inst, price, amount)
        cost = amount if inst.kind == "future" and not inst.cur.linear else amount * price
        self.candles.add_trade(inst.name, ts, price, volume, cost)
        return trade
