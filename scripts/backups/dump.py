"""One dump: pg_dump -Fc inside an exported REPEATABLE READ snapshot, the manifest read in that
same snapshot, then the dump, its checksum and manifest moved into place atomically.

Order of the files: the manifest and checksum are renamed into place first and the dump last,
so a `*.dump` that exists is complete with its sidecars (a crash leaves only `*.tmp` files,
removed by the next run under the lock).
"""

from __future__ import annotations

import logging
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path

import psycopg

from scripts.backups.disk import check_room
from scripts.backups.files import (
    commit,
    manifest_path,
    remove_leftovers,
    sha256_of,
    sha_path,
    tmp_path,
    write_atomic,
)
from scripts.backups.manifest import Manifest, dumps, read_manifest
from scripts.backups.names import DumpName, safe_database_part, sha256_line
from scripts.backups.pgtools import (
    BackupError,
    check_same_major,
    dbname_of,
    error_lines,
    server_major,
    timescaledb_version,
    tool_connection,
    tool_path,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DumpResult:
    path: Path
    size_bytes: int
    duration_s: float
    timescaledb_version: str
    database_bytes: int
    manifest: Manifest
    sha256: str


def take_dump(
    database_url: str, backup_dir: Path, *, pg_bin_dir: str = "", margin_mb: float = 512.0
) -> DumpResult:
    """Dumps the database into `backup_dir`; BackupError (nothing left behind) on any failure.

    The caller holds `backup_lock(backup_dir)`.
    """
    started = time.monotonic()
    backup_dir.mkdir(parents=True, exist_ok=True)
    for leftover in remove_leftovers(backup_dir):
        log.warning("removed %s, left by an interrupted run", leftover.name)
    pg_dump = tool_path(pg_bin_dir, "pg_dump")
    try:
        conn = psycopg.connect(database_url, autocommit=True, connect_timeout=10)
    except psycopg.Error as exc:
        raise BackupError(f"cannot connect to the database: {str(exc).strip()}") from None
    with conn:
        major = server_major(conn)
        check_same_major(pg_dump, major)
        ts_version = timescaledb_version(conn)
        if ts_version is None:
            raise BackupError("the database has no timescaledb extension: nothing to back up")
        check_room(backup_dir, margin_mb)
        # The snapshot pg_dump uses stays valid while this transaction is open.
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        row = conn.execute(
            "SELECT pg_export_snapshot(), now(), pg_database_size(current_database())"
        ).fetchone()
        assert row is not None
        snapshot, taken_at, db_bytes = str(row[0]), row[1], int(row[2])
        manifest = read_manifest(conn)
        name = DumpName(safe_database_part(dbname_of(database_url)), taken_at, ts_version, major)
        final = backup_dir / name.file_name
        tmp = tmp_path(final)
        _run_pg_dump(pg_dump, database_url, snapshot, tmp)
        conn.execute("ROLLBACK")
    digest = sha256_of(tmp)
    meta = {
        "database": dbname_of(database_url),
        "taken_at": taken_at.astimezone(UTC).isoformat(),
        "timescaledb_version": ts_version,
        "pg_major": major,
        "database_bytes": db_bytes,
        "sha256": digest,
    }
    write_atomic(manifest_path(final), dumps(manifest, meta))
    write_atomic(sha_path(final), sha256_line(digest, final.name))
    commit(tmp, final)
    size = final.stat().st_size
    duration = time.monotonic() - started
    log.info("dump %s: %d bytes in %.1f s", final.name, size, duration)
    return DumpResult(final, size, duration, ts_version, db_bytes, manifest, digest)


def _run_pg_dump(pg_dump: str, database_url: str, snapshot: str, out: Path) -> None:
    conninfo, env = tool_connection(database_url)
    cmd = [
        pg_dump,
        "-Fc",
        "--no-password",
        f"--snapshot={snapshot}",
        "-f",
        str(out),
        "-d",
        conninfo,
    ]
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    except OSError as exc:
        out.unlink(missing_ok=True)
        raise BackupError(f"cannot run pg_dump: {exc}") from None
    if proc.returncode != 0:
        out.unlink(missing_ok=True)
        raise BackupError(f"pg_dump failed (exit {proc.returncode}): {error_lines(proc.stderr)}")
    for line in proc.stderr.splitlines():
        log.debug("pg_dump: %s", line)
