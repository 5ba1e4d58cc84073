"""Test doubles for the trade-coverage and trade-loss unit tests: a socket stand-in, a clock
the test sets, and trade rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

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
