"""Which market-event payloads somebody will receive, so the market builds only those.

The server's `Router` keeps a `Demand` up to date as channels gain their first subscriber or
lose their last one; the market reads it on its hot paths. Demand decides only whether a
payload is BUILT: the market's state (books, quotes, trades, candles, funding, RNG draws) and
its ground truth are the same whoever listens. A market used on its own (unit tests) wants
everything.
"""

from __future__ import annotations

EVERY = "*"  # key of a channel that carries the kind for every instrument

# Kinds whose payloads the market may skip. `trades` (the very dicts REST serves),
# `instrument_state` and `instrument_created` (they change the server's catalog) are always
# emitted.
LAZY_KINDS = ("book", "quote", "ticker", "markprice", "index", "dvol", "perpetual", "chart")


class Demand:
    """Reference counts of (kind, key) pairs with a listener; `everything` wants all."""

    __slots__ = ("everything", "keys")

    def __init__(self, *, everything: bool = False) -> None:
        self.everything = everything
        self.keys: dict[str, dict[str, int]] = {}  # kind -> key (or EVERY) -> channels

    def wants(self, kind: str, key: str) -> bool:
        if self.everything:
            return True
        keys = self.keys.get(kind)
        return keys is not None and (key in keys or EVERY in keys)

    def wanted_keys(self, kind: str) -> dict[str, int] | None:
        """None when every key of `kind` is wanted, else the wanted keys (maybe empty)."""
        if self.everything:
            return None
        keys = self.keys.get(kind)
        if keys is None:
            return {}
        return None if EVERY in keys else keys

    def add(self, kind: str, key: str) -> None:
        keys = self.keys.setdefault(kind, {})
        keys[key] = keys.get(key, 0) + 1

    def remove(self, kind: str, key: str) -> None:
        keys = self.keys.get(kind)
        if keys is None or key not in keys:
            return
        if keys[key] > 1:
            keys[key] -= 1
            return
        del keys[key]
        if not keys:
            del self.keys[kind]


def channel_demand(channel: str) -> tuple[str, str] | None:
    """The (kind, key) of market events a channel carries (see the README's table); None for
    channels the market always feeds (trades, instrument state) or never does."""
    p = channel.split(".")
    head, n = p[0], len(p)
    if head == "quote" and n == 2:
        return "quote", p[1]
    if head in ("book", "ticker", "perpetual") and n >= 3:
        # Grouped books (book.X.group.depth.interval) are derived from `book` events too.
        return head, p[1]
    if head == "incremental_ticker" and n == 2:
        return "ticker", p[1]
    if head == "markprice" and n == 3:
        return "markprice", p[2]
    if head == "deribit_price_index" and n == 2:
        return "index", p[1]
    if head == "deribit_volatility_index" and n == 2:
        return "dvol", p[1]
    if head == "chart" and n == 4:
        return "chart", p[2]
    return None
