"""`python -m scripts.migrate`: create or update the database schema, then print what was done.

Currencies: CURRENCIES (a list), else CURRENCY, else BTC,ETH. Other settings: DATABASE_URL,
GRAFANA_DB_USER / GRAFANA_DB_PASSWORD (the read-only role; skipped when the password is unset),
RETENTION_DAYS (0 = keep everything). Exit 0 on success, 1 when the database cannot be migrated
(unreachable, no TimescaleDB, a changed file), 2 on bad settings (including a placeholder or
short GRAFANA_DB_PASSWORD).
"""

from __future__ import annotations

import logging
import sys

from scripts.cli import command_parser, setup_command_logging
from scripts.config import EXIT_CONFIG_ERROR, load_settings_or_exit
from scripts.runtime import EXIT_FAILURE, EXIT_OK
from scripts.storage.migrate import MigrationError, MigrationReport, apply_schema, check_arguments

log = logging.getLogger("scripts.migrate")

ENV = (
    "DATABASE_URL",
    "CURRENCIES",
    "CURRENCY",
    "GRAFANA_DB_USER",
    "GRAFANA_DB_PASSWORD",
    "RETENTION_DAYS",
    "LOG_LEVEL",
)


def format_report(report: MigrationReport) -> str:
    lines = [f"chaintape schema is up to date (TimescaleDB edition: {report.edition})"]
    if report.applied:
        lines.append(f"  applied:    {', '.join(report.applied)}")
    if report.unchanged:
        lines.append(f"  unchanged:  {', '.join(report.unchanged)}")
    added = f" (added now: {', '.join(report.added_currencies)})" if report.added_currencies else ""
    lines.append(f"  currencies: {', '.join(report.currencies) or 'none'}{added}")
    role = report.grafana_role
    if role and report.grafana_role_kept:
        lines.append(f"  grafana:    read-only role {role!r} exists (password kept)")
    elif role:
        lines.append(f"  grafana:    read-only role {role!r} granted SELECT")
    else:
        lines.append("  grafana:    no read-only role (GRAFANA_DB_PASSWORD is not set)")
    if report.warnings:  # each was logged once, above the summary
        lines.append(f"  warnings:   {len(report.warnings)} (see the log lines above)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    command_parser("scripts.migrate", __doc__, ENV, need_currency="many").parse_args(argv)
    settings = load_settings_or_exit(need_currency="many")
    setup_command_logging(settings)
    try:
        check_arguments(
            settings.currencies,
            settings.grafana_db_user,
            settings.grafana_db_password,
            settings.retention_days,
        )
    except ValueError as exc:
        print(f"chaintape: invalid configuration: {exc}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    try:
        report = apply_schema(
            settings.database_url,
            settings.currencies,
            grafana_user=settings.grafana_db_user,
            grafana_password=settings.grafana_db_password,
            retention_days=settings.retention_days,
        )
    except MigrationError as exc:
        print(f"chaintape: migration failed: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    print(format_report(report))
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
