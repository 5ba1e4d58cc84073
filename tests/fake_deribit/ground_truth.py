"""What the fake exchange really did: every trade, quote and book change the market produced,
and every notification the server sent. Tests compare the database with it.

Recording is append-only and cheap: trades are kept as the very dicts that were sent (no
copies); quotes and book changes as small tuples.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any, NamedTuple


class QuoteFact(NamedTuple):
    ts_ms: int
    instrument_name: str
    best_bid_price: float
    best_bid_amount: float
    best_ask_price: float
    best_ask_amount: float


class BookFact(NamedTuple):
    ts_ms: int
    instrument_name: str
    change_id: int
    prev_change_id: int | None  # None for the initial state of a book
    levels_changed: int


class SentFact(NamedTuple):
    conn_id: Hashable
    channel: str
    data: Any


class MalformedFact(NamedTuple):
    conn_id: Hashable
    channel: str
    reason: str  # which fault mangled it
    data: Any  # what the frame should have carried


class GroundTruth:
    """The market appends as it produces; the server calls `record_sent` for each
    notification. `record_books`/`record_sent_frames` switch the bulky parts off for the
    benchmark."""

    def __init__(self, *, record_books: bool = True, record_sent_frames: bool = True) -> None:
        self.record_books = record_books
        self.record_sent_frames = record_sent_frames
        self.trades: list[dict[str, Any]] = []
        self.trade_by_id: dict[str, dict[str, Any]] = {}
        self.quotes: list[QuoteFact] = []
        self.books: list[BookFact] = []
        self.sent: list[SentFact] = []
        self.sent_count = 0
        self.malformed: list[MalformedFact] = []

    # -- from the market ---------------------------------------------------------------------
    def add_trade(self, trade: dict[str, Any]) -> None:
        self.trades.append(trade)
        self.trade_by_id[trade["trade_id"]] = trade

    def add_quote(self, q: dict[str, Any]) -> None:
        if self.record_books:
            self.quotes.append(
                QuoteFact(
                    q["timestamp"],
                    q["instrument_name"],
                    q["best_bid_price"],
                    q["best_bid_amount"],
                    q["best_ask_price"],
                    q["best_ask_amount"],
                )
            )

    def add_book(self, b: dict[str, Any]) -> None:
        if self.record_books:
            self.books.append(
                BookFact(
                    b["timestamp"],
                    b["instrument_name"],
                    b["change_id"],
                    b.get("prev_change_id"),
                    len(b["bids"]) + len(b["asks"]),
                )
            )

    # -- from the server ---------------------------------------------------------------------
    def record_sent(self, conn_id: Hashable, channel: str, data: Any) -> None:
        self.sent_count += 1
        if self.record_sent_frames:
            self.sent.append(SentFact(conn_id, channel, data))

    def record_malformed(self, conn_id: Hashable, channel: str, reason: str, data: Any) -> None:
        """A notification a fault switch sent broken on purpose (not counted as sent)."""
        self.malformed.append(MalformedFact(conn_id, channel, reason, data))

    # -- queries -----------------------------------------------------------------------------
    def sent_on(self, channel_prefix: str, conn_id: Hashable | None = None) -> list[SentFact]:
        """Notifications sent on channels starting with `channel_prefix` (to one connection)."""
        return [
            s
            for s in self.sent
            if s.channel.startswith(channel_prefix) and (conn_id is None or s.conn_id == conn_id)
        ]

    def trades_of(self, instrument_name: str) -> list[dict[str, Any]]:
        return [t for t in self.trades if t["instrument_name"] == instrument_name]

    def trades_between(self, start_ms: int, end_ms: int) -> list[dict[str, Any]]:
        """Trades with start_ms <= timestamp <= end_ms, in the order they were made."""
        return [t for t in self.trades if start_ms <= t["timestamp"] <= end_ms]

    def quotes_of(self, instrument_name: str) -> list[QuoteFact]:
        return [q for q in self.quotes if q.instrument_name == instrument_name]

    def books_of(self, instrument_name: str) -> list[BookFact]:
        return [b for b in self.books if b.instrument_name == instrument_name]
