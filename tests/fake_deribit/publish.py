"""Market events → notification frames for the sessions that listen.

Each frame is serialised once per (channel, event) and queued to every subscriber. Data
faults (stall, skipped book changes, malformed frames) are applied here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from tests.fake_deribit import rpc
from tests.fake_deribit.faults import malformed_frame
from tests.fake_deribit.routing import Router

if TYPE_CHECKING:
    from tests.fake_deribit.server import FakeDeribit
    from tests.fake_deribit.session import WsSession

_GONE_STATES = frozenset({"closed", "settled", "deactivated", "terminated"})
_ALWAYS_IN_CHANGE = ("instrument_name", "timestamp")


def ticker_change(prev: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """An `incremental_ticker` change: the fields that changed, nested objects partial."""
    out: dict[str, Any] = {"type": "change"}
    for key, value in new.items():
        old = prev.get(key)
        if isinstance(value, dict) and isinstance(old, dict):
            sub = {k: v for k, v in value.items() if old.get(k) != v or k not in old}
            if sub:
                out[key] = sub
        elif key in _ALWAYS_IN_CHANGE or key not in prev or old != value:
            out[key] = value
    return out


def grouped_window(
    bids: Iterable[tuple[float, float]],
    asks: Iterable[tuple[float, float]],
    group: str,
    depth: int,
    eth_like: bool,
) -> tuple[list[list[float]], list[list[float]]]:
    """The top `depth` levels per side, prices grouped to `group` (ETH: group / 100)."""
    if group == "none":
        b = sorted(bids, key=lambda lv: -lv[0])[:depth]
        a = sorted(asks, key=lambda lv: lv[0])[:depth]
        return [[p, q] for p, q in b], [[p, q] for p, q in a]
    step = float(group) / 100.0 if eth_like else float(group)
    return _group_side(bids, step, down=True, depth=depth), _group_side(
        asks, step, down=False, depth=depth
    )


def _group_side(
    levels: Iterable[tuple[float, float]], step: float, *, down: bool, depth: int
) -> list[list[float]]:
    buckets: dict[int, float] = {}
    for price, amount in levels:
        ratio = price / step
        n = int(ratio // 1) if down else -int((-ratio) // 1)
        buckets[n] = buckets.get(n, 0.0) + amount
    keys = sorted(buckets, reverse=down)[:depth]
    return [[round(k * step, 10), buckets[k]] for k in keys]


class Publisher:
    """Routes market events to subscribed sessions (see the README's channel table)."""

    def __init__(self, server: FakeDeribit, router: Router) -> None:
        self.server = server
        self.router = router
        self.last_ticker: dict[str, dict[str, Any]] = {}
        # The last quote sent per option: a (re)subscribe gets it again at once, stamped with
        # its own time, as Deribit sends the current state (deribit-protocol.md section 13).
        self.last_quote: dict[str, Any] = {}
        self.incremental_pending: dict[str, set[WsSession]] = {}
        self._touched_books: set[str] = set()

    def publish(self, kind: str, key: str, data: Any) -> None:
        server = self.server
        catalog = self.router.catalog
        if kind == "instrument_created":
            catalog.add_instrument(data)
            self.router.forget(key)
        elif kind in ("index", "dvol"):
            (catalog.indices if kind == "index" else catalog.dvol_indices).add(key)
        elif kind == "ticker":
            self._incremental_ticker(key, data)
        elif kind == "quote":
            self.last_quote[key] = data
        if kind == "instrument_state" and isinstance(data, dict):
            self._fanout(self.router.targets(kind, key), data)
            if data.get("state") in _GONE_STATES:
                catalog.remove_instrument(key)
            return
        if kind == "trades" and data:
            off = server.faults.take_future_trade(key)
            if off is not None:  # the wire only: the market and REST keep the true time
                data = [{**data[0], "timestamp": data[0]["timestamp"] + off}, *data[1:]]
                server.stats.future_trades_sent += 1
        if kind == "book":
            if data.get("type") == "change" and server.faults.take_book_skip(key):
                server.stats.book_changes_skipped += 1
                return
            if key in self.router.grouped:
                self._touched_books.add(key)
        self._fanout(self.router.targets(kind, key), data)

    def _fanout(self, channels: Iterable[str], data: Any) -> None:
        if self.server.faults.stall:
            return
        subscribers = self.router.subscribers
        for channel in channels:
            subs = subscribers.get(channel)
            if subs:
                self.send_to(subs, channel, data)

    def send_to(self, sessions: Iterable[WsSession], channel: str, data: Any) -> None:
        """Serialise once, queue to each session; a malformed roll replaces the frame."""
        bad = self.server.faults.roll_malformed()
        if bad is None:
            frame = rpc.notification(channel, data)
        else:
            frame = malformed_frame(bad, channel, data)
            self.server.stats.malformed_sent[bad] += 1
        for session in list(sessions):
            session.send_notification(channel, frame, data, bad)

    # -- derived channels ------------------------------------------------------------------
    def _incremental_ticker(self, inst: str, data: dict[str, Any]) -> None:
        prev = self.last_ticker.get(inst)
        self.last_ticker[inst] = data
        channel = f"incremental_ticker.{inst}"
        subs = self.router.subscribers.get(channel)
        if not subs or self.server.faults.stall:
            return
        pending = self.incremental_pending.pop(inst, set())
        fresh = [s for s in subs if s in pending or prev is None]
        rest = [s for s in subs if not (s in pending or prev is None)]
        if fresh:
            self.send_to(fresh, channel, {**data, "type": "snapshot"})
        if rest and prev is not None:
            self.send_to(rest, channel, ticker_change(prev, data))

    def incremental_snapshot(self, session: WsSession, inst: str) -> None:
        """First frame of `incremental_ticker.{inst}` for a new subscriber."""
        last = self.last_ticker.get(inst)
        market = self.server.market
        if last is not None and market is not None and last["timestamp"] + 1000 <= market.now_ms:
            # Nobody listened since, so no ticker was built: wait for the next, fresh one.
            del self.last_ticker[inst]
            last = None
        if last is None:
            self.incremental_pending.setdefault(inst, set()).add(session)
        else:
            self.send_to([session], f"incremental_ticker.{inst}", {**last, "type": "snapshot"})

    def grouped_frame(self, channel: str) -> dict[str, Any] | None:
        """The current window for a `book.{inst}.{group}.{depth}.{interval}` channel."""
        market = self.server.market
        if market is None:
            return None
        _, inst, group, depth, _ = channel.split(".")
        instrument = market.instrument(inst)
        if instrument is None:
            return None
        bids, asks, change_id = market.book_state(inst)
        gbids, gasks = grouped_window(
            bids, asks, group, int(depth), eth_like=inst.startswith("ETH")
        )
        return {
            "timestamp": instrument.book_ts,
            "instrument_name": inst,
            "change_id": change_id,
            "bids": gbids,
            "asks": gasks,
        }

    def end_batch(self) -> None:
        """Send grouped-book windows once per batch: the market's state is after the batch."""
        touched, self._touched_books = self._touched_books, set()
        if self.server.faults.stall:
            return
        for inst in touched:
            for channel in list(self.router.grouped.get(inst, ())):
                subs = self.router.subscribers.get(channel)
                if not subs:
                    continue
                frame = self.grouped_frame(channel)
                if frame is not None:
                    self.send_to(subs, channel, frame)
