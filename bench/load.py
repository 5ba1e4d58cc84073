"""Extra quote traffic on top of the fake exchange, at an offered rate the benchmark sets.

The fake's market model costs ~0.15 ms of CPU per market second per option (tickers, books),
so it cannot offer tens of thousands of messages a second on its own. `QuoteBlaster` instead
replays real `quote` payloads the same market model produced (prices walk as on the exchange,
so storage figures stay honest) to every session subscribed to `quote.{instrument}`, with the
timestamp set to the exchange clock at send time. It keeps a session's outgoing queue below
`QUEUE_CAP` frames and its socket buffer below `WRITE_BUFFER_CAP`: frames it holds back
are the backlog, a sign the client is behind.

Runs inside the exchange process (tests/fake_deribit is imported, never from scripts/).
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

TICK_S = 0.004
QUEUE_CAP = 20_000  # frames waiting in one session's queue before we hold back
WRITE_BUFFER_CAP = 1 << 20  # bytes in a socket's write buffer before we hold back
AVG_FRAME_BYTES = 200
TS_SENTINEL = 8_888_888_888_888  # 13 digits, like a millisecond timestamp
TEMPLATES_PER_OPTION = 64  # distinct quotes cycled per option
REFRESH_CHANNELS_S = 0.5


def build_templates(market: Any, seed: int = 1) -> dict[str, list[bytes]]:
    """`quote.{inst}` channel -> notification frames with TS_SENTINEL as the timestamp.

    Each option starts from its top of book in the market model and walks by whole ticks and
    lot sizes, as best bid/ask changes do; generating them through the model itself would
    take ~0.5 ms per quote.
    """
    from tests.fake_deribit import rpc
    from tests.fake_deribit.books import quote_payload

    rng = random.Random(seed)
    out: dict[str, list[bytes]] = {}
    for inst in market.by_name.values():
        if inst.kind != "option" or inst.expired or inst.creation_ms > market.now_ms:
            continue
        q = quote_payload(inst, TS_SENTINEL)
        tick = float(inst.tick) or 0.0001
        lot = float(inst.min_amount) or 0.1
        digits = int(inst.tick_digits) + 1
        channel = f"quote.{inst.name}"
        frames = []
        for _ in range(TEMPLATES_PER_OPTION):
            side = rng.choice(("bid", "ask"))
            if rng.random() < 0.4:  # the price moves; otherwise only the amount does
                step = tick * rng.choice((-1, 1))
                bid = max(tick, q["best_bid_price"] + step)
                ask = max(bid + tick, q["best_ask_price"] + step)
                q["best_bid_price"], q["best_ask_price"] = round(bid, digits), round(ask, digits)
            key = f"best_{side}_amount"
            q[key] = round(max(lot, q[key] + lot * rng.randint(-20, 20)), 1)
            frames.append(rpc.notification(channel, dict(q)))
        out[channel] = frames
    return out


class QuoteBlaster:
    """Sends `rate` quote notifications per wall second, round-robin over subscribed channels."""

    def __init__(self, fake: Any, templates: dict[str, list[bytes]]) -> None:
        self.fake = fake
        self.templates = templates
        self.rate = 0.0
        self.offered = 0  # frames due at `rate`, sent or withheld
        self.sent = 0
        self.direct = 0  # sent straight to the socket (the rest went through the session queue)
        self.withheld = 0
        self._t0 = time.monotonic()
        self._offered_at_t0 = 0
        self._targets: list[tuple[Any, str, list[bytes]]] = []
        self._cursor = 0
        self._round = 0
        self._refreshed = 0.0

    def set_rate(self, rate: float) -> None:
        self.rate = max(0.0, rate)
        self._t0 = time.monotonic()
        self._offered_at_t0 = self.offered

    def queued(self) -> int:
        """Frames waiting to go out to every session (queue + socket buffer / frame size)."""
        total = 0
        for session in self.fake.sessions:
            transport = _transport(session)
            buffered = transport.get_write_buffer_size() if transport is not None else 0
            total += _qsize(session) + buffered // AVG_FRAME_BYTES
        return total

    def subscribed_quote_channels(self) -> list[str]:
        subs = self.fake.router.subscribers
        return sorted(c for c, s in subs.items() if s and c in self.templates)

    def _refresh(self) -> None:
        subs = self.fake.router.subscribers
        targets: list[tuple[Any, str, list[bytes]]] = []
        for channel in sorted(subs):
            frames = self.templates.get(channel)
            if frames:
                targets.extend((session, channel, frames) for session in subs[channel])
        self._targets = targets
        self._refreshed = time.monotonic()

    def tick(self) -> None:
        now = time.monotonic()
        if now - self._refreshed > REFRESH_CHANNELS_S:
            self._refresh()
        due = int(self.rate * (now - self._t0)) - (self.offered - self._offered_at_t0)
        targets = self._targets
        if due <= 0 or not targets:
            return
        room = {s: _room(s) for s in {t[0] for t in targets}}
        can = min(due, max(0, sum(room.values())))
        ts = str(self.fake.clock.now_ms()).encode()
        sentinel = str(TS_SENTINEL).encode()
        out: dict[Any, list[bytes]] = {}
        n = len(targets)
        for _ in range(can):
            session, _channel, frames = targets[self._cursor]
            self._cursor += 1
            if self._cursor >= n:
                self._cursor = 0
                self._round += 1
            if room[session] <= 0 or session.closing:
                continue
            room[session] -= 1
            payload = frames[self._round % len(frames)].replace(sentinel, ts)
            out.setdefault(session, []).append(payload)
        for session, payloads in out.items():
            if _send_many(session, payloads):
                self.direct += len(payloads)
            self.sent += len(payloads)
        # Withheld frames are not owed later: they count as offered, not as a debt.
        self.offered += due
        self.withheld = self.offered - self.sent

    async def run(self) -> None:
        while True:
            self.tick()
            await asyncio.sleep(TICK_S)


def _transport(session: Any) -> Any:
    return getattr(session.request, "transport", None)


def _room(session: Any) -> int:
    """Frames we may still send: the session's queue and the socket buffer have room."""
    transport = _transport(session)
    buffered = transport.get_write_buffer_size() if transport is not None else 0
    return min(QUEUE_CAP - _qsize(session), (WRITE_BUFFER_CAP - buffered) // AVG_FRAME_BYTES)


def ws_frame(payload: bytes) -> bytes:
    """One unmasked, unfragmented, uncompressed text frame (server to client, RFC 6455 5.2)."""
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 65536:
        return b"\x81\x7e" + n.to_bytes(2, "big") + payload
    return b"\x81\x7f" + n.to_bytes(8, "big") + payload


def _send_many(session: Any, payloads: list[bytes]) -> bool:
    """Writes the frames to the socket in one call when nothing else is queued before them
    (aiohttp writes each of its frames whole, so ours land between frames); otherwise
    queues them behind the session's frames. ~1 us a frame instead of ~50 through aiohttp.
    True when written directly (queued frames are counted by the server as it sends them)."""
    transport = _transport(session)
    if _qsize(session) == 0 and transport is not None and not transport.is_closing():
        transport.write(b"".join(ws_frame(p) for p in payloads))
        return True
    for payload in payloads:
        session.send(payload)
    return False


def _qsize(session: Any) -> int:
    # The fake has no public queue depth yet; its sessions keep an asyncio.Queue.
    queue = getattr(session, "_queue", None)
    return queue.qsize() if queue is not None else 0
