"""`python -m scripts.funding_rates_collector`: Deribit's hourly funding of each perpetual.

On start it reads the last FUNDING_BACKFILL_HOURS (48) hours, then checks every
FUNDING_POLL_INTERVAL_S (600 s) for new rows; the schedule is described in
`scripts/collectors/rest/funding.py`.
"""

from __future__ import annotations

import asyncio

from scripts.cli import REST_ENV, SERVICE_ENV, WRITER_ENV, command_parser, setup_command_logging
from scripts.collectors.rest.funding import FundingPoller
from scripts.collectors.rest.schedule import Schedule
from scripts.collectors.rest.service import RestService, ServiceParts
from scripts.config import load_settings_or_exit
from scripts.runtime import run_service

ENV = (
    "DATABASE_URL",
    "CURRENCIES",
    *REST_ENV,
    "FUNDING_POLL_INTERVAL_S",
    "FUNDING_BACKFILL_HOURS",
    *WRITER_ENV,
    *SERVICE_ENV,
)


async def build_funding(parts: ServiceParts) -> list[Schedule]:
    s = parts.settings
    poller = FundingPoller(
        parts.rest,
        parts.writer,
        parts.pool,
        parts.clock,
        s.currencies,
        backfill_hours=s.funding_backfill_hours,
    )
    await poller.load_cursors()
    return [Schedule("funding", parts.clock, s.funding_poll_interval_s, poller.poll, run_now=True)]


def main(argv: list[str] | None = None) -> int:
    parser = command_parser("scripts.funding_rates_collector", __doc__, ENV, need_currency="many")
    parser.parse_args(argv)
    settings = load_settings_or_exit(need_currency="many", fleet_role="funding")
    setup_command_logging(settings)

    async def service(stop: asyncio.Event) -> int:
        return await RestService(settings, "funding", build_funding).run(stop)

    return run_service(service)


if __name__ == "__main__":
    raise SystemExit(main())
