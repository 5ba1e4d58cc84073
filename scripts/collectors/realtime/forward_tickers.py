"""Which option ticker carries each expiry's forward to the real-time collector.

Every option ticker carries `underlying_price`, the forward its expiry is priced on, so one
ticker per expiry is enough. The channel is `ticker.{option}.agg2`: about one frame a second
(§6 of the protocol notes), where `100ms` sends up to ten and `raw` needs an authenticated
connection; `incremental_ticker` has the same cadence but leaves unchanged fields out, so a
frame without `underlying_price` would not say how old the forward is. One second is
finer than the forward needs (QUOTE_FORWARD_MAX_AGE_S, 10 s by default, bounds its age), and
a dozen expiries add about a dozen frames a second to a chain of hundreds of quote channels.

The option chosen per expiry is the call at the middle strike of those followed: strikes are
listed around the forward, so that is near the money, where the book (and so the ticker)
changes most. It is kept while it is live, so the subscription does not churn.
"""

from __future__ import annotations

from collections.abc import Iterable

from scripts.deribit import channels as ch

FORWARD_TICKER_INTERVAL = "agg2"


def _expiry_and_strike(name: str) -> tuple[str, float, bool] | None:
    try:
        meta = ch.parse_instrument_name(name)
    except ValueError:
        return None
    if meta.kind != "option" or meta.expiry is None or meta.strike is None:
        return None
    return meta.expiry.isoformat(), meta.strike, meta.option_type == "call"


def choose(live: Iterable[str], current: dict[str, str]) -> dict[str, str]:
    """expiry (ISO date) -> the option whose ticker carries its forward; a current choice
    that is still live is kept."""
    by_expiry: dict[str, list[tuple[float, bool, str]]] = {}
    for name in live:
        parts = _expiry_and_strike(name)
        if parts is not None:
            by_expiry.setdefault(parts[0], []).append((parts[1], parts[2], name))
    out: dict[str, str] = {}
    for expiry, options in by_expiry.items():
        kept = current.get(expiry)
        if kept is not None and any(o[2] == kept for o in options):
            out[expiry] = kept
            continue
        strikes = sorted({o[0] for o in options})
        middle = strikes[len(strikes) // 2]
        at_middle = sorted(o for o in options if o[0] == middle)
        calls = [o for o in at_middle if o[1]]
        out[expiry] = (calls or at_middle)[0][2]
    return out


def channel(name: str) -> str:
    return ch.ticker_channel(name, FORWARD_TICKER_INTERVAL)
