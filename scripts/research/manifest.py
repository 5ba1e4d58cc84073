"""The manifest written beside each export: what was exported, from where, and how many rows.

`<out>/<table>/_manifest.json` (a leading underscore: Arrow and pandas skip it when reading the
folder as a dataset). The source database is named by host, port, database and user: never the
password.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

MANIFEST_NAME = "_manifest.json"
FORMAT_VERSION = 1


def source_database(conn: psycopg.Connection) -> dict[str, Any]:
    info = conn.info
    return {"host": info.host, "port": info.port, "dbname": info.dbname, "user": info.user}


def schema_version(conn: psycopg.Connection) -> dict[str, Any]:
    """The newest applied migration and a digest of every applied file's checksum."""
    if conn.execute("SELECT to_regclass('schema_migrations')").fetchone() == (None,):
        return {"latest": None, "digest": None}
    rows = conn.execute("SELECT filename, checksum FROM schema_migrations ORDER BY 1").fetchall()
    digest = hashlib.sha256("".join(f"{f}:{c}\n" for f, c in rows).encode()).hexdigest()
    return {"latest": rows[-1][0] if rows else None, "digest": digest[:16], "files": len(rows)}


def read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST_NAME
    if not path.is_file():
        return {}
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def write_manifest(folder: Path, doc: dict[str, Any]) -> Path:
    """Written to a temp file and renamed: a reader never sees half a manifest."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / MANIFEST_NAME
    tmp = folder / f".{MANIFEST_NAME}.tmp"
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n")
    os.replace(tmp, path)
    return path


def base_manifest(
    conn: psycopg.Connection,
    *,
    table: str,
    fmt: str,
    start: datetime | None,
    end: datetime | None,
    filters: dict[str, Any],
    columns: list[dict[str, str]],
) -> dict[str, Any]:
    return {
        "manifest_version": FORMAT_VERSION,
        "table": table,
        "format": fmt,
        "start": start.isoformat() if start else None,
        "end": end.isoformat() if end else None,
        "filters": filters,
        "columns": columns,
        "schema_version": schema_version(conn),
        "source_database": source_database(conn),
        "exported_at": datetime.now(UTC).isoformat(),
        "days": {},
    }
