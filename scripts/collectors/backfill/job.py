"""Historical backfill of one currency over [since, until): resumable, idempotent, metered.

Parts (`--what`):
- `trades`: option trades into `{cur}_option_trades`, from the history host
  (`DERIBIT_HISTORY_URL`, which also serves expired instruments) with
  `get_last_trades_by_currency_and_time(kind=option, sorting=asc, count=1000)`. Each page starts
  at the newest timestamp of the previous one; trades at that boundary millisecond that were
  already written are skipped by `trade_id`, so several trades sharing one ms are neither lost
  nor doubled.
- `ohlcv`: 1-minute bars of the perpetual and of every dated future alive in the range (live
  ones and those `get_instruments(expired=true)` still lists) via `get_tradingview_chart_data`
  in chunks of 720 bars.
- `funding`: the perpetual's hourly funding history in 7-day windows.
- `index`: DVOL 1-minute closes (BTC, ETH) via `get_volatility_index_data`, following
  `continuation` inside 12-hour windows. Deribit keeps no REST history of the price index, so
  `index` has nothing more to read.

Progress lives in `backfill_progress(job, currency, what, cursor, updated_at)`, one row per
part (and per instrument for bars), where `job` names the range. A checkpoint is written only
after the writer confirmed the page's rows are in the database, so an interrupted run started
again with the same arguments resumes where the database is, and every write is keyed
(ON CONFLICT), so the end state equals that of an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from scripts.clock import Clock, ms_from_utc, utc_from_ms
from scripts.collectors.rest.bars import (
    CHUNK_BARS,
    MINUTE_MS,
    RESOLUTION,
    last_closed_minute_ms,
)
from scripts.collectors.rest.catalog import is_perpetual
from scripts.collectors.rest.funding import fetch_funding
from scripts.collectors.rest.indices import fetch_dvol
from scripts.collectors.trade_pages import TradePager, trade_dicts
from scripts.currencies import CurrencySpec
from scripts.deribit.rest import DeribitRestClient
from scripts.normalize.bars import parse_tradingview
from scripts.normalize.instruments import parse_instrument
from scripts.normalize.trades import parse_trades
from scripts.storage import queries
from scripts.storage.tables import (
    FUNDING_RATES,
    FUTURES_OHLCV,
    INDEX_PRICES,
    INSTRUMENTS,
    OPTION_TRADES,
    PERPETUALS_OHLCV,
)
from scripts.storage.writer import BatchWriter

log = logging.getLogger(__name__)

PARTS = ("trades", "ohlcv", "funding", "index")
FUNDING_WINDOW_MS = 7 * 86_400_000
DVOL_WINDOW_MS = 12 * 3_600_000


class BackfillError(Exception):
    """The backfill cannot go on (the database refused the rows); progress is kept."""


def iso_minute(ms: int) -> str:
    return utc_from_ms(ms).strftime("%Y-%m-%dT%H:%MZ")


class Progress:
    """A one-line progress display on a terminal; plain lines otherwise."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stderr
        self.tty = self.out.isatty()
        self._last: dict[tuple[str, str], int] = {}

    def update(self, what: str, code: str, at_ms: int, rows: int, fraction: float) -> None:
        if self.tty:
            width = 30
            filled = int(width * max(0.0, min(1.0, fraction)))
            bar = "#" * filled + "." * (width - filled)
            self.out.write(
                f"\r[{bar}] {fraction:6.1%} backfill {what} {code} {iso_minute(at_ms)} {rows} rows "
            )
        else:  # one line per chunk: what it read, up to when, and the total so far
            added = rows - self._last.get((what, code), 0)
            self.out.write(
                f"backfill {what} {code} {iso_minute(at_ms)} {rows} rows (+{added} this chunk)\n"
            )
        self._last[(what, code)] = rows
        self.out.flush()

    def done(self) -> None:
        if self.tty:
            self.out.write("\n")
            self.out.flush()


@dataclass(frozen=True)
class BackfillJob:
    spec: CurrencySpec
    since_ms: int
    until_ms: int
    parts: tuple[str, ...]
    name: str  # names the range in backfill_progress


class Backfill:
    """Runs one `BackfillJob`; the writer is flushed by this class (do not run `writer.run`)."""

    def __init__(
        self,
        job: BackfillJob,
        *,
        rest: DeribitRestClient,
        history: DeribitRestClient,
        writer: BatchWriter,
        pool: AsyncConnectionPool[AsyncConnection[Any]],
        clock: Clock,
        progress: Progress | None = None,
    ) -> None:
        self.job = job
        self.rest = rest
        self.history = history
        self.writer = writer
        self.pool = pool
        self.clock = clock
        self.progress = progress or Progress()
        self.rows: dict[str, int] = {}

    # -- progress ----------------------------------------------------------------------------
    async def _load(self, what: str) -> Any:
        async with self.pool.connection() as conn:
            return await queries.load_backfill_cursor(conn, self.job.name, self.job.spec.code, what)

    async def _commit(self, what: str, cursor: Any) -> None:
        """Flushes the writer; once the rows are in the database, records `cursor`."""
        if not await self.writer.flush():
            raise BackfillError(
                f"the database did not take the rows of {what}; progress kept, run again later"
            )
        async with self.pool.connection() as conn:
            await queries.save_backfill_cursor(
                conn, self.job.name, self.job.spec.code, what, cursor
            )

    def _count(self, what: str, n: int) -> int:
        self.rows[what] = self.rows.get(what, 0) + n
        return self.rows[what]

    def _fraction(self, at_ms: int) -> float:
        span = max(1, self.job.until_ms - self.job.since_ms)
        return (at_ms - self.job.since_ms) / span

    # -- the run -----------------------------------------------------------------------------
    async def run(self) -> dict[str, int]:
        steps: dict[str, Callable[[], Any]] = {
            "trades": self.trades,
            "ohlcv": self.ohlcv,
            "funding": self.funding,
            "index": self.index,
        }
        for part in self.job.parts:
            await steps[part]()
        self.progress.done()
        return dict(self.rows)

    async def trades(self) -> None:
        """Option trades of the range from the history host, by the same pager as the
        real-time repairs (`collectors/trade_pages.py`); where it got to is saved after each
        page: the newest timestamp stored and the ids stored at it (pages overlap there)."""
        job, spec = self.job, self.job.spec
        state = await self._load("trades") or {"ts": job.since_ms, "ids": []}
        if state.get("done"):
            return
        ts: int = state["ts"]
        seen_at_ts: set[str] = set(state["ids"])
        end = job.until_ms - 1
        pager = TradePager(spec.api_currency)
        try:
            async with contextlib.aclosing(pager.pages(self.history, {}, ts, end)) as pages:
                async for raw in pages:
                    page = trade_dicts(raw)
                    n = self._store_trades(page, ts, seen_at_ts, end)
                    stamps = [t["timestamp"] for t in page if isinstance(t.get("timestamp"), int)]
                    if not stamps:
                        continue
                    newest = max(stamps)
                    at_newest = {
                        str(t.get("trade_id")) for t in page if t.get("timestamp") == newest
                    }
                    seen_at_ts = (seen_at_ts | at_newest) if newest == ts else at_newest
                    ts = newest
                    await self._commit("trades", {"ts": ts, "ids": sorted(seen_at_ts)})
                    count = self._count("trades", n)
                    self.progress.update("trades", spec.code, ts, count, self._fraction(ts))
        except ValueError as exc:  # the pager could not move past a millisecond
            raise BackfillError(f"trades at {ts} ms: {exc}") from exc
        await self._commit("trades", {"ts": end + 1, "ids": [], "done": True})
        self.progress.update("trades", spec.code, end, self._count("trades", 0), 1.0)

    def _store_trades(self, page: list[dict[str, Any]], ts: int, seen: set[str], end: int) -> int:
        """Stores the trades of a page that are new (not at `ts` with an id in `seen`), of this
        currency's options and in range; returns how many."""
        spec = self.job.spec
        fresh = [
            t
            for t in page
            if not (t.get("timestamp") == ts and str(t.get("trade_id")) in seen)
            and str(t.get("instrument_name", "")).startswith(spec.instrument_prefix)
            and isinstance(t.get("timestamp"), int)
            and ts <= t["timestamp"] <= end
        ]
        rows = parse_trades(fresh, received_at=self.clock.utc_now())
        self.writer.add_many(OPTION_TRADES, spec.code, rows)
        return len(rows)

    async def _futures(self) -> list[tuple[str, bool, int, int]]:
        """(name, perpetual, first bar ms, last bar ms) of every perpetual/future in range."""
        spec, job = self.job.spec, self.job
        items: list[dict[str, Any]] = []
        for expired in (False, True):
            items += await self.rest.get_instruments(spec.api_currency, "future", expired)
        seen_at = self.clock.utc_now()
        out = []
        last_bar = min(job.until_ms - MINUTE_MS, last_closed_minute_ms(self.clock.now_ms()))
        for item in items:
            if not str(item.get("instrument_name", "")).startswith(spec.instrument_prefix):
                continue
            row = parse_instrument(item, currency=spec.code, seen_at=seen_at)
            self.writer.add(INSTRUMENTS, None, row)
            perpetual = is_perpetual(row)
            first = job.since_ms - job.since_ms % MINUTE_MS
            if row.creation_timestamp is not None:
                created = ms_from_utc(row.creation_timestamp)
                first = max(first, created - created % MINUTE_MS)
            last = last_bar
            if not perpetual and row.expiration_timestamp is not None:
                expiring = ms_from_utc(row.expiration_timestamp) - 1
                last = min(last, expiring - expiring % MINUTE_MS)
            if first <= last:
                out.append((row.instrument_name, perpetual, first, last))
        return sorted(set(out))

    async def ohlcv(self) -> None:
        spec = self.job.spec
        for name, perpetual, first, last in await self._futures():
            what = f"ohlcv:{name}"
            start = await self._load(what) or first
            table = PERPETUALS_OHLCV if perpetual else FUTURES_OHLCV
            while start <= last:
                chunk_end = min(last, start + (CHUNK_BARS - 1) * MINUTE_MS)
                result = await self.rest.get_tradingview_chart_data(
                    name, start, chunk_end, RESOLUTION
                )
                rows = [
                    r
                    for r in parse_tradingview(
                        result,
                        instrument_name=name,
                        currency=spec.code,
                        resolution=RESOLUTION,
                        received_at=self.clock.utc_now(),
                    )
                    if start <= ms_from_utc(r.timestamp) <= chunk_end
                ]
                self.writer.add_many(table, None, rows)
                start = chunk_end + MINUTE_MS
                await self._commit(what, start)
                self.progress.update(
                    "ohlcv",
                    spec.code,
                    chunk_end,
                    self._count("ohlcv", len(rows)),
                    self._fraction(chunk_end),
                )

    async def funding(self) -> None:
        spec, job = self.job.spec, self.job
        what = f"funding:{spec.perpetual}"
        start = await self._load(what) or job.since_ms
        end = min(job.until_ms - 1, self.clock.now_ms())
        while start <= end:
            hi = min(end, start + FUNDING_WINDOW_MS - 1)
            rows = await fetch_funding(self.rest, spec, spec.perpetual, start, hi, self.clock)
            self.writer.add_many(FUNDING_RATES, None, rows)
            start = hi + 1
            await self._commit(what, start)
            self.progress.update(
                "funding", spec.code, hi, self._count("funding", len(rows)), self._fraction(hi)
            )

    async def index(self) -> None:
        spec, job = self.job.spec, self.job
        if not spec.has_dvol:
            log.info(
                "backfill index %s: no DVOL for this currency and no REST price-index history",
                spec.code,
            )
            return
        start = await self._load("dvol") or job.since_ms - job.since_ms % MINUTE_MS
        last = min(job.until_ms - MINUTE_MS, last_closed_minute_ms(self.clock.now_ms()))
        while start <= last:
            hi = min(last, start + DVOL_WINDOW_MS - MINUTE_MS)
            rows = await fetch_dvol(self.rest, spec, start, hi, self.clock.utc_now())
            self.writer.add_many(INDEX_PRICES, None, rows)
            start = hi + MINUTE_MS
            await self._commit("dvol", start)
            self.progress.update(
                "index", spec.code, hi, self._count("index", len(rows)), self._fraction(hi)
            )


def parse_when(text: str) -> int:
    """`2025-01-01` or an ISO date-time (UTC unless it says otherwise) -> ms since the epoch."""
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return ms_from_utc(value)
