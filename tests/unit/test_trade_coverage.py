"""The trade-continuity core with plain values: TradeCoverage (when the trade stream is
trusted, which window is re-read) against a recording repairer, and TradeCheckpoint (the durable
"complete through" mark) with its file. Nothing here talks to the exchange or a database."""

from __future__ import annotations

from pathlib import Path

from scripts.collectors.realtime.trade_checkpoint import TradeCheckpoint
from scripts.collectors.realtime.trade_checkpoint_file import CheckpointFile, read_checkpoint
from scripts.collectors.realtime.trade_coverage import SLACK_MS, TradeCoverage
from scripts.collectors.realtime.trade_watch import TradeWatch
from tests.support.trades import T0, FrozenClock, Socket, trade


class QueuedWindows:
    """The repairer as coverage sees it: windows queued, the oldest start still queued."""

    def __init__(self) -> None:
        self.windows: list[tuple[int, int, str, bool]] = []

    def request_window(
        self,
        start_ms: int,
        end_ms: int,
        reason: str,
        *,
        always_record: bool = False,
        as_of_s: float | None = None,
    ) -> None:
        self.windows.append((start_ms, end_ms, reason, always_record))

    def floor_ms(self) -> int | None:
        return min((w[0] for w in self.windows), default=None)


def build(tmp_path: Path) -> tuple[FrozenClock, TradeWatch, QueuedWindows, TradeCoverage]:
    clock = FrozenClock(T0)
    watch = TradeWatch()
    repairer = QueuedWindows()
    coverage = TradeCoverage(clock=clock, watch=watch, repairer=repairer)
    return clock, watch, repairer, coverage


def first_start_with_data(clock: FrozenClock, coverage: TradeCoverage) -> Socket:
    """A first start whose trade socket connected and had data a market second later."""
    sock = Socket(connected=True)
    coverage.begin(None, "first start")
    coverage.connected()
    clock.t += 1
    sock.last_data_market_s = clock.t
    coverage.poll(sock, sock.last_data_market_s)
    return sock


def test_a_reconnect_window_starts_at_the_drop_and_closes_only_when_data_flows(
    tmp_path: Path,
) -> None:
    clock, watch, repairer, coverage = build(tmp_path)
    sock = first_start_with_data(clock, coverage)
    watch.observe([trade(T0 + 5, 1)])
    clock.t = T0 + 10
    coverage.disconnected("dropped")
    # The next session delivers a newer trade before its connect is reported ...
    watch.observe([trade(T0 + 60, 2)])
    sock.connected, sock.last_data_market_s = True, T0 + 60
    clock.t = T0 + 61
    coverage.connected()
    # ... then stalls: nothing arrives after the connect, the window stays open.
    clock.t = T0 + 90
    coverage.poll(sock, sock.last_data_market_s)
    assert repairer.floor_ms() is None
    assert coverage.complete_through_ms() == int((T0 + 5) * 1000) - SLACK_MS
    sock.last_data_market_s = T0 + 91
    clock.t = T0 + 91
    coverage.poll(sock, sock.last_data_market_s)
    assert repairer.floor_ms() == int((T0 + 5) * 1000) - SLACK_MS  # not T0 + 60
    assert coverage.complete_through_ms() == repairer.floor_ms()


def test_a_silence_on_the_trade_socket_is_re_read_when_data_returns(tmp_path: Path) -> None:
    clock, watch, repairer, coverage = build(tmp_path)
    sock = first_start_with_data(clock, coverage)
    watch.observe([trade(T0 + 1, 1)])
    clock.t = T0 + 20  # no notification for 19 s
    coverage.poll(sock, sock.last_data_market_s)
    watch.observe([trade(T0 + 21, 5)])  # data is back before the next poll
    assert coverage.complete_through_ms() == int((T0 + 1) * 1000) - SLACK_MS
    sock.last_data_market_s = clock.t = T0 + 21
    coverage.poll(sock, sock.last_data_market_s)
    assert coverage.silences == 1
    assert repairer.floor_ms() == int((T0 + 1) * 1000) - SLACK_MS


def test_the_mark_is_written_two_database_flushes_after_it_was_computed(tmp_path: Path) -> None:
    clock, watch, _, coverage = build(tmp_path)
    sock = Socket(connected=True)
    coverage.begin(int(T0 * 1000) - 3_600_000, "first start")
    coverage.connected()
    clock.t += 1
    sock.last_data_market_s = clock.t
    coverage.poll(sock, sock.last_data_market_s)  # the first start's window is queued
    watch.observe([trade(T0 + 1, 1)])
    file = CheckpointFile(tmp_path / "mark.json")
    checkpoint = TradeCheckpoint(on_durable=file.write)
    offered_at = 1000.0  # wall time
    checkpoint.offer(coverage.complete_through_ms(), None, offered_at)
    assert file.read() is None
    # Flush ends (wall time) later than the offer: one flush is not enough ...
    checkpoint.offer(None, offered_at + 1, offered_at + 1)
    assert file.read() is None
    # ... a second one, begun after the first ended, is.
    checkpoint.offer(None, offered_at + 2, offered_at + 2)
    assert file.read() == int(T0 * 1000) - 3_600_000  # the unread window
    assert read_checkpoint(tmp_path / "mark.json") == checkpoint.durable_ms


def test_the_checkpoint_with_plain_values() -> None:
    written: list[int] = []
    checkpoint = TradeCheckpoint(on_durable=written.append)
    checkpoint.offer(5_000, None, 10.0)
    checkpoint.offer(6_000, 10.5, 11.0)  # a flush ended after the first offer only
    assert checkpoint.candidates() == [5_000, 6_000] and checkpoint.durable_ms is None
    checkpoint.offer(None, 11.5, 11.5)  # a second flush: the first offer is safe, not the second
    assert checkpoint.durable_ms == 5_000 and written == [5_000]
    checkpoint.hold_back(5_500)  # trades dropped from 5.5 s: the waiting candidate stops there
    assert checkpoint.candidates() == [5_500]
    checkpoint.offer(None, 12.0, 12.0)
    assert written == [5_000, 5_500]
    checkpoint.offer(5_500, 13.0, 13.0)
    checkpoint.offer(None, 14.0, 14.0)
    checkpoint.offer(None, 15.0, 15.0)  # two flushes passed the same mark again
    assert checkpoint.candidates() == [] and written == [5_000, 5_500]  # not written again


def test_the_checkpoint_file_round_trips_and_reads_damage_as_absent(tmp_path: Path) -> None:
    file = CheckpointFile.beside_spool(tmp_path / "spool", "ws-eth")
    assert file.read() is None  # no file: a first run
    file.write(1_234)
    assert file.read() == 1_234
    assert file.path is not None and file.path.name == "ws-eth.trades-complete.json"
    file.path.write_text("not json")
    assert file.read() is None  # unreadable: as if absent (the newest stored trade rules)
    assert CheckpointFile(None).read() is None
