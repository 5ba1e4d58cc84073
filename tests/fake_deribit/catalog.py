"""Which instruments a currency of the fake market has: strike grids, the option chain of an
expiry, dated futures and the perpetual; and the per-currency state that groups them.
"""

from __future__ import annotations

from tests.fake_deribit.instruments import (
    PERPETUAL_EXPIRY_MS,
    CurrencySetup,
    Instrument,
    expiry_code,
    expiry_schedule,
    nice_step,
    settlement_period,
)
from tests.fake_deribit.pricing import PriceModel, hash01


class IdSource:
    """instrument_id values, unique across the market."""

    def __init__(self, first: int) -> None:
        self.next = first

    def take(self) -> int:
        self.next += 1
        return self.next


class CurrencyState:
    """One currency: its price model, its live instruments and its trade-id counter."""

    def __init__(self, setup: CurrencySetup, seed: int, salt: int, strikes_per_expiry: int) -> None:
        self.setup = setup
        self.salt = salt
        self.model = PriceModel(seed, salt, setup.spot, setup.dvol, setup.index_digits)
        self.options: list[Instrument] = []
        self.futures: list[Instrument] = []  # dated futures only
        self.perp: Instrument | None = None
        self.strikes_per_expiry = strikes_per_expiry
        self.strike_step = nice_step(setup.spot * 0.4 / max(strikes_per_expiry - 1, 1))
        self.next_trade_id = setup.trade_id_base + int(hash01(seed, salt, 77) * 1_000_000)
        self.ticker_order: list[Instrument] = []

    def new_trade_id(self) -> str:
        self.next_trade_id += 1
        return f"{self.setup.trade_id_prefix}{self.next_trade_id}"

    def active(self) -> list[Instrument]:
        head = [self.perp] if self.perp is not None and not self.perp.expired else []
        return head + self.futures + self.options

    def refresh(self) -> None:
        """Drop expired instruments from the live lists; fix the ticker round order."""
        self.options = [i for i in self.options if not i.expired]
        self.futures = [i for i in self.futures if not i.expired]
        self.ticker_order = self.active()

    def strikes(self, ms: int) -> list[float]:
        step = self.strike_step
        centre = round(self.model.index(ms) / step) * step
        n = self.strikes_per_expiry
        out = [round(centre + (k - n // 2) * step, 8) for k in range(n)]
        return [s for s in out if s > 0]

    def option_chain(
        self, expiry_ms: int, creation_ms: int, ids: IdSource, centre_ms: int
    ) -> list[Instrument]:
        """A call and a put per strike around the index at `centre_ms`."""
        chain = []
        for strike in self.strikes(centre_ms):
            for is_call in (True, False):
                chain.append(
                    Instrument(
                        self.setup, "option", expiry_ms, creation_ms, ids.take(), strike, is_call
                    )
                )
        self.link_underlying(chain)
        return chain

    def future(self, expiry_ms: int, creation_ms: int, ids: IdSource) -> Instrument:
        return Instrument(self.setup, "future", expiry_ms, creation_ms, ids.take())

    def make_perp(self, ids: IdSource) -> Instrument:
        return Instrument(self.setup, "future", PERPETUAL_EXPIRY_MS, 1_534_167_754_000, ids.take())

    def link_underlying(self, options: list[Instrument]) -> None:
        futures = {f.expiry_ms: f.name for f in self.futures}
        for o in options:
            name = futures.get(o.expiry_ms)
            o.underlying = name or f"SYN.{self.setup.prefix}{expiry_code(o.expiry_ms)}"

    def future_expiries(self, after_ms: int, count: int = 3) -> list[int]:
        """Dated futures on the next weekly and monthly Fridays (BTC/ETH only, §5.4)."""
        if not self.setup.has_futures:
            return []
        fridays = [e for e in expiry_schedule(after_ms, 16) if settlement_period(e) != "day"]
        return fridays[:count]
