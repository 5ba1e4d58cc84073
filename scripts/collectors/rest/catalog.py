"""The instruments a REST poller works on, per currency, read with `public/get_instruments`.

One call per currency (all kinds at once, `currency=USDC` filtered by `base_currency` for the
linear ones, §5.2) refreshes the lists and upserts `instruments`. The REST pollers read the
perpetuals, dated futures and live options from here.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from scripts.clock import Clock
from scripts.currencies import CurrencySpec
from scripts.deribit.rest import DeribitRestClient, DeribitRestError
from scripts.logs import OncePerKey
from scripts.models import InstrumentRow
from scripts.normalize.common import MalformedMessage
from scripts.normalize.instruments import parse_instrument
from scripts.storage.tables import INSTRUMENTS, TableSpec

log = logging.getLogger(__name__)

T = TypeVar("T")


class RowSink(Protocol):
    """What the pollers need of the writer (`scripts.storage.writer.BatchWriter`)."""

    def add(self, spec: TableSpec, currency: str | None, row: Any) -> Any: ...


class CurrencyPoller:
    """What the pollers that read one REST series per currency into a sink share: their
    parts, their counters, and how a failed read is skipped until the next poll."""

    def __init__(
        self,
        rest: DeribitRestClient,
        sink: RowSink,
        pool: AsyncConnectionPool[AsyncConnection[Any]],
        clock: Clock,
        currencies: tuple[CurrencySpec, ...],
        *,
        logger: logging.Logger,
    ) -> None:
        self.rest = rest
        self.sink = sink
        self.pool = pool
        self.clock = clock
        self.currencies = currencies
        self.rows_written = 0
        self.rejected = 0
        self._once = OncePerKey(logger)

    async def _read(self, read: Awaitable[T], what: str, subject: str) -> T | None:
        """`await read`, or None when it fails: a REST error or a malformed reply is logged
        ("`what` `subject`: ...") once per kind of failure, keyed by `what` in lower case, and
        a malformed reply is counted in `rejected`."""
        key = what.lower()
        try:
            return await read
        except DeribitRestError as exc:
            self._once.warning(f"{key}:{exc.code}", "%s %s: %s", what, subject, exc)
        except MalformedMessage as exc:
            self.rejected += 1
            self._once.warning(f"{key}-bad", "%s %s: bad reply: %s", what, subject, exc)
        return None


def is_perpetual(row: InstrumentRow) -> bool:
    return row.settlement_period == "perpetual" or row.instrument_name.endswith("-PERPETUAL")


@dataclass
class CurrencyInstruments:
    """One currency's perpetuals, dated futures and options, by name."""

    spec: CurrencySpec
    perpetuals: dict[str, InstrumentRow] = field(default_factory=dict)
    futures: dict[str, InstrumentRow] = field(default_factory=dict)
    options: dict[str, InstrumentRow] = field(default_factory=dict)
    refreshed_at: datetime | None = None

    def live_options(self, at: datetime) -> list[str]:
        """Options not expired at `at`, in name order."""
        return sorted(
            name
            for name, row in self.options.items()
            if row.expiration_timestamp is None or row.expiration_timestamp > at
        )


class RestCatalog:
    """Instrument lists of several currencies, refreshed from the exchange."""

    def __init__(
        self,
        rest: DeribitRestClient,
        sink: RowSink,
        clock: Clock,
        currencies: tuple[CurrencySpec, ...],
    ) -> None:
        self.rest = rest
        self.sink = sink
        self.clock = clock
        self.by_currency = {spec.code: CurrencyInstruments(spec) for spec in currencies}
        self.rejected = 0
        self._once = OncePerKey(log)

    def __getitem__(self, code: str) -> CurrencyInstruments:
        return self.by_currency[code]

    async def refresh_all(self, _deadline: float | None = None) -> None:
        for code in self.by_currency:
            await self.refresh(code)

    async def refresh(self, code: str) -> CurrencyInstruments:
        """Re-reads one currency's instruments; expired ones stay until their bars are in."""
        entry = self.by_currency[code]
        spec = entry.spec
        seen_at = self.clock.utc_now()
        raw = await self.rest.get_instruments(spec.api_currency)
        perpetuals: dict[str, InstrumentRow] = {}
        futures: dict[str, InstrumentRow] = {}
        options: dict[str, InstrumentRow] = {}
        for item in raw:
            if not isinstance(item, dict) or not str(item.get("instrument_name", "")).startswith(
                spec.instrument_prefix
            ):
                continue
            if spec.linear and item.get("base_currency") not in (None, spec.base_currency):
                continue
            try:
                row = parse_instrument(item, currency=spec.code, seen_at=seen_at)
            except MalformedMessage as exc:
                self.rejected += 1
                self._once.warning(
                    f"instrument:{exc}", "get_instruments %s: bad element: %s", spec.code, exc
                )
                continue
            if row.kind == "future":
                (perpetuals if is_perpetual(row) else futures)[row.instrument_name] = row
            elif row.kind == "option":
                options[row.instrument_name] = row
            else:
                continue  # combos and spot are not polled
            self.sink.add(INSTRUMENTS, None, row)
        # Dated futures that left the list keep their entry until they are a day past expiry,
        # so the bars of their last minutes are still read.
        for name, row in entry.futures.items():
            expiry = row.expiration_timestamp
            if name not in futures and expiry is not None and (seen_at - expiry).days < 1:
                futures[name] = row
        entry.perpetuals, entry.futures, entry.options = perpetuals, futures, options
        entry.refreshed_at = seen_at
        log.info(
            "%s: %d perpetual(s), %d future(s), %d option(s)",
            code,
            len(perpetuals),
            len(futures),
            len(options),
        )
        return entry
