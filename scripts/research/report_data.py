"""The numbers of the data-quality report, per currency and UTC day, read from the database.

- rows per table per day (and per hour, for the plot);
- quote coverage: per hour, the share of the day's quoted options that have a quote in that
  hour (an option that quoted at all that day and went silent for an hour shows as a hole);
- gaps from `data_gaps`: open (never repaired) and repaired, with their windows;
- rejected messages per day (they carry no currency: reported once, for all);
- agreement of `options_ohlcv` volume and trade count with the recorded trades, per day: the
  minutes where the bar and the trades disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd
import psycopg
from psycopg import sql

PER_CURRENCY = ("option_quotes", "option_trades", "option_orderbook_depth")
SHARED = (
    "options_ohlcv",
    "perpetuals_ohlcv",
    "futures_ohlcv",
    "options_greeks",
    "funding_rates",
    "index_prices",
)


@dataclass
class CurrencyReport:
    currency: str  # BTC
    rows_per_day: pd.DataFrame  # index day, one column per table
    rows_per_hour: pd.DataFrame  # index hour, one column per table
    coverage: pd.DataFrame  # index day, columns hour 0..23: share of options quoted (0..1)
    gaps: pd.DataFrame  # table_name, scope, gap_start, gap_end, reason, repaired
    volume_check: pd.DataFrame  # index day: bar_minutes, trade_minutes, mismatched_minutes


@dataclass
class ReportData:
    start: datetime
    end: datetime
    currencies: list[CurrencyReport] = field(default_factory=list)
    rejected_per_day: pd.DataFrame = field(default_factory=pd.DataFrame)


def _frame(
    conn: psycopg.Connection, query: sql.Composed | sql.SQL, params: list, cols: list[str]
) -> pd.DataFrame:
    rows = conn.execute(query, params).fetchall()
    return pd.DataFrame(rows, columns=cols)


def _exists(conn: psycopg.Connection, name: str) -> bool:
    return conn.execute("SELECT to_regclass(%s)", (name,)).fetchone() != (None,)


def _counts(
    conn: psycopg.Connection, table: str, cur: str | None, unit: str, lo: datetime, hi: datetime
) -> pd.Series:
    where: sql.Composed | sql.SQL = sql.SQL('"timestamp" >= %s AND "timestamp" < %s')
    params: list = [lo, hi]
    if cur is not None:
        where += sql.SQL(" AND currency = %s")
        params.append(cur)
    q = sql.SQL(
        'SELECT date_trunc({}, "timestamp") AS t, count(*) FROM {} WHERE {} GROUP BY 1'
    ).format(sql.Literal(unit), sql.Identifier(table), where)
    df = _frame(conn, q, params, ["t", "n"])
    return df.set_index("t")["n"] if not df.empty else pd.Series(dtype="int64")


def read_report(
    conn: psycopg.Connection, start: datetime, end: datetime, currencies: list[str] | None = None
) -> ReportData:
    conn.execute("SET TIME ZONE 'UTC'")
    recorded = [
        r[0].upper() for r in conn.execute("SELECT currency FROM chaintape_currencies ORDER BY 1")
    ]
    wanted = [c.upper() for c in currencies] if currencies else recorded
    data = ReportData(start, end)
    for cur in wanted:
        data.currencies.append(_currency(conn, cur, start, end))
    if _exists(conn, "rejected_messages"):
        df = _frame(
            conn,
            sql.SQL(
                "SELECT date_trunc('day', received_at) AS day,"
                " coalesce(split_part(reason, ':', 1), '?'), count(*) FROM rejected_messages"
                " WHERE received_at >= %s AND received_at < %s"
                " GROUP BY 1, 2 ORDER BY 1, 2"
            ),
            [start, end],
            ["day", "reason", "n"],
        )
        data.rejected_per_day = df
    return data


def _currency(conn: psycopg.Connection, cur: str, lo: datetime, hi: datetime) -> CurrencyReport:
    prefix = cur.lower()
    per_day: dict[str, pd.Series] = {}
    per_hour: dict[str, pd.Series] = {}
    for kind in PER_CURRENCY:
        table = f"{prefix}_{kind}"
        if _exists(conn, table):
            per_day[table] = _counts(conn, table, None, "day", lo, hi)
            per_hour[table] = _counts(conn, table, None, "hour", lo, hi)
    for table in SHARED:
        if _exists(conn, table):
            per_day[table] = _counts(conn, table, cur, "day", lo, hi)
            per_hour[table] = _counts(conn, table, cur, "hour", lo, hi)
    rows_per_day = pd.DataFrame(per_day).fillna(0).astype("int64").sort_index()
    rows_per_hour = pd.DataFrame(per_hour).fillna(0).astype("int64").sort_index()
    return CurrencyReport(
        currency=cur,
        rows_per_day=rows_per_day,
        rows_per_hour=rows_per_hour,
        coverage=_coverage(conn, f"{prefix}_option_quotes", lo, hi),
        gaps=_gaps(conn, cur, lo, hi),
        volume_check=_volume_check(conn, cur, lo, hi),
    )


def _coverage(conn: psycopg.Connection, quotes: str, lo: datetime, hi: datetime) -> pd.DataFrame:
    if not _exists(conn, quotes):
        return pd.DataFrame()
    q = sql.SQL(
        "WITH h AS (SELECT DISTINCT date_trunc('hour', \"timestamp\") AS hour, instrument_name"
        '             FROM {} WHERE "timestamp" >= %s AND "timestamp" < %s),'
        " d AS (SELECT date_trunc('day', hour) AS day, count(DISTINCT instrument_name) AS n"
        "         FROM h GROUP BY 1)"
        " SELECT date_trunc('day', h.hour) AS day, extract(hour FROM h.hour)::int AS hr,"
        "        count(*)::float8 / max(d.n) AS share"
        "   FROM h JOIN d ON d.day = date_trunc('day', h.hour) GROUP BY 1, 2"
    ).format(sql.Identifier(quotes))
    df = _frame(conn, q, [lo, hi], ["day", "hour", "share"])
    if df.empty:
        return pd.DataFrame()
    grid = df.pivot(index="day", columns="hour", values="share").reindex(columns=range(24))
    return grid.fillna(0.0).sort_index()


def _gaps(conn: psycopg.Connection, cur: str, lo: datetime, hi: datetime) -> pd.DataFrame:
    q = sql.SQL(
        "SELECT table_name, scope, gap_start, gap_end, reason, coalesce(repaired, false)"
        "  FROM data_gaps WHERE (currency = %s OR currency IS NULL)"
        "   AND gap_start < %s AND (gap_end IS NULL OR gap_end > %s) ORDER BY gap_start"
    )
    return _frame(
        conn,
        q,
        [cur, hi, lo],
        ["table_name", "scope", "gap_start", "gap_end", "reason", "repaired"],
    )


def _volume_check(conn: psycopg.Connection, cur: str, lo: datetime, hi: datetime) -> pd.DataFrame:
    trades = f"{cur.lower()}_option_trades"
    if not (_exists(conn, trades) and _exists(conn, "options_ohlcv")):
        return pd.DataFrame()
    q = sql.SQL(
        "WITH t AS (SELECT instrument_name, date_trunc('minute', \"timestamp\") AS minute,"
        "                  sum(amount) AS volume, count(*) AS n"
        '             FROM {} WHERE "timestamp" >= %s AND "timestamp" < %s GROUP BY 1, 2),'
        ' b AS (SELECT instrument_name, "timestamp" AS minute, volume, trade_count AS n'
        "         FROM options_ohlcv WHERE currency = %s AND resolution = '1'"
        '          AND "timestamp" >= %s AND "timestamp" < %s AND trade_count > 0)'
        " SELECT date_trunc('day', coalesce(t.minute, b.minute)) AS day,"
        "        count(b.minute) AS bar_minutes, count(t.minute) AS trade_minutes,"
        "        count(*) FILTER (WHERE t.minute IS NULL OR b.minute IS NULL"
        "                         OR abs(t.volume - b.volume) > 1e-9 OR t.n <> b.n) AS mismatched,"
        "        coalesce(sum(b.volume), 0) AS bar_volume,"
        "        coalesce(sum(t.volume), 0) AS trade_volume"
        "   FROM t FULL JOIN b USING (instrument_name, minute)"
        "  GROUP BY 1 ORDER BY 1"
    ).format(sql.Identifier(trades))
    df = _frame(
        conn,
        q,
        [lo, hi, cur, lo, hi],
        ["day", "bar_minutes", "trade_minutes", "mismatched", "bar_volume", "trade_volume"],
    )
    return df.set_index("day") if not df.empty else df
