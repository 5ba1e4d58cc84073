"""The backup and the restore test as jobs: each takes the lock, does its work, records the
outcome (status file and `backups` row) and never raises for an expected failure."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import psycopg
from psycopg import sql

from scripts.backups.dump import take_dump
from scripts.backups.files import backup_lock, list_dumps, remove_dump
from scripts.backups.pgtools import BackupError, dbname_of, with_dbname
from scripts.backups.record import Outcome, record
from scripts.backups.restore import restore_dump
from scripts.backups.retention import to_prune
from scripts.config import Settings
from scripts.logs import mask_secrets

log = logging.getLogger(__name__)

SCRATCH_DATABASE = "chaintape_restore_test"


def run_backup(settings: Settings) -> Outcome:
    """One dump, then retention; the outcome is recorded and returned."""
    backup_dir = Path(settings.backup_dir)
    started = time.time()
    try:
        with backup_lock(backup_dir):
            result = take_dump(
                settings.database_url,
                backup_dir,
                pg_bin_dir=settings.pg_bin_dir,
                margin_mb=settings.backup_disk_margin_mb,
            )
            pruned = prune(settings)
    except (BackupError, psycopg.Error, OSError) as exc:
        outcome = Outcome("backup", started, time.time(), False, error=_clean(exc, settings))
        log.error("backup failed: %s", outcome.error)
    else:
        outcome = Outcome(
            "backup",
            started,
            time.time(),
            True,
            file_name=result.path.name,
            size_bytes=result.size_bytes,
            database_bytes=result.database_bytes,
            timescaledb_version=result.timescaledb_version,
            details={
                "tables": len(result.manifest),
                "rows": sum(t.rows for t in result.manifest.values()),
                "pruned": pruned,
                "sha256": result.sha256,
            },
        )
    record(outcome, backup_dir, settings.database_url)
    return outcome


def prune(settings: Settings) -> list[str]:
    """Removes the dumps retention does not keep; called only after a successful dump."""
    dumps = {name.taken_at: path for name, path in list_dumps(Path(settings.backup_dir))}
    gone = to_prune(
        dumps,
        daily=settings.backup_keep_daily,
        weekly=settings.backup_keep_weekly,
        monthly=settings.backup_keep_monthly,
    )
    for taken in gone:
        remove_dump(dumps[taken])
        log.info("retention: removed %s", dumps[taken].name)
    return [dumps[t].name for t in gone]


def run_restore_test(settings: Settings, dump: Path | None = None) -> Outcome:
    """Restores the newest dump (or `dump`) into a scratch database, compares it with the
    dump's manifest, drops the scratch database; the outcome is recorded and returned."""
    backup_dir = Path(settings.backup_dir)
    started = time.time()
    scratch_url = with_dbname(settings.database_url, SCRATCH_DATABASE)
    file_name = None
    try:
        with backup_lock(backup_dir):
            if dump is None:
                found = list_dumps(backup_dir)
                if not found:
                    raise BackupError(f"no dump in {backup_dir} to test")
                dump = found[-1][1]
            file_name = dump.name
            try:
                result = restore_dump(
                    dump, scratch_url, pg_bin_dir=settings.pg_bin_dir, force=True, pause_jobs=True
                )
            finally:
                _drop(scratch_url)
            if not result.compared:
                raise BackupError(f"{dump.name} has no manifest: nothing to compare it with")
            if not result.manifest:
                raise BackupError(f"{dump.name}: the restored database has no tables")
            if result.differences:
                raise BackupError(
                    f"{dump.name} restored with differences: " + "; ".join(result.differences)
                )
    except (BackupError, psycopg.Error, OSError) as exc:
        outcome = Outcome(
            "restore_test",
            started,
            time.time(),
            False,
            file_name=file_name,
            error=_clean(exc, settings),
        )
        log.error("restore test failed: %s", outcome.error)
    else:
        outcome = Outcome(
            "restore_test",
            started,
            time.time(),
            True,
            file_name=file_name,
            size_bytes=dump.stat().st_size,
            details={
                "tables": len(result.manifest),
                "rows": sum(t.rows for t in result.manifest.values()),
                "toc_entries": result.toc_entries,
            },
        )
        log.info("restore test of %s: %d tables agree row for row", dump.name, len(result.manifest))
    record(outcome, backup_dir, settings.database_url)
    return outcome


def _drop(url: str) -> None:
    try:
        with psycopg.connect(with_dbname(url, "postgres"), autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(dbname_of(url))
                )
            )
    except psycopg.Error as exc:
        log.warning("could not drop the scratch database %s: %s", dbname_of(url), exc)


def _clean(exc: Exception, settings: Settings) -> str:
    lines = str(exc).strip().splitlines()
    return mask_secrets(lines[0] if lines else type(exc).__name__, settings.secrets)
