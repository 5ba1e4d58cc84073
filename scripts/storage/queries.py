"""The SQL the collectors run besides the writer's COPY: where each poller resumes after a
restart, the newest stored quote of an option, the option bars built from stored trades, and
the backfill's progress. Collectors call these functions; they hold no SQL of their own. (The
tables themselves are in `schema/`.)
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql


# ---- where a poller resumes ---------------------------------------------------------------------
async def newest_per_instrument(
    conn: psycopg.AsyncConnection[Any], table: str, resolution: str | None = None
) -> dict[str, datetime]:
    """max(timestamp) per instrument of a shared table (bars: of one `resolution`)."""
    where = sql.SQL("WHERE resolution = %s ") if resolution is not None else sql.SQL("")
    query = sql.SQL("SELECT instrument_name, max(timestamp) FROM {} {}GROUP BY 1").format(
        sql.Identifier(table), where
    )
    cur = await conn.execute(query, (resolution,) if resolution is not None else None)
    return {name: newest for name, newest in await cur.fetchall()}


async def newest_option_bar(
    conn: psycopg.AsyncConnection[Any], currency: str, resolution: str
) -> datetime | None:
    """Start of the newest `options_ohlcv` bar of a currency."""
    return await _newest(
        conn,
        "SELECT max(timestamp) FROM options_ohlcv WHERE currency = %s AND resolution = %s",
        (currency, resolution),
    )


async def newest_index_value(
    conn: psycopg.AsyncConnection[Any], index_name: str, kind: str
) -> datetime | None:
    """Time of the newest `index_prices` row of one index and kind (price, dvol)."""
    return await _newest(
        conn,
        "SELECT max(timestamp) FROM index_prices WHERE index_name = %s AND kind = %s",
        (index_name, kind),
    )


async def _newest(
    conn: psycopg.AsyncConnection[Any], query: str, params: tuple[Any, ...]
) -> datetime | None:
    """The one value of a `SELECT max(timestamp) ...` (None for no rows)."""
    row = await (await conn.execute(query, params)).fetchone()
    return None if row is None else row[0]


async def newest_timestamp(database_url: str, table: str) -> datetime | None:
    """max(timestamp) of a per-currency table, None when it is empty."""
    # The newest chunk first: the quote tables have no index on "timestamp" alone, and
    # runtime chunk exclusion keeps this to one chunk (schema/007_quotes_indexes.sql).
    newest_chunk = sql.SQL(
        'SELECT max("timestamp") FROM {} WHERE "timestamp" >= coalesce((SELECT max(range_start) '
        "FROM timescaledb_information.chunks WHERE hypertable_schema = current_schema() "
        "AND hypertable_name = %s), '-infinity')"
    ).format(sql.Identifier(table))
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        row = await (await conn.execute(newest_chunk, (table,))).fetchone()
        if row is None or row[0] is None:  # the newest chunk is empty (rows deleted): all
            q = sql.SQL("SELECT max(timestamp) FROM {}").format(sql.Identifier(table))
            row = await (await conn.execute(q)).fetchone()
    return row[0] if row else None


async def newest_quotes(
    database_url: str, table: str, names: list[str]
) -> list[tuple[str, datetime, Any, Any, Any, Any]]:
    """The newest stored quote of each of `names`: (name, timestamp, bid price, bid amount,
    ask price, ask amount); options with no quote are left out."""
    query = sql.SQL(
        'SELECT n, q.* FROM unnest(%s::text[]) AS n, LATERAL (SELECT "timestamp", '
        "best_bid_price, best_bid_amount, best_ask_price, best_ask_amount "
        'FROM {} WHERE instrument_name = n ORDER BY "timestamp" DESC LIMIT 1) AS q'
    ).format(sql.Identifier(table))
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        cur = await conn.execute(query, (names,))
        return list(await cur.fetchall())


# ---- option bars from stored trades -------------------------------------------------------------
def option_bars_from_trades_sql(trades_table: str) -> sql.Composed:
    """Upserts the 1-minute `options_ohlcv` bars of a currency's trades: the minutes from
    %(from)s to %(to)s, and any older one since %(late_from)s whose bar does not count every
    trade stored for it now (trades that landed late: repaired, replayed from a spool)."""
    return sql.SQL(
        """
        WITH counted AS (
            SELECT instrument_name, date_trunc('minute', timestamp) AS minute, count(*) AS n
            FROM {trades}
            WHERE timestamp >= %(late_from)s AND timestamp < %(to)s
            GROUP BY 1, 2
        ), touched AS (
            SELECT c.instrument_name, c.minute
            FROM counted c
            LEFT JOIN options_ohlcv o
              ON o.instrument_name = c.instrument_name AND o.resolution = %(resolution)s
             AND o.timestamp = c.minute
            WHERE c.minute >= %(from)s OR o.trade_count IS DISTINCT FROM c.n
        )
        INSERT INTO options_ohlcv AS t (timestamp, instrument_name, currency, resolution,
            open, high, low, close, volume, trade_count, mark_iv_close, mark_price_close,
            trade_iv_vwap, received_at)
        SELECT touched.minute, tr.instrument_name, %(currency)s, %(resolution)s,
            (array_agg(tr.price ORDER BY tr.timestamp, tr.trade_seq, tr.trade_id))[1],
            max(tr.price), min(tr.price),
            (array_agg(tr.price
                ORDER BY tr.timestamp DESC, tr.trade_seq DESC, tr.trade_id DESC))[1],
            sum(tr.amount), count(*), NULL, NULL,
            sum(tr.iv * tr.amount) FILTER (WHERE tr.iv IS NOT NULL)
                / NULLIF(sum(tr.amount) FILTER (WHERE tr.iv IS NOT NULL), 0),
            %(received_at)s
        FROM touched JOIN {trades} tr
          ON tr.instrument_name = touched.instrument_name
         AND tr.timestamp >= touched.minute AND tr.timestamp < touched.minute + interval '1 minute'
        GROUP BY touched.minute, tr.instrument_name
        ON CONFLICT (instrument_name, resolution, timestamp) DO UPDATE SET
            open = EXCLUDED.open, high = EXCLUDED.high, low = EXCLUDED.low,
            close = EXCLUDED.close, volume = EXCLUDED.volume,
            trade_count = EXCLUDED.trade_count, trade_iv_vwap = EXCLUDED.trade_iv_vwap,
            received_at = EXCLUDED.received_at
        """
    ).format(trades=sql.Identifier(trades_table))


# The mark IV and price at a minute's close, per option, into that minute's bar.
OPTION_BAR_MARKS_SQL = sql.SQL(
    """
    INSERT INTO options_ohlcv AS t (timestamp, instrument_name, currency, resolution,
        open, high, low, close, volume, trade_count, mark_iv_close, mark_price_close,
        trade_iv_vwap, received_at)
    SELECT %(minute)s, m.name, %(currency)s, %(resolution)s, NULL, NULL, NULL, NULL, 0, 0,
        m.iv, m.price, NULL, %(received_at)s
    FROM unnest(%(names)s::text[], %(ivs)s::float8[], %(prices)s::float8[]) AS m(name, iv, price)
    ON CONFLICT (instrument_name, resolution, timestamp) DO UPDATE SET
        mark_iv_close = EXCLUDED.mark_iv_close, mark_price_close = EXCLUDED.mark_price_close
    """
)


# ---- the backfill's progress (schema/041_backfill_progress.sql) ----------------------------------
async def load_backfill_cursor(
    conn: psycopg.AsyncConnection[Any], job: str, currency: str, what: str
) -> Any:
    """The cursor a backfill range saved (JSON), None before its first commit."""
    cur = await conn.execute(
        "SELECT cursor FROM backfill_progress WHERE job = %s AND currency = %s AND what = %s",
        (job, currency, what),
    )
    row = await cur.fetchone()
    return None if row is None else json.loads(row[0])


async def save_backfill_cursor(
    conn: psycopg.AsyncConnection[Any], job: str, currency: str, what: str, cursor: Any
) -> None:
    await conn.execute(
        "INSERT INTO backfill_progress (job, currency, what, cursor, updated_at) "
        "VALUES (%s, %s, %s, %s, now()) ON CONFLICT (job, currency, what) DO UPDATE SET "
        "cursor = EXCLUDED.cursor, updated_at = now()",
        (job, currency, what, json.dumps(cursor)),
    )
