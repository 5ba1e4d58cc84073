"""pg_dump / pg_restore: where they are, their major version, and how to call them safely.

The password never goes on a command line (visible in `ps`) or in a log: the tools get a
conninfo string without it and the password in PGPASSWORD.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo


class BackupError(Exception):
    """A backup, restore or restore test failed; the message says why and what to do."""


def tool_path(pg_bin_dir: str, name: str) -> str:
    """The tool in PG_BIN_DIR when set, else on PATH; BackupError when missing."""
    if pg_bin_dir:
        path = Path(pg_bin_dir) / name
        if not path.is_file():
            raise BackupError(f"{name} not found in PG_BIN_DIR={pg_bin_dir}")
        return str(path)
    found = shutil.which(name)
    if found is None:
        raise BackupError(
            f"{name} not found on PATH: install the PostgreSQL client of the server's major "
            "version (postgresql-client-N) or set PG_BIN_DIR"
        )
    return found


def tool_major(path: str) -> int:
    """The major version a PostgreSQL tool reports (`pg_dump (PostgreSQL) 15.8` -> 15)."""
    try:
        out = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=30, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise BackupError(f"cannot run {path} --version: {exc}") from None
    m = re.search(r"\(PostgreSQL\)\s+(\d+)", out)
    if m is None:
        raise BackupError(f"{path} --version printed no PostgreSQL version: {out.strip()!r}")
    return int(m.group(1))


def server_major(conn: psycopg.Connection) -> int:
    row = conn.execute("SELECT current_setting('server_version_num')::int / 10000").fetchone()
    assert row is not None
    return int(row[0])


def timescaledb_version(conn: psycopg.Connection) -> str | None:
    row = conn.execute(
        "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"
    ).fetchone()
    return None if row is None else str(row[0])


def check_same_major(path: str, server: int) -> int:
    """Refuses a client tool whose major version differs from the server's."""
    major = tool_major(path)
    if major != server:
        name = Path(path).name
        raise BackupError(
            f"{name} is PostgreSQL {major} ({path}) but the server is PostgreSQL {server}: "
            f"use the {name} of PostgreSQL {server} (postgresql-client-{server}, or PG_BIN_DIR)"
        )
    return major


def with_dbname(database_url: str, dbname: str) -> str:
    """The same connection settings for another database."""
    params = conninfo_to_dict(database_url)
    params["dbname"] = dbname
    return make_conninfo(**params)  # type: ignore[arg-type]


def dbname_of(database_url: str) -> str:
    params = conninfo_to_dict(database_url)
    return str(params.get("dbname") or params.get("user") or os.environ.get("USER", "postgres"))


def tool_connection(database_url: str) -> tuple[str, dict[str, str]]:
    """(conninfo without the password, environment with PGPASSWORD) for pg_dump/pg_restore."""
    params = conninfo_to_dict(database_url)
    password = params.pop("password", None)
    env = dict(os.environ)
    if password:
        env["PGPASSWORD"] = str(password)
    return make_conninfo(**params), env  # type: ignore[arg-type]


def error_lines(stderr: str, limit: int = 5) -> str:
    """The lines of a tool's stderr that say what went wrong (errors first)."""
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if "error" in ln.lower() or "fatal" in ln.lower()]
    picked = (errors or lines)[:limit]
    return " | ".join(picked) if picked else "(no output)"
