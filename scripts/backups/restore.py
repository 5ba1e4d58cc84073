"""Restore a dump with Timescale's documented sequence, loudly.

1. the dump's checksum is verified (a damaged or truncated file is refused);
2. the target database is created when missing; a non-empty one is refused unless `force`,
   which drops and recreates it;
3. `CREATE EXTENSION timescaledb VERSION '<the dump's>'`, `SELECT timescaledb_pre_restore()`;
4. `pg_restore` without `-j` (parallel restore corrupts TimescaleDB's catalog), with
   `--exit-on-error`; its exit code and stderr are both checked;
5. `SELECT timescaledb_post_restore()`, `ANALYZE`;
6. when the dump has a manifest, the restored database is compared with it table by table.
Owners and grants are not restored (`--no-owner --no-privileges`): the target server may lack
the source's roles; `python -m scripts.migrate` recreates the Grafana role and its grants.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from scripts.backups.files import manifest_path, verify_checksum
from scripts.backups.manifest import Manifest, differences, manifest_from_json, read_manifest
from scripts.backups.names import parse_dump_name
from scripts.backups.pgtools import (
    BackupError,
    check_same_major,
    dbname_of,
    error_lines,
    server_major,
    tool_connection,
    tool_path,
    with_dbname,
)
from scripts.backups.progress import Progress

log = logging.getLogger(__name__)

_USER_OBJECTS = """
SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
   AND n.nspname NOT LIKE 'pg_temp%' AND n.nspname NOT LIKE 'pg_toast_temp%'
   AND n.nspname NOT LIKE '\\_timescaledb%' AND n.nspname NOT LIKE 'timescaledb\\_%'
   AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
"""


@dataclass(frozen=True, slots=True)
class RestoreResult:
    database: str
    duration_s: float
    toc_entries: int
    manifest: Manifest
    differences: list[str]  # empty when everything agrees (or nothing was compared)
    compared: bool  # False when the dump had no manifest to compare with


_ERROR = re.compile(r"^pg_restore: error:|\bERROR:|^pg_restore: \[archiver\]")
_PROBLEM = re.compile(r"^pg_restore: (error|warning):|\bERROR:|\bWARNING:")


def restore_dump(
    dump: Path,
    target_url: str,
    *,
    pg_bin_dir: str = "",
    force: bool = False,
    pause_jobs: bool = False,
    on_line: Callable[[str], None] | None = None,
    pre_restore: bool = True,
) -> RestoreResult:
    """Restores `dump` into the database of `target_url`; BackupError on any failure.

    `pause_jobs` unschedules the restored database's TimescaleDB jobs before they can start (a
    scratch copy for the restore test must not compress, drop or refresh anything).
    `pre_restore=False` skips `timescaledb_pre_restore()`: only for the test that proves such a
    restore is caught.
    """
    started = time.monotonic()
    verify_checksum(dump)
    name = parse_dump_name(dump.name)
    meta = _read_meta(dump)
    ts_version = str(meta.get("timescaledb_version") or (name.timescaledb_version if name else ""))
    if not ts_version:
        raise BackupError(f"{dump.name}: cannot tell its TimescaleDB version (name or manifest)")
    pg_restore = tool_path(pg_bin_dir, "pg_restore")
    toc = _toc_entries(pg_restore, dump)
    target = dbname_of(target_url)
    _prepare_target(target_url, target, force, pg_restore)
    with psycopg.connect(target_url, autocommit=True) as conn:
        _create_extension(conn, ts_version, dump.name)
        if pre_restore:
            conn.execute("SELECT timescaledb_pre_restore()")
    progress = Progress(toc, f"restore {dump.name}", on_line)
    try:
        _run_pg_restore(pg_restore, dump, target_url, progress)
    finally:
        progress.close()
    progress.finish()
    with psycopg.connect(target_url, autocommit=True) as conn:
        if pause_jobs:
            conn.execute(
                "SELECT alter_job(job_id, scheduled => false)"
                " FROM timescaledb_information.jobs WHERE job_id >= 1000"
            )
        conn.execute("SELECT timescaledb_post_restore()")
        conn.execute("ANALYZE")
        restored = read_manifest(conn)
    diffs: list[str] = []
    tables = meta.get("tables")
    compared = isinstance(tables, dict)
    if isinstance(tables, dict):
        diffs = differences(manifest_from_json(tables), restored)
    return RestoreResult(target, time.monotonic() - started, toc, restored, diffs, compared)


def _read_meta(dump: Path) -> dict[str, object]:
    path = manifest_path(dump)
    if not path.is_file():
        log.warning("%s has no manifest: the restore cannot be compared row for row", dump.name)
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise BackupError(f"{path.name} is unreadable: {exc}") from None
    return data if isinstance(data, dict) else {}


def _toc_entries(pg_restore: str, dump: Path) -> int:
    """Entries of the dump's table of contents (`pg_restore -l`): the progress total."""
    proc = subprocess.run([pg_restore, "-l", str(dump)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise BackupError(
            f"{dump.name} is not a readable pg_dump archive: {error_lines(proc.stderr)}"
        )
    # ACL entries are skipped (--no-privileges): pg_restore prints nothing for them
    return sum(
        1
        for ln in proc.stdout.splitlines()
        if ln.strip() and not ln.startswith(";") and " ACL " not in ln
    )


def _prepare_target(target_url: str, target: str, force: bool, pg_restore: str) -> None:
    maintenance = with_dbname(target_url, "postgres")
    with psycopg.connect(maintenance, autocommit=True) as admin:
        check_same_major(pg_restore, server_major(admin))
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (target,)).fetchone()
        if exists:
            with psycopg.connect(target_url, autocommit=True) as conn:
                row = conn.execute(_USER_OBJECTS).fetchone()
                objects = int(row[0]) if row else 0
            if objects:
                if not force:
                    raise BackupError(
                        f"database {target} is not empty ({objects} tables, views or sequences):"
                        " restore into a new database (--into NAME) or pass --force to drop and"
                        " recreate it"
                    )
                log.warning("--force: dropping database %s (%d objects)", target, objects)
                admin.execute(
                    sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(target))
                )
                exists = None
        if not exists:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(target)))


def _create_extension(conn: psycopg.Connection, version: str, dump_name: str) -> None:
    row = conn.execute(
        "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"
    ).fetchone()
    if row is not None:
        if row[0] == version:
            return
        conn.execute("DROP EXTENSION timescaledb")  # an empty database: nothing depends on it
    available = [
        str(r[0])
        for r in conn.execute(
            "SELECT version FROM pg_available_extension_versions WHERE name = 'timescaledb'"
        ).fetchall()
    ]
    if version not in available:
        raise BackupError(
            f"{dump_name} was taken with TimescaleDB {version}, which this server does not have "
            f"(available: {', '.join(sorted(available)) or 'none'}): restore on a server with "
            f"TimescaleDB {version}, then ALTER EXTENSION timescaledb UPDATE"
        )
    conn.execute(sql.SQL("CREATE EXTENSION timescaledb VERSION {}").format(sql.Literal(version)))


def _run_pg_restore(pg_restore: str, dump: Path, target_url: str, progress: Progress) -> None:
    conninfo, env = tool_connection(target_url)
    cmd = [
        pg_restore,
        "--verbose",
        "--exit-on-error",
        "--no-owner",
        "--no-privileges",
        "--no-password",
        "-d",
        conninfo,
        str(dump),
    ]
    tail: list[str] = []
    with subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    ) as proc:
        assert proc.stderr is not None
        for raw in proc.stderr:
            line = raw.rstrip("\n")
            progress.line(line)
            # Verbose lines name objects ("creating COMMENT ... backups.error"): only
            # pg_restore's own error/warning prefix or a server ERROR counts as a problem.
            if not line.startswith("pg_restore: ") or _PROBLEM.search(line):
                tail.append(line)
        code = proc.wait()
    errors = [ln for ln in tail if _ERROR.search(ln)]
    if code != 0 or errors:
        raise BackupError(
            f"pg_restore failed (exit {code}) restoring {dump.name}: "
            f"{error_lines(chr(10).join(tail))}: the target database is incomplete, do not use it"
        )
