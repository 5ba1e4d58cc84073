"""The export loop: one file per day per table, resumable, written to a temp file then renamed.

A day whose file is already there with the row count the database has for that day (and the
same filters) is skipped; anything else is written again. A file only ever appears complete:
it is written as `.<name>.tmp` in the same folder and renamed when closed, so an export killed
at any point leaves complete days and at most one temp file, which the next run replaces.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from scripts.research.manifest import base_manifest, read_manifest, write_manifest
from scripts.research.progress import Progress

# (conn, window start, window end, temp path, progress) -> rows written
DayWriter = Callable[[psycopg.Connection, datetime | None, datetime | None, Path, Progress], int]
# (conn, window start, window end) -> rows the database has for the window
DayCounter = Callable[[psycopg.Connection, datetime | None, datetime | None], int]
# (path) -> rows in an existing file, or None when only the manifest knows
FileRows = Callable[[Path], int | None]


@dataclass(frozen=True, slots=True)
class DayPlan:
    label: str  # "2025-03-01" or "snapshot"
    start: datetime | None
    end: datetime | None


def plan_days(start: datetime, end: datetime) -> list[DayPlan]:
    """UTC days overlapping [start, end), each clipped to the range."""
    plans = []
    day = datetime.combine(start.astimezone(UTC).date(), datetime.min.time(), UTC)
    while day < end:
        nxt = day + timedelta(days=1)
        plans.append(DayPlan(day.date().isoformat(), max(day, start), min(nxt, end)))
        day = nxt
    return plans


def parse_day(label: str) -> date:
    return date.fromisoformat(label)


@dataclass
class DayJob:
    folder: Path  # <out>/<table>
    file_name: Callable[[DayPlan], str]  # path below folder, e.g. "date=2025-03-01/part.parquet"
    write: DayWriter
    count: DayCounter
    file_rows: FileRows


def run_days(
    conn: psycopg.Connection,
    job: DayJob,
    plans: list[DayPlan],
    manifest: dict[str, Any],
    progress: Progress,
) -> dict[str, Any]:
    """Exports every planned day; returns the manifest (also written after each day)."""
    previous = read_manifest(job.folder).get("days", {})
    same_filters = read_manifest(job.folder).get("filters") == manifest.get("filters")
    for plan in plans:
        rel_path = job.file_name(plan)
        path = job.folder / rel_path
        entry = _existing(conn, job, plan, path, previous.get(plan.label), same_filters)
        if entry is not None:
            progress.day_done(plan.label, entry["rows"], entry["bytes"], skipped=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.parent / f".{path.name}.tmp"
            rows = job.write(conn, plan.start, plan.end, tmp, progress)
            if rows:
                os.replace(tmp, path)
                size = path.stat().st_size
            else:
                tmp.unlink(missing_ok=True)
                path.unlink(missing_ok=True)
                size = 0
            entry = {"rows": rows, "bytes": size, "file": rel_path if rows else None}
            progress.day_done(plan.label, rows, size, skipped=False)
        entry["start"] = plan.start.isoformat() if plan.start else None
        entry["end"] = plan.end.isoformat() if plan.end else None
        manifest["days"][plan.label] = entry
        manifest["rows"] = sum(d["rows"] for d in manifest["days"].values())
        write_manifest(job.folder, manifest)
    return manifest


def _existing(
    conn: psycopg.Connection,
    job: DayJob,
    plan: DayPlan,
    path: Path,
    before: dict[str, Any] | None,
    same_filters: bool,
) -> dict[str, Any] | None:
    """The manifest entry of a day already exported with the database's row count, else None."""
    if not path.is_file():
        return None
    rows = job.file_rows(path)
    if rows is None:  # only the manifest knows (CSV): trust it only for the same intact file
        if not before or not same_filters or before.get("bytes") != path.stat().st_size:
            return None
        rows = int(before.get("rows", -1))
    if rows != job.count(conn, plan.start, plan.end):
        return None
    return {"rows": rows, "bytes": path.stat().st_size, "file": str(path.relative_to(job.folder))}


__all__ = ["DayJob", "DayPlan", "base_manifest", "plan_days", "run_days"]
