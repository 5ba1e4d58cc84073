"""The fake exchange's market model and REST methods, without sockets: determinism, book
chains, trade sequences, REST/stream consistency, pagination, listings and expiries, and field
names/types against the real recorded Deribit messages."""

from __future__ import annotations

import itertools
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from tests.fake_deribit.errors import RpcError
from tests.fake_deribit.market import Market, MarketConfig, MarketEvent
from tests.fake_deribit.rest_api import RestApi

HOUR = 3_600_000
SMALL = MarketConfig(seed=7, currencies=("BTC", "SOL"), history_s=6 * 3600, quote_rate_hz=40.0)


def _events_json(events: list[MarketEvent]) -> list[str]:
    return [json.dumps([e.kind, e.ts_ms, e.key, e.data], sort_keys=True) for e in events]


@pytest.fixture(scope="module")
def run() -> tuple[Market, RestApi, list[MarketEvent], dict[str, dict[str, Any]]]:
    """A market advanced 150 s in uneven steps, the events, and every book at start."""
    m = Market(SMALL)
    snapshots = {i.name: _snapshot(m, i.name) for cs in m.currencies.values() for i in cs.active()}
    assert m.book_snapshot("BTC-1JAN20-1-C") is None
    events: list[MarketEvent] = []
    t = m.config.start_ms
    for step in [1, 7, 250, 999, 3000] * 8 + [20_000] * 5:
        t += step
        events += m.advance_to(t)
    return m, RestApi(m), events, snapshots


def _snapshot(m: Market, name: str) -> dict[str, Any]:
    snap = m.book_snapshot(name)
    assert snap is not None
    return snap


def _of(events: list[MarketEvent], kind: str) -> list[MarketEvent]:
    return [e for e in events if e.kind == kind]


# -- determinism -------------------------------------------------------------------------------
def test_same_seed_gives_same_events_whatever_the_step_pattern() -> None:
    cfg = MarketConfig(seed=3, currencies=("ETH",), history_s=3600)
    a, b, c = (
        Market(cfg),
        Market(cfg),
        Market(MarketConfig(seed=4, currencies=("ETH",), history_s=3600)),
    )
    end = cfg.start_ms + 12_000
    one_go = a.advance_to(end)
    stepped: list[MarketEvent] = []
    t = cfg.start_ms
    while t < end:
        t = min(end, t + 1 + (t % 37) * 13)
        stepped += b.advance_to(t)
    assert len(one_go) > 500
    assert _events_json(one_go) == _events_json(stepped)
    assert [t["trade_id"] for t in a.truth.trades] == [t["trade_id"] for t in b.truth.trades]
    assert _events_json(c.advance_to(end)) != _events_json(one_go)


def test_events_come_in_time_order_within_the_window(run: Any) -> None:
    m, _, events, _ = run
    stamps = [e.ts_ms for e in events]
    assert stamps == sorted(stamps)
    assert stamps[0] > m.config.start_ms and stamps[-1] <= m.now_ms
    assert {e.kind for e in events} >= {
        "book", "quote", "trades", "ticker", "markprice", "index", "dvol", "perpetual", "chart"
    }  # fmt: skip


# -- books -------------------------------------------------------------------------------------
def test_book_changes_chain_by_prev_change_id_on_a_shared_counter(run: Any) -> None:
    m, _, events, snapshots = run
    last = {name: snap["change_id"] for name, snap in snapshots.items()}
    group_ids: dict[str, list[int]] = defaultdict(list)
    jumps = 0
    for e in _of(events, "book"):
        d = e.data
        assert d["type"] == "change" and d["instrument_name"] == e.key
        assert d["prev_change_id"] == last[e.key]
        jumps += d["change_id"] - d["prev_change_id"] > 4
        last[e.key] = d["change_id"]
        group_ids[m.by_name[e.key].group].append(d["change_id"])
    for ids in group_ids.values():
        assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert jumps > 10  # other instruments' changes took ids in between
    assert set(group_ids) == {"BTC", "USDC"}
    for name, change_id in last.items():
        assert m.book_state(name)[2] == change_id
        assert _snapshot(m, name)["change_id"] == change_id


def test_quotes_equal_the_top_of_the_replayed_book(run: Any) -> None:
    m, _, events, snapshots = run
    books = {
        n: ({p: a for _, p, a in s["bids"]}, {p: a for _, p, a in s["asks"]})
        for n, s in snapshots.items()
    }
    quotes = 0
    for e in events:
        if e.kind == "book":
            for side, entries in zip(books[e.key], (e.data["bids"], e.data["asks"]), strict=True):
                for action, price, amount in entries:
                    if action == "delete":
                        del side[price]
                    else:
                        assert (action == "new") == (price not in side)
                        side[price] = amount
        elif e.kind == "quote":
            bids, asks = books[e.key]
            bid = max(bids) if bids else 0.0
            ask = min(asks) if asks else 0.0
            assert (e.data["best_bid_price"], e.data["best_ask_price"]) == (bid, ask)
            assert e.data["best_bid_amount"] == bids.get(bid, 0.0)
            assert e.data["best_ask_amount"] == asks.get(ask, 0.0)
            if bids and asks:
                assert bid < ask
            quotes += 1
    assert quotes > 100
    for name, (bids, asks) in books.items():
        b, a, _ = m.book_state(name)
        assert b == sorted(bids.items(), reverse=True) and a == sorted(asks.items())
    assert len(m.truth.quotes) == quotes


# -- trades ------------------------------------------------------------------------------------
def test_trade_seq_is_dense_per_instrument_across_history_and_stream(run: Any) -> None:
    m, _, events, _ = run
    streamed = [t for e in _of(events, "trades") for t in e.data]
    assert streamed and all(
        t["instrument_name"] == e.key for e in _of(events, "trades") for t in e.data
    )
    for name, series in m.trades.by_instrument.items():
        seqs = [t["trade_seq"] for t in series.trades]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), name
    ids = [t["trade_id"] for t in m.truth.trades]
    assert len(set(ids)) == len(ids)
    assert any(t["timestamp"] < m.config.start_ms for t in m.truth.trades)
    btc = [t["trade_id"] for t in m.truth.trades if t["instrument_name"].startswith("BTC-")]
    sol = [t["trade_id"] for t in m.truth.trades if t["instrument_name"].startswith("SOL_USDC-")]
    assert all(i.isdigit() for i in btc) and all(i.startswith("SOL_USDC-") for i in sol)
    assert any(len(e.data) == 2 for e in _of(events, "trades"))  # a sweep: 2 trades, 1 message


def test_block_trades_and_liquidations_appear() -> None:
    m = Market(
        MarketConfig(
            seed=5, currencies=("BTC",), history_s=0, block_trade_probability=0.3,
            liquidation_probability=0.3, trade_rate_hz=10.0,
        )
    )  # fmt: skip
    trades = [
        t for e in m.advance_to(m.config.start_ms + 20_000) if e.kind == "trades" for t in e.data
    ]
    blocks = defaultdict(list)
    for t in trades:
        if "block_trade_id" in t:
            blocks[t["block_trade_id"]].append(t)
    assert blocks and all(len(legs) == 2 for legs in blocks.values())
    assert all(leg["block_trade_leg_count"] == 2 for legs in blocks.values() for leg in legs)
    assert {t["liquidation"] for t in trades if "liquidation" in t} <= {"M", "T", "MT"}
    assert any("liquidation" in t for t in trades)


def test_streamed_trades_are_what_rest_returns(run: Any) -> None:
    m, api, events, _ = run
    streamed = [t for e in _of(events, "trades") for t in e.data]
    perp = [t for t in streamed if t["instrument_name"] == "BTC-PERPETUAL"]
    page = api.handle(
        "get_last_trades_by_instrument",
        {"instrument_name": "BTC-PERPETUAL", "start_seq": str(perp[0]["trade_seq"]),
         "count": "1000", "sorting": "asc"},
    )  # fmt: skip
    assert page["trades"] == perp and page["has_more"] is False
    got = api.handle(
        "get_last_trades_by_currency_and_time",
        {"currency": "BTC", "kind": "option", "start_timestamp": m.config.start_ms,
         "end_timestamp": m.now_ms, "count": 1000, "sorting": "asc"},
    )  # fmt: skip
    assert got["trades"] == [
        t for t in streamed if t["instrument_name"].startswith("BTC-") and "iv" in t
    ]


def test_final_chart_candle_equals_tradingview(run: Any) -> None:
    m, api, events, _ = run
    final: dict[int, dict[str, Any]] = {}
    for e in _of(events, "chart"):
        if e.key == "SOL_USDC-PERPETUAL":
            final[e.data["tick"]] = e.data
    rest = api.handle(
        "get_tradingview_chart_data",
        {"instrument_name": "SOL_USDC-PERPETUAL", "start_timestamp": min(final),
         "end_timestamp": m.now_ms, "resolution": "1"},
    )  # fmt: skip
    assert rest["status"] == "ok" and rest["ticks"] == sorted(final)
    for i, tick in enumerate(rest["ticks"]):
        c = final[tick]
        assert [c[k] for k in ("open", "high", "low", "close", "volume", "cost")] == [
            rest[k][i] for k in ("open", "high", "low", "close", "volume", "cost")
        ]
    assert any(v > 0 for v in rest["volume"])
    five = api.handle(
        "get_tradingview_chart_data",
        {"instrument_name": "SOL_USDC-PERPETUAL", "start_timestamp": m.now_ms - 4 * HOUR,
         "end_timestamp": m.now_ms, "resolution": "60"},
    )  # fmt: skip
    assert five["ticks"] == sorted(five["ticks"]) and all(t % HOUR == 0 for t in five["ticks"])
    assert len(five["ticks"]) == 5 and all(
        lo <= hi for lo, hi in zip(five["low"], five["high"], strict=True)
    )


# -- pagination --------------------------------------------------------------------------------
def test_paging_by_seq_returns_every_trade_once(run: Any) -> None:
    m, api, _, _ = run
    expected = m.trades.instrument("BTC-PERPETUAL").trades
    seen: list[str] = []
    start = expected[0]["trade_seq"]
    while True:
        page = api.handle(
            "get_last_trades_by_instrument",
            {"instrument_name": "BTC-PERPETUAL", "start_seq": start, "count": 97, "sorting": "asc"},
        )
        seen += [t["trade_id"] for t in page["trades"]]
        if not page["has_more"]:
            break
        start = page["trades"][-1]["trade_seq"] + 1
    assert seen == [t["trade_id"] for t in expected] and len(seen) > 200
    # backwards with end_seq and the default (newest first) order
    back: list[str] = []
    end = None
    while True:
        params: dict[str, Any] = {"instrument_name": "BTC-PERPETUAL", "count": 250}
        if end is not None:
            params["end_seq"] = end
        page = api.handle("get_last_trades_by_instrument", params)
        back += [t["trade_id"] for t in page["trades"]]
        if not page["has_more"]:
            break
        end = page["trades"][-1]["trade_seq"] - 1
    assert back == seen[::-1]


def test_paging_by_time_and_by_id_returns_every_trade_once(run: Any) -> None:
    m, api, _, _ = run
    expected = [t["trade_id"] for t in m.trades.currency("USDC", "any").trades]
    seen: dict[str, None] = {}
    start = 0
    while True:
        page = api.handle(
            "get_last_trades_by_currency_and_time",
            {"currency": "USDC", "start_timestamp": start, "end_timestamp": m.now_ms,
             "count": 113, "sorting": "asc"},
        )  # fmt: skip
        for t in page["trades"]:
            seen.setdefault(t["trade_id"])
        if not page["has_more"]:
            break
        start = page["trades"][-1]["timestamp"]
    assert list(seen) == expected and len(expected) > 300
    by_id: list[str] = []
    start_id = expected[0]
    while True:
        page = api.handle(
            "get_last_trades_by_currency",
            {"currency": "USDC", "start_id": start_id, "count": 1000, "sorting": "asc"},
        )
        got = [t["trade_id"] for t in page["trades"]]
        by_id += got if not by_id else got[1:]  # start_id is inclusive
        if not page["has_more"]:
            break
        start_id = got[-1]
    assert by_id == expected


# -- listings, expiries, history host ----------------------------------------------------------
def test_listings_and_expiries_show_in_state_events_and_instrument_lists() -> None:
    cfg = MarketConfig(
        seed=2, currencies=("ETH", "SOL"), history_s=3600, first_expiry_in_s=30, listing_every_s=40
    )
    m = Market(cfg)
    api = RestApi(m)
    expiring = [i.name for i in m.currencies["ETH"].options if i.expiry_ms == cfg.start_ms + 30_000]
    assert len(expiring) == 2 * cfg.strikes_per_expiry
    events = m.advance_to(cfg.start_ms + 45_000)
    states = defaultdict(list)
    for e in _of(events, "instrument_state"):
        states[e.key].append((e.data["state"], e.ts_ms))
        assert e.data["instrument_name"] == e.key
    assert all(
        states[n] == [("settled", cfg.start_ms + 30_000), ("closed", cfg.start_ms + 30_000)]
        for n in expiring
    )
    after = [e for e in events if e.key in expiring and e.ts_ms > cfg.start_ms + 30_000]
    assert after == []
    live = {i["instrument_name"] for i in api.handle("get_instruments", {"currency": "ETH"})}
    gone = api.handle("get_instruments", {"currency": "ETH", "kind": "option", "expired": "true"})
    assert not live & set(expiring) and set(expiring) <= {i["instrument_name"] for i in gone}
    assert all(i["is_active"] is False for i in gone)
    created = _of(events, "instrument_created")
    assert created and all(e.ts_ms == cfg.start_ms + 40_000 for e in created)
    new = {e.key for e in created}
    assert any(n.startswith("SOL_USDC-") for n in new) and any(n.startswith("ETH-") for n in new)
    for n in new:
        assert [s for s, _ in states[n]] == ["created", "started"]
    assert new <= live | {
        i["instrument_name"] for i in api.handle("get_instruments", {"currency": "USDC"})
    }
    later = m.advance_to(cfg.start_ms + 60_000)
    assert {e.key for e in later if e.kind == "ticker"} & new


def test_history_host_serves_expired_instruments_the_main_host_does_not() -> None:
    m = Market(
        MarketConfig(seed=9, currencies=("BTC",), history_s=2 * 86400, history_trade_rate_hz=0.05)
    )
    api = RestApi(m)
    old = [i for i in m.by_name.values() if i.expired and m.now_ms - i.expiry_ms > 86_400_000]
    recent = [i for i in m.by_name.values() if i.expired and m.now_ms - i.expiry_ms <= 86_400_000]
    assert old and recent
    name = next(i.name for i in old if m.trades.instrument(i.name).trades)
    params = {"instrument_name": name, "count": 1000}
    assert api.handle("get_last_trades_by_instrument", params)["trades"] == []
    archived = api.handle("get_last_trades_by_instrument", params, history=True)["trades"]
    assert archived and all(t["instrument_name"] == name for t in archived)
    # Expired an hour ago: gone from the main host too (protocol notes §13.3), on history.
    recent_name = next(i.name for i in recent if m.trades.instrument(i.name).trades)
    recent_params = {"instrument_name": recent_name}
    assert api.handle("get_last_trades_by_instrument", recent_params)["trades"] == []
    assert api.handle("get_last_trades_by_instrument", recent_params, history=True)["trades"]
    span = {"currency": "BTC", "kind": "option", "start_timestamp": 0, "end_timestamp": m.now_ms,
            "count": 1000, "sorting": "asc"}  # fmt: skip
    main = {
        t["instrument_name"]
        for t in api.handle("get_last_trades_by_currency_and_time", span)["trades"]
    }
    hist = {
        t["instrument_name"]
        for t in api.handle("get_last_trades_by_currency_and_time", span, history=True)["trades"]
    }
    assert name in hist and name not in main


# -- REST odds and ends ------------------------------------------------------------------------
def test_rest_errors_match_deribit(run: Any) -> None:
    _, api, _, _ = run
    cases = [
        ("no_such_method", {}, -32601, None),
        ("ticker", {"instrument_name": "BTC-1JAN20-1-C"}, -32602,
         {"reason": "instrument not found", "param": "instrument_name"}),
        ("get_instruments", {"currency": "SOL"}, -32602,
         {"reason": "invalid currency", "param": "currency"}),
        ("get_instruments", {}, -32602, {"reason": "value is required", "param": "currency"}),
        ("get_last_trades_by_instrument", {"instrument_name": "BTC-PERPETUAL", "count": 1001},
         -32602, None),
        ("get_tradingview_chart_data", {"instrument_name": "BTC-PERPETUAL", "start_timestamp": "x",
                                        "end_timestamp": 1, "resolution": "1"}, -32602, None),
    ]  # fmt: skip
    for method, params, code, data in cases:
        with pytest.raises(RpcError) as err:
            api.handle(method, params)
        assert err.value.code == code
        if data is not None:
            assert err.value.data == data
    assert api.handle(
        "public/get_instruments", {"currency": "USDC", "expired": "false", "kind": "future"}
    )
    assert api.handle("get_time", {}) == api.market.now_ms


def test_funding_rows_are_hourly_and_deterministic_for_any_hour(run: Any) -> None:
    m, api, _, _ = run
    other = RestApi(Market(SMALL))
    for start in (m.now_ms - 50 * HOUR, 1_577_836_800_000):  # recent, and 2020
        params = {
            "instrument_name": "BTC-PERPETUAL",
            "start_timestamp": start,
            "end_timestamp": start + 30 * HOUR,
        }
        rows = api.handle("get_funding_rate_history", params)
        hours = range(-(-start // HOUR) * HOUR, start + 30 * HOUR + 1, HOUR)
        assert rows == other.handle("get_funding_rate_history", params)
        assert [r["timestamp"] for r in rows] == list(hours)
        assert all(b["timestamp"] - a["timestamp"] == HOUR for a, b in itertools.pairwise(rows))
        assert all(b["prev_index_price"] == a["index_price"] for a, b in itertools.pairwise(rows))
        assert rows[-1]["interest_8h"] == pytest.approx(sum(r["interest_1h"] for r in rows[-8:]))


def test_volatility_index_pages_backwards_with_continuation(run: Any) -> None:
    m, api, events, _ = run
    start = m.now_ms - 3 * HOUR
    params: dict[str, Any] = {
        "currency": "BTC",
        "start_timestamp": start,
        "end_timestamp": m.now_ms,
        "resolution": "1",
    }
    ticks: list[int] = []
    while True:
        page = api.handle("get_volatility_index_data", params)
        ticks = [row[0] for row in page["data"]] + ticks
        if page["continuation"] is None:
            break
        params["end_timestamp"] = page["continuation"]
    first = -(-start // 1000) * 1000
    assert ticks == list(range(first, m.now_ms - m.now_ms % 1000 + 1, 1000))
    streamed = {e.ts_ms: e.data["volatility"] for e in _of(events, "dvol")}
    last_page = api.handle(
        "get_volatility_index_data",
        {**params, "start_timestamp": min(streamed), "end_timestamp": m.now_ms},
    )
    rows = {row[0]: row for row in last_page["data"]}
    assert all(rows[ts][1] == v for ts, v in streamed.items() if ts in rows)


# -- field names and types against real messages -----------------------------------------------
def _family(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int | float):
        return "number"
    return type(v).__name__


def _recorded(shared_data: Path, file: str, line: int = 0) -> Any:
    msg = json.loads((shared_data / file).read_text().splitlines()[line])
    return msg["params"]["data"] if "params" in msg else msg["result"]


def _assert_like(mine: dict[str, Any], real: dict[str, Any], *, exact: bool, what: object) -> None:
    if exact:
        assert set(mine) == set(real), (what, set(mine) ^ set(real))
    else:
        assert set(real) <= set(mine), (what, set(real) - set(mine))
    for key, value in real.items():
        if value is None or mine[key] is None:
            continue
        assert _family(mine[key]) == _family(value), (what, key, mine[key], value)


def test_payloads_have_the_fields_and_types_of_real_messages(run: Any, shared_data: Path) -> None:
    m, api, events, _ = run
    first: dict[tuple[str, str], Any] = {}
    for e in events:
        inst = m.by_name.get(e.key)
        sub = inst.kind + ("-perp" if inst.is_perp else "") if inst else ""
        first.setdefault((e.kind, sub), e.data)
    opt = next(i.name for i in m.currencies["BTC"].options)
    sd = shared_data
    cases = [
        (first[("quote", "option")], _recorded(sd, "ws_quote.jsonl", 3), True),
        (first[("book", "option")], _recorded(sd, "ws_book_change.jsonl", 35), True),
        (_snapshot(m, opt), _recorded(sd, "ws_book_snapshot.jsonl", 9), True),
        (first[("trades", "future-perp")][0], _recorded(sd, "ws_trades.jsonl", 0)[0], False),
        (first[("trades", "option")][0], _recorded(sd, "ws_trades_by_kind.jsonl")[0], False),
        (first[("ticker", "option")], _recorded(sd, "ws_ticker_option.jsonl", 1), False),
        (first[("ticker", "future-perp")], _recorded(sd, "ws_ticker_perpetual.jsonl", 0), False),
        (first[("ticker", "future")], _recorded(sd, "ws_ticker_future.jsonl", 0), False),
        (first[("markprice", "")][0], _recorded(sd, "ws_markprice_options.jsonl")[0], True),
        (first[("index", "")], _recorded(sd, "ws_price_index.jsonl"), True),
        (first[("dvol", "")], _recorded(sd, "ws_volatility_index.jsonl"), True),
        (first[("perpetual", "future-perp")], _recorded(sd, "ws_perpetual.jsonl"), True),
        (first[("chart", "future-perp")], _recorded(sd, "ws_chart_trades.jsonl", 3), True),
        (api.handle("get_instruments", {"currency": "BTC", "kind": "future"})[0],
         _recorded(sd, "rest_get_instruments.jsonl", 0)[0], False),
        (api.handle("get_instrument", {"instrument_name": opt}),
         _recorded(sd, "rest_get_instrument.jsonl"), False),
        (api.handle("get_order_book", {"instrument_name": opt, "depth": 5}),
         _recorded(sd, "rest_get_order_book.jsonl", 2), False),
        (api.handle("get_order_book", {"instrument_name": "BTC-PERPETUAL"}),
         _recorded(sd, "rest_get_order_book.jsonl", 3), False),
        (api.handle("get_book_summary_by_instrument", {"instrument_name": opt})[0],
         _recorded(sd, "rest_get_book_summary_by_instrument.jsonl", 3)[0], False),
        (api.handle("get_book_summary_by_currency", {"currency": "BTC", "kind": "future"})[0],
         _recorded(sd, "rest_get_book_summary_by_instrument.jsonl", 2)[0], False),
        (api.handle("ticker", {"instrument_name": "BTC-PERPETUAL"}),
         _recorded(sd, "rest_ticker.jsonl"), False),
        (api.handle("get_tradingview_chart_data", {"instrument_name": "BTC-PERPETUAL",
                    "resolution": "1", "start_timestamp": m.now_ms - 300_000,
                    "end_timestamp": m.now_ms}),
         _recorded(sd, "rest_get_tradingview_chart_data.jsonl"), True),
        (api.handle("get_funding_rate_history", {"instrument_name": "BTC-PERPETUAL",
                    "start_timestamp": m.now_ms - 3 * HOUR, "end_timestamp": m.now_ms})[0],
         _recorded(sd, "rest_get_funding_rate_history.jsonl")[0], True),
        (api.handle("get_funding_chart_data", {"instrument_name": "BTC-PERPETUAL", "length": "8h"}),
         _recorded(sd, "rest_get_funding_chart_data.jsonl"), True),
        (api.handle("get_index_price", {"index_name": "btc_usd"}),
         _recorded(sd, "rest_get_index_price.jsonl"), True),
        (api.handle("get_last_trades_by_instrument", {"instrument_name": "BTC-PERPETUAL"}),
         _recorded(sd, "rest_get_last_trades_by_instrument.jsonl"), True),
        (api.handle("get_volatility_index_data", {"currency": "BTC", "resolution": "60",
                    "start_timestamp": m.now_ms - HOUR, "end_timestamp": m.now_ms}),
         _recorded(sd, "rest_get_volatility_index_data.jsonl"), True),
        (api.handle("get_expirations", {"currency": "BTC", "kind": "any"}),
         _recorded(sd, "rest_get_expirations.jsonl", 1), True),
    ]  # fmt: skip
    for n, (mine, real, exact) in enumerate(cases):
        _assert_like(mine, real, exact=exact, what=n)
    tick = first[("ticker", "option")]
    assert (
        1 < tick["mark_iv"] < 300 and 0 <= first[("markprice", "")][0]["iv"] < 3
    )  # percent vs fraction
    assert set(tick["greeks"]) == {"delta", "gamma", "vega", "theta", "rho"}
    sol = api.handle("get_instrument", {"instrument_name": "SOL_USDC-PERPETUAL"})
    assert (sol["settlement_currency"], sol["base_currency"], sol["price_index"]) == (
        "USDC",
        "SOL",
        "sol_usdc",
    )
    sol_opt = next(i.info for i in m.currencies["SOL"].options)
    assert sol_opt["contract_size"] == 10 and sol_opt["quote_currency"] == "USDC"
    assert sol_opt["instrument_name"].startswith("SOL_USDC-")
