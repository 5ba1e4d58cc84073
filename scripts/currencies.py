"""The currencies chaintape knows, and where each lives on Deribit.

BTC and ETH are inverse books queried with ``currency=BTC``/``ETH``. Altcoins trade only as
USDC-settled linear instruments: query ``currency=USDC`` and filter on ``base_currency``
(see ``shared/docs/deribit-protocol.md`` §5.2).
"""

from __future__ import annotations

from typing import NamedTuple


class CurrencySpec(NamedTuple):
    code: str  # what the user writes: BTC, ETH, SOL
    api_currency: str  # the `currency` parameter Deribit takes for it
    base_currency: str  # filter on instruments' base_currency
    index_name: str  # price index of its options (markprice.options.{index})
    linear: bool  # USDC-settled linear instruments
    has_dvol: bool  # deribit_volatility_index exists

    @property
    def table_prefix(self) -> str:
        return self.code.lower()

    @property
    def instrument_prefix(self) -> str:
        """Instrument names of this currency start with it: `BTC-`, `SOL_USDC-`."""
        return f"{self.code}_USDC-" if self.linear else f"{self.code}-"

    @property
    def perpetual(self) -> str:
        return f"{self.instrument_prefix}PERPETUAL"


def _inverse(code: str) -> CurrencySpec:
    return CurrencySpec(code, code, code, f"{code.lower()}_usd", False, True)


def _linear(code: str) -> CurrencySpec:
    return CurrencySpec(code, "USDC", code, f"{code.lower()}_usdc", True, False)


KNOWN_CURRENCIES: dict[str, CurrencySpec] = {
    spec.code: spec
    for spec in (
        _inverse("BTC"),
        _inverse("ETH"),
        *(_linear(c) for c in ("SOL", "XRP", "BNB", "PAXG", "AVAX", "TRX", "DOGE", "ADA", "LINK")),
    )
}


def currency_spec(code: str) -> CurrencySpec:
    """The spec for `code` (case-insensitive); KeyError names the known ones."""
    try:
        return KNOWN_CURRENCIES[code.strip().upper()]
    except KeyError:
        known = ", ".join(KNOWN_CURRENCIES)
        raise KeyError(f"unknown currency {code!r}; known: {known}") from None
