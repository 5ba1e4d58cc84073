"""`python -m scripts.check`: the alert check for DSM's Task Scheduler (or cron).

Exit 0 and one line when all is well; exit 1 with one line per problem otherwise (Task
Scheduler mails the output of a task that exits non-zero). Watches: stale tables of the
configured CURRENCIES, unhealthy collectors (status files in SPOOL_DIR, `collector_status`),
restarting or unhealthy containers (Docker socket, when mounted), the last backup and restore
test (failed or too old), unrepaired data gaps, and free disk of BACKUP_DIR and the database
volume (too little, or running out soon at the measured growth). Lines starting with `note:`
say what could not be checked; they do not fail the check. Config errors exit 2.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

import psycopg

from scripts.checks import Findings
from scripts.checks.database import backups, open_gaps, silent_collectors, stale_tables
from scripts.checks.local import collector_files, containers, disks
from scripts.clock import utc_from_s
from scripts.config import Settings, load_settings_or_exit
from scripts.logs import mask_secrets


def run_checks(settings: Settings, now: float | None = None) -> Findings:
    now = time.time() if now is None else now
    found = Findings()
    found.extend(collector_files(settings, now))
    found.extend(containers(settings))
    found.extend(disks(settings, now))
    try:
        with psycopg.connect(settings.database_url, autocommit=True, connect_timeout=10) as conn:
            found.extend(stale_tables(conn, settings))
            found.extend(silent_collectors(conn, settings))
            found.extend(backups(conn, settings, utc_from_s(now)))
            found.extend(open_gaps(conn, settings))
    except psycopg.Error as exc:
        reason = mask_secrets(
            str(exc).strip().splitlines()[0] if str(exc).strip() else "", settings.secrets
        )
        found.problems.append(f"database unreachable or failing: {reason}")
    return found


def main(argv: Sequence[str] | None = None) -> int:
    settings = load_settings_or_exit(need_currency="many")
    found = run_checks(settings)
    for line in found.problems:
        print(f"PROBLEM: {line}")
    for line in found.notes:
        print(f"note: {line}")
    if found.problems:
        print(f"chaintape check: {len(found.problems)} problem(s)")
        return 1
    print("chaintape check: all well")
    return 0


if __name__ == "__main__":
    sys.exit(main())
