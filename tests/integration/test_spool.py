"""The spool against a database that really stops: outages, a full spool, kill -9, drain."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from scripts.models import GapRow
from scripts.storage import tables
from scripts.storage.spool import Spool, SpoolBatch, encode_frame
from scripts.storage.status import read_status_file
from scripts.storage.writer import BatchWriter
from tests.support.pgcluster import PgCluster
from tests.support.writer_db import can_connect, create_schema, fetch_rows, query, quote

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def private_cluster() -> Iterator[PgCluster]:
    """A cluster of our own, so stopping it cannot disturb other tests."""
    cluster = PgCluster()
    try:
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
def db(db: str) -> str:
    """The shared per-test database (tests/support/durability.py) on this module's cluster,
    with BTC's tables."""
    create_schema(db, ("BTC",))
    return db


def _writer(db: str, spool: Spool | None, **kw: object) -> BatchWriter:
    opts: dict[str, object] = {
        "collector_name": "ws-btc",
        "currency": "BTC",
        "version": "test",
        "flush_interval_ms": 50,
        "flush_max_rows": 200,
        "max_buffered_rows": 500,
        "spool": spool,
        "retry_base_s": 0.1,
        "retry_max_s": 0.5,
        "db_timeout_s": 5.0,
    }
    opts.update(kw)
    return BatchWriter(db, **opts)  # type: ignore[arg-type]


async def _eventually(check: Callable[[], bool], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


def _quote_count(db: str) -> int:
    return int(query(db, "SELECT count(*) FROM btc_option_quotes")[0][0])


async def _feed(writer: BatchWriter, start: int, stop: int, chunk: int = 100) -> None:
    """Adds quotes start..stop-1 the way a reader does: synchronous adds, yielding between."""
    for i in range(start, stop, chunk):
        writer.add_many(
            tables.OPTION_QUOTES, "BTC", [quote(j) for j in range(i, min(stop, i + chunk))]
        )
        assert writer.buffered_rows <= writer.max_buffered_rows
        await asyncio.sleep(0.005)


async def test_outage_spools_with_bounded_memory_then_replays_exactly_once(
    db: str, private_cluster: PgCluster, tmp_path: Path
) -> None:
    spool = Spool(tmp_path, max_bytes=64 << 20, collector_name="ws-btc")
    writer = _writer(db, spool, status_file=tmp_path / "ws-btc.status.json")
    stop = asyncio.Event()
    task = asyncio.create_task(writer.run(stop))
    await _feed(writer, 0, 2000)
    await _eventually(lambda: _quote_count(db) == 2000)

    private_cluster.stop()
    await _feed(writer, 2000, 12_000)  # 10k rows against a dead database
    await _eventually(lambda: writer.status.rows_spooled >= 9000 and not writer.status.db_ok)
    assert writer.max_buffered_seen <= writer.max_buffered_rows
    assert spool.bytes_used > 0 and not writer.status.db_ok
    file = read_status_file(tmp_path / "ws-btc.status.json")
    assert file["last_flush_to"] == "spool" and file["spool_bytes"] > 0

    private_cluster.start()
    await _feed(writer, 12_000, 13_000)
    await _eventually(lambda: can_connect(db) and _quote_count(db) == 13_000)
    stop.set()
    await task
    assert fetch_rows(db, tables.OPTION_QUOTES) == [tuple(quote(i)) for i in range(13_000)]
    assert writer.status.rows_dropped == 0 and spool.is_empty
    assert query(db, "SELECT count(*) FROM spool_offsets")[0][0] == 0
    assert query(db, "SELECT count(*) FROM data_gaps")[0][0] == 0


async def test_full_spool_loses_exactly_the_window_recorded_in_data_gaps(
    db: str, private_cluster: PgCluster, tmp_path: Path
) -> None:
    frame = len(
        encode_frame(
            1, SpoolBatch("{cur}_option_quotes", "BTC", [tuple(quote(i)) for i in range(200)])
        )
    )
    spool = Spool(tmp_path, max_bytes=frame * 12, collector_name="ws-btc")  # ~2400 rows
    heard: list[GapRow] = []
    writer = _writer(db, spool, on_rows_lost=heard.append)
    stop = asyncio.Event()
    task = asyncio.create_task(writer.run(stop))
    await _feed(writer, 0, 1000)
    await _eventually(lambda: _quote_count(db) == 1000)
    private_cluster.stop()
    await _feed(writer, 1000, 9000)
    await _eventually(lambda: writer.status.rows_dropped > 0 and writer.buffered_rows == 0)
    private_cluster.start()
    await _eventually(lambda: can_connect(db) and spool.is_empty)
    await _feed(writer, 9000, 9500)
    stop.set()
    await task

    stored = {r[0] for r in fetch_rows(db, tables.OPTION_QUOTES)}
    want = {quote(i).timestamp: i for i in range(9500)}
    missing = sorted(want[t] for t in set(want) - stored)
    gaps = query(
        db, "SELECT table_name, scope, gap_start, gap_end, reason, repaired FROM data_gaps"
    )
    assert missing and len(missing) == writer.status.rows_dropped
    assert len(stored) == 9500 - len(missing) == _quote_count(db)  # nothing else lost or doubled
    for g in gaps:
        assert g[0:2] == ("btc_option_quotes", "spool_full") and g[4] == "spool full: rows dropped"
        assert g[5] is False
    in_a_gap = {i for i, t in enumerate(want) if any(g[2] <= t <= g[3] for g in gaps)}
    assert in_a_gap == set(missing)  # the windows are exactly the loss

    # `on_rows_lost` heard of every loss as the stored row (its key, its latest end) ...
    latest: dict[tuple[object, ...], GapRow] = {}
    for h in heard:
        key = (h.table_name, h.scope, h.gap_start, h.reason)
        if key not in latest or h.gap_end > latest[key].gap_end:
            latest[key] = h
    assert {(g[0], g[1], g[2], g[4]): g[3] for g in gaps} == {
        k: h.gap_end for k, h in latest.items()
    }
    # ... so a repairer writing that row again with repaired=True marks the stored one.
    repairer = _writer(db, None, collector_name="repairer")
    repairer.add_many(tables.DATA_GAPS, None, [h._replace(repaired=True) for h in latest.values()])
    await repairer.drain()
    after = query(db, "SELECT count(*), bool_and(repaired) FROM data_gaps")[0]
    assert after == (len(gaps), True)


def _run_spool_writer(db: str, spool_dir: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "tests.support.spool_writer", db, str(spool_dir), "kill-test"],
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def test_kill_9_mid_replay_then_restart_duplicates_nothing(db: str, tmp_path: Path) -> None:
    spool_dir = tmp_path / "spool"
    spool = Spool(spool_dir, max_bytes=1 << 30, collector_name="kill-test")
    n = 0
    for _ in range(300):
        rows = [tuple(quote(i)) for i in range(n, n + 100)]
        assert spool.append(SpoolBatch("{cur}_option_quotes", "BTC", rows))
        n += 100
    spool.close()

    proc = _run_spool_writer(db, spool_dir, tmp_path / "first.log")
    try:
        await _eventually(lambda: _quote_count(db) > 0 or proc.poll() is not None, timeout_s=60)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    killed_at = _quote_count(db)
    assert 0 < killed_at < n, "the kill must land mid-replay"
    offsets = query(
        db, "SELECT last_batch_seq FROM spool_offsets WHERE collector_name = 'kill-test'"
    )
    assert (
        len(offsets) == 1 and offsets[0][0] * 100 == killed_at
    )  # rows and offset committed together

    again = _run_spool_writer(db, spool_dir, tmp_path / "second.log")
    assert again.wait(timeout=120) == 0, (tmp_path / "second.log").read_text()
    out = (tmp_path / "second.log").read_text()
    assert "done" in out and "did not stop cleanly" in out
    assert fetch_rows(db, tables.OPTION_QUOTES) == [tuple(quote(i)) for i in range(n)]
    assert not list((spool_dir / "kill-test").glob("seg-*"))


async def test_torn_last_frame_is_ignored_on_replay(db: str, tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20, collector_name="ws-btc")
    for k in range(3):
        spool.append(
            SpoolBatch(
                "{cur}_option_quotes", "BTC", [tuple(quote(i)) for i in range(k * 10, k * 10 + 10)]
            )
        )
    spool.close()
    (segment,) = (tmp_path / "ws-btc").glob("seg-*.spool")
    torn = encode_frame(4, SpoolBatch("{cur}_option_quotes", "BTC", [tuple(quote(99))]))
    with segment.open("ab") as f:
        f.write(torn[: len(torn) // 2])

    reopened = Spool(tmp_path, max_bytes=1 << 20, collector_name="ws-btc")
    writer = _writer(db, reopened)
    assert await writer.flush()
    await writer.drain()
    assert fetch_rows(db, tables.OPTION_QUOTES) == [tuple(quote(i)) for i in range(30)]
    assert reopened.torn_frames == 1 and reopened.is_empty


async def test_drain_with_the_database_down_spools_and_the_next_writer_replays(
    db: str, private_cluster: PgCluster, tmp_path: Path
) -> None:
    status_file = tmp_path / "ws-btc.status.json"
    writer = _writer(
        db,
        Spool(tmp_path, max_bytes=1 << 26, collector_name="ws-btc"),
        status_file=status_file,
        max_buffered_rows=100_000,
    )
    writer.add_many(tables.OPTION_QUOTES, "BTC", [quote(i) for i in range(50)])
    assert await writer.flush()
    private_cluster.stop()
    writer.add_many(tables.OPTION_QUOTES, "BTC", [quote(i) for i in range(50, 3050)])
    started = time.monotonic()
    await writer.drain(deadline_s=3.0)
    assert time.monotonic() - started < 10  # bounded by the deadline, not by the outage
    assert writer.status.rows_spooled == 3000 and writer.buffered_rows == 0
    assert read_status_file(status_file)["state"] == "stopped"

    private_cluster.start()
    seen = []
    nxt = _writer(
        db,
        Spool(tmp_path, max_bytes=1 << 26, collector_name="ws-btc"),
        status_file=status_file,
        on_previous_run=seen.append,
    )
    assert await nxt.flush()
    await nxt.drain()
    assert fetch_rows(db, tables.OPTION_QUOTES) == [tuple(quote(i)) for i in range(3050)]
    assert not seen[0].unclean  # the status file knew of the clean stop the database missed
