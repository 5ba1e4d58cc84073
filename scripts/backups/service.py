"""The backup service's loop: dumps on BACKUP_SCHEDULE, restore tests on RESTORE_TEST_SCHEDULE
(both 5-field cron expressions in UTC, read with croniter), a heartbeat in the status file.

Missed runs are not caught up (a NAS that slept through 03:15 dumps at the next 03:15); the
alert check reports a backup that is too old.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from croniter import croniter

from scripts.backups.jobs import run_backup, run_restore_test
from scripts.backups.record import heartbeat, update_status
from scripts.clock import utc_from_s
from scripts.config import Settings

log = logging.getLogger(__name__)

HEARTBEAT_S = 60.0


def next_run(schedule: str, after: float) -> float:
    """The next time (unix seconds) `schedule` fires strictly after `after`, in UTC."""
    start = utc_from_s(after)
    return float(croniter(schedule, start).get_next(float))


def serve(settings: Settings, stop: threading.Event, now: Callable[[], float] = time.time) -> int:
    backup_dir = Path(settings.backup_dir)
    started = now()
    next_backup = next_run(settings.backup_schedule, started)
    next_test = next_run(settings.restore_test_schedule, started)
    update_status(backup_dir, service_started_at=started)
    log.info(
        "backup service: next dump %s, next restore test %s (UTC)",
        _iso(next_backup),
        _iso(next_test),
    )
    while not stop.is_set():
        heartbeat(backup_dir, now())
        current = now()
        if current >= next_backup:
            run_backup(settings)
            next_backup = next_run(settings.backup_schedule, now())
            log.info("next dump %s", _iso(next_backup))
        elif current >= next_test:
            run_restore_test(settings)
            next_test = next_run(settings.restore_test_schedule, now())
            log.info("next restore test %s", _iso(next_test))
        else:
            stop.wait(min(HEARTBEAT_S, max(0.1, min(next_backup, next_test) - current)))
    return 0


def _iso(ts: float) -> str:
    return utc_from_s(ts).strftime("%Y-%m-%d %H:%M")
