"""The live option set of one currency: discovery, listings, expiries, reconciliation.

- Start: `public/get_instruments(currency=api_currency, kind=option)`, filtered on
  `base_currency` for the USDC-linear book, upserted into `instruments`. All of them are
  followed, or the top `TOP_N_INSTRUMENTS` by open interest (`get_book_summary_by_currency`).
- Listings: an `instrument.state` `created`/`started` (or an `instrument.creation` message)
  for an unknown option subscribes it at once; its full row is fetched with
  `get_instrument` when the push did not carry it.
- Expiries: `settled`, `closed`, `deactivated`, `terminated`, or the expiration time passing,
  unsubscribes the option and marks it inactive in `instruments`.
- Reconciliation: a `get_instruments` every INSTRUMENT_RECONCILE_INTERVAL_S catches whatever a
  missed push left behind; it draws from the stricter get_instruments credits (1 per 10 s,
  burst 5, `LimiterSet.get_instruments`). `reconcile_soon()` brings it forward: the collector
  calls it when the socket carrying `instrument.state` reconnects (pushes sent while it was
  down are lost), so a listing missed that way is followed right after the reconnect, and the
  interval is the bound for a push lost any other way.
- TOP_N_INSTRUMENTS=N (N > 0): exactly the N live options with the largest open interest are
  followed (ties by name), never more. A listing push does not subscribe the new option (it
  has no open interest yet; following it would exceed N); its `instruments` row is stored and
  it competes at every reconciliation like any other. An expiry brings the next
  reconciliation forward, so the set is refilled to N at once. The set is re-ranked only at
  reconciliations: between them it is the top N of the last ranking.

`on_listed(names)` / `on_delisted(names)` tell the collector which channels to add or drop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from scripts.clock import Clock, ms_from_utc
from scripts.collectors.rejects import Rejects
from scripts.currencies import CurrencySpec
from scripts.deribit.rest import DeribitRestClient, DeribitRestError
from scripts.models import InstrumentRow
from scripts.normalize.common import MalformedMessage
from scripts.normalize.instruments import InstrumentState, parse_instrument
from scripts.storage.tables import INSTRUMENTS
from scripts.storage.writer import BatchWriter

log = logging.getLogger(__name__)

LIVE_STATES = frozenset({"created", "started"})
GONE_STATES = frozenset({"settled", "closed", "deactivated", "terminated"})
EXPIRY_CHECK_S = 1.0  # market seconds between checks of expiration times
LEFT_TOP = "left the top by open interest"
NOT_LISTED = "no longer in get_instruments"


class OptionChain:
    """Which options of a currency the collector follows; see the module doc."""

    def __init__(
        self,
        spec: CurrencySpec,
        *,
        rest: DeribitRestClient,
        writer: BatchWriter,
        clock: Clock,
        rejects: Rejects,
        top_n: int,
        reconcile_interval_s: float,
        on_listed: Callable[[list[str]], None],
        on_delisted: Callable[[list[str]], None],
    ) -> None:
        self.spec = spec
        self.rest = rest
        self.writer = writer
        self.clock = clock
        self.rejects = rejects
        self.top_n = top_n
        self.reconcile_interval_s = reconcile_interval_s
        self.on_listed = on_listed
        self.on_delisted = on_delisted
        self.live: dict[str, InstrumentRow | None] = {}  # None: listed, row not fetched yet
        self.gone: set[str] = set()
        self.listed_at: dict[str, float] = {}  # market time each option was first followed
        self.latest_expiry_ms: int | None = None  # the newest expiry of a dropped option
        self._to_fetch: set[str] = set()
        self._wake = asyncio.Event()
        self._reconcile_due = False
        self.reconciles = 0

    def _now_dt(self) -> datetime:
        return self.clock.utc_now()

    def _ours(self, name: str) -> bool:
        return name.startswith(self.spec.instrument_prefix)

    # ---- discovery ----------------------------------------------------------------------------
    async def fetch_all(self) -> dict[str, InstrumentRow]:
        """The exchange's live options of this currency, as rows (rejects counted)."""
        raw = await self.rest.get_instruments(self.spec.api_currency, kind="option")
        now = self._now_dt()
        rows: dict[str, InstrumentRow] = {}
        for item in raw:
            try:
                row = parse_instrument(item, currency=self.spec.code, seen_at=now)
            except MalformedMessage as exc:
                self.rejects.rejected("public/get_instruments", exc.reason, item, now)
                continue
            if self.spec.linear and row.base_currency not in (None, self.spec.base_currency):
                continue
            if self._ours(row.instrument_name) and row.kind == "option" and row.is_active:
                rows[row.instrument_name] = row
        return rows

    async def load(self) -> list[str]:
        """Discovers the chain at start; returns the names to follow."""
        rows = await self.fetch_all()
        self.writer.add_many(INSTRUMENTS, None, rows.values())
        names = list(rows)
        if self.top_n > 0:
            names = await self._top_by_open_interest(names)
        now = self.clock.now()
        for name in names:
            self.live[name] = rows[name]
            self.listed_at[name] = now
        log.info("%s: following %d of %d live options", self.spec.code, len(names), len(rows))
        return names

    async def _top_by_open_interest(self, names: list[str]) -> list[str]:
        summary = await self.rest.get_book_summary_by_currency(self.spec.api_currency, "option")
        oi: dict[str, float] = {}
        for s in summary:
            if isinstance(s, dict) and isinstance(s.get("open_interest"), int | float):
                oi[str(s.get("instrument_name"))] = float(s["open_interest"])
        return sorted(names, key=lambda n: (-oi.get(n, 0.0), n))[: self.top_n]

    # ---- pushes -------------------------------------------------------------------------------
    def on_state(self, state: InstrumentState) -> None:
        name = state.instrument_name
        if not self._ours(name):
            return
        if state.state in LIVE_STATES:
            if name not in self.live and name not in self.gone and self.top_n == 0:
                self._list({name: None})
                self._to_fetch.add(name)
                self._wake.set()
        elif state.state in GONE_STATES:
            self._delist([name], f"instrument.state {state.state}")

    def on_created(self, row: InstrumentRow) -> None:
        name = row.instrument_name
        if not self._ours(name) or name in self.gone:
            return
        self.writer.add(INSTRUMENTS, None, row)
        self._to_fetch.discard(name)
        if name in self.live:
            self.live[name] = row
        elif self.top_n == 0:
            self._list({name: row})

    def _list(self, rows: dict[str, InstrumentRow | None]) -> None:
        now = self.clock.now()
        for name, row in rows.items():
            self.live[name] = row
            self.listed_at.setdefault(name, now)
        log.info("%s: listed %s", self.spec.code, ", ".join(rows))
        self.on_listed(list(rows))

    def _delist(self, names: list[str], why: str) -> None:
        gone = [n for n in names if n in self.live]
        self.gone.update(names)
        if not gone:
            return
        now = self._now_dt()
        for name in gone:
            self.listed_at.pop(name, None)
            row = self.live.pop(name)
            expiry = row.expiration_timestamp if row is not None else None
            if expiry is not None and expiry <= now:
                ms = ms_from_utc(expiry)
                self.latest_expiry_ms = max(ms, self.latest_expiry_ms or ms)
            if row is not None:
                self.writer.add(INSTRUMENTS, None, row._replace(is_active=False, last_seen=now))
        log.info("%s: dropped %s (%s)", self.spec.code, ", ".join(gone), why)
        self.on_delisted(gone)
        if self.top_n > 0 and why not in (LEFT_TOP, NOT_LISTED):  # (those come from one)
            self.reconcile_soon()  # refill the top N

    def forget(self, names: list[str]) -> None:
        """Forgets options that expired (their names are never listed again)."""
        self.gone.difference_update(names)
        for name in names:
            self.listed_at.pop(name, None)

    def reconcile_soon(self) -> None:
        """Reconcile at the next turn of the loop (still within the get_instruments credits)."""
        self._reconcile_due = True
        self._wake.set()

    # ---- the loop -----------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Fetches rows of new listings, drops expired options, reconciles periodically."""
        next_reconcile = self.clock.now() + self.reconcile_interval_s
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._wake.wait(), self.clock.to_wall_seconds(EXPIRY_CHECK_S)
                )
            if stop.is_set():
                break
            self._wake.clear()
            self._drop_expired()
            await self._fetch_new()
            if self._reconcile_due or self.clock.now() >= next_reconcile:
                self._reconcile_due = False
                next_reconcile = self.clock.now() + self.reconcile_interval_s
                await self.reconcile()

    def _drop_expired(self) -> None:
        now = self._now_dt()
        expired = [
            name
            for name, row in self.live.items()
            if row is not None
            and row.expiration_timestamp is not None
            and row.expiration_timestamp <= now
        ]
        if expired:
            self._delist(expired, "expiration time passed")

    async def _fetch_new(self) -> None:
        for name in sorted(self._to_fetch):
            self._to_fetch.discard(name)
            if name not in self.live or self.live[name] is not None:
                continue
            try:
                item: Any = await self.rest.call("get_instrument", instrument_name=name)
                row = parse_instrument(item, currency=self.spec.code, seen_at=self._now_dt())
            except DeribitRestError as exc:
                log.warning("%s: get_instrument(%s) failed: %s", self.spec.code, name, exc)
                continue
            except MalformedMessage as exc:
                self.rejects.rejected("public/get_instrument", exc.reason, item, self._now_dt())
                continue
            if name in self.live:
                self.live[name] = row
                self.writer.add(INSTRUMENTS, None, row)

    async def reconcile(self) -> None:
        """Aligns the followed set with `get_instruments` (missed pushes)."""
        self.reconciles += 1
        try:
            rows = await self.fetch_all()
        except DeribitRestError as exc:
            log.warning("%s: reconcile failed: %s", self.spec.code, exc)
            return
        self.writer.add_many(INSTRUMENTS, None, rows.values())
        stale = [n for n in self.live if n not in rows]
        if stale:
            self._delist(stale, NOT_LISTED)
        for name, row in rows.items():
            if name in self.live:
                self.live[name] = row
        if self.top_n > 0:
            wanted = set(await self._top_by_open_interest(list(rows)))
            drop = [n for n in self.live if n not in wanted]
            if drop:
                self._delist(drop, LEFT_TOP)
                self.gone.difference_update(drop)  # may come back
            new = {n: rows[n] for n in wanted if n not in self.live}
        else:
            new = {n: r for n, r in rows.items() if n not in self.live and n not in self.gone}
        if new:
            self._list(dict(new))
