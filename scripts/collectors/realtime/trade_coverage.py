"""Which trades are known to be in the database: the stream's coverage. Pure: no I/O; the
clock and the repairer are passed in.

The live trade stream is trusted only from the moment it is seen to flow. A socket that
connects and subscribes but then stays silent (a stall) delivers nothing, and a trades
channel the exchange refused delivers nothing while the other channels of its socket flow,
so the window that a reconnect (or the start of a run) must re-read through REST is not
closed at the connect but at the first frame of the trades channel itself after it: until
then the window stays open, across further reconnects and refusals. While the stream
flows, a silence longer than `silence_s` market seconds (and `SILENCE_WALL_S` wall seconds)
on the trade socket is re-read the same way when data comes back (a stall shorter than the
data watchdog). Sockets are polled every POLL_S wall seconds, not hooked per message: the
hot path stays as it is, and the window end is taken when the poll sees the data, which is
never earlier.

`complete_through_ms()` is the exchange time up to which every trade has been handed to the
writer (the oldest of: the stream's newest trade minus a slack, a window not yet re-read, a
window being re-read); the collector offers it to the trade checkpoint
(`trade_checkpoint.py`), which keeps it across restarts once the database has it.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

from scripts.clock import Clock
from scripts.collectors.realtime.trade_watch import TradeWatch

POLL_S = 0.05  # wall seconds between looks at the trade socket
SILENCE_S = 5.0  # market seconds without notifications (markprice comes every second)
SILENCE_WALL_S = 0.25  # ... and at least this many wall seconds (event-loop hiccups)
SLACK_MS = 1000  # a window starts this far before the newest trade the stream delivered
SLACK_WALL_S = 0.5  # ... and ends this much wall time (as market time) after "now"


class Repairs(Protocol):
    """What coverage needs of the trade repairer (trade_repair.py): queue a window to re-read,
    and say from where trades are still queued or being read."""

    def request_window(
        self,
        start_ms: int,
        end_ms: int,
        reason: str,
        *,
        always_record: bool = False,
        as_of_s: float | None = None,
    ) -> None: ...

    def floor_ms(self) -> int | None: ...


class Socket(Protocol):
    """What coverage needs of the socket that carries the trade channel."""

    connected: bool
    last_data_market_s: float | None


class _Open(NamedTuple):
    start_ms: int | None  # None: nothing to re-read (TRADE_REPAIR_MAX_AGE_S=0, first run)
    reason: str
    connected_at_s: float | None  # market time of the connect; None while disconnected
    begun_at_s: float | None = None  # the run's start window: its age is taken from here


class TradeCoverage:
    """Opens and closes the re-read windows of the trade stream; see the module doc."""

    def __init__(
        self,
        *,
        clock: Clock,
        watch: TradeWatch,
        repairer: Repairs,
        silence_s: float = SILENCE_S,
    ) -> None:
        self.clock = clock
        self.watch = watch
        self.repairer = repairer
        self.silence_s = silence_s
        self.stream_from_ms: int | None = None  # the stream flows (was seen to) since then
        self._open: _Open | None = None
        self._silent_since: float | None = None
        self._silent_from_ms = 0
        self.silences = 0

    # ---- windows ------------------------------------------------------------------------------
    def begin(self, start_ms: int | None, reason: str, at_s: float | None = None) -> None:
        """The run starts (at market time `at_s`, default now): trades from `start_ms` on are
        re-read once the stream flows."""
        self._open = _Open(start_ms, reason, None, self.clock.now() if at_s is None else at_s)

    def disconnected(self, reason: str) -> None:
        """The trade socket went down: what it did not deliver is re-read once data flows.

        The start is taken now: trades of the next session may arrive before its connect is
        reported, and must not move it."""
        if self._open is None:
            start = self.covered_ms() if self.stream_from_ms is not None else None
            self._open = _Open(start, f"websocket down: {reason}", None)
        else:
            self._open = self._open._replace(connected_at_s=None)
        self._silent_since = None

    def connected(self) -> None:
        """The trade socket is up and subscribed: wait for its first notification."""
        if self._open is None:  # (no disconnect was reported)
            self.disconnected("reconnect")
        assert self._open is not None
        self._open = self._open._replace(connected_at_s=self.clock.now())

    def covered_ms(self) -> int:
        """Every trade up to here was delivered by the stream (or was re-read)."""
        newest = self.watch.newest_ms
        base = self.stream_from_ms or self.clock.now_ms()
        return (newest if newest is not None else base) - SLACK_MS

    def _end_ms(self) -> int:
        return self.clock.now_ms() + int(self.clock.speed * SLACK_WALL_S * 1000)

    def lost(self, reason: str) -> None:
        """Something on the stream could not be read: re-read from the covered point."""
        self.repairer.request_window(self.covered_ms(), self._end_ms(), reason)

    def poll(self, socket: Socket | None, last_trades_s: float | None) -> None:
        """Closes the open window once the trades channel flows (`last_trades_s`: market time
        of its last frame); re-reads after a silence of the socket."""
        if socket is None or not socket.connected:
            return
        last = socket.last_data_market_s
        now_s = self.clock.now()
        opened = self._open
        if opened is not None:
            at = opened.connected_at_s
            if at is not None and last_trades_s is not None and last_trades_s >= at:
                self._open = None
                if opened.start_ms is not None:
                    # (the start window's TRADE_REPAIR_MAX_AGE_S counts from the start, not
                    # from when the stream was first seen to flow)
                    self.repairer.request_window(
                        opened.start_ms,
                        self._end_ms(),
                        opened.reason,
                        always_record=True,
                        as_of_s=opened.begun_at_s,
                    )
                self.stream_from_ms = int(now_s * 1000)
            return
        if last is None:
            return
        limit = max(self.silence_s, self.clock.speed * SILENCE_WALL_S)
        if self._silent_since is None:
            if now_s - last > limit:
                self._silent_since = last
                self._silent_from_ms = self.covered_ms()
        elif last > self._silent_since:
            silent = last - self._silent_since
            self._silent_since = None
            self.silences += 1
            reason = f"trade socket silent for {silent:.0f} s"
            self.repairer.request_window(self._silent_from_ms, self._end_ms(), reason)

    # ---- what the checkpoint is offered -----------------------------------------------------
    def complete_through_ms(self) -> int | None:
        """Every trade up to here has been handed to the writer (None: nothing is known)."""
        floors: list[int] = []
        if self._open is not None:
            if self._open.start_ms is not None:
                floors.append(self._open.start_ms)
            if self.stream_from_ms is None:
                return min(floors) if floors else None
        floors.append(self.covered_ms())
        if self._silent_since is not None:  # (data may be back before the poll sees it)
            floors.append(self._silent_from_ms)
        pending = self.repairer.floor_ms()
        if pending is not None:
            floors.append(pending)
        return min(floors)
