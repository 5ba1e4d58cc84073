"""`python -m scripts.ws_tick_collector_multi`: the real-time option-chain collector of CURRENCY.

Records every quote change, every trade (repaired after any loss) and periodic order book
depth of the currency's whole live option chain; see `scripts/collectors/options_realtime.py`
for the channels and tables. Configuration is the environment (DATABASE_URL, CURRENCY,
DERIBIT_WS_URL, DERIBIT_REST_URL, TOP_N_INSTRUMENTS, ORDERBOOK_*, SPOOL_DIR, SIM_CLOCK, ...).
SIGTERM stops intake and drains the writer within DRAIN_DEADLINE_S, then exits 0.
"""

from __future__ import annotations

import asyncio

from scripts.collectors.realtime_service import run_realtime
from scripts.config import load_settings_or_exit
from scripts.logs import setup_logging
from scripts.runtime import run_service


def main() -> int:
    settings = load_settings_or_exit(need_currency="one", fleet_role="ws")
    setup_logging(settings.log_level, settings.secrets)

    async def service(stop: asyncio.Event) -> int:
        return await run_realtime(settings, stop)

    return run_service(service)


if __name__ == "__main__":
    raise SystemExit(main())
