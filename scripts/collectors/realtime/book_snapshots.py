"""Order book depth by REST: `get_order_book(depth=ORDERBOOK_DEPTH)` for each followed option
once every ORDERBOOK_SNAPSHOT_INTERVAL_S, into `{cur}_option_orderbook_depth`.

A snapshot by REST needs no `prev_change_id` chain (nothing to break, nothing to resync) and
costs one request per option per interval, a small share of the REST credits at the default
300 s; a book stream would carry every change of the chain to keep a state read once per
interval (see collector.py). Each snapshot is the exchange's book with its
`change_id`, so a book change lost on some stream cannot make a stored one wrong.

The row's `timestamp` is the reply's `usOut`: the exchange time the book was read, when it was
in the stored state. The result's own `timestamp` is the time of the book's last change
(protocol notes §6.5, §13.2: the recorded replies are stamped before their `usIn`), the same
for every poll of a book that did not change; keyed on it, such a book would keep only its
first row (`{cur}_option_orderbook_depth` is unique on instrument and timestamp). Without a
`usOut`, the later of the book's time and the request's time is used.

The calls of one round are spread evenly over the interval, not fired in a burst, so the
trade repairer always finds credits; the shared limiter keeps the total within budget
either way. An option that expired meanwhile answers an error that is logged once and skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from scripts.clock import Clock, utc_from_ms, utc_from_s
from scripts.collectors.rejects import Rejects
from scripts.currencies import CurrencySpec
from scripts.deribit.rest import DeribitRestClient, DeribitRestError
from scripts.logs import OncePerKey
from scripts.normalize.books import parse_order_book
from scripts.normalize.common import MalformedMessage
from scripts.storage.tables import OPTION_ORDERBOOK_DEPTH
from scripts.storage.writer import BatchWriter

log = logging.getLogger(__name__)


class BookSnapshotter:
    """Snapshots the books of `instruments()` every `interval_s` (market time)."""

    def __init__(
        self,
        spec: CurrencySpec,
        *,
        rest: DeribitRestClient,
        writer: BatchWriter,
        clock: Clock,
        rejects: Rejects,
        instruments: Callable[[], list[str]],
        interval_s: float,
        depth: int,
    ) -> None:
        self.spec = spec
        self.rest = rest
        self.writer = writer
        self.clock = clock
        self.rejects = rejects
        self.instruments = instruments
        self.interval_s = interval_s
        self.depth = depth
        self.snapshots = 0
        self.failures = 0
        self.rounds = 0
        self._once = OncePerKey(log)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            start = self.clock.now()
            names = sorted(self.instruments())
            step = self.interval_s / max(1, len(names))
            for i, name in enumerate(names):
                if not await self._sleep_until(start + i * step, stop):
                    return
                if name in self.instruments():
                    await self.snapshot(name)
            self.rounds += 1
            if not await self._sleep_until(start + self.interval_s, stop):
                return

    async def _sleep_until(self, market_t: float, stop: asyncio.Event) -> bool:
        """False when `stop` was set first."""
        wall = self.clock.to_wall_seconds(market_t - self.clock.now())
        if wall > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wall)
        return not stop.is_set()

    async def snapshot(self, name: str) -> None:
        asked_ms = self.clock.now_ms()
        try:
            reply = await self.rest.call_envelope(
                "get_order_book", instrument_name=name, depth=self.depth
            )
        except DeribitRestError as exc:
            self.failures += 1
            self._once.warning(f"book:{exc.code}", "get_order_book(%s) failed: %s", name, exc)
            return
        received_at = self.clock.utc_now()
        result = reply.get("result")
        try:
            row = parse_order_book(result, received_at=received_at, depth=self.depth)
        except MalformedMessage as exc:
            self.rejects.rejected("public/get_order_book", exc.reason, result, received_at)
            return
        us_out = reply.get("usOut")
        if type(us_out) is int and us_out > 0:
            read_at = utc_from_s(us_out / 1_000_000)
        else:
            read_at = max(row.timestamp, utc_from_ms(asked_ms))
        row = row._replace(timestamp=read_at)
        self.writer.add(OPTION_ORDERBOOK_DEPTH, self.spec.code, row)
        self.snapshots += 1
