"""Issue 11 scenario 2: a spool whose disk fails (ENOSPC at open, write, fsync, rotation).

Whatever the disk does, every received row ends in exactly one place: the database (after the
outage, through the spool), or `rows_dropped` with its time inside a `data_gaps` window that
`on_rows_lost` heard of (trades are then re-read by REST). A real full filesystem (a tmpfs
mounted for the test, root only) and a fault hook at the OS-call boundary (`SpoolIO`) inject
the errors.
"""

from __future__ import annotations

import asyncio
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.models import GapRow
from scripts.storage import tables
from scripts.storage.spool import Spool, SpoolIO
from scripts.storage.writer import BatchWriter
from tests.support.pgcluster import PgCluster
from tests.support.realtime import wait_for
from tests.support.writer_db import can_connect, create_schema, query, quote, trade

N_ROWS = 3000


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


@pytest.fixture
def tiny_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A real filesystem that fills up: 96 kB and 5 inodes (root, spool dir, lock, 2 files)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root; the SpoolIO tests below inject the same errors")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=96k,nr_inodes=5,mode=0700", "tmpfs", str(mnt)],
        check=True,
    )
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


class FailingIO(SpoolIO):
    """Fails the n-th call of one OS function with ENOSPC (`fail_at`: {"fsync": [3, 7]})."""

    def __init__(self, fail_at: dict[str, list[int]]) -> None:
        self.fail_at = fail_at
        self.calls: dict[str, int] = {}
        self.failed: list[str] = []

    def _maybe_fail(self, name: str) -> None:
        n = self.calls[name] = self.calls.get(name, 0) + 1
        if n in self.fail_at.get(name, ()):
            self.failed.append(f"{name}#{n}")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def open(self, path: Path, flags: int, mode: int) -> int:
        self._maybe_fail("open")
        return super().open(path, flags, mode)

    def write(self, fd: int, data: bytes) -> int:
        self._maybe_fail("write")
        return super().write(fd, data)

    def fsync(self, fd: int) -> None:
        self._maybe_fail("fsync")
        super().fsync(fd)


def _writer(db: str, spool: Spool, lost: list[GapRow]) -> BatchWriter:
    return BatchWriter(
        db,
        collector_name="ws-btc",
        currency="BTC",
        version="test",
        flush_interval_ms=20,
        flush_max_rows=100,
        max_buffered_rows=400,
        spool=spool,
        retry_base_s=0.05,
        retry_max_s=0.3,
        db_timeout_s=5.0,
        on_rows_lost=lost.append,
    )


async def _outage_then_recovery(
    db: str, cluster: PgCluster, spool: Spool, spec: tables.TableSpec, make_row: object
) -> tuple[BatchWriter, list[GapRow]]:
    """N_ROWS rows received during an outage, then the database back until all is settled."""
    lost: list[GapRow] = []
    writer = _writer(db, spool, lost)
    stop = asyncio.Event()
    task = asyncio.create_task(writer.run(stop))
    cluster.stop()
    for i in range(0, N_ROWS, 50):
        writer.add_many(spec, "BTC", [make_row(j) for j in range(i, i + 50)])  # type: ignore[operator]
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.3)
    cluster.start()
    await wait_for(lambda: can_connect(db), 60, "the database accepting connections")
    await wait_for(
        lambda: writer.status.db_ok and spool.is_empty and writer.buffered_rows == 0,
        90,
        "the spool replayed",
    )
    stop.set()
    await task
    return writer, lost


def _assert_accounted(
    db: str, writer: BatchWriter, lost: list[GapRow], table: str, key: str
) -> None:
    stored = {r[0] for r in query(db, f"SELECT {key} FROM {table}")}
    n_stored = int(query(db, f"SELECT count(*) FROM {table}")[0][0])
    dropped = writer.status.rows_dropped
    print(f"\n{table}: received {N_ROWS}, stored {n_stored}, dropped {dropped}")
    assert n_stored == len(stored), "a row was written twice"
    assert n_stored + dropped == N_ROWS, "rows reached neither the database nor the loss count"
    assert dropped > 0, "the injected errors dropped nothing: the test did not test"
    gaps = query(
        db,
        "SELECT gap_start, gap_end FROM data_gaps WHERE table_name = %s AND scope = 'spool_full'",
        (table,),
    )
    heard = [(g.gap_start, g.gap_end) for g in lost]
    missing = [i for i in range(N_ROWS) if _key_of(table, i) not in stored]
    assert len(missing) == dropped
    for i in missing:
        t = quote(i).timestamp  # trade(i) has the same time
        assert any(a <= t <= b for a, b in gaps), f"dropped row {i} has no data_gaps window"
        assert any(a <= t <= b for a, b in heard), f"dropped row {i} never reached on_rows_lost"


def _key_of(table: str, i: int) -> object:
    return trade(i).trade_id if "trades" in table else quote(i).timestamp


async def test_full_tmpfs_at_open_write_and_rotation_leaves_every_row_accounted(
    db: str, private_cluster: PgCluster, tiny_tmpfs: Path
) -> None:
    spool = Spool(tiny_tmpfs, max_bytes=1 << 30, collector_name="ws-btc", segment_max_bytes=24_000)
    writer, lost = await _outage_then_recovery(
        db, private_cluster, spool, tables.OPTION_QUOTES, quote
    )
    _assert_accounted(db, writer, lost, "btc_option_quotes", '"timestamp"')


@pytest.mark.parametrize(
    "fail_at",
    [
        {"fsync": [2, 3, 9]},  # ENOSPC at fsync (an append's, and a rotation's)
        {"open": [2, 3]},  # ENOSPC creating a segment (at rotation)
        {"write": [4, 5, 6, 20]},
    ],
    ids=["fsync", "open", "write"],
)
async def test_spool_io_errors_leave_every_trade_accounted_and_repairable(
    db: str, private_cluster: PgCluster, tmp_path: Path, fail_at: dict[str, list[int]]
) -> None:
    io = FailingIO(fail_at)
    spool = Spool(
        tmp_path, max_bytes=1 << 30, collector_name="ws-btc", segment_max_bytes=30_000, io=io
    )
    writer, lost = await _outage_then_recovery(
        db, private_cluster, spool, tables.OPTION_TRADES, trade
    )
    assert io.failed, "no error was injected"
    _assert_accounted(db, writer, lost, "btc_option_trades", "trade_id")
