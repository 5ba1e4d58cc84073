"""The export loop: one file per day per table, resumable, written to a temp file then renamed.

A day whose file is already there with the row count the database has for that day (and the
same filters) is skipped; anything else is written again. A file only ever appears complete:
it is written as `.<name>.tmp` in the same folder and renamed when closed, so an export killed
at any point leaves complete days and at most one temp file per lane, which the next run
replaces.

Days are written `jobs` at a time, each lane over a connection of its own: reading a day
(the database sending, the driver decoding) and compressing another overlap on a NAS's cores.
A lane that fails cancels the others at their next batch, and the first error is raised.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from scripts.research.manifest import base_manifest, read_manifest, write_manifest
from scripts.research.progress import Cancelled, Progress

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
    # Another connection to the same database, for a parallel lane (closed by the lane).
    connect: Callable[[], AbstractContextManager[psycopg.Connection]] | None = None


def run_days(
    conn: psycopg.Connection,
    job: DayJob,
    plans: list[DayPlan],
    manifest: dict[str, Any],
    progress: Progress,
    *,
    jobs: int = 1,
) -> dict[str, Any]:
    """Exports every planned day, `jobs` at a time; returns the manifest (also written after
    each day, its days in date order)."""
    before = read_manifest(job.folder)
    previous = before.get("days", {})
    same_filters = before.get("filters") == manifest.get("filters")
    lock = threading.Lock()

    def record(plan: DayPlan, entry: dict[str, Any]) -> None:
        entry["start"] = plan.start.isoformat() if plan.start else None
        entry["end"] = plan.end.isoformat() if plan.end else None
        with lock:
            manifest["days"][plan.label] = entry
            manifest["days"] = dict(sorted(manifest["days"].items()))
            manifest["rows"] = sum(d["rows"] for d in manifest["days"].values())
            write_manifest(job.folder, manifest)

    pending = []
    for plan in plans:
        path = job.folder / job.file_name(plan)
        entry = _existing(conn, job, plan, path, previous.get(plan.label), same_filters)
        if entry is None:
            pending.append(plan)
        else:
            progress.day_done(plan.label, entry["rows"], entry["bytes"], skipped=True)
            record(plan, entry)
    lanes = min(jobs, len(pending))
    if lanes <= 1 or job.connect is None:
        for plan in pending:
            record(plan, _write_day(conn, job, plan, progress))
    else:
        _in_lanes(job, job.connect, pending, lanes, record, progress)
    return manifest


def _write_day(
    conn: psycopg.Connection, job: DayJob, plan: DayPlan, progress: Progress
) -> dict[str, Any]:
    """Writes one day's file (temp file, then renamed); its manifest entry."""
    rel_path = job.file_name(plan)
    path = job.folder / rel_path
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
    progress.day_done(plan.label, rows, size, skipped=False)
    return {"rows": rows, "bytes": size, "file": rel_path if rows else None}


def _in_lanes(
    job: DayJob,
    connect: Callable[[], AbstractContextManager[psycopg.Connection]],
    plans: list[DayPlan],
    lanes: int,
    record: Callable[[DayPlan, dict[str, Any]], None],
    progress: Progress,
) -> None:
    """Writes `plans` over `lanes` connections, each lane taking the next day when done."""
    todo: queue.SimpleQueue[DayPlan] = queue.SimpleQueue()
    for plan in plans:
        todo.put(plan)

    def lane() -> None:
        with connect() as conn:
            while not progress.cancelled:
                try:
                    plan = todo.get_nowait()
                except queue.Empty:
                    return
                record(plan, _write_day(conn, job, plan, progress))

    with ThreadPoolExecutor(lanes, thread_name_prefix="export-lane") as pool:
        futures = [pool.submit(lane) for _ in range(lanes)]
        try:
            wait(futures, return_when=FIRST_EXCEPTION)
        finally:  # a lane failed, or Ctrl-C while waiting: the others stop at their next batch
            if not all(f.done() and f.exception() is None for f in futures):
                progress.cancel()
        errors = [e for f in futures if (e := f.exception()) is not None]
    real = [e for e in errors if not isinstance(e, Cancelled)]
    if real or errors:
        raise (real or errors)[0]


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
