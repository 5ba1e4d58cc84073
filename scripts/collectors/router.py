"""Notification -> rows: the real-time collector's dispatch on the channel family.

- `quote.{option}`: a `{cur}_option_quotes` row per frame (every best bid/ask change);
  `mark_iv` and `mark_price` are the instrument's latest from `markprice.options` (or a
  ticker).
- `ticker.{option}.{interval}`: a `{cur}_option_quotes` row with bid/ask/mark IV, mark and
  underlying price (so a replay of recorded ticker frames lands rows too).
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

from collections.abc import Callable
from datetime import datetime
from typing import Any

from scripts.collectors.quote_repeats import QuoteRepeats
from scripts.collectors.rejects import Rejects
from scripts.collectors.trade_repair import SeqHole, TradeWatch
from scripts.currencies import CurrencySpec
from scripts.deribit import channels as ch
from scripts.models import InstrumentRow
from scripts.normalize import instruments as ninst
from scripts.normalize import quotes as nquotes
from scripts.normalize import tickers as ntickers
from scripts.normalize import trades as ntrades
from scripts.normalize.common import MalformedMessage
from scripts.normalize.quotes import parse_quote
from scripts.storage.tables import OPTION_QUOTES, OPTION_TRADES
from scripts.storage.writer import BatchWriter

Handler = Callable[[str, Any, datetime], None]
QUOTE_FIELD_COUNT = len(nquotes.QUOTE_FIELDS)
OPTION_SUFFIXES = ("-C", "-P")  # option names end with the type; combos and futures do not


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
    ) -> None:
        self.spec = spec
        self.code = spec.code
        self.prefix = spec.instrument_prefix
        self.writer = writer
        self.rejects = rejects
        self.watch = watch
        self.on_trade_holes = on_trade_holes
        self.on_trades_lost = on_trades_lost
        self.on_instrument_state = on_instrument_state
        self.on_instrument_created = on_instrument_created
        self.marks: dict[
            str, tuple[float | None, float | None]
        ] = {}  # name -> (mark_iv, mark_price)
        self.repeats = QuoteRepeats()  # a (re)subscribe re-sends the current quote
        self._quote_rows = 0
        self._trade_rows = 0
        self._add_quote_row = writer.appender(OPTION_QUOTES, self.code)
        self._status = writer.status
        self._last_received_at: datetime | None = None
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
        row = parse_quote(data, received_at=received_at, marks=self.marks)
        if len(data) != QUOTE_FIELD_COUNT:  # all six were read: only then can one be unknown
            self._check_fields("quote", data, channel)
        if self._is_ours(row[1], channel, data, received_at) and not self.repeats.seen(row):
            self._add_quote_row(row)
            self._quote_rows += 1

    def _ticker(self, channel: str, data: Any, received_at: datetime) -> None:
        row = nquotes.parse_ticker_quote(data, received_at=received_at)
        self._check_fields("ticker", data, channel)
        self.marks[row.instrument_name] = (row.mark_iv, row.mark_price)
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
        marks = self.marks
        for point in ntickers.parse_markprice(data, received_at=received_at):
            marks[point.instrument_name] = (point.mark_iv, point.mark_price)

    # ---- trades -------------------------------------------------------------------------------
    def _trades(self, channel: str, data: Any, received_at: datetime) -> None:
        try:
            rows, errors = ntrades.parse_trades_tolerant(data, received_at=received_at)
        except MalformedMessage:
            self.on_trades_lost(f"unreadable frame on {channel}")
            raise
        for err in errors:
            self.rejects.rejected(channel, err.reason, data, received_at)
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
