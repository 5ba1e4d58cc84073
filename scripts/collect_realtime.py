"""`python -m scripts.collect_realtime`: the REST collector of bars, greeks and indices.

Polls, for every currency in CURRENCIES (default BTC,ETH), the 1-minute bars of perpetuals and
futures, option bars with IV, hourly greeks of every live option, and the price index and DVOL;
see `scripts/collectors/rest/polls.py` for the schedule and its request budget.
"""

from __future__ import annotations

import asyncio

from scripts.cli import REST_ENV, SERVICE_ENV, WRITER_ENV, command_parser, setup_command_logging
from scripts.collectors.rest.polls import RealtimeRest
from scripts.collectors.rest.service import RestService
from scripts.config import load_settings_or_exit
from scripts.runtime import run_service

ENV = (
    "DATABASE_URL",
    "CURRENCIES",
    *REST_ENV,
    "OHLCV_POLL_INTERVAL_S",
    "GREEKS_POLL_INTERVAL_S",
    "INDEX_POLL_INTERVAL_S",
    *WRITER_ENV,
    *SERVICE_ENV,
)


def main(argv: list[str] | None = None) -> int:
    parser = command_parser("scripts.collect_realtime", __doc__, ENV, need_currency="many")
    parser.parse_args(argv)
    settings = load_settings_or_exit(need_currency="many", fleet_role="rest")
    setup_command_logging(settings)

    async def service(stop: asyncio.Event) -> int:
        return await RestService(settings, "rest", RealtimeRest(stop).build).run(stop)

    return run_service(service)


if __name__ == "__main__":
    raise SystemExit(main())
