"""The fake market builds only the payloads somebody listens to: what it is (books, quotes,
trades, candles, funding) and what REST answers must not depend on who listens."""

from __future__ import annotations

import json
import math
from typing import Any

from tests.fake_deribit.demand import EVERY, Demand, channel_demand
from tests.fake_deribit.market import Market, MarketConfig, MarketEvent
from tests.fake_deribit.payloads import PX_IV, PX_MARK, PX_UNDERLYING, compute_px
from tests.fake_deribit.pricing import MS_PER_YEAR, black76, smile_vol
from tests.fake_deribit.rest_api import RestApi
from tests.fake_deribit.routing import Catalog, Router

CONFIG = MarketConfig(
    seed=5,
    currencies=("BTC", "SOL"),
    strikes_per_expiry=4,
    history_s=3 * 3600,
    quote_rate_hz=40.0,
    trade_rate_hz=4.0,
    listing_every_s=40.0,
    first_expiry_in_s=70.0,
)
PERP = "BTC-PERPETUAL"
LAZY = {"book", "quote", "ticker", "markprice", "index", "dvol", "perpetual", "chart"}


def _rest_answers(m: Market) -> str:
    """Every REST answer that reads the market's state, as one JSON text."""
    api = RestApi(m)
    names = sorted(i.name for cs in m.currencies.values() for i in cs.active())
    out: dict[str, Any] = {}
    for name in names:
        out[f"ticker {name}"] = api.handle("ticker", {"instrument_name": name})
        out[f"book {name}"] = api.handle("get_order_book", {"instrument_name": name, "depth": 5})
    for cur in ("BTC", "USDC"):
        out[f"summary {cur}"] = api.handle("get_book_summary_by_currency", {"currency": cur})
        out[f"trades {cur}"] = api.handle(
            "get_last_trades_by_currency", {"currency": cur, "count": 1000}
        )
    window = {"start_timestamp": m.now_ms - 3_600_000, "end_timestamp": m.now_ms}
    out["chart"] = api.handle(
        "get_tradingview_chart_data", {"instrument_name": PERP, "resolution": "1", **window}
    )
    out["funding"] = api.handle("get_funding_rate_history", {"instrument_name": PERP, **window})
    out["index"] = api.handle("get_index_price", {"index_name": "btc_usd"})
    return json.dumps(out, sort_keys=True)


def _truth(m: Market) -> tuple[Any, ...]:
    t = m.truth
    return (list(t.trades), list(t.quotes), list(t.books), m.trades.ordinal_of, m.candles.bars)


def _payloads(events: list[MarketEvent], keys: set[tuple[str, str]]) -> list[str]:
    return [
        json.dumps([e.kind, e.ts_ms, e.key, e.data], sort_keys=True)
        for e in events
        if (e.kind, e.key) in keys
    ]


def test_state_ground_truth_and_rest_do_not_depend_on_who_listens() -> None:
    everyone, nobody, some = Market(CONFIG), Market(CONFIG), Market(CONFIG)
    nobody.set_demand(Demand())
    demand = Demand()
    some.set_demand(demand)
    option = sorted(i.name for i in some.currencies["BTC"].options)[0]
    listened = {("ticker", option), ("quote", PERP), ("book", PERP), ("markprice", "btc_usd")}
    events: dict[str, list[MarketEvent]] = {"everyone": [], "nobody": [], "some": []}
    t = CONFIG.start_ms
    for n, step in enumerate([1, 7, 250, 999, 3000, 12_000] * 6):
        if n == 6:  # subscribe part-way, unsubscribe later, as a client would
            for kind, key in listened:
                demand.add(kind, key)
        elif n == 24:
            for kind, key in listened:
                demand.remove(kind, key)
        t += step
        for label, m in (("everyone", everyone), ("nobody", nobody), ("some", some)):
            got = m.advance_to(t)
            if label == "some" and 6 <= n < 24:
                events["some"] += got
            elif label != "some":
                events[label] += got
            if n in (24, 35):
                if label == "everyone":
                    expected_state, expected_rest = _truth(m), _rest_answers(m)
                else:
                    assert _truth(m) == expected_state, (label, n)
                    assert _rest_answers(m) == expected_rest, (label, n)
    assert everyone.truth.quotes and everyone.truth.books and everyone.truth.trades
    assert {e.kind for e in events["everyone"]} >= LAZY | {"trades", "instrument_state"}
    # Nobody listening: only what the server needs whoever listens.
    assert {e.kind for e in events["nobody"]} <= {
        "trades",
        "instrument_state",
        "instrument_created",
    }
    assert [e.data for e in events["nobody"] if e.kind == "trades"] == [
        e.data for e in events["everyone"] if e.kind == "trades"
    ]
    # What was listened to is exactly what an always-listening market sent meanwhile.
    window = (events["some"][0].ts_ms, events["some"][-1].ts_ms)
    same_window = [e for e in events["everyone"] if window[0] <= e.ts_ms <= window[1]]
    listened_to = _payloads(events["some"], listened)
    assert listened_to and listened_to == _payloads(same_window, listened)
    assert {e.kind for e in events["some"]} <= {k for k, _ in listened} | {
        "trades",
        "instrument_state",
        "instrument_created",
    }
    assert not demand.keys  # every add was matched by a remove


def test_router_counts_demand_per_channel_and_kind() -> None:
    router = Router(Catalog())
    a, b = object(), object()
    router.add(a, f"ticker.{PERP}.100ms")
    router.add(b, f"ticker.{PERP}.100ms")
    router.add(a, f"incremental_ticker.{PERP}")
    router.add(a, f"book.{PERP}.none.10.100ms")
    router.add(a, "trades.option.BTC.100ms")
    router.add(b, "markprice.options.btc_usd")
    d = router.demand
    assert d.wants("ticker", PERP) and d.wants("book", PERP) and d.wants("markprice", "btc_usd")
    assert not d.wants("ticker", "BTC-1JUN26") and not d.wants("quote", PERP)
    router.remove(a, f"ticker.{PERP}.100ms")
    router.remove(b, f"ticker.{PERP}.100ms")
    assert d.wants("ticker", PERP)  # incremental_ticker still carries tickers
    router.remove_all(a, [f"incremental_ticker.{PERP}", f"book.{PERP}.none.10.100ms"])
    router.remove(b, "markprice.options.btc_usd")
    assert d.keys == {}
    assert channel_demand("trades.option.any.raw") is None
    assert channel_demand(f"chart.trades.{PERP}.1") == ("chart", PERP)
    d.add("ticker", EVERY)
    assert d.wants("ticker", "anything") and d.wanted_keys("ticker") is None
    assert Demand().wanted_keys("ticker") == {}


def test_inlined_option_pricing_equals_the_reference_model() -> None:
    """payloads.option_px inlines pricing.smile_vol and pricing.black76 for speed."""
    m = Market(MarketConfig(seed=2, currencies=("BTC", "SOL"), strikes_per_expiry=12, history_s=0))
    checked = 0
    for cs in m.currencies.values():
        for inst in cs.options:
            for ms in (m.now_ms, m.now_ms + 3_600_123, inst.expiry_ms - 1, inst.expiry_ms + 5):
                got = compute_px(cs.model, inst, ms)
                years = max(0.0, (inst.expiry_ms - ms) / MS_PER_YEAR)
                fwd = cs.model.forward(ms, inst.expiry_ms)
                sigma = smile_vol(cs.model.atm_vol(ms), inst.strike, fwd, years)
                value, *greeks = black76(fwd, inst.strike, years, sigma, inst.is_call)
                mark = round(value, 4) if inst.cur.linear else round(value / fwd, 8)
                assert got[PX_MARK] == mark and got[PX_IV] == round(sigma, 4), inst.name
                assert got[PX_UNDERLYING] == round(fwd, inst.cur.index_digits)
                assert list(got[4:9]) == greeks and got[9] == greeks[2]
                assert all(math.isfinite(x) for x in got)
                checked += 1
    assert checked > 100
