"""Quote rows carry the expiry's forward and Black-76 bid/ask IVs: the real-time collector
against the fake exchange and a real database, for an inverse (ETH) and a linear (SOL) book.

Checked against the fake's own pricing model: each row's `underlying_price` is a forward the
fake's model gave that expiry within QUOTE_FORWARD_MAX_AGE_S before the quote, and each IV,
put back into the fake's scalar Black-76 (math.erf, independent of the collector's numpy
solver) with that forward and the time to the 08:00 UTC expiry, gives the quoted price back,
and each IV is the fake's exact (bisection) IV of that price, to the 0.01 vol point stored.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from scripts.config import load_settings
from scripts.deribit.channels import parse_instrument_name
from scripts.models import QuoteRow
from scripts.normalize.quote_ivs import ForwardCurves
from scripts.storage.migrate import apply_schema, apply_settings_schema
from scripts.storage.tables import OPTION_QUOTES
from scripts.storage.writer import BatchWriter
from tests.fake_deribit.market import MarketConfig
from tests.fake_deribit.pricing import MS_PER_YEAR, black76, black76_iv
from tests.fake_deribit.server import FakeDeribit
from tests.support.realtime import (
    SubscribeLog,
    collector_env,
    query,
    sim_fakes,
    start_collector,
    stop_collector,
    wait_for,
)

SPEED = 20.0
MAX_AGE_S = 10


@pytest.fixture
async def make_fake() -> AsyncIterator[Callable[..., Any]]:
    async with sim_fakes(SPEED) as make:
        yield make


def forwards_of(fake: FakeDeribit, code: str, expiry_ms: int, lo_ms: int, hi_ms: int) -> set[float]:
    """Every forward the fake's model gives the expiry at the whole seconds of [lo, hi] (its
    tickers price at the whole second), rounded as its tickers send it."""
    cs = fake.market.currencies[code]
    digits = cs.setup.index_digits
    return {
        round(cs.model.forward(sec * 1000, expiry_ms), digits)
        for sec in range(lo_ms // 1000 - 1, hi_ms // 1000 + 1)
    }


@pytest.mark.parametrize("code", ["ETH", "SOL"])
async def test_quote_rows_carry_the_forward_and_bid_ask_ivs_of_the_fake_pricing(
    database_url: str, tmp_path: Path, make_fake: Any, code: str
) -> None:
    config = MarketConfig(
        currencies=(code,), expiries=3, strikes_per_expiry=6, quote_rate_hz=20.0,
        trade_rate_hz=0.5, history_s=600.0,
    )  # fmt: skip
    fake = await make_fake(config)
    env = collector_env(
        fake, database_url, tmp_path / "spool", CURRENCY=code,
        QUOTE_FORWARD_MAX_AGE_S=str(MAX_AGE_S), TRADE_REPAIR_MAX_AGE_S="0",
    )  # fmt: skip
    settings = load_settings(env)
    await apply_settings_schema(settings)
    subs = SubscribeLog(fake)
    run = await start_collector(settings, fake)
    table = f"{code.lower()}_option_quotes"

    async def enough() -> bool:
        # Enough rows with a forward and enough IVs for the checks below (600 of them).
        rows = await query(
            database_url,
            f"SELECT count(underlying_price), count(bid_iv) + count(ask_iv) FROM {table}",
        )
        return rows[0][0] >= 400 and rows[0][1] >= 620

    await wait_for(enough, 60, "quote rows with a forward")
    assert await stop_collector(run) == 0

    # One agg2 ticker per expiry, and no other ticker.
    api_currency = "USDC" if code == "SOL" else code
    expiries = {
        parse_instrument_name(i["instrument_name"]).expiry
        for i in fake.market.instruments(api_currency, "option", False)
        if i["base_currency"] == code
    }
    assert expiries
    tickers = {c for c in subs.first if c.startswith("ticker.")}
    assert all(c.endswith(".agg2") for c in tickers)
    assert {parse_instrument_name(c.split(".")[1]).expiry for c in tickers} == expiries
    assert len(tickers) == len(expiries)

    rows = await query(
        database_url,
        "SELECT instrument_name, (extract(epoch from timestamp) * 1000)::bigint, "
        f"best_bid_price, best_ask_price, bid_iv, ask_iv, underlying_price FROM {table} "
        "ORDER BY timestamp",
    )
    with_forward = [r for r in rows if r[6] is not None]
    # Only the first quotes, before the first forward ticker, may lack one.
    first_forward_ms = min(r[1] for r in with_forward)
    late_without = [r for r in rows if r[6] is None and r[1] > first_forward_ms + 3000]
    assert late_without == []
    assert len(with_forward) >= 400

    linear = code == "SOL"
    ivs = 0
    for name, ts, bid, ask, bid_iv, ask_iv, forward in with_forward:
        meta = parse_instrument_name(name)
        assert meta.expires_at is not None and meta.strike is not None
        expiry_ms = int(meta.expires_at.timestamp() * 1000)
        assert forward in forwards_of(fake, code, expiry_ms, ts - MAX_AGE_S * 1000, ts), name
        years = (expiry_ms - ts) / MS_PER_YEAR
        call = meta.option_type == "call"
        for price, iv in ((bid, bid_iv), (ask, ask_iv)):
            if price is None:
                assert iv is None
                continue
            usd = price if linear else price * forward
            intrinsic = max(0.0, (forward - meta.strike) * (1 if call else -1))
            if iv is None:  # only a price with no time value over intrinsic has none
                assert usd <= intrinsic + 1e-9 * forward, (name, ts, price, forward)
                continue
            assert 1.0 < iv < 1000.0
            # The exact IV rounded to hundredths (as stored): within half a step plus the
            # solver's error (under 0.001), and the price it gives back is the quoted one to
            # within what 0.005 vol point moves it.
            exact = black76_iv(usd, forward, meta.strike, years, call)
            assert exact is not None and abs(iv - exact * 100.0) <= 0.006, (name, iv, exact)
            back = black76(forward, meta.strike, years, iv / 100.0, call)
            vega_per_point = back[3]
            assert abs(back[0] - usd) <= 0.006 * vega_per_point + 1e-9 * forward, (name, iv)
            ivs += 1
    assert ivs >= 600
    await asyncio.sleep(0)


async def test_a_failing_batch_transform_loses_no_row(database_url: str) -> None:
    """The writer's batch hook: rows are enriched on their way to the database, and a
    transform that raises (or changes the row count) lets them through unchanged."""
    apply_schema(database_url, ["BTC"], schedule_policies=False)
    writer = BatchWriter(database_url, collector_name="t", currency="BTC", version="t")
    at = datetime(2026, 1, 5, 8, tzinfo=UTC)
    row = QuoteRow(
        at, "BTC-30JAN26-100000-C", 0.05, 1.0, 0.052, 1.0, None, None, None, None, None, at
    )
    forwards = ForwardCurves(max_age_ms=10_000)
    forwards.note(row.instrument_name, int(at.timestamp() * 1000) - 500, 101_000.0)

    def broken(rows: list[tuple]) -> list[tuple]:
        raise RuntimeError("a bug")

    for transform in (broken, lambda rows: rows[:-1], forwards.enrich):
        writer.set_batch_transform(OPTION_QUOTES, "BTC", transform)
        writer.add(OPTION_QUOTES, "BTC", row)
        assert await writer.flush()
    await writer.drain(5)
    stored = await query(
        database_url,
        "SELECT underlying_price, bid_iv IS NOT NULL FROM btc_option_quotes ORDER BY 1",
    )
    assert stored == [(101_000.0, True), (None, False), (None, False)]
