"""Test doubles for the trade-coverage and trade-loss unit tests (a socket stand-in, a clock
the test sets, trade rows), and the field-by-field check of stored trades against the fake
exchange's ground truth that the end-to-end tests share."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from scripts.clock import SimClock
from scripts.models import TradeRow

T0 = 1_780_272_000.0


@dataclass
class Socket:
    connected: bool = False
    last_data_market_s: float | None = None


class FrozenClock(SimClock):
    """A SimClock whose market time the test sets."""

    def __init__(self, now: float) -> None:
        super().__init__(0.0, now, 1.0)
        self.t = now

    def now(self) -> float:
        return self.t


def trade(ts_s: float, seq: int) -> TradeRow:
    at = datetime.fromtimestamp(ts_s, UTC)
    fields = dict.fromkeys(TradeRow._fields)
    fields.update(
        timestamp=at,
        instrument_name="ETH-1JUN26-3000-C",
        trade_id=f"ETH-{seq}",
        trade_seq=seq,
        price=0.01,
        amount=1.0,
        direction="buy",
        received_at=at,
    )
    return TradeRow(**fields)


def assert_trade_fields(rows: list[tuple[Any, ...]], truth: dict[str, dict[str, Any]]) -> None:
    """Each stored trade (trade_id, instrument_name, trade_seq, price, amount, direction,
    timestamp ms) carries the fields the exchange made it with."""
    for trade_id, name, seq, price, amount, direction, ts in rows:
        t = truth[trade_id]
        assert (name, seq, price, amount, direction, ts) == (
            t["instrument_name"],
            t["trade_seq"],
            t["price"],
            t["amount"],
            t["direction"],
            t["timestamp"],
        )
