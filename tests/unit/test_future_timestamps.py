"""Exchange timestamps far ahead of the receive clock are refused and counted (issue 11,
scenario 3); the trade watch's newest time never passes the receive clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from scripts.collectors.realtime.router import MessageRouter
from scripts.collectors.realtime.trade_repair import TradeWatch
from scripts.collectors.rejects import Rejects
from scripts.currencies import currency_spec
from scripts.normalize.future import FUTURE_REASON, FUTURE_TOLERANCE_S
from scripts.storage.writer import BatchWriter
from tests.support.trades import trade

RECEIVED = datetime(2026, 6, 1, tzinfo=UTC)


def quote(ts_ms: int) -> dict[str, object]:
    return {
        "instrument_name": "ETH-1JUN26-3000-C",
        "timestamp": ts_ms,
        "best_bid_price": 0.01,
        "best_bid_amount": 1.0,
        "best_ask_price": 0.02,
        "best_ask_amount": 1.0,
    }


def test_a_quote_stamped_beyond_the_tolerance_is_refused_and_counted() -> None:
    writer = BatchWriter("postgresql://unused", collector_name="t", currency="ETH", version="t")
    rejects = Rejects(writer, "t")
    router = MessageRouter(currency_spec("ETH"), writer=writer, rejects=rejects, watch=TradeWatch())
    now_ms = int(RECEIVED.timestamp() * 1000)
    tol_ms = int(FUTURE_TOLERANCE_S * 1000)
    router.on_notification("quote.ETH-1JUN26-3000-C", quote(now_ms + tol_ms - 1), RECEIVED)
    router.on_notification("quote.ETH-1JUN26-3000-C", quote(now_ms + tol_ms + 1), RECEIVED)
    assert router.rows_by_family == {"quote": 1}
    # Counter keys carry the kind of problem, not its numbers (rejects.py caps the keys).
    assert rejects.by_reason == {"quote: timestamp more than N s after received_at": 1}
    assert f"timestamp more than {FUTURE_TOLERANCE_S:g} s after received_at" == FUTURE_REASON


def test_the_newest_trade_time_never_passes_the_receive_clock() -> None:
    watch = TradeWatch()
    row = trade(RECEIVED.timestamp() + 30, 1)
    watch.observe([row._replace(received_at=RECEIVED)])
    assert watch.newest_ms == int(RECEIVED.timestamp() * 1000)
    assert watch.newest_ms < int((RECEIVED + timedelta(seconds=30)).timestamp() * 1000)
