"""The tables rows are written to: column names and SQL types in row order, and natural keys.

This registry and `schema/*.sql` describe the same tables; `tests/integration/test_schema.py`
checks that they agree. The writer builds its COPY and ON CONFLICT statements from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from scripts import models

OnConflict = Literal["nothing", "update", "none"]


@dataclass(frozen=True, slots=True)
class TableSpec:
    name_template: str  # "{cur}_option_quotes" or "funding_rates"
    row_type: type
    sql_types: tuple[str, ...]  # one per row field, in order
    key: tuple[str, ...] = ()  # natural unique key; empty = no key (plain COPY)
    on_conflict: OnConflict = "none"  # what to do with a row whose key exists

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self.row_type._fields)  # type: ignore[attr-defined]

    @property
    def per_currency(self) -> bool:
        return "{cur}" in self.name_template

    def table_name(self, currency: str | None = None) -> str:
        if self.per_currency:
            if not currency:
                raise ValueError(f"{self.name_template} needs a currency")
            return self.name_template.format(cur=currency.lower())
        return self.name_template


TS = "timestamptz"
F8 = "float8"

OPTION_QUOTES = TableSpec(
    "{cur}_option_quotes",
    models.QuoteRow,
    (TS, "text", F8, F8, F8, F8, F8, F8, F8, F8, F8, TS),
)
OPTION_TRADES = TableSpec(
    "{cur}_option_trades",
    models.TradeRow,
    (
        TS,
        "text",
        "text",
        "int8",
        F8,
        F8,
        F8,
        "text",
        "int2",
        F8,
        F8,
        F8,
        "text",
        "text",
        "int4",
        "int8",
        "text",
        "text",
        TS,
    ),
    key=("trade_id", "timestamp"),
    on_conflict="nothing",
)
OPTION_ORDERBOOK_DEPTH = TableSpec(
    "{cur}_option_orderbook_depth",
    models.BookSnapshotRow,
    (
        TS,
        "text",
        "int8",
        "float8[]",
        "float8[]",
        "float8[]",
        "float8[]",
        F8,
        F8,
        F8,
        F8,
        F8,
        F8,
        TS,
    ),
    key=("instrument_name", "timestamp"),
    on_conflict="nothing",
)
_OHLCV_TYPES = (TS, "text", "text", "text", F8, F8, F8, F8, F8, F8, TS)
PERPETUALS_OHLCV = TableSpec(
    "perpetuals_ohlcv",
    models.OhlcvRow,
    _OHLCV_TYPES,
    ("instrument_name", "resolution", "timestamp"),
    "update",
)
FUTURES_OHLCV = TableSpec(
    "futures_ohlcv",
    models.OhlcvRow,
    _OHLCV_TYPES,
    ("instrument_name", "resolution", "timestamp"),
    "update",
)
OPTIONS_OHLCV = TableSpec(
    "options_ohlcv",
    models.OptionOhlcvRow,
    (TS, "text", "text", "text", F8, F8, F8, F8, F8, "int4", F8, F8, F8, TS),
    ("instrument_name", "resolution", "timestamp"),
    "update",
)
OPTIONS_GREEKS = TableSpec(
    "options_greeks",
    models.GreeksRow,
    (
        *(TS, "text", "text", F8, F8, F8, F8, F8, F8, F8, F8, F8, F8, "text"),
        *(F8, F8, F8, F8, F8, TS, TS),
    ),
    ("instrument_name", "timestamp"),
    "nothing",
)
FUNDING_RATES = TableSpec(
    "funding_rates",
    models.FundingRow,
    (TS, "text", "text", F8, F8, F8, F8, TS),
    ("instrument_name", "timestamp"),
    "nothing",
)
INDEX_PRICES = TableSpec(
    "index_prices",
    models.IndexPriceRow,
    (TS, "text", "text", "text", F8, TS),
    ("index_name", "kind", "timestamp"),
    "nothing",
)
INSTRUMENTS = TableSpec(
    "instruments",
    models.InstrumentRow,
    (
        "text",
        "text",
        "text",
        "text",
        F8,
        TS,
        TS,
        F8,
        F8,
        F8,
        "text",
        "text",
        "text",
        "text",
        "text",
        "text",
        "text",
        "int8",
        "bool",
        TS,
    ),
    ("instrument_name",),
    "update",
)
DATA_GAPS = TableSpec(
    "data_gaps",
    models.GapRow,
    ("text", "text", "text", TS, TS, "text", "bool", TS),
    ("table_name", "scope", "gap_start", "reason"),
    "update",
)
REJECTED_MESSAGES = TableSpec(
    "rejected_messages",
    models.RejectedMessageRow,
    (TS, "text", "text", "text", "text"),
)

ALL_TABLES: tuple[TableSpec, ...] = (
    OPTION_QUOTES,
    OPTION_TRADES,
    OPTION_ORDERBOOK_DEPTH,
    PERPETUALS_OHLCV,
    FUTURES_OHLCV,
    OPTIONS_OHLCV,
    OPTIONS_GREEKS,
    FUNDING_RATES,
    INDEX_PRICES,
    INSTRUMENTS,
    DATA_GAPS,
    REJECTED_MESSAGES,
)
