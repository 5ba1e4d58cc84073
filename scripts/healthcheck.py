"""`python -m scripts.healthcheck [KIND]`: exit 0 when this collector is healthy, 1 otherwise.

For Docker's HEALTHCHECK. Reads the writer's local status file
(`$SPOOL_DIR/<collector>.status.json`), never the database, so it answers during a database
outage (a collector that flushes to its spool then is healthy: it loses nothing). Healthy means:
the collector's last flush, to the database or the spool, is at most HEALTH_MAX_FLUSH_AGE_S old,
it has not stopped, it is not still waiting at start for a database that never answered, and,
for collectors with an exchange connection, it has not been disconnected for more than
HEALTH_MAX_DISCONNECTED_S (30 s). Otherwise one line says why.

The collector is COLLECTOR_NAME, else `default_collector_name(KIND, settings)` (KIND defaults
to "ws" when CURRENCY is set), else the only status file in SPOOL_DIR.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from scripts.cli import command_parser
from scripts.config import ConfigError, Settings, load_settings
from scripts.storage.status import (
    STATUS_FILE_SUFFIX,
    default_collector_name,
    read_status_file,
    status_file_path,
)

MAX_DISCONNECTED_S = 30.0  # HEALTH_MAX_DISCONNECTED_S's default: reconnects take seconds
EXIT_HEALTHY = 0
EXIT_UNHEALTHY = 1


def _collector_name(settings: Settings, kind: str | None) -> str | None:
    if settings.collector_name:
        return settings.collector_name
    if kind is None and settings.currencies:
        kind = "ws"
    if kind is not None:
        return default_collector_name(kind, settings)
    found = sorted(Path(settings.spool_dir).glob(f"*{STATUS_FILE_SUFFIX}"))
    if len(found) == 1:
        return found[0].name[: -len(STATUS_FILE_SUFFIX)]
    return None


def verdict(
    data: Mapping[str, Any],
    *,
    max_flush_age_s: float,
    now: float,
    max_disconnected_s: float = MAX_DISCONNECTED_S,
) -> str | None:
    """None when healthy, else the reason (without the "unhealthy: " prefix)."""
    if data.get("state") == "stopped":
        return f"collector {data.get('collector')} stopped (pid {data.get('pid')})"
    if data.get("state") == "waiting":  # started, but its database has not answered yet
        return f"waiting for the database: {data.get('waiting_for_database') or 'no answer'}"
    if data.get("problem"):  # e.g. no live options, a channel the exchange refused
        return str(data["problem"])
    last = data.get("last_flush_at")
    started = data.get("started_at")
    if not isinstance(last, int | float):
        if isinstance(started, int | float) and now - started <= max_flush_age_s:
            last = None  # just started: give it one flush period
        else:
            return "no flush recorded since the collector started"
    if last is not None and now - last > max_flush_age_s:
        return f"last flush {now - last:.0f} s ago (max {max_flush_age_s:.0f} s)"
    if data.get("connected") is False:
        since = data.get("disconnected_since")
        down_s = now - since if isinstance(since, int | float) else float("inf")
        if down_s > max_disconnected_s:
            return f"not connected to Deribit for {down_s:.0f} s"
    return None


def check(settings: Settings, kind: str | None = None, *, now: float | None = None) -> str | None:
    """None when healthy, else the one-line reason."""
    name = _collector_name(settings, kind)
    if name is None:
        return f"cannot tell which collector to check in {settings.spool_dir}: set COLLECTOR_NAME"
    path = status_file_path(settings.spool_dir, name)
    if not path.exists():
        return f"no status file at {path}: collector not started"
    try:
        data = read_status_file(path)
    except (OSError, ValueError) as exc:
        return f"status file {path} unreadable: {exc}"
    return verdict(
        data,
        max_flush_age_s=settings.health_max_flush_age_s,
        max_disconnected_s=settings.health_max_disconnected_s,
        now=time.time() if now is None else now,
    )


ENV = (
    "CURRENCY",
    "COLLECTOR_NAME",
    "SPOOL_DIR",
    "HEALTH_MAX_FLUSH_AGE_S",
    "HEALTH_MAX_DISCONNECTED_S",
)
KINDS = ("ws", "rest", "funding")


def main(argv: Sequence[str] | None = None) -> int:
    parser = command_parser("scripts.healthcheck", __doc__, ENV, need_currency="any")
    parser.add_argument(
        "kind",
        nargs="?",
        choices=KINDS,
        help="ws (the real-time collector of CURRENCY), rest (collect_realtime) or funding",
    )
    kind = parser.parse_args(list(sys.argv[1:] if argv is None else argv)).kind
    try:
        settings = load_settings(need_currency="any", need_database=False)
    except ConfigError as exc:
        print(f"unhealthy: {' / '.join(exc.problems)}")
        return EXIT_UNHEALTHY
    reason = check(settings, kind)
    if reason is not None:
        print(f"unhealthy: {reason}")
        return EXIT_UNHEALTHY
    print("healthy")
    return EXIT_HEALTHY


if __name__ == "__main__":
    raise SystemExit(main())
