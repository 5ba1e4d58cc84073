"""The real-time collector's socket events (collector.py): connects, drops, refused channels
and unreadable frames, turned into `data_gaps` rows and trade-coverage events.

Mixed into `OptionsRealtimeCollector`; the attributes declared below are the collector's.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from scripts.clock import Clock, floor_ms_from_utc, utc_from_s
from scripts.collectors.realtime.instruments import OptionChain
from scripts.collectors.realtime.router import MessageRouter
from scripts.collectors.realtime.trade_checkpoint import TradeCheckpoint
from scripts.collectors.realtime.trade_coverage import TradeCoverage
from scripts.collectors.realtime.trade_repair import TradeRepairer
from scripts.collectors.rejects import Rejects, channel_of_raw
from scripts.config import Settings
from scripts.currencies import CurrencySpec
from scripts.deribit import channels as ch
from scripts.deribit.limiter import CreditLimiter
from scripts.deribit.ws import DeribitWsClient
from scripts.deribit.ws_pool import DeribitWsPool
from scripts.models import GapRow
from scripts.storage.status import WriterStatus
from scripts.storage.tables import DATA_GAPS
from scripts.storage.writer import BatchWriter

_dt = utc_from_s


class SocketEvents:
    settings: Settings
    spec: CurrencySpec
    clock: Clock
    writer: BatchWriter
    status: WriterStatus
    router: MessageRouter
    pool: DeribitWsPool
    chain: OptionChain
    coverage: TradeCoverage
    checkpoint: TradeCheckpoint
    repairer: TradeRepairer
    rejects: Rejects
    client_version: str
    subscribe_limiter: CreditLimiter
    quotes_table: str
    trades_table: str
    trade_channel: str
    fixed_channels: list[str]
    started: asyncio.Event
    _newest_stamp: dict[str, int]
    _connected_once: set[str]
    _down_since: dict[str, tuple[float, str]]
    _refused_since: dict[str, float]
    _not_running_since: datetime | None

    # ---- sockets ------------------------------------------------------------------------------
    def _make_client(self, name: str) -> DeribitWsClient:
        s = self.settings
        route = self.router.on_notification
        stamps = self._newest_stamp
        stamps[name] = 0

        def on_notification(channel: str, data: Any, received_at: datetime) -> None:
            route(channel, data, received_at)
            # The exchange time of what this socket received (quotes, states: dict data).
            if type(data) is dict:
                ts = data.get("timestamp")
                if type(ts) is int and ts > stamps[name]:
                    stamps[name] = ts

        return DeribitWsClient(
            s.deribit_ws_url,
            on_notification=on_notification,
            client_name=f"chaintape-{self.writer.collector_name}",
            client_version=self.client_version,
            heartbeat_interval_s=s.heartbeat_interval_s,
            data_watchdog_s=s.data_watchdog_s,
            subscribe_limiter=self.subscribe_limiter,
            clock=self.clock,
            on_connect=self._on_connect,
            on_disconnect=self._on_disconnect,
            on_malformed=self._on_malformed,
            on_refused=self._on_refused,
            on_accepted=self._on_accepted,
            name=name,
        )

    def _scope(self, client: DeribitWsClient) -> str:
        return "all" if len(self.pool.clients) == 1 else f"socket {client.name}"

    def _on_connect(self, client: DeribitWsClient) -> None:
        now_s = self.clock.now()
        first = client.name not in self._connected_once
        not_running = self._not_running_window_pending(client)
        self._connected_once.add(client.name)
        self.status.set_connected(all(c.connected for c in self.pool.clients))
        down = self._down_since.pop(client.name, None)
        if down is not None:
            self._gap(
                self.quotes_table,
                self._scope(client),
                _dt(down[0]),
                _dt(now_s),
                f"websocket down: {down[1]}",
            )
        elif not_running and self._not_running_since is not None:
            self._gap(
                self.quotes_table,
                "all",
                self._not_running_since,
                _dt(now_s),
                "collector was not running",
            )
        owner = self.pool.owner
        if owner.get(self.trade_channel) is client:
            self.coverage.connected()
        if not first and owner.get(self.fixed_channels[2]) is client:
            self.chain.reconcile_soon()  # listings pushed while it was down were missed
        self.started.set()

    def _on_disconnect(self, client: DeribitWsClient, reason: str) -> None:
        self.status.note_reconnect()
        self.status.set_connected(False)
        if self._not_running_window_pending(client):
            # A first connect that failed (DNS not up yet, a 429): the window since the
            # previous run is still open and its first successful connect records it whole.
            return
        # What was queued for this socket but never arrived is newer than the newest exchange
        # timestamp it received, which lags the local clock when the exchange does.
        last = client.last_data_market_s or self.clock.now()
        stamp = self._newest_stamp.get(client.name, 0)
        if stamp:
            last = min(last, stamp / 1000)
        self._down_since.setdefault(client.name, (last, reason))
        if self.pool.owner.get(self.trade_channel) is client:
            self.coverage.disconnected(reason)
        if self.pool.owner.get(self.fixed_channels[1]) is client:  # markprice.options
            self.router.clear_marks()

    def _on_refused(self, client: DeribitWsClient, channels: list[str]) -> None:
        """The exchange left channels out of its ack (the socket asks again, with backoff).
        A refused quote channel's absence becomes a gap row once it is back (or at the end);
        a refused trades channel keeps the trade window open (trade_coverage.py)."""
        now_s = self.clock.now()
        for channel in channels:
            if ch.channel_family(channel) == ch.QUOTE:
                self._refused_since.setdefault(channel, now_s)

    def _on_accepted(self, client: DeribitWsClient, channels: list[str]) -> None:
        for channel in channels:
            self._refused_gap(channel)

    def _refused_gap(self, channel: str) -> None:
        since = self._refused_since.pop(channel, None)
        if since is not None:
            name = ch.channel_subject(channel) or channel
            self._gap(
                self.quotes_table,
                name,
                _dt(since),
                _dt(self.clock.now()),
                f"channel {channel} refused by the exchange",
            )

    def _not_running_window_pending(self, client: DeribitWsClient) -> bool:
        """The first socket has not connected yet in this run, and a previous run stored
        quotes: its first connect records "collector was not running" from the newest one."""
        return (
            client.name == "ws0"
            and client.name not in self._connected_once
            and self._not_running_since is not None
        )

    def _on_malformed(self, client: DeribitWsClient, raw: bytes | str, reason: str) -> None:
        received_at = _dt(self.clock.now())
        self.rejects.malformed_frame(raw, reason, received_at)
        channel = channel_of_raw(raw)
        if channel is None or ch.channel_family(channel) in (ch.TRADES_BY_KIND, ch.TRADES):
            self._trades_lost(f"unreadable frame on {channel or 'an unknown channel'}")

    def _trades_lost(self, reason: str) -> None:
        self.coverage.lost(reason)

    def on_rows_lost(self, gap: GapRow) -> None:
        """The writer's `on_rows_lost`: trades it dropped are re-read through REST once the
        database is back; other tables (quotes, books) have no repair path and keep its row."""
        if gap.table_name != self.trades_table:
            return
        self.checkpoint.hold_back(floor_ms_from_utc(gap.gap_start))
        self.repairer.request_lost(gap)

    def _gap(self, table: str, scope: str, start: datetime, end: datetime, reason: str) -> None:
        if end <= start:
            return
        now = _dt(self.clock.now())
        self.writer.add(
            DATA_GAPS,
            None,
            GapRow(table, self.spec.code, scope, start, end, reason[:500], False, now),
        )
        self.status.note_gap()
