"""The channels one socket wants, has, and was refused; subscribed in batches (see ws.py).

`Subscriptions.sync(call)` subscribes what is wanted but not acknowledged and unsubscribes
what is acknowledged but no longer wanted, in batches that fit Deribit's 32 kB frame
(`protocol.batch_channels`), each paying its subscribe credits first. A channel the ack leaves
out was refused (Deribit drops unknown channels silently): logged loudly, counted, reported,
and asked for again after `RefusedRetry`'s backoff.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from scripts.deribit.limiter import CreditLimiter
from scripts.deribit.protocol import SUBSCRIBE_CREDITS, batch_channels
from scripts.deribit.ws_retry import RefusedRetry

log = logging.getLogger("scripts.deribit.ws")  # the socket's own log, as before the split

Call = Callable[[str, dict[str, Any]], Awaitable[Any]]
Report = Callable[[list[str]], None]


class Subscriptions:
    """One socket's channel sets; `dirty` is set when a `sync` round is due."""

    def __init__(
        self,
        name: str,
        channels: Iterable[str],
        limiter: CreditLimiter,
        retry: RefusedRetry,
        stats: Any,
    ) -> None:
        self.name = name
        self.limiter = limiter
        self.stats = stats  # WsStats: subscribe_calls, unsubscribe_calls, refused_channels
        self.wanted: dict[str, None] = dict.fromkeys(channels)  # ordered set
        self.acked: set[str] = set()  # acknowledged on the current socket
        self.refused: set[str] = set()  # refused on the current socket, waiting for a retry
        self.was_refused: set[str] = set()  # refused, not acknowledged since (any socket)
        self.dirty = asyncio.Event()
        self.retry = retry

    def add(self, channels: Iterable[str]) -> None:
        added = False
        for ch in channels:
            if ch not in self.wanted:
                self.wanted[ch] = None
                added = True
            elif ch in self.refused:  # asked again (e.g. a listing went live): try again
                self.refused.discard(ch)
                added = True
                self.retry.reset()
        if added:
            self.dirty.set()

    def remove(self, channels: Iterable[str]) -> None:
        removed = False
        for ch in channels:
            if ch in self.wanted:
                del self.wanted[ch]
                removed = True
            self.refused.discard(ch)
            self.was_refused.discard(ch)
        if removed:
            self.dirty.set()

    def session_ended(self) -> None:
        self.acked.clear()
        self.refused.clear()  # (a new socket asks for everything again)
        self.retry.reset()

    def retry_refused(self) -> None:
        """Asks for the refused channels again once their backoff has passed."""
        if self.refused and self.retry.due():
            self.refused.clear()
            self.dirty.set()

    async def sync(self, call: Call, on_accepted: Report, on_refused: Report) -> None:
        """Subscribes wanted-but-unacked channels and unsubscribes acked-but-unwanted ones."""
        self.dirty.clear()
        remove = [ch for ch in self.acked if ch not in self.wanted]
        for batch in batch_channels(remove, method="public/unsubscribe") if remove else []:
            await self.limiter.acquire(SUBSCRIBE_CREDITS.cost)
            self.stats.unsubscribe_calls += 1
            result = await call("public/unsubscribe", {"channels": batch})
            self.acked.difference_update(batch)
            if not isinstance(result, list):
                log.warning("%s: unexpected unsubscribe result %r", self.name, result)
        add = [ch for ch in self.wanted if ch not in self.acked and ch not in self.refused]
        for batch in batch_channels(add) if add else []:
            await self.limiter.acquire(SUBSCRIBE_CREDITS.cost)
            self.stats.subscribe_calls += 1
            result = await call("public/subscribe", {"channels": batch})
            got = set(result) if isinstance(result, list) else set()
            requested = set(batch)
            self.acked.update(got & requested)
            back = [ch for ch in batch if ch in got and ch in self.was_refused]
            if back:
                self.was_refused.difference_update(back)
                log.warning("%s: %d refused channels are subscribed now", self.name, len(back))
                on_accepted(back)
            refused = [ch for ch in batch if ch not in got]
            if refused:
                self.refused.update(refused)
                self.was_refused.update(refused)
                self.stats.refused_channels += len(refused)
                delay = self.retry.refused()
                log.error(
                    "%s: the exchange REFUSED %d of %d channels (not in the ack; asked again "
                    "in %.0f s): %s",
                    self.name,
                    len(refused),
                    len(batch),
                    delay,
                    ", ".join(refused[:20]) + (" ..." if len(refused) > 20 else ""),
                )
                on_refused(refused)
            elif not self.refused:
                self.retry.reset()
            # Channels removed while the call was in flight are unsubscribed next round.
            if any(ch not in self.wanted for ch in got):
                self.dirty.set()
