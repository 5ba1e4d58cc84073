"""`python -m scripts.ws_tick_collector_multi`: the real-time option-chain collector of CURRENCY.

Records every quote change, every trade (repaired after any loss) and periodic order book
depth of the currency's whole live option chain; see `scripts/collectors/realtime/collector.py`
for the channels and tables. Configuration is the environment (DATABASE_URL, CURRENCY,
DERIBIT_WS_URL, DERIBIT_REST_URL, TOP_N_INSTRUMENTS, ORDERBOOK_*, SPOOL_DIR, SIM_CLOCK, ...).
SIGTERM stops intake and drains the writer within DRAIN_DEADLINE_S, then exits 0.
"""

from __future__ import annotations

import asyncio

from scripts.cli import REST_ENV, SERVICE_ENV, WRITER_ENV, command_parser, setup_command_logging
from scripts.collectors.realtime.service import run_realtime
from scripts.config import load_settings_or_exit
from scripts.runtime import run_service

ENV = (
    "DATABASE_URL",
    "CURRENCY",
    "DERIBIT_WS_URL",
    *REST_ENV,
    "TOP_N_INSTRUMENTS",
    "ORDERBOOK_SNAPSHOT_INTERVAL_S",
    "ORDERBOOK_DEPTH",
    "HEARTBEAT_INTERVAL_S",
    "DATA_WATCHDOG_S",
    "WS_CHANNELS_PER_CONNECTION",
    "WS_MAX_CONNECTIONS",
    "INSTRUMENT_RECONCILE_INTERVAL_S",
    "TRADE_REPAIR_MAX_AGE_S",
    *WRITER_ENV,
    "HEALTH_MAX_FLUSH_AGE_S",
    "HEALTH_MAX_DISCONNECTED_S",
    *SERVICE_ENV,
)


def main(argv: list[str] | None = None) -> int:
    command_parser("scripts.ws_tick_collector_multi", __doc__, ENV).parse_args(argv)
    settings = load_settings_or_exit(need_currency="one", fleet_role="ws")
    setup_command_logging(settings)

    async def service(stop: asyncio.Event) -> int:
        return await run_realtime(settings, stop)

    return run_service(service)


if __name__ == "__main__":
    raise SystemExit(main())
