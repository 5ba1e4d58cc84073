"""The backup service loop: both schedules fire, results land in the status file and the
`backups` table, and the health mode reads them."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import psycopg

from scripts.backup import health
from scripts.backups.record import read_status
from scripts.backups.service import next_run, serve
from tests.support.backups import backup_settings, fill


def test_next_run_follows_the_cron_expression_in_utc() -> None:
    # 2026-12-04 03:14:59 UTC -> 03:15 the same day; after 03:15 -> the next day
    t = 1796354099.0
    assert next_run("15 3 * * *", t) == t + 1
    assert next_run("15 3 * * *", t + 1) == t + 1 + 86400
    assert next_run("45 4 * * 0", t) == 1796532300.0  # Sunday 2026-12-06 04:45 UTC


def test_service_runs_the_backup_and_the_restore_test_when_due(
    database_url: str, tmp_path: Path
) -> None:
    fill(database_url, rows=200)
    settings = backup_settings(
        database_url,
        tmp_path / "b",
        BACKUP_SCHEDULE="* * * * *",
        RESTORE_TEST_SCHEDULE="* * * * *",
    )
    # a clock 2 s before a minute boundary: both schedules come due within seconds
    offset = 58 - time.time() % 60
    stop = threading.Event()
    worker = threading.Thread(target=serve, args=(settings, stop, lambda: time.time() + offset))
    worker.start()
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            status = read_status(tmp_path / "b")
            if "restore_test" in status:
                break
            time.sleep(0.2)
    finally:
        stop.set()
        worker.join(60)
    assert status["backup"]["last"]["success"] is True
    assert status["restore_test"]["last"]["success"] is True, status["restore_test"]
    assert status["restore_test"]["last"]["file_name"] == status["backup"]["last"]["file_name"]
    assert health(settings) is None
    assert health(settings, now=time.time() + 3600) == (
        "the backup service loop is not running (no recent heartbeat)"
    )
    with psycopg.connect(database_url) as conn:
        kinds = conn.execute("SELECT kind, success FROM backups ORDER BY id").fetchall()
    assert kinds == [("backup", True), ("restore_test", True)]
