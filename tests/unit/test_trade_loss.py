"""Trades the writer dropped (spool full): held as the writer's `data_gaps` row until the
database takes writes again, and meanwhile holding back the durable "complete through" mark.
(No exchange or database here; the end-to-end case is in test_durability_outage.py.)"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from scripts.collectors.realtime.trade_checkpoint import TradeCheckpoint
from scripts.collectors.realtime.trade_checkpoint_file import CheckpointFile, read_checkpoint
from scripts.collectors.realtime.trade_coverage import TradeCoverage
from scripts.collectors.realtime.trade_repair import TradeRepairer, TradeWatch
from scripts.currencies import currency_spec
from scripts.deribit.limiter import LimiterSet
from scripts.deribit.rest import DeribitRestClient
from scripts.models import GapRow
from scripts.storage.writer import BatchWriter
from tests.support.trades import T0, FrozenClock, Socket, trade


def _ms(s: float) -> int:
    return int(s * 1000)


def _loss(start_s: float, end_s: float) -> GapRow:
    """A loss row as the writer records it for trades."""
    at = datetime.fromtimestamp(start_s, UTC)
    return GapRow(
        "eth_option_trades",
        "ETH",
        "spool_full",
        at,
        datetime.fromtimestamp(end_s, UTC),
        "spool full: rows dropped",
        False,
        at,
    )


def _build(tmp_path: Path) -> tuple[FrozenClock, BatchWriter, TradeRepairer, TradeCoverage]:
    clock = FrozenClock(T0)
    writer = BatchWriter(
        "postgresql://unused", collector_name="ws-eth", currency="ETH", version="t"
    )
    rest = DeribitRestClient(
        "http://127.0.0.1:9",
        limiter=LimiterSet.build(clock, requests_per_s=5, burst=5),
        clock=clock,
    )
    watch = TradeWatch()
    repairer = TradeRepairer(
        currency_spec("ETH"), rest=rest, writer=writer, clock=clock, watch=watch, max_age_s=86_400
    )
    coverage = TradeCoverage(clock=clock, watch=watch, repairer=repairer)
    sock = Socket(connected=True)  # a first start whose stream flows
    coverage.begin(None, "first start")
    coverage.connected()
    clock.t += 1
    sock.last_data_market_s = clock.t
    coverage.poll(sock, sock.last_data_market_s)
    watch.observe([trade(T0 + 50, 1)])
    clock.t = T0 + 60
    return clock, writer, repairer, coverage


async def test_dropped_trades_wait_for_the_database_and_hold_back_the_durable_mark(
    tmp_path: Path,
) -> None:
    _, writer, repairer, coverage = _build(tmp_path)
    checkpoint = TradeCheckpoint(on_durable=CheckpointFile(tmp_path / "mark.json").write)
    # A mark offered before the drop: it counted the trades handed over.
    checkpoint.offer(coverage.complete_through_ms(), None, time.time())
    first, extended = _loss(T0 + 20, T0 + 30), _loss(T0 + 20, T0 + 40)
    assert checkpoint.candidates() == [_ms(T0 + 49)]  # newest trade - slack
    checkpoint.hold_back(_ms(T0 + 20))
    assert checkpoint.candidates() == [_ms(T0 + 20)]  # not written past the drop
    repairer.request_lost(first)
    repairer.request_lost(extended)  # the same row, extended: one read, to its latest end
    repairer.request_lost(first)
    assert repairer.pending and repairer.floor_ms() == _ms(T0 + 20)
    assert coverage.complete_through_ms() == _ms(T0 + 20)

    # The database takes no writes: nothing is read (it would only fill the spool again).
    assert writer.status.db_ok is False
    await repairer.repair_pending()
    assert repairer.rest_pages == 0 and repairer.floor_ms() == _ms(T0 + 20)

    # Two database flushes complete: the mark written is not past the drop.
    now = time.time()
    checkpoint.offer(coverage.complete_through_ms(), now + 10, now + 10)
    checkpoint.offer(coverage.complete_through_ms(), now + 11, now + 11)
    assert checkpoint.durable_ms is not None and checkpoint.durable_ms <= _ms(T0 + 20)
    assert read_checkpoint(tmp_path / "mark.json") == checkpoint.durable_ms
    assert repairer._lost == {
        (first.table_name, first.scope, first.gap_start, first.reason): extended
    }
