"""Several `DeribitWsClient` sockets behind one add/remove-channels interface.

A whole option chain fits one socket in most cases (Deribit documents no channel limit per
connection, shared/docs/deribit-protocol.md §4.2), but a busy socket risks
`connection_too_slow`. The pool opens another socket once `channels_per_connection` is
reached, up to `max_connections`, and never more: a socket is made once per slot and
reconnects in place (the old connection is closed before the next one opens), so a pool
holds at most `max_connections` WebSockets at any moment. Channels beyond the budget are not
subscribed; that is logged loudly and counted in `unassigned`.

The fleet's budget. Deribit allows 32 connections per IP, WebSockets and HTTP requests in
flight together, and every collector behind the host's IP shares them:

    sum over real-time collectors (one per currency) of
        WS_MAX_CONNECTIONS                 sockets of its pool
      + 3                                  HTTP requests at once at most: the chain (instruments),
                                           the trade repairer and the book snapshots, each
                                           sequential
    + the REST collectors' requests in flight (each poller sequential: a few)
    <= 32

With the defaults (WS_MAX_CONNECTIONS=4) three currencies take 3 x (4 + 3) = 21, leaving room
for the REST collectors. tests/integration/test_realtime_chain.py runs three collectors on
one fake exchange (which enforces 32 per IP) with their pools at their cap, through drops.

A channel stays on the socket it was first given to (its position in the subscribe order
does not move on reconnect), and all sockets share one subscribe limiter.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable

from scripts.deribit.ws import DeribitWsClient, WsStats
from scripts.runtime import wait_all

log = logging.getLogger(__name__)


class DeribitWsPool:
    """Channels spread over at most `max_connections` sockets made by `make_client(name)`."""

    def __init__(
        self,
        make_client: Callable[[str], DeribitWsClient],
        *,
        channels_per_connection: int,
        max_connections: int,
    ) -> None:
        if channels_per_connection < 1 or max_connections < 1:
            raise ValueError("channels_per_connection and max_connections must be >= 1")
        self._make_client = make_client
        self.channels_per_connection = channels_per_connection
        self.max_connections = max_connections
        self.clients: list[DeribitWsClient] = []
        self.owner: dict[str, DeribitWsClient] = {}
        self.unassigned: dict[str, None] = {}
        self._load: dict[str, int] = {}  # socket name -> channels given to it
        self._stop: asyncio.Event | None = None
        self._group: asyncio.TaskGroup | None = None
        self._tasks: list[asyncio.Task[None]] = []

    # ---- channels -----------------------------------------------------------------------------
    def add_channels(self, channels: Iterable[str]) -> None:
        per_client: dict[DeribitWsClient, list[str]] = {}
        for ch in channels:
            owner = self.owner.get(ch)
            if owner is not None:  # asked again: the socket retries it if it was refused
                per_client.setdefault(owner, []).append(ch)
                continue
            client = self._client_with_room()
            if client is None:
                if ch not in self.unassigned:
                    self.unassigned[ch] = None
                    log.error(
                        "channel %s not subscribed: %d sockets of %d channels are full "
                        "(raise WS_MAX_CONNECTIONS or WS_CHANNELS_PER_CONNECTION)",
                        ch,
                        self.max_connections,
                        self.channels_per_connection,
                    )
                continue
            self.owner[ch] = client
            self._load[client.name] += 1
            per_client.setdefault(client, []).append(ch)
        for client, chans in per_client.items():
            client.add_channels(chans)

    def remove_channels(self, channels: Iterable[str]) -> None:
        per_client: dict[DeribitWsClient, list[str]] = {}
        for ch in channels:
            self.unassigned.pop(ch, None)
            client = self.owner.pop(ch, None)
            if client is not None:
                self._load[client.name] -= 1
                per_client.setdefault(client, []).append(ch)
        for client, chans in per_client.items():
            client.remove_channels(chans)
        if self.unassigned:  # room was made: place what waits
            waiting = list(self.unassigned)
            self.unassigned.clear()
            self.add_channels(waiting)

    def _client_with_room(self) -> DeribitWsClient | None:
        for client in self.clients:
            if self._load[client.name] < self.channels_per_connection:
                return client
        if len(self.clients) >= self.max_connections:
            return None
        client = self._make_client(f"ws{len(self.clients)}")
        self.clients.append(client)
        self._load[client.name] = 0
        if self._group is not None and self._stop is not None:  # running: start it now
            self._tasks.append(self._group.create_task(client.run(self._stop), name=client.name))
        return client

    @property
    def wanted(self) -> set[str]:
        return set(self.owner)

    @property
    def subscribed(self) -> set[str]:
        out: set[str] = set()
        for client in self.clients:
            out |= client.subscribed
        return out

    def stats(self) -> WsStats:
        """The sum of every socket's counters."""
        total = WsStats()
        for client in self.clients:
            for name, value in vars(client.stats).items():
                setattr(total, name, getattr(total, name) + value)
        return total

    # ---- the loop -----------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Runs every socket (and those opened later) until `stop` is set."""
        self._stop = stop
        try:
            async with asyncio.TaskGroup() as tg:
                self._group = tg
                self._tasks = [tg.create_task(c.run(stop), name=c.name) for c in self.clients]
                await stop.wait()
                self._group = None
                await wait_all(self._tasks, 5.0)  # the sockets close themselves on stop
        finally:
            self._group = None
            self._stop = None
