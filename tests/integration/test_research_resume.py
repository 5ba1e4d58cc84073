"""An export killed in the middle (SIGKILL) resumes: complete days are skipped, the rest written,
and the result is byte for byte the export that was never interrupted. The uninterrupted one
writes a day at a time (`--jobs 1`), the killed and resumed ones two days at once (the
default), so the lanes are proven to write the same bytes too."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.quote_data import write_quotes
from tests.conftest import REPO_ROOT
from tests.support.writer_db import create_schema

DAYS = 4
ROWS = 1_200_000


def _export(url: str, out: Path, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DATABASE_URL": url, "PYTHONPATH": str(REPO_ROOT)}
    args = ["eth_option_quotes", "--start", "2026-06-01", "--end", "2026-06-05", "--out", str(out)]
    args += extra
    with log.open("ab") as f:
        return subprocess.Popen(
            [sys.executable, "-m", "scripts.export", *args],
            cwd=REPO_ROOT,
            env=env,
            stdout=f,
            stderr=subprocess.STDOUT,
        )


def _files(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != "_manifest.json"
    }


def test_an_export_killed_midway_resumes_and_ends_identical(
    database_url: str, tmp_path: Path
) -> None:
    create_schema(database_url, ("ETH",))
    write_quotes(database_url, ROWS, datetime(2026, 6, 1, tzinfo=UTC), DAYS)
    log = tmp_path / "export.log"

    whole = _export(database_url, tmp_path / "whole", log, "--jobs", "1")
    assert whole.wait(300) == 0, log.read_text()[-2000:]

    killed_dir = tmp_path / "resumed" / "eth_option_quotes"
    proc = _export(database_url, tmp_path / "resumed", log)
    first = killed_dir / "date=2026-06-01" / "part.parquet"
    deadline = time.monotonic() + 120
    while not first.exists():
        assert proc.poll() is None, "the export ended before the first day was written"
        assert time.monotonic() < deadline
        time.sleep(0.005)
    proc.kill()
    proc.wait(30)
    done = sorted(killed_dir.glob("date=*/part.parquet"))
    assert 1 <= len(done) < DAYS, f"killed too late to prove anything: {done}"
    log.write_text("")
    resumed = _export(database_url, tmp_path / "resumed", log)
    assert resumed.wait(300) == 0, log.read_text()[-2000:]
    text = log.read_text()
    assert "2026-06-01: 300,000 rows" in text and "already exported, skipped" in text

    want = _files(tmp_path / "whole" / "eth_option_quotes")
    got = _files(killed_dir)
    assert sorted(got) == sorted(want)  # no temp file left behind
    assert len(want) == DAYS
    for name, data in want.items():
        assert got[name] == data, f"{name} differs from the uninterrupted export"
