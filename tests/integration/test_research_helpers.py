"""The loader's helpers on data the test wrote itself: an IV smile, OHLCV at two resolutions,
the funding history and the gaps, from the database and from an export of it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from scripts import export
from scripts.models import FundingRow, GapRow, OhlcvRow, QuoteRow, TradeRow
from scripts.research import funding, gaps, ohlcv, smile
from scripts.storage.tables import (
    DATA_GAPS,
    FUNDING_RATES,
    OPTION_QUOTES,
    OPTION_TRADES,
    PERPETUALS_OHLCV,
)
from tests.support.writer_db import create_schema, query

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
EXPIRY = "26JUN26"


def insert(url: str, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
    cols = ", ".join(f'"{c}"' for c in columns)
    marks = ", ".join(["%s"] * len(columns))
    import psycopg

    with psycopg.connect(url) as conn, conn.cursor() as cur:
        cur.executemany(f'INSERT INTO "{table}" ({cols}) VALUES ({marks})', rows)


def quote(name: str, at: datetime, iv: float | None) -> QuoteRow:
    return QuoteRow(at, name, 0.01, 1.0, 0.02, 1.0, None, None, iv, 0.015, 3000.0, at)


@pytest.fixture
def written(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Path]:
    create_schema(database_url, ("ETH",))
    smile_rows = []
    # The smile at T0: strikes 2000..4000, calls and puts; each option's IV is changed twice
    # before T0 (the last one counts) and once after (must not count).
    expected = {}
    for k, strike in enumerate((2000, 2500, 3000, 3500, 4000)):
        for kind in ("C", "P"):
            name = f"ETH-{EXPIRY}-{strike}-{kind}"
            iv = 80.0 - 5 * k + (1.5 if kind == "P" else 0.0)
            smile_rows += [
                quote(name, T0 - timedelta(minutes=30), iv + 10),
                quote(name, T0 - timedelta(minutes=5 + k), iv),
                quote(name, T0 + timedelta(seconds=1), iv - 20),
            ]
            expected[(float(strike), "call" if kind == "C" else "put")] = iv
    smile_rows.append(quote("ETH-27JUN26-3000-C", T0 - timedelta(minutes=1), 99.0))  # other expiry
    smile_rows.append(quote(f"ETH-{EXPIRY}-4500-C", T0 - timedelta(minutes=3), None))  # no IV
    insert(database_url, "eth_option_quotes", OPTION_QUOTES.columns, [tuple(r) for r in smile_rows])
    trades = []
    prices = [0.010, 0.013, 0.009, 0.011, 0.012, 0.008, 0.014]
    for i, p in enumerate(prices):  # minute i*2: two trades in each 5-minute bar but the last
        at = T0 + timedelta(minutes=2 * i)
        trades.append(
            TradeRow(
                at,
                f"ETH-{EXPIRY}-3000-C",
                f"T{i}",
                i,
                p,
                1.0 + i,
                None,
                "buy",
                0,
                60.0,
                3000.0,
                p,
                None,
                None,
                None,
                None,
                None,
                None,
                at,
            )
        )
    insert(database_url, "eth_option_trades", OPTION_TRADES.columns, [tuple(r) for r in trades])
    bars = [
        OhlcvRow(
            T0 + timedelta(minutes=m),
            "ETH-PERPETUAL",
            "ETH",
            "1",
            3000.0 + m,
            3010.0 + m,
            2990.0 + m,
            3005.0 + m,
            10.0,
            None,
            T0,
        )
        for m in range(30)
    ]
    insert(database_url, "perpetuals_ohlcv", PERPETUALS_OHLCV.columns, [tuple(r) for r in bars])
    fund = [
        FundingRow(
            T0 + timedelta(hours=h),
            "ETH-PERPETUAL",
            "ETH",
            1e-4 * h,
            1e-5 * h,
            3000.0 + h,
            2999.0 + h,
            T0,
        )
        for h in range(5)
    ]
    insert(database_url, "funding_rates", FUNDING_RATES.columns, [tuple(r) for r in fund])
    gap_rows = [
        GapRow(
            "eth_option_quotes",
            "ETH",
            "ws0",
            T0 - timedelta(hours=3),
            T0 - timedelta(hours=2),
            "disconnected",
            False,
            T0,
        ),
        GapRow(
            "eth_option_quotes",
            "ETH",
            "ws0",
            T0 + timedelta(minutes=10),
            T0 + timedelta(minutes=11),
            "disconnected",
            False,
            T0,
        ),
        GapRow(
            "eth_option_trades",
            "ETH",
            "ETH-PERPETUAL",
            T0,
            T0 + timedelta(minutes=1),
            "repair",
            True,
            T0,
        ),
    ]
    insert(database_url, "data_gaps", DATA_GAPS.columns, [tuple(r) for r in gap_rows])
    out = tmp_path / "out"
    monkeypatch.setenv("DATABASE_URL", database_url)
    for table in (
        "eth_option_quotes",
        "eth_option_trades",
        "perpetuals_ohlcv",
        "funding_rates",
        "data_gaps",
    ):
        assert (
            export.main([table, "--start", "2026-05-31", "--end", "2026-06-03", "--out", str(out)])
            == 0
        )
    assert expected == written_expected()
    return database_url, out


@pytest.mark.parametrize("side", ["database", "export"])
def test_smile_is_the_latest_mark_iv_per_option_at_or_before_the_time(
    written: tuple[str, Path], side: str
) -> None:
    url, out = written
    source = url if side == "database" else out
    got = smile(EXPIRY, T0, "ETH", source=source)
    expected = written_expected()
    assert list(zip(got["strike"], got["option_type"], got["mark_iv"], strict=True)) == [
        (k[0], k[1], v) for k, v in sorted(expected.items())
    ]
    assert (got["timestamp"] <= pd.Timestamp(T0)).all()
    assert got["instrument_name"].str.startswith(f"ETH-{EXPIRY}-").all()


def written_expected() -> dict[tuple[float, str], float]:
    out = {}
    for k, strike in enumerate((2000, 2500, 3000, 3500, 4000)):
        for kind in ("call", "put"):
            out[(float(strike), kind)] = 80.0 - 5 * k + (1.5 if kind == "put" else 0.0)
    return out


@pytest.mark.parametrize("side", ["database", "export"])
def test_ohlcv_funding_and_gaps_from_known_rows(written: tuple[str, Path], side: str) -> None:
    url, out = written
    source = url if side == "database" else out
    end = T0 + timedelta(hours=1)
    bars = ohlcv(f"ETH-{EXPIRY}-3000-C", T0, end, "5min", source=source)
    # trades at minutes 0,2,4 | 6,8 | 10,12 -> bars at 0, 5, 10
    assert list(bars.index) == [pd.Timestamp(T0 + timedelta(minutes=m)) for m in (0, 5, 10)]
    assert list(bars["open"]) == [0.010, 0.011, 0.008]
    assert list(bars["high"]) == [0.013, 0.012, 0.014]
    assert list(bars["low"]) == [0.009, 0.011, 0.008]
    assert list(bars["close"]) == [0.009, 0.012, 0.014]
    assert list(bars["volume"]) == [1.0 + 2.0 + 3.0, 4.0 + 5.0, 6.0 + 7.0]
    perp = ohlcv("ETH-PERPETUAL", T0, end, "15min", source=source)
    assert list(perp["open"]) == [3000.0, 3015.0]
    assert list(perp["high"]) == [3010.0 + 14, 3010.0 + 29]
    assert list(perp["close"]) == [3005.0 + 14, 3005.0 + 29]
    assert list(perp["volume"]) == [150.0, 150.0]
    fund = funding("ETH-PERPETUAL", T0, T0 + timedelta(hours=3), source=source)
    assert list(fund["interest_8h"]) == [0.0, 1e-4, 2e-4]
    assert str(fund.index.dtype) == "datetime64[us, UTC]"
    open_gaps = gaps(T0 - timedelta(hours=1), end, source=source)
    assert list(open_gaps["gap_start"]) == [pd.Timestamp(T0 + timedelta(minutes=10))]
    every = gaps(T0 - timedelta(hours=1), end, include_repaired=True, source=source)
    assert len(every) == 2
    assert len(gaps(None, end, table="eth_option_quotes", source=source)) == 2
    assert query(url, "SELECT count(*) FROM data_gaps")[0][0] == 3
