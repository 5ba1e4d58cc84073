"""Black-76 implied volatility (scripts/normalize/implied_vol.py): accuracy, round trips, the
cases with no IV, and agreement with Deribit's own bid/ask/mark IVs in recorded tickers."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from scripts.deribit.channels import parse_instrument_name
from scripts.normalize.implied_vol import (
    YEAR_S,
    black76_price,
    implied_vol_pct,
    norm_cdf,
)
from tests.fake_deribit.pricing import black76


def one(
    price: float, forward: float, strike: float, years: float, call: bool, linear: bool
) -> float:
    return float(
        implied_vol_pct(
            np.array([price]),
            np.array([forward]),
            np.array([strike]),
            np.array([years]),
            np.array([call]),
            np.array([linear]),
        )[0]
    )


def test_norm_cdf_keeps_its_relative_precision_in_the_tails() -> None:
    x = np.linspace(-37.0, 8.0, 90_001)
    ref = np.array([0.5 * math.erfc(-v / math.sqrt(2.0)) for v in x])
    got = norm_cdf(x)
    ok = ref > 1e-300
    assert np.max(np.abs(got[ok] - ref[ok]) / ref[ok]) < 1.5e-7


def test_round_trip_over_strikes_vols_and_expiries() -> None:
    rng = np.random.default_rng(7)
    n = 50_000
    forward = np.full(n, 60_000.0)
    strike = forward * np.exp(rng.uniform(-1.2, 1.2, n))
    years = rng.uniform(1.0 / (365 * 24), 2.0, n)
    sigma = rng.uniform(0.05, 3.0, n)
    call = rng.random(n) < 0.5
    usd = black76_price(forward, strike, years, sigma, call)
    # Where the time value is lost in the intrinsic value's rounding, no IV can be read back.
    intrinsic = np.where(call, np.maximum(forward - strike, 0), np.maximum(strike - forward, 0))
    readable = (usd - intrinsic) > 1e-9 * forward
    inverse = implied_vol_pct(usd / forward, forward, strike, years, call, np.zeros(n, bool))
    linear = implied_vol_pct(usd, forward, strike, years, call, np.ones(n, bool))
    assert readable.mean() > 0.95
    for got in (inverse, linear):
        err = np.abs(got[readable] - 100.0 * sigma[readable])
        assert np.all(np.isfinite(got[readable]))
        assert err.max() < 1e-5  # vol points


def test_agrees_with_an_independent_black76() -> None:
    """Prices from the fake exchange's scalar Black-76 (math.erf) read back to their vol."""
    worst = 0.0
    for strike in (20_000.0, 45_000.0, 60_000.0, 75_000.0, 150_000.0):
        for years in (2.0 / (365 * 24), 3.0 / 365, 0.25, 1.5):
            for vol in (0.3, 0.8, 1.6):
                for call in (True, False):
                    usd = black76(60_000.0, strike, years, vol, call)[0]
                    intrinsic = max(0.0, (60_000.0 - strike) * (1 if call else -1))
                    if usd - intrinsic < 1e-4:  # no time value left to read
                        continue
                    got = one(usd / 60_000.0, 60_000.0, strike, years, call, False)
                    worst = max(worst, abs(got - vol * 100.0))
    assert worst < 1e-4


def test_prices_without_an_iv_give_nan() -> None:
    f, k, t = 50_000.0, 40_000.0, 0.1
    assert math.isnan(one(0.0, f, k, t, True, False))  # empty side
    assert math.isnan(one(float("nan"), f, k, t, True, False))  # no price
    assert math.isnan(one(0.19, f, k, t, True, False))  # below intrinsic 0.2 coin
    assert math.isnan(one(0.2, f, k, t, True, False))  # at intrinsic
    assert math.isnan(one(1.0, f, 60_000.0, t, True, False))  # a call worth the forward
    assert math.isnan(one(0.01, f, k, 0.0, True, False))  # expired
    assert math.isnan(one(0.01, f, k, -0.01, True, False))
    assert math.isnan(one(0.01, float("nan"), k, t, True, False))  # no forward
    assert math.isnan(one(0.01, 0.0, k, t, True, False))
    assert math.isfinite(one(0.21, f, k, t, True, False))


def test_linear_and_inverse_quotes_of_one_price_agree() -> None:
    f, k, t = 150.0, 160.0, 30 / 365
    usd = 4.2
    assert abs(one(usd, f, k, t, True, True) - one(usd / f, f, k, t, True, False)) < 1e-9


# ---- Deribit's own IVs ------------------------------------------------------------------------


def recorded_tickers(shared_data: Path) -> list[dict[str, Any]]:
    out = []
    for line in (shared_data / "ws_ticker_option.jsonl").read_text().splitlines():
        msg = orjson.loads(line)
        out.append(msg["params"]["data"])
    return out


def our_ivs(d: dict[str, Any]) -> dict[str, float]:
    meta = parse_instrument_name(d["instrument_name"])
    assert meta.expires_at is not None and meta.strike is not None
    years = (meta.expires_at.timestamp() - d["timestamp"] / 1000.0) / YEAR_S
    out = {}
    for field, price_field in (("bid_iv", "best_bid_price"), ("ask_iv", "best_ask_price")):
        out[field] = one(
            d[price_field] or math.nan,
            d["underlying_price"],
            meta.strike,
            years,
            meta.option_type == "call",
            meta.linear,
        )
    out["mark_iv"] = one(
        d["mark_price"],
        d["underlying_price"],
        meta.strike,
        years,
        meta.option_type == "call",
        meta.linear,
    )
    out["hours_left"] = years * 365 * 24
    return out


def test_bid_ask_and_mark_ivs_agree_with_deribit(shared_data: Path) -> None:
    """Agreement with the IVs Deribit sent in the recorded option tickers (Deribit prints two
    decimals, so 0.005 of any difference is its rounding):

    - bid and ask IV: within 0.01 vol point, except on the one option recorded ~9.6 hours
      before its expiry, deep out of the money (ETH-23JUL21-2300-C, ask 0.001 ETH), within
      0.15: there the IV moves 0.1 point for 30 s of time to expiry, so Deribit's own instant
      of computation decides the second decimal;
    - mark IV (linear MATIC_USDC included): within 0.01 where the mark has at least four
      significant digits; a mark of 0.000632 ETH (three digits) within 0.05, and a mark at
      the 1e-6 ETH floor cannot agree (its IV is off by 2 points) and is not compared;
    - no IV where Deribit sends 0 or 500 over an empty side, nor after the expiry.
    """
    tickers = [d for d in recorded_tickers(shared_data) if "timestamp" in d]
    assert len(tickers) >= 50
    compared = 0
    for d in tickers:
        ours = our_ivs(d)
        hours = ours["hours_left"]
        for side, price_field in (("bid_iv", "best_bid_price"), ("ask_iv", "best_ask_price")):
            if not d[price_field] or hours <= 0:
                assert math.isnan(ours[side]), (d["instrument_name"], side)
                continue
            limit = 0.01 if hours > 24 else 0.15
            assert abs(ours[side] - d[side]) <= limit, (d["instrument_name"], side, ours)
            compared += 1
        mark = d["mark_price"]
        if hours <= 0 or mark <= 1e-6:
            continue
        digits = len(f"{mark:.10g}".replace(".", "").lstrip("0"))
        limit = 0.01 if digits >= 4 else 0.05
        assert abs(ours["mark_iv"] - d["mark_iv"]) <= limit, (d["instrument_name"], ours)
        compared += 1
    assert compared >= 140
