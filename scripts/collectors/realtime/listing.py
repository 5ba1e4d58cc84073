"""Is the collector's currency one the exchange lists, and does it have live options?

At start, one `public/get_instruments(currency=any)` (every kind, every settlement currency;
one call from the stricter get_instruments credits) tells:
- a currency with live options: go on;
- a currency the exchange lists (a perpetual, a future, spot) but with no live option: run,
  unhealthy with that reason (options may be listed later: `instrument.creation` is followed);
- a currency the exchange does not list at all: a configuration error (exit 2), with the
  currencies that have options.
While running, `health_problem` says why the collector is unhealthy although connected: a
channel the exchange refused (until it is granted), or no live options.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

import aiohttp

from scripts.currencies import CurrencySpec
from scripts.deribit.rest import DeribitRestClient, DeribitRestError

CHECK_TIMEOUT_S = 30.0

log = logging.getLogger(__name__)


class CurrencyNotListed(Exception):
    """The exchange lists nothing of this currency."""


def option_currencies(instruments: Iterable[Any]) -> list[str]:
    """Base currencies with at least one live option, sorted (BTC, ETH, SOL, ...)."""
    return sorted(
        {
            str(i["base_currency"])
            for i in instruments
            if isinstance(i, dict) and i.get("kind") == "option" and i.get("base_currency")
        }
    )


def listing_verdict(spec: CurrencySpec, instruments: list[Any]) -> str | None:
    """None when `spec` has live options; the reason it runs unhealthy when the exchange lists
    it without options; raises CurrencyNotListed when the exchange does not list it."""
    ours = [
        i
        for i in instruments
        if isinstance(i, dict)
        and (
            str(i.get("instrument_name", "")).startswith(spec.instrument_prefix)
            or i.get("base_currency") == spec.code
        )
    ]
    if any(i.get("kind") == "option" for i in ours):
        return None
    with_options = ", ".join(option_currencies(instruments)) or "none"
    if not ours:
        raise CurrencyNotListed(
            f"CURRENCY={spec.code}: the exchange lists no {spec.code} instrument; "
            f"currencies with options: {with_options}"
        )
    return (
        f"{spec.code} has no live options on the exchange (currencies with options: {with_options})"
    )


async def check_listing(rest: DeribitRestClient, spec: CurrencySpec) -> str | None:
    """`listing_verdict` from the exchange; an exchange that does not answer is not a verdict
    (None: the collector starts and its own reconnects take over)."""
    try:
        instruments = await asyncio.wait_for(rest.get_instruments("any"), CHECK_TIMEOUT_S)
    except (DeribitRestError, OSError, TimeoutError, aiohttp.ClientError) as exc:
        log.warning("%s: cannot check the listing at start (%s); going on", spec.code, exc)
        return None
    return listing_verdict(spec, instruments)


def refused_channels(clients: Iterable[Any]) -> list[str]:
    """Channels the exchange refused on the current sockets (cleared when granted)."""
    return sorted({ch for c in clients for ch in getattr(c, "refused", ())})


def health_problem(
    *, refused: list[str], connected: bool | None, live_options: int, listing: str | None
) -> str | None:
    """Why a running real-time collector is unhealthy, None when it is not. No options comes
    first: it explains the refusals that follow from it (no option index to subscribe to)."""
    if listing is not None and live_options == 0:
        return listing
    if refused:
        more = " ..." if len(refused) > 5 else ""
        return f"the exchange refused {len(refused)} channel(s): {', '.join(refused[:5])}{more}"
    if connected and live_options == 0:
        return "no live options to follow"
    return None
