"""`python -m scripts.backup run|now|verify|health`: the backup service and its one-shot modes.

run     the service: dumps on BACKUP_SCHEDULE, restore tests on RESTORE_TEST_SCHEDULE
now     one dump (then retention), exit 0 on success, 1 on failure
verify  the restore test of the newest dump (or `verify DUMP`), exit 0 when it agrees row for row
health  for Docker's HEALTHCHECK: 0 when the service loop is alive and the last backup did not
        fail and is not older than CHECK_BACKUP_MAX_AGE_H, else 1 with one line
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from scripts.backups.jobs import run_backup, run_restore_test
from scripts.backups.record import read_status
from scripts.backups.service import HEARTBEAT_S, serve
from scripts.config import Settings, load_settings_or_exit
from scripts.logs import setup_logging


def health(settings: Settings, now: float | None = None) -> str | None:
    """None when healthy, else why not."""
    current = time.time() if now is None else now
    try:
        status = read_status(Path(settings.backup_dir))
    except (OSError, ValueError) as exc:
        return f"status file unreadable: {exc}"
    beat = status.get("heartbeat_at")
    if not isinstance(beat, int | float) or current - beat > 5 * HEARTBEAT_S:
        return "the backup service loop is not running (no recent heartbeat)"
    last = (status.get("backup") or {}).get("last")
    if last and not last.get("success"):
        return f"last backup failed: {last.get('error')}"
    max_age = settings.check_backup_max_age_h * 3600
    since = (last or {}).get("finished_at") or status.get("service_started_at") or current
    if current - float(since) > max_age:
        return f"no backup for {(current - float(since)) / 3600:.1f} h"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.backup", description=__doc__.split("\n")[0]
    )
    parser.add_argument("mode", choices=("run", "now", "verify", "health"))
    parser.add_argument(
        "dump", nargs="?", type=Path, help="verify: this dump instead of the newest"
    )
    args = parser.parse_args(argv)
    settings = load_settings_or_exit(need_currency="any")
    if args.mode == "health":
        reason = health(settings)
        print("healthy" if reason is None else f"unhealthy: {reason}")
        return 0 if reason is None else 1
    setup_logging(settings.log_level, settings.secrets)
    if args.mode == "now":
        outcome = run_backup(settings)
        print(
            f"backup {outcome.file_name}" if outcome.success else f"backup FAILED: {outcome.error}"
        )
        return 0 if outcome.success else 1
    if args.mode == "verify":
        outcome = run_restore_test(settings, args.dump)
        print(
            f"restore test {outcome.file_name}: OK, {outcome.details.get('tables')} tables and "
            f"{outcome.details.get('rows')} rows agree"
            if outcome.success
            else f"restore test FAILED: {outcome.error}"
        )
        return 0 if outcome.success else 1
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return serve(settings, stop)


if __name__ == "__main__":
    sys.exit(main())
