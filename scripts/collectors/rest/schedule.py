"""Polls scheduled against fixed deadlines on a `Clock`, not sleeps after the work.

Deadline k of a schedule is `anchor + k * interval` (market time), with the anchor on a
multiple of the interval plus an offset, so a minute poll fires a fixed few seconds after every
minute boundary however long each poll takes. A poll that overruns skips the deadlines it
missed (and says how many): every REST poll here reads from its own cursor, so the next run
catches up on what the skipped ones would have read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Awaitable, Callable

from scripts.clock import Clock

log = logging.getLogger(__name__)


async def sleep_until(clock: Clock, when: float, stop: asyncio.Event) -> bool:
    """Sleeps until market time `when` or until `stop` is set; True if stopped."""
    while not stop.is_set():
        remaining = when - clock.now()
        if remaining <= 0:
            return False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=clock.to_wall_seconds(remaining))
    return True


def first_deadline(now: float, interval_s: float, offset_s: float = 0.0) -> float:
    """The first deadline `k * interval + offset` at or after `now`."""
    k = math.ceil((now - offset_s) / interval_s)
    return k * interval_s + offset_s


class Schedule:
    """Runs `job(deadline)` at every deadline until `stop` is set.

    A failing job is logged and the schedule goes on; `failures` and `skipped` count what went
    wrong. `run_now` fires once at start without waiting for the first deadline.
    """

    def __init__(
        self,
        name: str,
        clock: Clock,
        interval_s: float,
        job: Callable[[float], Awaitable[None]],
        *,
        offset_s: float = 0.0,
        run_now: bool = False,
    ) -> None:
        if interval_s <= 0:
            raise ValueError(f"schedule {name}: interval must be > 0")
        self.name = name
        self.clock = clock
        self.interval_s = interval_s
        self.offset_s = offset_s % interval_s
        self.job = job
        self.run_now = run_now
        self.runs = 0
        self.failures = 0
        self.skipped = 0

    async def _fire(self, deadline: float) -> None:
        try:
            await self.job(deadline)
            self.runs += 1
        except asyncio.CancelledError:
            raise
        except Exception:
            self.failures += 1
            log.exception(
                "%s: poll for deadline %.3f failed; next one as scheduled", self.name, deadline
            )

    async def run(self, stop: asyncio.Event) -> None:
        now = self.clock.now()
        if self.run_now and not stop.is_set():
            await self._fire(now)
        deadline = first_deadline(self.clock.now(), self.interval_s, self.offset_s)
        while not stop.is_set():
            if await sleep_until(self.clock, deadline, stop):
                return
            await self._fire(deadline)
            nxt = deadline + self.interval_s
            now = self.clock.now()
            if nxt <= now:
                missed = math.floor((now - nxt) / self.interval_s) + 1
                self.skipped += missed
                nxt += missed * self.interval_s
                log.debug("%s: overran, skipped %d deadline(s)", self.name, missed)
            deadline = nxt
