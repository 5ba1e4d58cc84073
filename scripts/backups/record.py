"""Where results go: a row in `backups` and the status file in BACKUP_DIR.

The status file keeps, per kind ("backup", "restore_test"), the last attempt and the last
success, so the health check and the alert check work without the database. Writing the row
may fail (the database is down: that is why the backup failed): the status file is written
first and always.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from scripts.backups.files import write_atomic
from scripts.clock import utc_from_s

log = logging.getLogger(__name__)

STATUS_FILE = "chaintape-backup.status.json"
KINDS = ("backup", "restore_test")


@dataclass(slots=True)
class Outcome:
    kind: str
    started_at: float  # unix seconds
    finished_at: float
    success: bool
    file_name: str | None = None
    size_bytes: int | None = None
    database_bytes: int | None = None
    timescaledb_version: str | None = None
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        return self.finished_at - self.started_at


def status_path(backup_dir: Path) -> Path:
    return backup_dir / STATUS_FILE


def read_status(backup_dir: Path) -> dict[str, Any]:
    """The status file's content ({} when there is none yet); ValueError when unreadable."""
    path = status_path(backup_dir)
    if not path.exists():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path} does not hold a JSON object")
    return data


def update_status(backup_dir: Path, **fields: Any) -> None:
    try:
        data = read_status(backup_dir)
    except ValueError:
        data = {}
    data.update(fields)
    backup_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(status_path(backup_dir), json.dumps(data, indent=1, sort_keys=True))


def record(outcome: Outcome, backup_dir: Path, database_url: str) -> None:
    """The status file (always), then the `backups` row (logged when the database refuses)."""
    try:
        data = read_status(backup_dir)
    except ValueError:
        data = {}
    previous = data.get(outcome.kind)
    entry: dict[str, Any] = previous if isinstance(previous, dict) else {}
    as_dict = asdict(outcome)
    entry = {**entry, "last": as_dict}
    if outcome.success:
        entry["last_success"] = as_dict
    update_status(backup_dir, **{outcome.kind: entry})
    try:
        with psycopg.connect(database_url, connect_timeout=10) as conn:
            conn.execute(
                "INSERT INTO backups (kind, started_at, finished_at, duration_s, success,"
                " file_name, size_bytes, database_bytes, timescaledb_version, error, details)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    outcome.kind,
                    utc_from_s(outcome.started_at),
                    utc_from_s(outcome.finished_at),
                    outcome.duration_s,
                    outcome.success,
                    outcome.file_name,
                    outcome.size_bytes,
                    outcome.database_bytes,
                    outcome.timescaledb_version,
                    outcome.error,
                    Jsonb(outcome.details),
                ),
            )
    except psycopg.Error as exc:
        log.warning("could not record the %s in the backups table: %s", outcome.kind, exc)


def heartbeat(backup_dir: Path, now: float | None = None) -> None:
    """The service loop is alive (read by `python -m scripts.backup health`)."""
    update_status(backup_dir, heartbeat_at=time.time() if now is None else now)
