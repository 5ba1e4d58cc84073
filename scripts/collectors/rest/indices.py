"""`index_prices`: each currency's price index and, for BTC and ETH, DVOL.

Every `INDEX_POLL_INTERVAL_S`: `get_index_price(index_name)` gives the index now (kind "price";
the reply has no time of its own, so the row takes the server's `usOut`), and
`get_volatility_index_data(resolution=60)` gives the closed 1-minute DVOL candles since the
newest stored one (kind "dvol", the candle's close), paged with `continuation`. A restart reads
the DVOL minutes it missed, back to `max_lookback_s`; price-index values of that time are lost
(Deribit has no per-minute index history by REST).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from scripts.clock import Clock, ms_from_utc
from scripts.collectors.rest.bars import MINUTE_MS, last_closed_minute_ms
from scripts.collectors.rest.catalog import CurrencyPoller, RowSink
from scripts.currencies import CurrencySpec
from scripts.deribit.rest import DeribitRestClient
from scripts.models import IndexPriceRow
from scripts.normalize.indices import KIND_DVOL, parse_price_index, parse_volatility_index_data
from scripts.storage import queries
from scripts.storage.tables import INDEX_PRICES

log = logging.getLogger(__name__)

DVOL_RESOLUTION = "60"  # seconds
# DVOL rows are never updated (ON CONFLICT DO NOTHING), and a candle read just after its minute
# may not hold the minute's last samples yet: read a minute late and drop the newest candle.
DVOL_SETTLE_MS = 60_000
MAX_PAGES = 100


async def fetch_dvol(
    rest: DeribitRestClient, spec: CurrencySpec, start_ms: int, end_ms: int, received_at: datetime
) -> list[IndexPriceRow]:
    """DVOL 1-minute closes of the candles starting in [start, end], following `continuation`."""
    rows: list[IndexPriceRow] = []
    end = end_ms + MINUTE_MS - 1  # to the end of the last candle, so its close is final
    for _ in range(MAX_PAGES):
        result: dict[str, Any] = await rest.get_volatility_index_data(
            spec.api_currency, start_ms, end, DVOL_RESOLUTION
        )
        rows += parse_volatility_index_data(
            result, index_name=spec.index_name, currency=spec.code, received_at=received_at
        )
        nxt = result.get("continuation")
        if not isinstance(nxt, int) or nxt >= end or nxt < start_ms:
            break
        end = nxt
    # The newest candle may still be forming on the server (its "now" may be inside it): it is
    # left for the next poll, which starts right after the newest candle kept.
    newest = max((r.timestamp for r in rows), default=None)
    seen: set[datetime] = set()
    out = []
    for row in sorted(rows, key=lambda r: r.timestamp):
        if row.timestamp == newest:
            continue
        ms = ms_from_utc(row.timestamp)
        if start_ms <= ms <= end_ms and row.timestamp not in seen:
            seen.add(row.timestamp)
            out.append(row)
    return out


class IndexPoller(CurrencyPoller):
    """Price index and DVOL of several currencies."""

    def __init__(
        self,
        rest: DeribitRestClient,
        sink: RowSink,
        pool: AsyncConnectionPool[AsyncConnection[Any]],
        clock: Clock,
        currencies: tuple[CurrencySpec, ...],
        *,
        max_lookback_s: float = 86_400.0,
    ) -> None:
        super().__init__(rest, sink, pool, clock, currencies, logger=log)
        self.max_lookback_ms = int(max_lookback_s * 1000)
        self.dvol_cursor_ms: dict[str, int] = {}

    async def load_cursors(self) -> None:
        async with self.pool.connection() as conn:
            for spec in self.currencies:
                if not spec.has_dvol:
                    continue
                newest = await queries.newest_index_value(conn, spec.index_name, KIND_DVOL)
                if newest is not None:
                    self.dvol_cursor_ms[spec.code] = ms_from_utc(newest)

    async def poll(self, _deadline: float | None = None) -> None:
        for spec in self.currencies:
            await self._price(spec)
            if spec.has_dvol:
                await self._dvol(spec)

    async def _price(self, spec: CurrencySpec) -> None:
        row = await self._read(self._read_price(spec), "index", spec.index_name)
        if row is None:
            return
        self.sink.add(INDEX_PRICES, None, row)
        self.rows_written += 1

    async def _read_price(self, spec: CurrencySpec) -> IndexPriceRow:
        result = await self.rest.get_index_price(spec.index_name)
        server_ms = result.get("_server_time_ms", self.clock.now_ms())
        return parse_price_index(
            {
                "index_name": spec.index_name,
                "price": result.get("index_price"),
                "timestamp": server_ms,
            },
            currency=spec.code,
            received_at=self.clock.utc_now(),
        )

    async def _dvol(self, spec: CurrencySpec) -> None:
        end = last_closed_minute_ms(self.clock.now_ms()) - DVOL_SETTLE_MS
        cursor = self.dvol_cursor_ms.get(spec.code)
        start = (
            end - self.max_lookback_ms
            if cursor is None
            else max(cursor + MINUTE_MS, end - self.max_lookback_ms)
        )
        if start > end:
            return
        rows = await self._read(
            fetch_dvol(self.rest, spec, start, end, self.clock.utc_now()), "DVOL", spec.index_name
        )
        if rows is None:
            return
        for row in rows:
            self.sink.add(INDEX_PRICES, None, row)
            self.rows_written += 1
            self.dvol_cursor_ms[spec.code] = max(
                self.dvol_cursor_ms.get(spec.code, 0), ms_from_utc(row.timestamp)
            )
