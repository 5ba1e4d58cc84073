"""1-minute bars: perpetuals and dated futures from the exchange's candles, options from the
trades the real-time collector records.

Perpetuals and futures (`perpetuals_ohlcv`, `futures_ohlcv`): one `get_tradingview_chart_data`
call per instrument per poll, from the newest stored bars (the last few are read again, so a
bar read while its last trades were still arriving is corrected) to the last closed minute.
After a restart the first poll fills every bar missed while down, back to `max_lookback_s`.

Options (`options_ohlcv`), chosen so the budget fits a whole chain: OHLC, volume (sum of
`amount`), trade count and the amount-weighted trade IV come from `{cur}_option_trades` by one
`INSERT ... SELECT ... ON CONFLICT DO UPDATE` per poll (no REST call per option); the mark IV and
mark price at the close come from one `get_book_summary_by_currency(kind=option)` call per
currency per minute, which carries the mark of every option, so every live option gets a row
each minute, traded or not. The trade aggregation covers the last `recompute_minutes` plus any
older minute (up to `late_trades_s` back) whose bar's `trade_count` differs from the trades
stored for it now (that look a day back runs every `LATE_SCAN_EVERY`, 5 minutes), so trades
that land late (repaired by the real-time collector, or replayed
from its spool after a database outage, with their original `received_at`) still reach their
bars, whenever they land and whatever the two processes' clocks say. Marks of minutes when
this collector was down stay NULL: Deribit keeps no per-minute mark history for them.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from scripts.clock import Clock, ms_from_utc, utc_from_ms
from scripts.collectors.rest.catalog import RestCatalog, RowSink
from scripts.currencies import CurrencySpec
from scripts.deribit.rest import DeribitRestClient, DeribitRestError
from scripts.logs import OncePerKey
from scripts.models import InstrumentRow
from scripts.normalize.bars import parse_tradingview
from scripts.normalize.common import MalformedMessage, opt_num
from scripts.storage import queries
from scripts.storage.tables import FUTURES_OHLCV, OPTION_TRADES, PERPETUALS_OHLCV

log = logging.getLogger(__name__)

MINUTE_MS = 60_000
RESOLUTION = "1"
CHUNK_BARS = 720  # bars per tradingview call; Deribit's maximum is undocumented (§12)
DEFAULT_MAX_LOOKBACK_S = 86_400.0
PARALLEL_CALLS = 4  # in flight at once; the limiter decides the pace
REREAD_BARS = 3  # the newest stored bars are read again: a bar read too early is corrected


def last_closed_minute_ms(now_ms: int) -> int:
    """Start of the newest minute that has ended."""
    return now_ms - now_ms % MINUTE_MS - MINUTE_MS


class FutureBarsPoller:
    """Closed 1-minute candles of every perpetual and dated future in the catalog."""

    def __init__(
        self,
        rest: DeribitRestClient,
        sink: RowSink,
        pool: AsyncConnectionPool[AsyncConnection[Any]],
        catalog: RestCatalog,
        clock: Clock,
        *,
        max_lookback_s: float = DEFAULT_MAX_LOOKBACK_S,
    ) -> None:
        self.rest = rest
        self.sink = sink
        self.pool = pool
        self.catalog = catalog
        self.clock = clock
        self.max_lookback_ms = int(max_lookback_s * 1000)
        self.cursor_ms: dict[str, int] = {}  # newest bar start written, per instrument
        self.rows_written = 0
        self.rejected = 0
        self._once = OncePerKey(log)

    async def load_cursors(self) -> None:
        """Newest stored bar of every instrument, so a restart fills from there."""
        async with self.pool.connection() as conn:
            for spec in (PERPETUALS_OHLCV, FUTURES_OHLCV):
                newest = await queries.newest_per_instrument(conn, spec.table_name(), RESOLUTION)
                for name, at in newest.items():
                    self.cursor_ms[name] = ms_from_utc(at)

    async def poll(self, _deadline: float | None = None) -> None:
        last_closed = last_closed_minute_ms(self.clock.now_ms())
        jobs: list[tuple[CurrencySpec, InstrumentRow, bool]] = []
        for entry in self.catalog.by_currency.values():
            jobs += [(entry.spec, row, True) for row in entry.perpetuals.values()]
            jobs += [(entry.spec, row, False) for row in entry.futures.values()]
        gate = asyncio.Semaphore(PARALLEL_CALLS)

        async def one(job: tuple[CurrencySpec, InstrumentRow, bool]) -> None:
            async with gate:
                await self._instrument(job[0], job[1], job[2], last_closed)

        await asyncio.gather(*(one(j) for j in jobs))

    async def _instrument(
        self, spec: CurrencySpec, row: InstrumentRow, perpetual: bool, last_closed: int
    ) -> None:
        name = row.instrument_name
        end = last_closed
        if row.expiration_timestamp is not None and not perpetual:
            last_traded = (
                ms_from_utc(row.expiration_timestamp) - 1
            )  # the minute the future expires in
            end = min(end, last_traded - last_traded % MINUTE_MS)
        cursor = self.cursor_ms.get(name)
        if cursor is None:
            start = end - self.max_lookback_ms
            if row.creation_timestamp is not None:
                created = ms_from_utc(row.creation_timestamp)
                start = max(start, created - created % MINUTE_MS)
        else:
            start = max(cursor - (REREAD_BARS - 1) * MINUTE_MS, end - self.max_lookback_ms)
        if cursor is not None and cursor >= end:
            return
        table = PERPETUALS_OHLCV if perpetual else FUTURES_OHLCV
        while start <= end:
            chunk_end = min(end, start + (CHUNK_BARS - 1) * MINUTE_MS)
            try:
                result = await self.rest.get_tradingview_chart_data(
                    name, start, chunk_end, RESOLUTION
                )
                rows = parse_tradingview(
                    result,
                    instrument_name=name,
                    currency=spec.code,
                    resolution=RESOLUTION,
                    received_at=self.clock.utc_now(),
                )
            except DeribitRestError as exc:
                self._once.warning(f"tv:{name}:{exc.code}", "%s: no bars: %s", name, exc)
                return
            except MalformedMessage as exc:
                self.rejected += 1
                self._once.warning(f"tv-bad:{name}", "%s: bad tradingview reply: %s", name, exc)
                return
            for bar in rows:
                ms = ms_from_utc(bar.timestamp)
                if start <= ms <= chunk_end:
                    self.sink.add(table, None, bar)
                    self.rows_written += 1
                    self.cursor_ms[name] = max(self.cursor_ms.get(name, ms), ms)
            start = chunk_end + MINUTE_MS


LATE_SCAN_EVERY = timedelta(minutes=5)


def parse_summary_marks(
    result: Any, prefix: str
) -> tuple[list[str], list[float | None], list[float | None]]:
    """Names, mark IVs (percent) and mark prices of the options in a book-summary reply."""
    if not isinstance(result, list):
        raise MalformedMessage("book summary: expected an array")
    names: list[str] = []
    ivs: list[float | None] = []
    prices: list[float | None] = []
    for item in result:
        if not isinstance(item, dict):
            raise MalformedMessage("book summary: element is not an object")
        name = item.get("instrument_name")
        if not isinstance(name, str) or not name.startswith(prefix):
            continue
        names.append(name)
        ivs.append(opt_num(item.get("mark_iv"), "mark_iv"))
        prices.append(opt_num(item.get("mark_price"), "mark_price"))
    return names, ivs, prices


class OptionBarsPoller:
    """`options_ohlcv` of one currency: trades from the database, marks from one REST call."""

    def __init__(
        self,
        rest: DeribitRestClient,
        pool: AsyncConnectionPool[AsyncConnection[Any]],
        spec: CurrencySpec,
        clock: Clock,
        *,
        max_lookback_s: float = DEFAULT_MAX_LOOKBACK_S,
        recompute_minutes: int = 10,
        late_trades_s: float = DEFAULT_MAX_LOOKBACK_S,
        fetch_marks: bool = True,
    ) -> None:
        self.rest = rest
        self.pool = pool
        self.spec = spec
        self.clock = clock
        self.max_lookback = timedelta(seconds=max_lookback_s)
        self.recompute = timedelta(minutes=recompute_minutes)
        self.late_trades = timedelta(seconds=late_trades_s)
        self.fetch_marks = fetch_marks
        self.cursor: datetime | None = None  # end (exclusive) of the minutes already aggregated
        self._late_scan_due: datetime | None = None  # next poll that looks a day back
        self.bars_upserted = 0
        self.marks_written = 0
        self.rejected = 0
        trades_table = OPTION_TRADES.table_name(spec.code)
        self._aggregate_sql = queries.option_bars_from_trades_sql(trades_table)
        self._once = OncePerKey(log)

    async def load_cursor(self) -> None:
        async with self.pool.connection() as conn:
            newest = await queries.newest_option_bar(conn, self.spec.code, RESOLUTION)
        # (Trades recorded while this poller was down reach their bars through the count
        # check of `option_bars_from_trades_sql`, whatever their timestamps.)
        if newest is not None:
            self.cursor = newest + timedelta(minutes=1)

    async def poll(self, _deadline: float | None = None) -> None:
        started = self.clock.utc_now()
        to = utc_from_ms(last_closed_minute_ms(self.clock.now_ms()) + MINUTE_MS)
        marks = await self._marks() if self.fetch_marks else None
        # A first start aggregates the whole look-back; later polls the minutes since the last
        # one, plus `recompute` before it for trades recorded a little late.
        frm = to - self.max_lookback
        if self.cursor is not None:
            frm = max(frm, min(to, self.cursor) - self.recompute)
        # Trades that land late (spool replay, repair) are looked for a day back every
        # LATE_SCAN_EVERY, not every minute: that scan reads a day of trades.
        late_from = frm
        if self._late_scan_due is None or to >= self._late_scan_due:
            late_from = min(frm, to - self.late_trades)
            self._late_scan_due = to + LATE_SCAN_EVERY
        params = {
            "late_from": late_from,
            "from": frm,
            "to": to,
            "currency": self.spec.code,
            "resolution": RESOLUTION,
            "received_at": started,
        }
        async with self.pool.connection() as conn, conn.transaction():
            cur = await conn.execute(self._aggregate_sql, params)
            self.bars_upserted += max(0, cur.rowcount)
            if marks is not None and marks[0]:
                await conn.execute(
                    queries.OPTION_BAR_MARKS_SQL,
                    {
                        "minute": to - timedelta(minutes=1),
                        "names": marks[0],
                        "ivs": marks[1],
                        "prices": marks[2],
                        "currency": self.spec.code,
                        "resolution": RESOLUTION,
                        "received_at": started,
                    },
                )
                self.marks_written += len(marks[0])
        self.cursor = to

    async def _marks(self) -> tuple[list[str], list[float | None], list[float | None]] | None:
        try:
            result = await self.rest.get_book_summary_by_currency(self.spec.api_currency, "option")
            return parse_summary_marks(result, self.spec.instrument_prefix)
        except DeribitRestError as exc:
            self._once.warning(
                f"summary:{exc.code}", "%s: no marks this minute: %s", self.spec.code, exc
            )
        except MalformedMessage as exc:
            self.rejected += 1
            self._once.warning("summary-bad", "%s: bad book summary: %s", self.spec.code, exc)
        return None
