"""Which instruments have expired, from their names: per-instrument state is dropped for them.

Deribit options and futures expire at 08:00 UTC of the date in their name (§5.1). The real-time
collector keeps maps keyed by instrument (trade_seq per option, marks, channel handlers, the
chain's bookkeeping); without this, each expired option would stay in them for the life of
the process, and a year of daily expiries adds thousands of entries. State of an instrument
is kept `EXPIRED_STATE_GRACE_S` past its expiry, so a trade or repair landing around the
expiry still finds it.
"""

from __future__ import annotations

from collections.abc import Iterable

from scripts.deribit.channels import parse_instrument_name

EXPIRED_STATE_GRACE_S = 3600.0


def expired_names(
    names: Iterable[str], now_s: float, grace_s: float = EXPIRED_STATE_GRACE_S
) -> list[str]:
    """The names among `names` that expired more than `grace_s` before `now_s` (market time).
    Names without an expiry (perpetuals) or of no known shape are never expired."""
    cutoff = now_s - grace_s
    out: list[str] = []
    for name in names:
        try:
            at = parse_instrument_name(name).expires_at
        except ValueError:
            continue
        if at is not None and at.timestamp() <= cutoff:
            out.append(name)
    return out
