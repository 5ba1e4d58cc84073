"""Row types: one NamedTuple per table, fields in the table's column order.

NamedTuples are immutable and slotted, and they are tuples, so the writer hands them to
binary COPY as they are. Times are timezone-aware UTC datetimes; `timestamp` is the
exchange's time and `received_at` the local receive time. IVs are in percent everywhere
(Deribit's `markprice.options` sends fractions; the parser converts).

The column names and SQL types that go with each row live in `scripts/storage/tables.py`.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple


class QuoteRow(NamedTuple):
    """`{cur}_option_quotes`: one change of an option's best bid/ask."""

    timestamp: datetime
    instrument_name: str
    best_bid_price: float | None
    best_bid_amount: float | None
    best_ask_price: float | None
    best_ask_amount: float | None
    bid_iv: float | None
    ask_iv: float | None
    mark_iv: float | None
    mark_price: float | None
    underlying_price: float | None
    received_at: datetime


class TradeRow(NamedTuple):
    """`{cur}_option_trades`: one trade; unique by (trade_id, timestamp)."""

    timestamp: datetime
    instrument_name: str
    trade_id: str
    trade_seq: int | None
    price: float
    amount: float
    contracts: float | None
    direction: str
    tick_direction: int | None
    iv: float | None
    index_price: float | None
    mark_price: float | None
    liquidation: str | None
    block_trade_id: str | None
    block_trade_leg_count: int | None
    block_rfq_id: int | None
    combo_id: str | None
    combo_trade_id: str | None
    received_at: datetime


class BookSnapshotRow(NamedTuple):
    """`{cur}_option_orderbook_depth`: an option's book to a depth.

    Unique by (instrument_name, timestamp).
    """

    timestamp: datetime
    instrument_name: str
    change_id: int | None
    bid_prices: list[float]
    bid_amounts: list[float]
    ask_prices: list[float]
    ask_amounts: list[float]
    mark_price: float | None
    mark_iv: float | None
    bid_iv: float | None
    ask_iv: float | None
    underlying_price: float | None
    open_interest: float | None
    received_at: datetime


class OhlcvRow(NamedTuple):
    """`perpetuals_ohlcv` and `futures_ohlcv`.

    Unique by (instrument_name, resolution, timestamp).
    """

    timestamp: datetime  # bar start
    instrument_name: str
    currency: str
    resolution: str  # Deribit's resolution: "1" = 1 minute
    open: float
    high: float
    low: float
    close: float
    volume: float
    cost: float | None
    received_at: datetime


class OptionOhlcvRow(NamedTuple):
    """`options_ohlcv`: 1-minute bars with IV.

    Unique by (instrument_name, resolution, timestamp).
    """

    timestamp: datetime
    instrument_name: str
    currency: str
    resolution: str
    open: float | None
    high: float | None
    low: float | None
    close: float | None
    volume: float
    trade_count: int
    mark_iv_close: float | None  # mark IV at the bar's close (percent)
    mark_price_close: float | None
    trade_iv_vwap: float | None  # amount-weighted IV of the bar's trades (percent)
    received_at: datetime


class GreeksRow(NamedTuple):
    """`options_greeks`; unique by (instrument_name, timestamp).

    `timestamp` is the start of the poll interval (the hour) the ticker was read for, so a
    second read in the same hour (a restart) is the same key; `ticker_timestamp` is the
    ticker's own time.
    """

    timestamp: datetime
    instrument_name: str
    currency: str
    delta: float | None
    gamma: float | None
    vega: float | None
    theta: float | None
    rho: float | None
    mark_iv: float | None
    bid_iv: float | None
    ask_iv: float | None
    mark_price: float | None
    underlying_price: float | None
    underlying_index: str | None
    index_price: float | None
    open_interest: float | None
    interest_rate: float | None
    best_bid_price: float | None
    best_ask_price: float | None
    received_at: datetime
    ticker_timestamp: datetime


class FundingRow(NamedTuple):
    """`funding_rates`: Deribit's hourly funding history; unique by (instrument_name, timestamp)."""

    timestamp: datetime
    instrument_name: str
    currency: str
    interest_8h: float | None
    interest_1h: float | None
    index_price: float | None
    prev_index_price: float | None
    received_at: datetime


class IndexPriceRow(NamedTuple):
    """`index_prices`: price indices (kind "price") and DVOL (kind "dvol").

    Unique by (index_name, kind, timestamp).
    """

    timestamp: datetime
    index_name: str
    currency: str
    kind: str
    value: float
    received_at: datetime


class InstrumentRow(NamedTuple):
    """`instruments`: every instrument ever seen; upserted by instrument_name."""

    instrument_name: str
    currency: str  # chaintape's currency code: BTC, ETH, SOL
    kind: str
    option_type: str | None
    strike: float | None
    expiration_timestamp: datetime | None
    creation_timestamp: datetime | None
    contract_size: float | None
    tick_size: float | None
    min_trade_amount: float | None
    settlement_currency: str | None
    base_currency: str | None
    quote_currency: str | None
    counter_currency: str | None
    settlement_period: str | None
    instrument_type: str | None
    price_index: str | None
    instrument_id: int | None
    is_active: bool
    last_seen: datetime


class GapRow(NamedTuple):
    """`data_gaps`: a window that was not recorded, or was repaired."""

    table_name: str
    currency: str | None
    scope: str  # instrument name or channel
    gap_start: datetime
    gap_end: datetime
    reason: str
    repaired: bool
    detected_at: datetime


class RejectedMessageRow(NamedTuple):
    """`rejected_messages`: bad input kept for inspection."""

    received_at: datetime
    collector: str
    channel: str | None
    reason: str
    raw: str  # the message text, truncated to 8 kB
