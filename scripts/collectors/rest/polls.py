"""What `python -m scripts.collect_realtime` polls, and when (market time, fixed deadlines).

- instruments, every INSTRUMENT_RECONCILE_INTERVAL_S (600 s): one `get_instruments` per
  currency -> `instruments`, and the lists the other polls work on;
- bars, every OHLCV_POLL_INTERVAL_S (60 s), 2 s after the minute: one
  `get_tradingview_chart_data` per perpetual and dated future -> `perpetuals_ohlcv`,
  `futures_ohlcv`;
- option bars, same schedule: one `get_book_summary_by_currency(kind=option)` per currency, plus
  SQL over the recorded trades -> `options_ohlcv`;
- greeks, every GREEKS_POLL_INTERVAL_S (3600 s), a minute into the hour: one `ticker` per live
  option, spread over half the interval -> `options_greeks`;
- indices, every INDEX_POLL_INTERVAL_S (60 s): one `get_index_price` per currency and one
  `get_volatility_index_data` for BTC/ETH -> `index_prices`.

For BTC+ETH with ~20 futures and 2,000 options that is about 0.5 requests/s on average, well
inside the default share of REST_REQUESTS_PER_S=5.
"""

from __future__ import annotations

import asyncio

from scripts.collectors.rejects import Rejects
from scripts.collectors.rest.bars import FutureBarsPoller, OptionBarsPoller
from scripts.collectors.rest.catalog import RestCatalog
from scripts.collectors.rest.greeks import GreeksPoller
from scripts.collectors.rest.indices import IndexPoller
from scripts.collectors.rest.schedule import Schedule
from scripts.collectors.rest.service import ServiceParts

BAR_OFFSET_S = 2.0  # poll a little after the minute so the closed minute's last trades are in
# Greeks start a minute into the hour, so a ticker stamped by an exchange clock a little behind
# ours still falls in the hour it was read for.
GREEKS_OFFSET_S = 60.0


class RealtimeRest:
    """The pollers of `collect_realtime`; kept as attributes so tests can look at them."""

    def __init__(self, stop: asyncio.Event, *, max_lookback_s: float = 86_400.0) -> None:
        self.stop = stop
        self.max_lookback_s = max_lookback_s
        self.catalog: RestCatalog | None = None
        self.future_bars: FutureBarsPoller | None = None
        self.option_bars: list[OptionBarsPoller] = []
        self.greeks: GreeksPoller | None = None
        self.indices: IndexPoller | None = None

    async def build(self, parts: ServiceParts) -> list[Schedule]:
        s, clock, rest, writer, pool = (
            parts.settings,
            parts.clock,
            parts.rest,
            parts.writer,
            parts.pool,
        )
        catalog = self.catalog = RestCatalog(rest, writer, clock, s.currencies)
        await catalog.refresh_all()
        bars = self.future_bars = FutureBarsPoller(
            rest, writer, pool, catalog, clock, max_lookback_s=self.max_lookback_s
        )
        await bars.load_cursors()
        self.option_bars = [
            OptionBarsPoller(rest, pool, spec, clock, max_lookback_s=self.max_lookback_s)
            for spec in s.currencies
        ]
        for poller in self.option_bars:
            await poller.load_cursor()
        greeks = self.greeks = GreeksPoller(
            rest,
            writer,
            catalog,
            clock,
            self.stop,
            interval_s=s.greeks_poll_interval_s,
            rejects=Rejects(writer, writer.collector_name),
        )
        indices = self.indices = IndexPoller(
            rest, writer, pool, clock, s.currencies, max_lookback_s=self.max_lookback_s
        )
        await indices.load_cursors()

        async def option_bars(deadline: float) -> None:
            for poller in self.option_bars:
                await poller.poll(deadline)

        interval = s.ohlcv_poll_interval_s
        return [
            Schedule("instruments", clock, s.instrument_reconcile_interval_s, catalog.refresh_all),
            Schedule("bars", clock, interval, bars.poll, offset_s=BAR_OFFSET_S, run_now=True),
            Schedule(
                "option-bars", clock, interval, option_bars, offset_s=BAR_OFFSET_S, run_now=True
            ),
            Schedule(
                "greeks",
                clock,
                s.greeks_poll_interval_s,
                greeks.poll,
                offset_s=min(GREEKS_OFFSET_S, s.greeks_poll_interval_s / 10),
                run_now=True,
            ),
            Schedule("indices", clock, s.index_poll_interval_s, indices.poll, run_now=True),
        ]
