"""`python -m bench.without_ivs`: the real-time collector with the quote rows' IV enrichment
left out, for `python -m bench --without-ivs`, the A/B of what the forwards and bid/ask IVs
cost (issue 12).

Everything else runs as in production, forward tickers included: only
`ForwardCurves.enrich`, called once per flush batch, hands the rows on unchanged, so their
`underlying_price`, `bid_iv` and `ask_iv` stay NULL, as before the IVs existed.
"""

from __future__ import annotations

import runpy
from collections.abc import Sequence

from bench.procs import COLLECTOR_MODULE
from scripts.normalize.quote_ivs import ForwardCurves


def _unchanged(self: ForwardCurves, rows: Sequence[tuple]) -> list[tuple]:
    return list(rows)


if __name__ == "__main__":
    ForwardCurves.enrich = _unchanged  # type: ignore[method-assign]
    runpy.run_module(COLLECTOR_MODULE, run_name="__main__", alter_sys=True)
