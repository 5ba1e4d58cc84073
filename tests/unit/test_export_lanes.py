"""The export's lanes (scripts/research/export_days.py): days written several at once, each
recorded in the manifest in date order, and a failing lane stops the others with its error."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from scripts.research.export_days import DayJob, plan_days, run_days
from scripts.research.progress import Cancelled, Progress

DAYS = plan_days(datetime(2026, 6, 1, tzinfo=UTC), datetime(2026, 6, 6, tzinfo=UTC))


def _job(folder: Path, write: Any) -> DayJob:
    return DayJob(
        folder=folder,
        file_name=lambda plan: f"date={plan.label}/part.txt",
        write=write,
        count=lambda conn, lo, hi: 0,
        file_rows=lambda path: None,
        connect=lambda: contextlib.nullcontext(object()),  # a lane's own "connection"
    )


def test_days_are_written_lanes_at_a_time_and_recorded_in_date_order(tmp_path: Path) -> None:
    together = threading.Barrier(3, timeout=10)  # broken unless three days are written at once
    lanes: set[str] = set()

    def write(conn: Any, lo: Any, hi: Any, tmp: Path, progress: Progress) -> int:
        lanes.add(threading.current_thread().name)
        if lo.day <= 3:
            together.wait()
        rows = lo.day * 10
        tmp.write_text(f"{lo.date()} {rows}\n")
        progress.advance(rows, 0)
        return rows

    manifest: dict[str, Any] = {"days": {}}
    progress = Progress("t", None, tty=False)
    got = run_days(None, _job(tmp_path, write), DAYS, manifest, progress, jobs=3)  # type: ignore[arg-type]

    assert len(lanes) == 3
    assert list(got["days"]) == [p.label for p in DAYS]
    assert got["rows"] == sum(d * 10 for d in range(1, 6)) == progress.rows
    on_disk = json.loads((tmp_path / "_manifest.json").read_text())
    assert list(on_disk["days"]) == [p.label for p in DAYS]
    for plan in DAYS:
        assert (tmp_path / f"date={plan.label}" / "part.txt").read_text().startswith(plan.label)
    assert not list(tmp_path.rglob(".*.tmp"))


def test_a_failing_lane_stops_the_others_and_its_error_is_raised(tmp_path: Path) -> None:
    started: list[str] = []
    stopped: list[BaseException] = []

    def write(conn: Any, lo: Any, hi: Any, tmp: Path, progress: Progress) -> int:
        started.append(lo.date().isoformat())
        if lo.day == 2:
            time.sleep(0.2)  # day 1 is writing by now
            raise OSError(28, "No space left on device")
        tmp.write_text("partial")
        deadline = time.monotonic() + 60  # a long day: batch after batch, until stopped
        try:
            while time.monotonic() < deadline:
                progress.advance(1, 0)
                time.sleep(0.01)
        except Cancelled as exc:
            stopped.append(exc)
            raise
        return 1

    manifest: dict[str, Any] = {"days": {}}
    progress = Progress("t", None, tty=False)
    with pytest.raises(OSError, match="No space left"):
        run_days(None, _job(tmp_path, write), DAYS, manifest, progress, jobs=2)  # type: ignore[arg-type]

    assert len(stopped) == 1, "the other lane was not stopped at its next batch"
    assert sorted(started) == ["2026-06-01", "2026-06-02"]  # no new day after the failure
    assert manifest["days"] == {}
    assert not list(tmp_path.rglob("part.txt"))  # only temp files, replaced by the next run
