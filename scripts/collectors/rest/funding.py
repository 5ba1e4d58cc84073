"""`funding_rates`: Deribit's hourly funding history of each currency's perpetual.

Schedule (what `python -m scripts.funding_rates_collector` does):
- on start, for each currency in CURRENCIES, read `get_funding_rate_history` of its perpetual
  (BTC-PERPETUAL, ETH-PERPETUAL, SOL_USDC-PERPETUAL, ...) from the newest stored row, but never
  from further back than FUNDING_BACKFILL_HOURS (48) ago;
- then every FUNDING_POLL_INTERVAL_S (600 s, on multiples of the interval) read again from the
  newest row seen. Deribit publishes one row per hour, so a 10-minute poll stores each row at
  most ~10 minutes after it appears.

Each row is what Deribit publishes for the hour: `interest_8h` (funding over the trailing
8 hours), `interest_1h`, `index_price` and `prev_index_price`. Writes are idempotent (the table
is keyed by instrument and timestamp; ON CONFLICT DO NOTHING), and the cursor follows the rows
actually returned, so a row published late is read by the next poll instead of being skipped.
"""

from __future__ import annotations

import logging
from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from scripts.clock import Clock, ms_from_utc, utc_from_ms
from scripts.collectors.rest.catalog import CurrencyPoller, RowSink
from scripts.currencies import CurrencySpec
from scripts.deribit.rest import DeribitRestClient
from scripts.models import FundingRow
from scripts.normalize.funding import parse_funding_history
from scripts.storage import queries
from scripts.storage.tables import FUNDING_RATES

log = logging.getLogger(__name__)

HOUR_MS = 3_600_000
WINDOW_MS = 30 * 24 * HOUR_MS  # per call; Deribit's maximum span is undocumented (§12)


async def fetch_funding(
    rest: DeribitRestClient,
    spec: CurrencySpec,
    instrument: str,
    start_ms: int,
    end_ms: int,
    clock: Clock,
) -> list[FundingRow]:
    """Funding rows with start <= timestamp <= end, in windows of 30 days, oldest first."""
    rows: list[FundingRow] = []
    lo = start_ms
    while lo <= end_ms:
        hi = min(end_ms, lo + WINDOW_MS)
        result = await rest.get_funding_rate_history(instrument, lo, hi)
        rows += parse_funding_history(
            result, instrument_name=instrument, currency=spec.code, received_at=clock.utc_now()
        )
        lo = hi + 1
    unique = {r.timestamp: r for r in rows if start_ms <= ms_from_utc(r.timestamp) <= end_ms}
    return [unique[t] for t in sorted(unique)]


class FundingPoller(CurrencyPoller):
    """Funding history of each currency's perpetual, from the newest stored row on."""

    def __init__(
        self,
        rest: DeribitRestClient,
        sink: RowSink,
        pool: AsyncConnectionPool[AsyncConnection[Any]],
        clock: Clock,
        currencies: tuple[CurrencySpec, ...],
        *,
        backfill_hours: float = 48.0,
    ) -> None:
        super().__init__(rest, sink, pool, clock, currencies, logger=log)
        self.backfill_ms = int(backfill_hours * HOUR_MS)
        self.cursor_ms: dict[str, int] = {}  # newest row's timestamp, per perpetual
        self._first_poll_done: set[str] = set()  # the start's backfill is logged once each

    async def load_cursors(self) -> None:
        async with self.pool.connection() as conn:
            newest = await queries.newest_per_instrument(conn, "funding_rates")
            for name, at in newest.items():
                self.cursor_ms[name] = ms_from_utc(at)

    async def poll(self, _deadline: float | None = None) -> None:
        for spec in self.currencies:
            await self._perpetual(spec, spec.perpetual)

    async def _perpetual(self, spec: CurrencySpec, instrument: str) -> None:
        now_ms = self.clock.now_ms()
        start = now_ms - self.backfill_ms
        cursor = self.cursor_ms.get(instrument)
        if cursor is not None:
            start = max(start, cursor + 1)
        rows = await self._read(
            fetch_funding(self.rest, spec, instrument, start, now_ms, self.clock),
            "funding",
            instrument,
        )
        if rows is None:
            return
        for row in rows:
            self.sink.add(FUNDING_RATES, None, row)
        self.rows_written += len(rows)
        if instrument not in self._first_poll_done:
            self._first_poll_done.add(instrument)
            log.info(
                "funding %s: start-up backfill read %d hourly row(s) from %s to now (%s)",
                instrument,
                len(rows),
                utc_from_ms(start).strftime("%Y-%m-%dT%H:%MZ"),
                "after the newest stored row"
                if cursor is not None
                else f"the last {self.backfill_ms / HOUR_MS:g} h",
            )
        if rows:
            self.cursor_ms[instrument] = max(cursor or 0, ms_from_utc(rows[-1].timestamp))
