"""Notification -> rows: the real-time collector's dispatch on the channel family.

- `quote.{option}`: a `{cur}_option_quotes` row per frame (every best bid/ask change);
  `mark_iv` and `mark_price` are the instrument's latest from `markprice.options` (or a
  ticker).
- `ticker.{option}.{interval}`: its `underlying_price` is the expiry's forward, handed to
  `forwards` (which completes the quote rows' `underlying_price`, `bid_iv`, `ask_iv` per
  flush batch). An `agg2` ticker (the interval the collector follows one ticker per expiry
  at, for the forward) makes no row: its option's quotes come from `quote.*`. Deciding by
  the channel's name, not by the set of channels followed now, keeps frames still in flight
  after a change of the followed option from becoming rows. Any other ticker makes a
  `{cur}_option_quotes` row with Deribit's bid/ask/mark IV, mark and underlying price (so a
  replay of recorded `raw`/`100ms` ticker frames lands rows too).
- `markprice.options.{index}`: no row; updates the latest mark (IV in percent) per option.
- `trades.option.{api_currency}.{interval}` (and `trades.{option}.{interval}`):
  `{cur}_option_trades` rows of this currency's options (SOL: the `SOL_USDC-` ones of
  `USDC`); `trade_seq` holes and refused trades go to the repairer.
- `instrument.state.option.{api_currency}`: lifecycle events (listings, expiries).
- `instrument.creation.option.{api_currency}`: the new option's `instruments` row.

Everything that does not parse is handed to `Rejects`; an instrument of another currency
on a shared channel (USDC) is skipped silently, as it is not ours.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import datetime
from typing import Any

from scripts.clock import ms_from_utc
from scripts.collectors.realtime.forward_tickers import FORWARD_TICKER_INTERVAL
from scripts.collectors.realtime.quote_repeats import QuoteRepeats
from scripts.collectors.realtime.trade_watch import SeqHole, TradeWatch
from scripts.collectors.rejects import Rejects
from scripts.currencies import CurrencySpec
from scripts.deribit import channels as ch
from scripts.models import InstrumentRow
from scripts.normalize import instruments as ninst
from scripts.normalize import quotes as nquotes
from scripts.normalize import tickers as ntickers
from scripts.normalize import trades as ntrades
from scripts.normalize.common import FAST_MS_LIMIT, MalformedMessage
from scripts.normalize.future import FUTURE_REASON, FUTURE_TOLERANCE_S, future_limit
from scripts.normalize.quote_ivs import ForwardCurves, parse_forward
from scripts.normalize.quotes import parse_quote
from scripts.status_log import LagSamples
from scripts.storage.status import WriterStatus
from scripts.storage.tables import OPTION_QUOTES, OPTION_TRADES
from scripts.storage.writer import BatchWriter

Handler = Callable[[str, Any, datetime], None]
QUOTE_FIELD_COUNT = len(nquotes.QUOTE_FIELDS)
# A mark older than this (exchange time, against the quote's) is not attached to a quote row:
# markprice.options comes about once a second, so ten seconds without one is a stalled feed.
MARK_MAX_AGE_S = 10.0
OPTION_SUFFIXES = ("-C", "-P")  # option names end with the type; combos and futures do not
FORWARD_TICKER_SUFFIX = "." + FORWARD_TICKER_INTERVAL  # tickers followed only for forwards


class MessageRouter:
    """Turns one notification into rows for the writer; `on_notification` is the WS callback."""

    def __init__(
        self,
        spec: CurrencySpec,
        *,
        writer: BatchWriter,
        rejects: Rejects,
        watch: TradeWatch,
        on_trade_holes: Callable[[list[SeqHole]], None] = lambda holes: None,
        on_trades_lost: Callable[[str], None] = lambda reason: None,
        on_instrument_state: Callable[[ninst.InstrumentState], None] = lambda s: None,
        on_instrument_created: Callable[[InstrumentRow], None] = lambda r: None,
        forwards: ForwardCurves | None = None,
        status: WriterStatus | None = None,
    ) -> None:
        self.spec = spec
        self.forwards = forwards
        self.code = spec.code
        self.prefix = spec.instrument_prefix
        self.writer = writer
        self.rejects = rejects
        self.watch = watch
        self.on_trade_holes = on_trade_holes
        self.on_trades_lost = on_trades_lost
        self.on_instrument_state = on_instrument_state
        self.on_instrument_created = on_instrument_created
        # name -> (mark_iv, mark_price, exchange ms of the mark)
        self.marks: dict[str, tuple[float | None, float | None, int]] = {}
        self._mark_max_age_ms = int(MARK_MAX_AGE_S * 1000)
        # Quotes stamped at or after this are refused (normalize/future.py); set per read.
        self._ts_limit_ms = 0
        self.repeats = QuoteRepeats()  # a (re)subscribe re-sends the current quote
        self._quote_rows = 0
        self._trade_rows = 0
        self._add_quote_row = writer.appender(OPTION_QUOTES, self.code)
        self._status = (
            status if status is not None else writer.status
        )  # the service's; the writer's when alone
        self._last_received_at: datetime | None = None
        self.last_trades_s: float | None = None  # market time of the last trades frame
        self.lag: LagSamples | None = None  # sampled once per socket read (the status line)
        self._handlers: dict[str, Handler] = {}
        self._by_family: dict[str, Handler] = {
            ch.QUOTE: self._quote,
            ch.TICKER: self._ticker,
            ch.MARKPRICE_OPTIONS: self._markprice,
            ch.TRADES_BY_KIND: self._trades,
            ch.TRADES: self._trades,
            ch.INSTRUMENT_STATE: self._instrument_state,
            ch.INSTRUMENT_CREATION: self._instrument_created,
        }

    def on_notification(self, channel: str, data: Any, received_at: datetime) -> None:
        handler = self._handlers.get(channel)
        if handler is None:
            handler = self._by_family.get(ch.channel_family(channel), self._unexpected)
            self._handlers[channel] = handler
        if received_at is self._last_received_at:
            # The frames of one socket read share `received_at`: the status clock is read
            # once per read, not per message.
            self._status.messages_total += 1
        else:
            self._last_received_at = received_at
            self._status.note_messages()
            self._ts_limit_ms = min(
                int((received_at.timestamp() + FUTURE_TOLERANCE_S) * 1000), FAST_MS_LIMIT
            )
            if self.lag is not None and type(data) is dict and "timestamp" in data:
                with contextlib.suppress(TypeError, ValueError):
                    self.lag.add(received_at.timestamp() - float(data["timestamp"]) / 1000.0)
        try:
            handler(channel, data, received_at)
        except MalformedMessage as exc:
            self.rejects.rejected(channel, exc.reason, data, received_at)

    @property
    def rows_by_family(self) -> dict[str, int]:
        """Rows handed to the writer, per channel family ("quote", "trade")."""
        out = {}
        if self._quote_rows:
            out["quote"] = self._quote_rows
        if self._trade_rows:
            out["trade"] = self._trade_rows
        return out

    # ---- quotes -------------------------------------------------------------------------------
    def _quote(self, channel: str, data: Any, received_at: datetime) -> None:
        row = parse_quote(
            data,
            received_at=received_at,
            marks=self.marks,
            mark_max_age_ms=self._mark_max_age_ms,
            ts_limit_ms=self._ts_limit_ms,
        )
        if len(data) != QUOTE_FIELD_COUNT:  # all six were read: only then can one be unknown
            self._check_fields("quote", data, channel)
        name = row[1]
        # `_is_ours`'s common case inline (this runs once per quote message).
        ours = name.startswith(self.prefix) and name[-2:] in OPTION_SUFFIXES
        if (ours or self._is_ours(name, channel, data, received_at)) and not self.repeats.seen(row):
            self._add_quote_row(row)
            self._quote_rows += 1

    def _ticker(self, channel: str, data: Any, received_at: datetime) -> None:
        forwards = self.forwards
        if forwards is not None:
            forward = parse_forward(data)
            if forward is not None and forward[0].startswith(self.prefix):
                forwards.note(*forward)
            if channel.endswith(FORWARD_TICKER_SUFFIX):
                self._check_fields("ticker", data, channel)
                return
        row = nquotes.parse_ticker_quote(data, received_at=received_at)
        self._check_fields("ticker", data, channel)
        ts_ms = ms_from_utc(row.timestamp)
        self.marks[row.instrument_name] = (row.mark_iv, row.mark_price, ts_ms)
        if self._is_ours(row.instrument_name, channel, data, received_at) and not (
            self.repeats.seen(row)
        ):
            self._add_quote_row(row)
            self._quote_rows += 1

    def _is_ours(self, name: str, channel: str, data: Any, received_at: datetime) -> bool:
        """An option of this currency. Other currencies' instruments are expected on shared
        USDC channels and skipped; a future or perpetual of ours is bad input."""
        if not name.startswith(self.prefix):
            return False
        if name[-2:] in OPTION_SUFFIXES:
            return True
        self.rejects.rejected(channel, "not an option of this currency", data, received_at)
        return False

    def _markprice(self, channel: str, data: Any, received_at: datetime) -> None:
        """A bad element costs only itself: it is counted and kept, the others are used."""
        marks = self.marks
        points, errors = ntickers.parse_markprice_tolerant(data, received_at=received_at)
        for point in points:
            marks[point.instrument_name] = (point.mark_iv, point.mark_price, point.timestamp_ms)
        for err, item in errors:
            self.rejects.rejected(channel, err.reason, item, received_at)

    def forget(self, names: list[str]) -> None:
        """Drops the state of instruments that are gone (expired): their marks, and the
        handler cache (it refills itself, one lookup per channel)."""
        for name in names:
            self.marks.pop(name, None)
        self.repeats.forget(names)
        self._handlers.clear()

    def clear_marks(self) -> None:
        """Forgets every mark (the socket carrying them went down: they would only age)."""
        self.marks.clear()

    # ---- trades -------------------------------------------------------------------------------
    def _trades(self, channel: str, data: Any, received_at: datetime) -> None:
        self.last_trades_s = received_at.timestamp()  # the trade stream itself flows
        try:
            rows, errors = ntrades.parse_trades_tolerant(data, received_at=received_at)
        except MalformedMessage:
            self.on_trades_lost(f"unreadable frame on {channel}")
            raise
        for err in errors:
            self.rejects.rejected(channel, err.reason, data, received_at)
        limit = future_limit(received_at)
        if any(r.timestamp > limit for r in rows):
            rows = [r for r in rows if r.timestamp <= limit]
            errors.append(MalformedMessage(f"trades: {FUTURE_REASON}"))
            self.rejects.rejected(channel, errors[-1].reason, data, received_at)
        if errors:  # the refused trades are re-read from REST, where they may be whole
            self.on_trades_lost(f"refused trade on {channel}")
        if type(data) is list:
            for t in data:
                unknown = ntrades.unknown_fields("trade", t)
                if unknown:
                    self.rejects.unknown("trade", unknown, channel)
        ours = [r for r in rows if self._is_ours(r.instrument_name, channel, data, received_at)]
        if not ours:
            return
        self.writer.add_many(OPTION_TRADES, self.code, ours)
        self._trade_rows += len(ours)
        holes = self.watch.observe(ours)
        if holes:
            self.on_trade_holes(holes)

    # ---- instruments --------------------------------------------------------------------------
    def _instrument_state(self, channel: str, data: Any, received_at: datetime) -> None:
        state = ninst.parse_instrument_state(data)
        self._check_fields_of(ninst.unknown_fields, "instrument_state", data, channel)
        name = state.instrument_name
        if name.startswith(self.prefix) and name[-2:] in OPTION_SUFFIXES:
            self.on_instrument_state(state)

    def _instrument_created(self, channel: str, data: Any, received_at: datetime) -> None:
        row = ninst.parse_instrument(data, currency=self.code, seen_at=received_at)
        self._check_fields_of(ninst.unknown_fields, "instrument", data, channel)
        if row.instrument_name.startswith(self.prefix) and row.kind == "option":
            self.on_instrument_created(row)

    # ---- the rest -----------------------------------------------------------------------------
    def _unexpected(self, channel: str, data: Any, received_at: datetime) -> None:
        raise MalformedMessage(f"unexpected channel family {ch.channel_family(channel)}")

    def _check_fields(self, kind: str, data: Any, channel: str) -> None:
        self._check_fields_of(nquotes.unknown_fields, kind, data, channel)

    def _check_fields_of(
        self, fn: Callable[[str, Any], frozenset[str]], kind: str, data: Any, channel: str
    ) -> None:
        unknown = fn(kind, data)
        if unknown:
            self.rejects.unknown(kind, unknown, channel)
