"""The real-time option-chain collector of one currency (ws_tick_collector_multi).

Channels (WebSocket, unauthenticated, hence `100ms` and not `raw`) and what they feed:

- `quote.{option}`, one per followed option -> `{cur}_option_quotes`: one row per best
  bid/ask change (`best_bid_price`, `best_bid_amount`, `best_ask_price`, `best_ask_amount`),
  with `mark_iv` and `mark_price` from the option's latest `markprice.options` point.
- `markprice.options.{index}`, one for the chain -> the `mark_iv` (converted from a fraction
  to percent) and `mark_price` attached to the quote rows above.
- `ticker.{option}.agg2`, one per expiry (`forward_tickers.py`) -> no row: its
  `underlying_price` (the expiry's forward) completes the quote rows' `underlying_price`,
  `bid_iv` and `ask_iv` (Black-76, `normalize/quote_ivs.py`) once per flush batch, as the
  writer takes the batch. Other `ticker.{option}.{interval}` frames (e.g. in a replay) ->
  `{cur}_option_quotes` with Deribit's `bid_iv`, `ask_iv`, `mark_iv`, `mark_price`,
  `underlying_price`.
- `trades.option.{api_currency}.100ms` (SOL: `trades.option.USDC.100ms`, filtered on the
  `SOL_USDC-` prefix) -> `{cur}_option_trades`, repaired through REST after any loss.
- `instrument.state.option.{api_currency}` and `instrument.creation.option.{api_currency}`
  -> `instruments`; listings are subscribed, expiries dropped.
- REST `get_order_book(depth=ORDERBOOK_DEPTH)` per option every
  ORDERBOOK_SNAPSHOT_INTERVAL_S -> `{cur}_option_orderbook_depth`.
- REST `get_last_trades_by_currency_and_time` / `get_last_trades_by_instrument` -> missed
  trades, and `data_gaps` rows; windows that an expiry crossed are read from the history
  host (`DERIBIT_HISTORY_URL`) too (see `trade_repair.py`).

Quotes are per instrument, not 100 ms tickers: `quote.*` is sent on every best bid/ask change
(complete) and is small, where a ticker per option every 100 ms would be ten times the
traffic for greeks the REST greeks poller already stores hourly.

Order books by REST snapshot, not a book stream: the table stores a depth snapshot every
ORDERBOOK_SNAPSHOT_INTERVAL_S (300 s), so a `book.*` stream would carry every change of every
option (the bulk of the chain's traffic) to keep a state read once per interval, and would
need a `prev_change_id` chain per option with resyncs and gaps when a change is lost. One
`get_order_book` per option per interval is a small share of the REST credits, and each
snapshot is the exchange's own book at that moment: a lost or skipped book change cannot
make a stored snapshot wrong.

Start: trades are re-read from the newest stored trade (or from the older durable
"complete through" mark a run killed during a repair left, see `trade_coverage.py`). On the
first start, with an empty trades table, the last TRADE_REPAIR_MAX_AGE_S (default one day)
of the chain's trades are backfilled through REST (one `data_gaps` row "first start",
repaired=True); 0 turns that off. The window is read once the stream is seen to flow.

Gaps: quotes have no repair path, so every window without a quote stream (a socket down, the
collector not running) becomes a `data_gaps` row for `{cur}_option_quotes` with
repaired=False (scope "all", or the socket's name when the chain spans several). A socket's
window starts at the older of its last receive time and the newest exchange timestamp it
received (what was queued for it but never arrived is newer than that). Trades are repaired
(see `trade_repair.py`). Every `data_gaps` time is exchange (market) time, `SIM_CLOCK` time in
tests; the writer's report of a previous run that died (wall time, from `collector_status`)
is only logged: the "collector was not running" row, from the newest stored quote to the
first connect, is the market-time record of that window.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import datetime
from typing import Any

from scripts.clock import Clock, ms_from_utc, utc_from_ms, utc_from_s
from scripts.collectors.realtime import forward_tickers
from scripts.collectors.realtime.book_snapshots import BookSnapshotter
from scripts.collectors.realtime.expiry import expired_names
from scripts.collectors.realtime.instruments import OptionChain
from scripts.collectors.realtime.router import MessageRouter
from scripts.collectors.realtime.socket_events import SocketEvents
from scripts.collectors.realtime.trade_checkpoint import TradeCheckpoint
from scripts.collectors.realtime.trade_checkpoint_file import CheckpointFile
from scripts.collectors.realtime.trade_coverage import POLL_S, TradeCoverage
from scripts.collectors.realtime.trade_repair import TradeRepairer
from scripts.collectors.realtime.trade_watch import TradeWatch
from scripts.collectors.rejects import Rejects
from scripts.config import Settings
from scripts.deribit import channels as ch
from scripts.deribit.rest import DeribitRestClient
from scripts.deribit.ws import subscribe_limiter
from scripts.deribit.ws_pool import DeribitWsPool
from scripts.normalize.quote_ivs import ForwardCurves
from scripts.runtime import Job, run_tasks
from scripts.storage import queries
from scripts.storage.status import WriterStatus
from scripts.storage.tables import OPTION_QUOTES, OPTION_TRADES
from scripts.storage.writer import BatchWriter

log = logging.getLogger(__name__)

STATUS_EVERY_S = 1.0  # wall seconds between updates of the status details


def _not_after(at: datetime | None, market_s: float) -> datetime | None:
    return None if at is None else min(at, utc_from_s(market_s))


class OptionsRealtimeCollector(SocketEvents):
    """Wires the chain, the sockets, the router, the trade repairer and the book snapshots."""

    def __init__(
        self,
        settings: Settings,
        *,
        writer: BatchWriter,
        rest: DeribitRestClient,
        clock: Clock,
        client_version: str,
        subscribe_share: float = 1.0,
        history: DeribitRestClient | None = None,
        status: WriterStatus | None = None,
    ) -> None:
        self.settings = s = settings
        self.spec = spec = settings.currency
        self.writer = writer
        self.status = (
            status if status is not None else writer.status
        )  # the service's; the writer's when alone
        self.rest = rest
        self.clock = clock
        self.client_version = client_version
        self.quotes_table = OPTION_QUOTES.table_name(spec.code)
        self.trades_table = OPTION_TRADES.table_name(spec.code)
        self.rejects = Rejects(writer, writer.collector_name)
        self.watch = TradeWatch()
        self.repairer = TradeRepairer(
            spec,
            rest=rest,
            writer=writer,
            clock=clock,
            watch=self.watch,
            max_age_s=s.trade_repair_max_age_s,
            history=history,
            expired_since=self._expired_since,
            status=self.status,
        )
        self.repairer.rejects = self.rejects
        self.checkpoint_file = CheckpointFile.beside_spool(s.spool_dir, writer.collector_name)
        self.checkpoint = TradeCheckpoint(on_durable=self.checkpoint_file.write)
        self.coverage = TradeCoverage(clock=clock, watch=self.watch, repairer=self.repairer)
        self.chain = OptionChain(
            spec,
            rest=rest,
            writer=writer,
            clock=clock,
            rejects=self.rejects,
            top_n=s.top_n_instruments,
            reconcile_interval_s=s.instrument_reconcile_interval_s,
            on_listed=self._listed,
            on_delisted=self._delisted,
        )
        self.forwards = ForwardCurves(max_age_ms=round(s.quote_forward_max_age_s * 1000))
        writer.set_batch_transform(OPTION_QUOTES, spec.code, self.forwards.enrich)
        self._forward_options: dict[str, str] = {}  # expiry -> option whose ticker we follow
        self.router = MessageRouter(
            spec,
            writer=writer,
            rejects=self.rejects,
            watch=self.watch,
            on_trade_holes=self.repairer.request_holes,
            on_trades_lost=self._trades_lost,
            on_instrument_state=self.chain.on_state,
            on_instrument_created=self.chain.on_created,
            forwards=self.forwards,
            status=self.status,
        )
        self.snapshotter = BookSnapshotter(
            spec,
            rest=rest,
            writer=writer,
            clock=clock,
            rejects=self.rejects,
            instruments=lambda: list(self.chain.live),
            interval_s=s.orderbook_snapshot_interval_s,
            depth=s.orderbook_depth,
        )
        self.subscribe_limiter = subscribe_limiter(clock, subscribe_share)
        self.pool = DeribitWsPool(
            self._make_client,
            channels_per_connection=s.ws_channels_per_connection,
            max_connections=s.ws_max_connections,
        )
        api = spec.api_currency
        self.trade_channel = ch.trades_by_kind_channel("option", api, "100ms")
        self.fixed_channels = [
            self.trade_channel,
            ch.markprice_channel(spec.index_name),
            ch.instrument_state_channel("option", api),
            ch.instrument_creation_channel("option", api),
        ]
        self._connected_once: set[str] = set()
        self._refused_since: dict[str, float] = {}  # quote channel -> market s of its refusal
        self._down_since: dict[str, tuple[float, str]] = {}  # socket -> (market s, reason)
        self._newest_stamp: dict[str, int] = {}  # socket -> newest exchange ms it received
        self.repair_from_ms: int | None = None
        self._not_running_since: datetime | None = None
        self.started = asyncio.Event()  # the first socket is subscribed (tests wait on it)
        self.prepared = False

    def _expired_since(self, start_ms: int) -> bool:
        """An option of the chain expired at or after `start_ms` (the fake exchange's expiries
        are not at 08:00 UTC; Deribit's are, and the repairer checks that itself)."""
        latest = self.chain.latest_expiry_ms
        return latest is not None and latest >= start_ms

    # ---- channels -----------------------------------------------------------------------------
    def _listed(self, names: list[str]) -> None:
        # Forward tickers first: when the sockets are full, one serves a whole expiry's IVs.
        self._follow_forwards()
        self.pool.add_channels(ch.quote_channel(n) for n in names)

    def _delisted(self, names: list[str]) -> None:
        channels = [ch.quote_channel(n) for n in names]
        for channel in channels:
            self._refused_gap(channel)
        self.pool.remove_channels(channels)
        self._forget_expired()
        self._follow_forwards()

    def _forget_expired(self) -> None:
        """Drops per-instrument state of options that expired (see `expiry.py`). Run at each
        delisting (options expire daily), so what a late trade or a repair re-creates for an
        expired option is dropped at the next one: the maps hold the live set plus a day."""
        router, watch, chain = self.router, self.watch, self.chain
        known = {*watch.last_seq, *watch.seqs, *router.marks, *chain.gone, *chain.listed_at}
        gone = expired_names(known, self.clock.now())
        if gone:
            watch.forget(gone)
            router.forget(gone)
            chain.forget(gone)

    def _follow_forwards(self) -> None:
        """One forward ticker per expiry of the followed options (see forward_tickers.py)."""
        old = self._forward_options
        new = forward_tickers.choose(self.chain.live, old)
        if new == old:
            return
        gone = [forward_tickers.channel(n) for n in set(old.values()) - set(new.values())]
        added = [forward_tickers.channel(n) for n in set(new.values()) - set(old.values())]
        self._forward_options = new
        self.pool.remove_channels(gone)
        self.pool.add_channels(added)
        self.forwards.forget_expired(int(self.clock.now() * 1000))

    # ---- the run ------------------------------------------------------------------------------
    async def prepare(self) -> None:
        """Discovers the chain and reads where the previous run stopped (`run` calls it when
        the caller has not)."""
        s = self.settings
        now_s = self.clock.now()
        # Never from the future: rows stamped ahead (stored before they were refused) would
        # make the start-up repair look for trades newer than them.
        newest_trade = _not_after(
            await queries.newest_timestamp(s.database_url, self.trades_table), now_s
        )
        newest_quote = _not_after(
            await queries.newest_timestamp(s.database_url, self.quotes_table), now_s
        )
        reason = "first start"
        if newest_trade is not None:
            reason = "collector start"
            self.repair_from_ms = ms_from_utc(newest_trade)
            mark = self.checkpoint_file.read()  # older when a repair was pending at the end
            if mark is not None and mark < self.repair_from_ms:
                log.info("%s: re-reading trades from %s", self.trades_table, utc_from_ms(mark))
                self.repair_from_ms = mark
        elif s.trade_repair_max_age_s > 0:
            self.repair_from_ms = int((now_s - s.trade_repair_max_age_s) * 1000)
        self.coverage.begin(self.repair_from_ms, reason, at_s=now_s)
        self._not_running_since = newest_quote
        names = await self.chain.load()
        await self.router.repeats.load(s.database_url, self.quotes_table, names)
        self.pool.add_channels(self.fixed_channels)
        self._listed(names)
        self.prepared = True

    async def run(self, stop: asyncio.Event) -> None:
        """Collects until `stop` is set (the writer is run and drained by the caller)."""
        if not self.prepared:
            await self.prepare()
        jobs: list[tuple[str, Job]] = [
            ("ws-pool", self.pool.run),
            ("trade-repair", self.repairer.run),
            ("instruments", self.chain.run),
            ("book-snapshots", self.snapshotter.run),
            ("status", self._status_loop),
            ("trade-coverage", self._coverage_loop),
        ]
        try:
            await run_tasks(stop, jobs, grace_s=10.0)
        finally:
            for channel in list(self._refused_since):  # still refused at the end
                self._refused_gap(channel)
            self.update_status()

    async def _status_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.update_status()
            self.checkpoint.offer(
                self.coverage.complete_through_ms(), self.status.last_db_flush_at, time.time()
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), STATUS_EVERY_S)

    async def _coverage_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.coverage.poll(self.pool.owner.get(self.trade_channel), self.router.last_trades_s)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), POLL_S)

    def update_status(self) -> None:
        ws = self.pool.stats()
        details: dict[str, Any] = {
            "ws": vars(ws),
            "sockets": len(self.pool.clients),
            "channels_wanted": len(self.pool.owner),
            "channels_subscribed": len(self.pool.subscribed),
            "channels_unassigned": len(self.pool.unassigned),
            "options_followed": len(self.chain.live),
            "bad_input": self.rejects.counters(),
            "trade_repair": {
                "windows_repaired": self.repairer.windows_repaired,
                "windows_failed": self.repairer.windows_failed,
                "trades_recovered": self.repairer.trades_recovered,
                "rest_pages": self.repairer.rest_pages,
                "silences": self.coverage.silences,
                "complete_through_ms": self.checkpoint.durable_ms,
            },
            "book_snapshots": self.snapshotter.snapshots,
            "quote_forwards": {
                "expiries": len(self._forward_options),
                "rows_with_forward": self.forwards.rows_enriched,
                "rows_without_fresh_forward": self.forwards.rows_stale,
            },
        }
        self.status.details.update(details)
