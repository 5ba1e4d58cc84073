"""Tardis.dev-compatible daily CSV datasets from the recorded tables (`--format tardis`).

Format, as Tardis documents its downloadable CSV files (docs.tardis.dev, "Downloadable CSV
files" / "Data types") and as nautilus_trader's Tardis CSV loaders read them
(crates/adapters/tardis/src/csv/record.rs: TardisTradeRecord, TardisQuoteRecord,
TardisOptionsChainRecord): comma-delimited, LF, `.` decimals, a header line, timestamps in
microseconds since the epoch (UTC), one gzip file per day named as the tardis-dev client's
default `{exchange}_{data_type}_{YYYY-MM-DD}_{symbol}.csv.gz`, with the grouped symbol OPTIONS.
Values keep Deribit's units: option prices in the base coin, amounts in contracts as Deribit
sends them, IVs in percent (as in Tardis's Deribit options_chain sample, mark_iv 62.89).

- trades: exchange,symbol,timestamp,local_timestamp,id,side,price,amount
  (side = the taker's direction, id = Deribit's trade_id) from the option trades.
- quotes: exchange,symbol,timestamp,local_timestamp,ask_amount,ask_price,bid_price,bid_amount
  (empty when that side of the book is empty) from the option quotes.
- options_chain: the 24 columns of Tardis's options_chain, one row per recorded quote. What a
  quote row records is taken from it (bid/ask, bid_iv/ask_iv when a ticker carried them, mark
  price and IV, underlying price); type, strike_price and expiration come from `instruments`;
  columns not recorded per quote are filled from the latest row at or before the quote (never
  from a later one, so a backtest sees only what was known): delta, gamma, vega, theta, rho,
  open_interest and underlying_index from `options_greeks` (polled hourly), underlying_price
  from it when the quote has none, last_price from the option's latest trade. A column with no
  such row is left empty.
Futures and perpetuals are recorded as 1-minute bars only (no tick trades or quotes), so there
is no Tardis dataset for them; asking for one is an error that says so.
Days are cut on the exchange `timestamp` (UTC).
"""

from __future__ import annotations

import gzip
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from scripts.research.catalog import CatalogError
from scripts.research.export_days import DayJob, DayPlan, plan_days, run_days
from scripts.research.exporter import estimate_rows
from scripts.research.manifest import base_manifest
from scripts.research.progress import Progress
from scripts.research.query import Filters
from scripts.research.stream import connection_like, copy_out, session_utc

EXCHANGE = "deribit"
GROUPED_SYMBOL = "OPTIONS"
# Exactly Tardis's options_chain header (and nautilus_trader's test file's).
OPTIONS_CHAIN_HEADER = (
    "exchange,symbol,timestamp,local_timestamp,type,strike_price,expiration,open_interest,"
    "last_price,bid_price,bid_amount,bid_iv,ask_price,ask_amount,ask_iv,mark_price,mark_iv,"
    "underlying_index,underlying_price,delta,gamma,vega,theta,rho"
)
HEADERS: dict[str, tuple[str, ...]] = {
    "trades": (
        "exchange",
        "symbol",
        "timestamp",
        "local_timestamp",
        "id",
        "side",
        "price",
        "amount",
    ),
    "quotes": (
        "exchange",
        "symbol",
        "timestamp",
        "local_timestamp",
        "ask_amount",
        "ask_price",
        "bid_price",
        "bid_amount",
    ),
    "options_chain": tuple(OPTIONS_CHAIN_HEADER.split(",")),
}
ALIASES = {
    "option_quotes": "quotes",
    "option_trades": "trades",
}


def us(expr: str) -> str:
    """Microseconds since the epoch of a timestamptz expression (exact: extract is numeric)."""
    return f"(extract(epoch FROM {expr}) * 1000000)::int8"


_SELECTS = {
    "trades": f"""
        SELECT 'deribit', q.instrument_name, {us('q."timestamp"')}, {us("q.received_at")},
               q.trade_id, q.direction, q.price, q.amount
          FROM {{src}} q WHERE q."timestamp" >= %s AND q."timestamp" < %s {{cur}}
         ORDER BY q."timestamp", q.trade_id""",
    "quotes": f"""
        SELECT 'deribit', q.instrument_name, {us('q."timestamp"')}, {us("q.received_at")},
               q.best_ask_amount, q.best_ask_price, q.best_bid_price, q.best_bid_amount
          FROM {{src}} q WHERE q."timestamp" >= %s AND q."timestamp" < %s {{cur}}
         ORDER BY q."timestamp", q.instrument_name, q.received_at""",
    "options_chain": f"""
        SELECT 'deribit', q.instrument_name, {us('q."timestamp"')}, {us("q.received_at")},
               i.option_type, i.strike, {us("i.expiration_timestamp")}, g.open_interest,
               t.price, q.best_bid_price, q.best_bid_amount, q.bid_iv, q.best_ask_price,
               q.best_ask_amount, q.ask_iv, q.mark_price, q.mark_iv, g.underlying_index,
               coalesce(q.underlying_price, g.underlying_price),
               g.delta, g.gamma, g.vega, g.theta, g.rho
          FROM {{src}} q
          JOIN instruments i ON i.instrument_name = q.instrument_name
          LEFT JOIN LATERAL (
                SELECT g.open_interest, g.underlying_index, g.underlying_price,
                       g.delta, g.gamma, g.vega, g.theta, g.rho
                  FROM options_greeks g
                 WHERE g.instrument_name = q.instrument_name AND g."timestamp" <= q."timestamp"
                 ORDER BY g."timestamp" DESC LIMIT 1) g ON true
          LEFT JOIN LATERAL (
                SELECT t.price FROM {{trades}} t
                 WHERE t.instrument_name = q.instrument_name AND t."timestamp" <= q."timestamp"
                 ORDER BY t."timestamp" DESC LIMIT 1) t ON true
         WHERE q."timestamp" >= %s AND q."timestamp" < %s {{cur}}
         ORDER BY q."timestamp", q.instrument_name, q.received_at""",
}


def data_type(table: str) -> str:
    """The Tardis data type asked for: options_chain, trades, quotes or one of our tables."""
    if table in HEADERS:
        return table
    for suffix, kind in ALIASES.items():
        if table == suffix or table.endswith("_" + suffix):
            return kind
    raise CatalogError(
        f"--format tardis exports options_chain, trades or quotes (or option_quotes / "
        f"option_trades), not {table!r}: futures and perpetuals are recorded as 1-minute bars "
        "only, with no tick trades or quotes, so there is no Tardis dataset for them"
    )


def tardis_query(kind: str, currency: str | None) -> sql.Composed:
    """The day query (parameters: window start, end) with the columns aliased to the header."""
    src = "option_quotes" if kind != "trades" else "option_trades"
    cur = "AND q.currency = %s" if currency else ""
    body = _SELECTS[kind].format(src=src, trades="option_trades", cur=cur)
    names = sql.SQL(", ").join(sql.Identifier(h) for h in HEADERS[kind])
    return sql.SQL("SELECT * FROM ({}) AS tardis ({})").format(sql.SQL(body), names)


def file_name(kind: str, day: str) -> str:
    return f"{EXCHANGE}_{kind}_{day}_{GROUPED_SYMBOL}.csv.gz"


def export_tardis(
    conn: psycopg.Connection,
    table: str,
    start: datetime,
    end: datetime,
    out: Path,
    filters: Filters,
    *,
    jobs: int = 1,
    tty: bool | None = None,
) -> dict[str, Any]:
    kind = data_type(table)
    if filters.instrument:
        raise CatalogError("--format tardis writes whole days of the chain; leave out --instrument")
    session_utc(conn)
    view = "option_trades" if kind == "trades" else "option_quotes"
    if conn.execute("SELECT to_regclass(%s)", (view,)).fetchone() == (None,):
        raise CatalogError(f"no {view} in this database: run `python -m scripts.migrate` first")
    currency = filters.currency.upper() if filters.currency else None
    query = tardis_query(kind, currency)
    extra = [currency] if currency else []

    def params(lo: datetime | None, hi: datetime | None) -> list[Any]:
        return [lo, hi, *extra]

    def write(
        conn: psycopg.Connection,
        lo: datetime | None,
        hi: datetime | None,
        tmp: Path,
        progress: Progress,
    ) -> int:
        copy_sql = sql.SQL("COPY ({}) TO STDOUT (FORMAT csv, HEADER)").format(query)
        with gzip.GzipFile(tmp, "wb", compresslevel=6, mtime=0) as gz:  # reproducible bytes
            rows = copy_out(
                conn, copy_sql, params(lo, hi), gz.write, lambda n: progress.advance(0, n)
            )
        progress.advance(rows, 0)
        return rows

    def count(conn: psycopg.Connection, lo: datetime | None, hi: datetime | None) -> int:
        row = conn.execute(
            sql.SQL("SELECT count(*) FROM ({}) c").format(query), params(lo, hi)
        ).fetchone()
        return int(row[0]) if row else 0

    folder = out / f"tardis_{kind}"
    job = DayJob(
        folder=folder,
        file_name=lambda plan: file_name(kind, plan.label),
        write=write,
        count=count,
        file_rows=lambda _p: None,
        connect=lambda: connection_like(conn),
    )
    plans: list[DayPlan] = plan_days(start, end)
    progress = Progress(f"tardis {kind}", estimate_rows(conn, query, params(start, end)), tty=tty)
    manifest = base_manifest(
        conn,
        table=kind,
        fmt="tardis",
        start=start,
        end=end,
        filters={"currency": currency, "instrument": None},
        columns=[{"name": h} for h in HEADERS[kind]],
    )
    try:
        return run_days(conn, job, plans, manifest, progress, jobs=jobs)
    finally:
        progress.close()
