"""Channel names: which ones are valid, which channels carry a market event, who listens.

Pure bookkeeping, no I/O: the server asks `Catalog.check(channel)` when a client subscribes
and `Router.targets(event)` for every market event. See shared/docs/deribit-protocol.md §6.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Iterable
from typing import Any

from tests.fake_deribit.demand import Demand, channel_demand

INTERVALS = ("raw", "100ms", "agg2")
GROUPED_INTERVALS = ("100ms", "agg2")
BOOK_GROUPS = ("none", "1", "2", "5", "10", "25", "100", "250")
BOOK_DEPTHS = ("1", "10", "20")
CHART_RESOLUTIONS = ("1",)  # the market produces 1-minute candles only
TRADE_KINDS = ("future", "option", "spot", "future_combo", "option_combo", "any")
CHANNEL_CURRENCIES = ("BTC", "ETH", "USDC", "USDT", "EURR", "any")
STATE_KINDS = ("future", "option", "spot", "future_combo", "option_combo", "combo", "any")
QUIET_CHANNELS = ("platform_state", "platform_state.public_methods_state", "announcements")

OK = "ok"
INVALID = "invalid"
RAW_UNAUTHORIZED = "raw_unauthorized"

_INSTRUMENT_RE = re.compile(r"^[A-Z0-9]+(_[A-Z0-9]+)?(-[A-Za-z0-9_]+)*$")
_INDEX_RE = re.compile(r"^[a-z0-9]+_[a-z0-9]+$")


def kind_from_name(name: str) -> str:
    """Deribit's `kind` of an instrument, from its name alone (§5.1)."""
    parts = name.split("-")
    if len(parts) == 1:
        return "spot"
    if len(parts) >= 2 and parts[1] == "FS":
        return "future_combo"
    if len(parts) == 4 and parts[3] in ("C", "P"):
        return "option"
    if len(parts) == 2:
        return "future"
    return "option_combo"


def currency_from_name(name: str) -> str:
    """The `currency` of channels like `trades.{kind}.{currency}`: USDC for linear books."""
    head = name.split("-", 1)[0]
    if "_" in head:
        return head.split("_", 1)[1]
    return head


class Catalog:
    """What exists: instruments (name → kind, channel currency) and index names.

    `permissive` (replay mode) accepts any well-formed instrument or index name.
    """

    def __init__(self, *, permissive: bool = False) -> None:
        self.permissive = permissive
        self.instruments: dict[str, tuple[str, str]] = {}
        self.indices: set[str] = set()
        self.dvol_indices: set[str] = set()
        self.option_indices: set[str] = set()
        self.extra_channels: set[str] = set()  # accepted as they are (replay: recorded ones)

    def add_instrument(self, inst: dict[str, Any]) -> None:
        name = inst["instrument_name"]
        kind = inst.get("kind") or kind_from_name(name)
        currency = inst.get("settlement_currency") or currency_from_name(name)
        if kind == "spot":
            currency = inst.get("quote_currency") or currency
        self.instruments[name] = (kind, currency)
        index = inst.get("price_index")
        if index:
            self.indices.add(index)
            if kind == "option":
                self.option_indices.add(index)

    def remove_instrument(self, name: str) -> None:
        self.instruments.pop(name, None)

    def kind_and_currency(self, name: str) -> tuple[str, str]:
        known = self.instruments.get(name)
        return known if known is not None else (kind_from_name(name), currency_from_name(name))

    def has_instrument(self, name: str) -> bool:
        if name in self.instruments:
            return True
        return self.permissive and bool(_INSTRUMENT_RE.match(name))

    def _has_index(self, name: str, pool: set[str]) -> bool:
        return name in pool or (self.permissive and bool(_INDEX_RE.match(name)))

    def check(self, channel: str, *, authorized: bool) -> str:
        """OK, INVALID, or RAW_UNAUTHORIZED for a `.raw` channel on an unauthorized session."""
        if channel not in self.extra_channels and not _well_formed(self, channel):
            return INVALID
        if channel.endswith(".raw") and not authorized:
            return RAW_UNAUTHORIZED
        return OK


def _well_formed(cat: Catalog, channel: str) -> bool:
    if channel in QUIET_CHANNELS:
        return True
    p = channel.split(".")
    head, n = p[0], len(p)
    if head in ("quote", "incremental_ticker"):
        return n == 2 and cat.has_instrument(p[1])
    if head in ("ticker", "perpetual"):
        return n == 3 and p[2] in INTERVALS and cat.has_instrument(p[1])
    if head == "trades":
        if n == 3:
            return p[2] in INTERVALS and cat.has_instrument(p[1])
        return n == 4 and p[1] in TRADE_KINDS and p[2] in CHANNEL_CURRENCIES and p[3] in INTERVALS
    if head == "book":
        if n == 3:
            return p[2] in INTERVALS and cat.has_instrument(p[1])
        return (
            n == 5
            and p[2] in BOOK_GROUPS
            and p[3] in BOOK_DEPTHS
            and p[4] in GROUPED_INTERVALS
            and cat.has_instrument(p[1])
        )
    if head == "chart":
        return (
            n == 4 and p[1] == "trades" and p[3] in CHART_RESOLUTIONS and cat.has_instrument(p[2])
        )
    if head == "markprice":
        return n == 3 and p[1] == "options" and cat._has_index(p[2], cat.option_indices)
    if head == "deribit_price_index":
        return n == 2 and cat._has_index(p[1], cat.indices)
    if head == "deribit_volatility_index":
        return n == 2 and cat._has_index(p[1], cat.dvol_indices)
    if head == "instrument":
        return (
            n == 4
            and p[1] in ("state", "creation")
            and p[2] in STATE_KINDS
            and p[3] in CHANNEL_CURRENCIES
        )
    return False


def _kind_currency_variants(prefix: str, kind: str, currency: str, suffix: str) -> list[str]:
    tail = f".{suffix}" if suffix else ""
    return [
        f"{prefix}.{k}.{c}{tail}" for k in dict.fromkeys((kind, "any")) for c in (currency, "any")
    ]


class Router:
    """channel → the sessions subscribed to it, and market event → its channels (cached).

    `demand` follows the channels that have subscribers; the server hands it to the market,
    which then builds only payloads somebody receives."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.demand = Demand()
        self.subscribers: dict[str, set[Any]] = {}  # channel → sessions
        self.grouped: dict[str, set[str]] = {}  # instrument → subscribed grouped book channels
        self._targets: dict[tuple[str, str], tuple[str, ...]] = {}

    def add(self, session: Hashable, channel: str) -> bool:
        """Subscribe; False if the session already had the channel."""
        subs = self.subscribers.setdefault(channel, set())
        if session in subs:
            return False
        if not subs:
            wanted = channel_demand(channel)
            if wanted is not None:
                self.demand.add(*wanted)
        subs.add(session)
        p = channel.split(".")
        if p[0] == "book" and len(p) == 5:
            self.grouped.setdefault(p[1], set()).add(channel)
        return True

    def remove(self, session: Hashable, channel: str) -> bool:
        subs = self.subscribers.get(channel)
        if subs is None or session not in subs:
            return False
        subs.discard(session)
        if not subs:
            del self.subscribers[channel]
            wanted = channel_demand(channel)
            if wanted is not None:
                self.demand.remove(*wanted)
            p = channel.split(".")
            if p[0] == "book" and len(p) == 5:
                grouped = self.grouped.get(p[1])
                if grouped is not None:
                    grouped.discard(channel)
                    if not grouped:
                        del self.grouped[p[1]]
        return True

    def remove_all(self, session: Hashable, channels: Iterable[str]) -> None:
        for channel in list(channels):
            self.remove(session, channel)

    def targets(self, kind: str, key: str) -> tuple[str, ...]:
        """Every channel name that carries events of `kind` about `key` (see the README)."""
        cache_key = (kind, key)
        found = self._targets.get(cache_key)
        if found is None:
            found = tuple(self._compute_targets(kind, key))
            self._targets[cache_key] = found
        return found

    def forget(self, key: str) -> None:
        """Drop cached targets of `key` (its kind or currency may have become known)."""
        for cache_key in [k for k in self._targets if k[1] == key]:
            del self._targets[cache_key]

    def _compute_targets(self, kind: str, key: str) -> list[str]:
        if kind == "quote":
            return [f"quote.{key}"]
        if kind == "trades":
            ikind, cur = self.catalog.kind_and_currency(key)
            out = [f"trades.{key}.{iv}" for iv in INTERVALS]
            for iv in INTERVALS:
                out += _kind_currency_variants("trades", ikind, cur, iv)
            return out
        if kind == "book":
            return [f"book.{key}.{iv}" for iv in INTERVALS]
        if kind == "ticker":
            return [f"ticker.{key}.{iv}" for iv in INTERVALS]
        if kind == "markprice":
            return [f"markprice.options.{key}"]
        if kind == "index":
            return [f"deribit_price_index.{key}"]
        if kind == "dvol":
            return [f"deribit_volatility_index.{key}"]
        if kind == "perpetual":
            return [f"perpetual.{key}.{iv}" for iv in INTERVALS]
        if kind == "chart":
            return [f"chart.trades.{key}.1"]
        if kind == "instrument_state":
            ikind, cur = self.catalog.kind_and_currency(key)
            return _kind_currency_variants("instrument.state", ikind, cur, "")
        if kind == "instrument_created":
            ikind, cur = self.catalog.kind_and_currency(key)
            return _kind_currency_variants("instrument.creation", ikind, cur, "")
        return []
