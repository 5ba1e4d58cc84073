"""Hourly `options_greeks` for every live option: one `public/ticker` call per option.

A whole chain (1,000+ options per currency) is read once per `GREEKS_POLL_INTERVAL_S`, the calls
spread evenly over the first `spread_fraction` of the interval (of what is left of it when the
collector starts mid-interval), so the greeks poll takes a
steady trickle of the shared credits (about 0.3 requests/s per 1,000 options at the default
hour) instead of a burst that would delay the minute bars. Each row is stamped with the start
of the interval (hour) it was read for, so there is one row per option per hour whatever
restarts happen (the key (instrument_name, timestamp) keeps the first); the ticker's own time
is kept in `ticker_timestamp`. A row holds delta, gamma, vega, theta, rho, mark/bid/ask IV,
mark price, underlying, index, open interest, interest rate and best bid/ask.
"""

from __future__ import annotations

import asyncio
import logging

from scripts.clock import Clock, utc_from_s
from scripts.collectors.rejects import Rejects
from scripts.collectors.rest.catalog import RestCatalog, RowSink
from scripts.collectors.rest.schedule import sleep_until
from scripts.deribit.rest import DeribitRestClient, DeribitRestError
from scripts.logs import OncePerKey
from scripts.normalize.common import MalformedMessage
from scripts.normalize.tickers import parse_ticker_greeks
from scripts.storage.tables import OPTIONS_GREEKS

log = logging.getLogger(__name__)

PARALLEL_CALLS = 4


class GreeksPoller:
    """Reads every live option's ticker once per interval, spread over the interval."""

    def __init__(
        self,
        rest: DeribitRestClient,
        sink: RowSink,
        catalog: RestCatalog,
        clock: Clock,
        stop: asyncio.Event,
        *,
        interval_s: float,
        spread_fraction: float = 0.5,
        rejects: Rejects | None = None,
    ) -> None:
        self.rest = rest
        self.sink = sink
        self.catalog = catalog
        self.clock = clock
        self.stop = stop
        self.interval_s = interval_s
        self.spread_fraction = spread_fraction
        self.rows_written = 0
        self.missing = 0  # options that vanished (expired) between listing and call
        self.rejected = 0
        self.rejects = rejects  # where a malformed ticker is kept (rejected_messages)
        self._once = OncePerKey(log)

    async def poll(self, deadline: float) -> None:
        at = self.clock.utc_now()
        work = [
            (entry.spec.code, name)
            for entry in self.catalog.by_currency.values()
            for name in entry.live_options(at)
        ]
        if not work:
            return
        # Spread over a fraction of what is left of the interval: a start in mid-hour (or a
        # restart) still reads every option before the hour is over.
        interval_end = (deadline // self.interval_s + 1) * self.interval_s
        start = max(deadline, self.clock.now())
        step = max(0.0, interval_end - start) * self.spread_fraction / len(work)
        gate = asyncio.Semaphore(PARALLEL_CALLS)

        async def one(i: int, code: str, name: str) -> None:
            if await sleep_until(self.clock, start + i * step, self.stop):
                return
            async with gate:
                await self._option(code, name)

        await asyncio.gather(*(one(i, code, name) for i, (code, name) in enumerate(work)))
        log.info("greeks: %d option(s) read, %d row(s) so far", len(work), self.rows_written)

    async def _option(self, code: str, name: str) -> None:
        ticker = None
        try:
            ticker = await self.rest.ticker(name)
            row = parse_ticker_greeks(ticker, received_at=self.clock.utc_now(), currency=code)
        except DeribitRestError as exc:
            self.missing += 1
            self._once.warning(f"ticker:{exc.code}", "greeks: %s", exc)
            return
        except MalformedMessage as exc:
            self.rejected += 1
            if self.rejects is not None:  # counted, logged once per kind and kept
                self.rejects.rejected("public/ticker", exc.reason, ticker, self.clock.utc_now())
            else:
                self._once.warning("ticker-bad", "greeks: bad ticker for %s: %s", name, exc)
            return
        # Keyed by the interval it was read for: a second read in it (after a restart) is the
        # same (instrument_name, timestamp) and the database keeps the first.
        slot_s = row.ticker_timestamp.timestamp() // self.interval_s * self.interval_s
        slot = utc_from_s(slot_s)
        self.sink.add(OPTIONS_GREEKS, None, row._replace(timestamp=slot))
        self.rows_written += 1
