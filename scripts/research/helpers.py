"""The first questions researchers ask, each one call on top of `load`.

- `smile(expiry, at)`: the IV smile of one expiry at a time: per option, the latest mark IV at
  or before `at` (from the quotes, or from options_greeks with `iv_from="greeks"`).
- `ohlcv(instrument, start, end, resolution)`: bars of any instrument at any resolution: options
  from their trades, perpetuals and futures from the recorded 1-minute bars.
- `funding(instrument, start, end)`: the funding history of a perpetual.
- `gaps(start, end)`: the windows `data_gaps` says were not recorded (or were repaired), to
  exclude from an analysis.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pandas as pd

from scripts.deribit.channels import currency_of_instrument, parse_instrument_name
from scripts.research.loader import Source, TimeLike, load, to_utc

SMILE_LOOKBACK = timedelta(hours=2)
OHLCV_COLUMNS = ["open", "high", "low", "close", "volume"]


def _expiry_code(expiry: str | date | datetime) -> str:
    """`28MAR25` from a date or an expiry string (`28MAR25`, `2025-03-28`)."""
    if isinstance(expiry, str):
        text = expiry.strip().upper()
        if "-" not in text:
            return text.lstrip("0")
        expiry = date.fromisoformat(text)
    if isinstance(expiry, datetime):
        expiry = expiry.date()
    return f"{expiry.day}{expiry.strftime('%b').upper()}{expiry:%y}"


def smile(
    expiry: str | date | datetime,
    at: TimeLike,
    currency: str = "BTC",
    *,
    iv_from: str = "quotes",
    lookback: timedelta = SMILE_LOOKBACK,
    source: Source = None,
) -> pd.DataFrame:
    """Columns strike, option_type, instrument_name, mark_iv (percent), timestamp; sorted by
    strike then type. Options with no IV in [at - lookback, at] are left out."""
    at_utc = to_utc(at)
    assert at_utc is not None
    code = _expiry_code(expiry)
    table = f"{currency.lower()}_option_quotes" if iv_from == "quotes" else "options_greeks"
    frame = load(
        table,
        at_utc - lookback,
        at_utc + timedelta(microseconds=1),
        currency=None if iv_from == "quotes" else currency,
        source=source,
    )
    frame = frame[frame["instrument_name"].str.split("-").str[1] == code]
    frame = frame.dropna(subset=["mark_iv"])
    latest = frame.sort_values("timestamp").groupby("instrument_name", as_index=False).last()
    parsed = [parse_instrument_name(n) for n in latest["instrument_name"]]
    out = pd.DataFrame(
        {
            "strike": [p.strike for p in parsed],
            "option_type": [p.option_type for p in parsed],
            "instrument_name": latest["instrument_name"].to_list(),
            "mark_iv": latest["mark_iv"].astype("float64").to_list(),
            "timestamp": latest["timestamp"].to_list(),
        }
    )
    if out.empty:
        out["timestamp"] = pd.Series(dtype="datetime64[us, UTC]")
    return out.sort_values(["strike", "option_type"], ignore_index=True)


def ohlcv(
    instrument: str,
    start: TimeLike,
    end: TimeLike,
    resolution: str = "1min",
    *,
    source: Source = None,
) -> pd.DataFrame:
    """Bars indexed by their start (UTC), columns open/high/low/close/volume, at any pandas
    resolution ("5min", "1h", "1D"). Empty intervals are left out."""
    kind = parse_instrument_name(instrument).kind
    if kind == "option":
        table = f"{currency_of_instrument(instrument).lower()}_option_trades"
        trades = load(table, start, end, instrument=instrument, source=source)
        series = trades.set_index("timestamp")
        bars = series["price"].resample(resolution, label="left", closed="left").ohlc()
        bars["volume"] = series["amount"].resample(resolution, label="left", closed="left").sum()
    else:
        table = "perpetuals_ohlcv" if kind == "perpetual" else "futures_ohlcv"
        minutes = load(table, start, end, instrument=instrument, source=source)
        minutes = minutes[minutes["resolution"] == "1"].set_index("timestamp")
        rs = minutes.resample(resolution, label="left", closed="left")
        bars = pd.DataFrame(
            {
                "open": rs["open"].first(),
                "high": rs["high"].max(),
                "low": rs["low"].min(),
                "close": rs["close"].last(),
                "volume": rs["volume"].sum(),
            }
        )
    bars = bars.dropna(subset=["open"])
    bars.index.name = "timestamp"
    return bars[OHLCV_COLUMNS]


def funding(
    instrument: str, start: TimeLike, end: TimeLike, *, source: Source = None
) -> pd.DataFrame:
    """funding_rates of one perpetual, indexed by time: interest_8h, interest_1h, index prices."""
    frame = load("funding_rates", start, end, instrument=instrument, source=source)
    return frame.set_index("timestamp")[
        ["interest_8h", "interest_1h", "index_price", "prev_index_price"]
    ]


def gaps(
    start: TimeLike = None,
    end: TimeLike = None,
    *,
    table: str | None = None,
    currency: str | None = None,
    include_repaired: bool = False,
    source: Source = None,
) -> pd.DataFrame:
    """Rows of data_gaps overlapping [start, end); repaired ones only with include_repaired.

    A gap still open (gap_end NULL) overlaps everything after its start."""
    frame = load("data_gaps", None, end, currency=currency, source=source)
    lo = to_utc(start)
    if lo is not None:
        frame = frame[frame["gap_end"].isna() | (frame["gap_end"] > pd.Timestamp(lo))]
    if table is not None:
        frame = frame[frame["table_name"] == table]
    if not include_repaired:
        frame = frame[~frame["repaired"].fillna(False).astype(bool)]
    return frame.reset_index(drop=True)
