"""Issue 11 scenario 9: SIGTERM during a long spool replay exits within DRAIN_DEADLINE_S.

The replay stops between transactions; what was not replayed stays spooled and the next start
writes it, exactly once.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from scripts.storage import tables
from scripts.storage.spool import Spool, SpoolBatch
from tests.support.writer_db import create_schema, query, quote

REPO = Path(__file__).resolve().parents[2]
SPOOLED_ROWS = 400_000
FRAME_ROWS = 5000
DRAIN_DEADLINE_S = 3.0  # the product's promise under test: SIGTERM -> exit within this


def _fill_spool(spool_dir: Path) -> None:
    spool = Spool(spool_dir, max_bytes=1 << 32, collector_name="ws-btc")
    for start in range(0, SPOOLED_ROWS, FRAME_ROWS):
        rows = [quote(i) for i in range(start, start + FRAME_ROWS)]
        assert spool.append(SpoolBatch(tables.OPTION_QUOTES.name_template, "BTC", rows))
    spool.close()


def _count(db: str) -> int:
    return int(query(db, "SELECT count(*) FROM btc_option_quotes")[0][0])


def _start(db: str, spool_dir: Path) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "tests.support.replay_writer", db, str(spool_dir), "ws-btc"]
    return subprocess.Popen(
        [*cmd, str(DRAIN_DEADLINE_S)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_sigterm_during_a_large_replay_exits_within_the_drain_deadline(
    database_url: str, tmp_path: Path
) -> None:
    create_schema(database_url, ("BTC",))
    _fill_spool(tmp_path)
    proc = _start(database_url, tmp_path)
    deadline = time.monotonic() + 120
    while _count(database_url) == 0:  # the replay is under way
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        out, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    took = time.monotonic() - sent
    stored = _count(database_url)
    print(
        f"\nSIGTERM -> exit {took:.2f} s (DRAIN_DEADLINE_S={DRAIN_DEADLINE_S}); "
        f"{stored} of {SPOOLED_ROWS} rows replayed before the stop"
    )
    assert proc.returncode == 0, out[-3000:]
    assert took <= DRAIN_DEADLINE_S, out[-3000:]
    assert 0 < stored < SPOOLED_ROWS  # stopped mid-replay, the rest still spooled
    assert list((tmp_path / "ws-btc").glob("seg-*.spool"))

    # The next start writes the rest, exactly once.
    again = _start(database_url, tmp_path)
    try:
        deadline = time.monotonic() + 240
        while _count(database_url) < SPOOLED_ROWS and time.monotonic() < deadline:
            time.sleep(0.2)
        again.send_signal(signal.SIGTERM)
        again.communicate(timeout=60)
    finally:
        again.kill()
    distinct = query(
        database_url, 'SELECT count(DISTINCT "timestamp"), count(*) FROM btc_option_quotes'
    )[0]
    assert distinct == (SPOOLED_ROWS, SPOOLED_ROWS)
