"""Forwards from tickers and the quote rows' underlying_price / bid_iv / ask_iv
(scripts/normalize/quote_ivs.py), the choice of forward tickers, and the router's use of them."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from scripts.collectors.realtime import forward_tickers
from scripts.collectors.realtime.router import MessageRouter
from scripts.collectors.realtime.trade_repair import TradeWatch
from scripts.collectors.rejects import Rejects
from scripts.currencies import currency_spec
from scripts.models import QuoteRow
from scripts.normalize.common import MalformedMessage
from scripts.normalize.implied_vol import YEAR_S, implied_vol_pct
from scripts.normalize.quote_ivs import HISTORY_POINTS, ForwardCurves, parse_forward
from scripts.storage.tables import OPTION_QUOTES
from scripts.storage.writer import BatchWriter

RECV = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
T0 = 1_767_000_000_000  # 2025-12-29 09:20 UTC, ms
NAME = "BTC-30JAN26-100000-C"
EXPIRY = datetime(2026, 1, 30, 8, tzinfo=UTC)


def at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def quote(
    ms: int,
    name: str = NAME,
    bid: float | None = 0.03,
    ask: float | None = 0.032,
    underlying: float | None = None,
) -> QuoteRow:
    return QuoteRow(
        at(ms), name, bid, 1.0 if bid else None, ask, 2.0 if ask else None,
        None, None, 55.0, 0.031, underlying, RECV,
    )  # fmt: skip


def enriched(fc: ForwardCurves, rows: list[QuoteRow]) -> list[QuoteRow]:
    """`fc.enrich` (plain tuples in QuoteRow order) read back as QuoteRows."""
    return [QuoteRow(*r) for r in fc.enrich(rows)]


def expected_iv(price: float, forward: float, ms: int, strike: float, call: bool) -> float:
    years = (EXPIRY.timestamp() - ms / 1000) / YEAR_S
    return float(
        implied_vol_pct(
            np.array([price]),
            np.array([forward]),
            np.array([strike]),
            np.array([years]),
            np.array([call]),
            np.array([False]),
        )[0]
    )


def test_quotes_take_the_forward_in_force_at_their_timestamp() -> None:
    fc = ForwardCurves(max_age_ms=10_000)
    assert fc.note("BTC-30JAN26-90000-P", T0, 101_000.0)  # any option of the expiry
    assert fc.note(NAME, T0 + 1000, 101_500.0)
    rows = [quote(T0 + 500), quote(T0 + 1000), quote(T0 + 9_000)]
    out = enriched(fc, rows)
    assert [r.underlying_price for r in out] == [101_000.0, 101_500.0, 101_500.0]
    for r in out:
        ms = round(r.timestamp.timestamp() * 1000)
        assert r.bid_iv is not None and r.ask_iv is not None
        fwd = r.underlying_price
        assert fwd is not None
        assert r.bid_iv == round(expected_iv(0.03, fwd, ms, 100_000.0, True), 2)
        assert r.ask_iv == round(expected_iv(0.032, fwd, ms, 100_000.0, True), 2)
        assert 10.0 < r.bid_iv < r.ask_iv < 80.0
        # Everything else is the row as it came.
        assert r[:6] == rows[0][:6] or r.timestamp != rows[0].timestamp
        assert (r.mark_iv, r.mark_price, r.received_at) == (55.0, 0.031, RECV)
    assert (fc.rows_enriched, fc.rows_stale) == (3, 0)


def test_a_stale_or_missing_forward_leaves_all_three_null() -> None:
    fc = ForwardCurves(max_age_ms=10_000)
    fc.note(NAME, T0, 101_000.0)
    rows = [
        quote(T0 - 1),  # before the first forward: none in force
        quote(T0 + 10_000),  # exactly the age limit: still fresh
        quote(T0 + 10_001),  # older than the limit
        quote(T0, name="BTC-27FEB26-100000-C"),  # an expiry with no forward at all
    ]
    out = enriched(fc, rows)
    assert [(r.underlying_price, r.bid_iv is None, r.ask_iv is None) for r in out] == [
        (None, True, True),
        (101_000.0, False, False),
        (None, True, True),
        (None, True, True),
    ]
    assert (fc.rows_enriched, fc.rows_stale) == (1, 3)


def test_sides_without_an_iv_are_null_and_the_other_side_is_kept() -> None:
    fc = ForwardCurves(max_age_ms=10_000)
    fc.note(NAME, T0, 101_000.0)
    out = enriched(
        fc,
        [
            quote(T0 + 1, bid=None),  # empty bid
            quote(T0 + 2, name="BTC-30JAN26-80000-C", bid=0.15, ask=0.25),  # bid < intrinsic
        ],
    )
    assert out[0].bid_iv is None and out[0].ask_iv is not None
    intrinsic = (101_000.0 - 80_000.0) / 101_000.0  # 0.208 BTC
    assert 0.15 < intrinsic < 0.25
    assert out[1].bid_iv is None and out[1].ask_iv is not None
    assert out[1].underlying_price == 101_000.0


def test_rows_that_carry_their_own_forward_and_non_options_are_left_alone() -> None:
    fc = ForwardCurves(max_age_ms=10_000)
    fc.note(NAME, T0, 101_000.0)
    from_ticker = quote(T0 + 5, underlying=99_999.0)._replace(bid_iv=61.0, ask_iv=62.0)
    perpetual = quote(T0 + 5, name="BTC-PERPETUAL")
    garbage = quote(T0 + 5, name="not an instrument")
    out = enriched(fc, [from_ticker, perpetual, garbage, quote(T0 + 5)])
    assert out[:3] == [from_ticker, perpetual, garbage]
    assert out[3].underlying_price == 101_000.0
    assert not fc.note("BTC-PERPETUAL", T0, 1.0)
    assert not fc.note("BTC-30JAN26", T0, 1.0)
    assert enriched(fc, []) == []
    fresh = ForwardCurves(max_age_ms=10_000)  # a first batch with no option in it
    assert enriched(fresh, [perpetual, garbage]) == [perpetual, garbage]


def test_linear_options_are_priced_in_usdc() -> None:
    fc = ForwardCurves(max_age_ms=10_000)
    name = "SOL_USDC-30JAN26-150-P"
    fc.note(name, T0, 140.0)
    out = enriched(fc, [quote(T0 + 1, name=name, bid=14.0, ask=15.0)])
    years = (EXPIRY.timestamp() - (T0 + 1) / 1000) / YEAR_S
    want = implied_vol_pct(
        np.array([14.0 / 140.0]),
        np.array([140.0]),
        np.array([150.0]),
        np.array([years]),
        np.array([False]),
        np.array([False]),
    )[0]
    assert out[0].bid_iv == round(want, 2)
    assert 20.0 < out[0].bid_iv < 200.0


def test_forwards_arriving_out_of_order_and_history_bound() -> None:
    fc = ForwardCurves(max_age_ms=10_000)
    fc.note(NAME, T0 + 2000, 2.0)
    fc.note(NAME, T0, 1.0)  # from another socket, later
    fc.note(NAME, T0 + 1000, 1.5)
    out = enriched(fc, [quote(T0 + 1500), quote(T0 + 500), quote(T0 + 2500)])
    assert [r.underlying_price for r in out] == [1.5, 1.0, 2.0]
    expiry_ms = round(EXPIRY.timestamp() * 1000)
    for i in range(3 * HISTORY_POINTS):
        fc.note(NAME, T0 + 10_000 + i, 3.0)
    assert len(fc._stamps[expiry_ms]) <= 2 * HISTORY_POINTS
    assert fc.latest(expiry_ms) == (T0 + 10_000 + 3 * HISTORY_POINTS - 1, 3.0)
    fc.forget_expired(expiry_ms)
    assert fc.latest(expiry_ms) is None


def test_parse_forward(shared_data: Path) -> None:
    line = (shared_data / "ws_ticker_option.jsonl").read_text().splitlines()[1]
    data = orjson.loads(line)["params"]["data"]
    assert parse_forward(data) == ("BTC-25MAR22-30000-C", 1626993722929, 33420.42)
    assert parse_forward({**data, "underlying_price": None}) is None
    no_forward = {k: v for k, v in data.items() if k != "underlying_price"}
    assert parse_forward(no_forward) is None
    for bad in ("33420", -1.0, 0.0, float("nan"), True):
        with pytest.raises(MalformedMessage):
            parse_forward({**data, "underlying_price": bad})
    with pytest.raises(MalformedMessage):
        parse_forward({k: v for k, v in data.items() if k != "timestamp"})
    with pytest.raises(MalformedMessage):
        parse_forward([data])


def test_recorded_quote_gets_deribits_ivs(shared_data: Path) -> None:
    """A quote row at a recorded ticker's prices, with that ticker's forward, carries the
    IVs Deribit computed (within its two printed decimals)."""
    fc = ForwardCurves(max_age_ms=10_000)
    seen = 0
    for line in (shared_data / "ws_ticker_option.jsonl").read_text().splitlines()[:49]:
        d: dict[str, Any] = orjson.loads(line)["params"]["data"]
        if not d["best_bid_amount"] or d["instrument_name"].startswith("ETH-23JUL21"):
            continue  # an empty side has no IV; ETH-23JUL21 is hours from expiry (see below)
        name, ts, fwd = parse_forward(d) or ("", 0, 0.0)
        fc.note(name, ts, fwd)
        row = quote(ts, name=name, bid=d["best_bid_price"], ask=d["best_ask_price"])
        out = enriched(fc, [row])[0]
        assert out.underlying_price == d["underlying_price"]
        # Both rounded to 0.01: equal, or one step apart where the raw values straddle.
        assert abs(out.bid_iv - d["bid_iv"]) <= 0.01 + 1e-9, (name, out)
        assert abs(out.ask_iv - d["ask_iv"]) <= 0.01 + 1e-9, (name, out)
        seen += 1
    assert seen >= 40


# ---- which tickers carry the forwards ----------------------------------------------------------


def test_one_forward_ticker_per_expiry_at_the_middle_strike() -> None:
    live = [
        "BTC-30JAN26-90000-C", "BTC-30JAN26-90000-P", "BTC-30JAN26-100000-P",
        "BTC-30JAN26-100000-C", "BTC-30JAN26-110000-C", "BTC-27FEB26-50000-P",
        "BTC-PERPETUAL", "junk",
    ]  # fmt: skip
    chosen = forward_tickers.choose(live, {})
    assert chosen == {"2026-01-30": "BTC-30JAN26-100000-C", "2026-02-27": "BTC-27FEB26-50000-P"}
    # A live choice is kept even when the middle moves; a gone one is replaced; an expiry
    # with no option left is dropped.
    kept = forward_tickers.choose([*live, "BTC-30JAN26-120000-C"], chosen)
    assert kept["2026-01-30"] == "BTC-30JAN26-100000-C"
    after = forward_tickers.choose([n for n in live if "100000" not in n and "FEB" not in n], kept)
    assert after == {"2026-01-30": "BTC-30JAN26-110000-C"}
    assert forward_tickers.channel("BTC-30JAN26-100000-C") == "ticker.BTC-30JAN26-100000-C.agg2"


def test_router_takes_forwards_from_tickers_and_makes_no_row_for_forward_channels(
    tmp_path: Path,
) -> None:
    writer = BatchWriter(
        "postgresql://unused@127.0.0.1:1/x", collector_name="t", currency="BTC", version="t"
    )
    fc = ForwardCurves(max_age_ms=10_000)
    router = MessageRouter(
        currency_spec("BTC"),
        writer=writer,
        rejects=Rejects(writer, "t"),
        watch=TradeWatch(),
        forwards=fc,
    )
    forward_channel = forward_tickers.channel(NAME)
    ticker = {
        "instrument_name": NAME, "timestamp": T0, "underlying_price": 101_000.0,
        "best_bid_price": 0.03, "best_bid_amount": 1.0, "best_ask_price": 0.032,
        "best_ask_amount": 2.0, "mark_price": 0.031, "mark_iv": 55.0, "bid_iv": 54.0,
        "ask_iv": 56.0,
    }  # fmt: skip
    router.on_notification(forward_channel, ticker, RECV)
    assert writer.buffered_rows == 0
    assert fc.latest(round(EXPIRY.timestamp() * 1000)) == (T0, 101_000.0)
    # An agg2 ticker of an option no longer followed (a frame in flight) makes no row either.
    late = {**ticker, "instrument_name": "BTC-30JAN26-110000-C", "timestamp": T0 + 1}
    router.on_notification("ticker.BTC-30JAN26-110000-C.agg2", late, RECV)
    assert writer.buffered_rows == 0
    # Another currency's ticker on a shared channel gives no forward of ours.
    router.on_notification("ticker.ETH-30JAN26-3000-C.agg2", {**ticker, "instrument_name":
                           "ETH-30JAN26-3000-C", "timestamp": T0 + 5}, RECV)  # fmt: skip
    assert fc.latest(round(EXPIRY.timestamp() * 1000)) == (T0 + 1, 101_000.0)
    # Any other ticker of ours still makes a row, with Deribit's own IVs.
    other = {**ticker, "instrument_name": "BTC-30JAN26-90000-P", "timestamp": T0 + 1000}
    router.on_notification("ticker.BTC-30JAN26-90000-P.100ms", other, RECV)
    assert writer.buffered_rows == 1
    router.on_notification(f"quote.{NAME}", {k: ticker[k] for k in (
        "instrument_name", "best_bid_price", "best_bid_amount", "best_ask_price",
        "best_ask_amount")} | {"timestamp": T0 + 1500}, RECV)  # fmt: skip
    buffered = writer._buffer(OPTION_QUOTES, "BTC").rows
    out = enriched(fc, buffered)
    assert out[0].bid_iv == 54.0 and out[0].underlying_price == 101_000.0  # the ticker's own
    assert out[1].underlying_price == 101_000.0  # the quote's, from the forward ticker
    assert out[1].bid_iv is not None and not math.isclose(out[1].bid_iv, 54.0)
    assert at(T0 + 1500) - out[1].timestamp == timedelta(0)
