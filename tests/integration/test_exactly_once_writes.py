"""Issue 11 scenario 6: no row is written twice when a COMMIT's outcome is unknown, or when a
spool replay is cut short after the parts around a refused row.

A proxy on real sockets (tests.support.pg_proxy) lets the server commit and then loses, or
holds past the writer's wait, the answer; the writer must find out, not guess.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from scripts.storage import tables
from scripts.storage.spool import Spool, SpoolBatch
from scripts.storage.writer import BatchWriter
from tests.support.pg_proxy import CommitCutter
from tests.support.pgcluster import PgCluster
from tests.support.writer_db import create_schema, query, quote


def _writer(url: str, spool: Spool, **kw: object) -> BatchWriter:
    opts: dict[str, object] = {
        "collector_name": "ws-btc",
        "currency": "BTC",
        "version": "test",
        "flush_max_rows": 100,
        "spool": spool,
        "retry_base_s": 0.05,
        "retry_max_s": 0.2,
        "db_timeout_s": 2.0,
    }
    opts.update(kw)
    return BatchWriter(url, **opts)  # type: ignore[arg-type]


def _duplicates(db: str) -> tuple[int, int]:
    """(rows, rows that repeat another's instrument, timestamp and values)."""
    total, distinct = query(
        db,
        'SELECT count(*), count(DISTINCT (instrument_name, "timestamp", best_bid_price, '
        "best_bid_amount, best_ask_price, best_ask_amount, mark_price)) FROM btc_option_quotes",
    )[0]
    return int(total), int(total) - int(distinct)


async def _settle(writer: BatchWriter, spool: Spool) -> None:
    for _ in range(400):
        if await writer.flush() and spool.is_empty and writer.buffered_rows == 0:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the writer did not settle")


@pytest.mark.parametrize("mode", ["drop", "stall"])
async def test_unknown_commit_outcome_is_resolved_not_guessed(
    database_url: str, pg_cluster: PgCluster, tmp_path: Path, mode: str
) -> None:
    create_schema(database_url, ("BTC",))
    proxy = CommitCutter(pg_cluster.port, mode=mode, stall_s=4.0)
    await proxy.start()
    spool = Spool(tmp_path, max_bytes=1 << 26, collector_name="ws-btc")
    writer = _writer(proxy.url(database_url), spool)
    try:
        writer.add_many(tables.OPTION_QUOTES, "BTC", [quote(i) for i in range(100)])
        assert await writer.flush()
        proxy.armed = 1
        writer.add_many(tables.OPTION_QUOTES, "BTC", [quote(i) for i in range(100, 200)])
        assert not await writer.flush()  # the outcome of this COMMIT is unknown to the writer
        assert proxy.cut == 1
        await asyncio.sleep(4.5 if mode == "stall" else 0.3)
        writer.add_many(tables.OPTION_QUOTES, "BTC", [quote(i) for i in range(200, 300)])
        await _settle(writer, spool)
        await writer.drain()
    finally:
        await proxy.close()
    total, dups = _duplicates(database_url)
    print(f"\nCOMMIT answer {mode}: {total} quote rows, {dups} duplicates")
    assert (total, dups) == (300, 0)


async def test_replay_cut_short_after_parts_around_a_refused_row_writes_nothing_twice(
    database_url: str, pg_cluster: PgCluster, tmp_path: Path
) -> None:
    create_schema(database_url, ("BTC",))
    spool = Spool(tmp_path, max_bytes=1 << 26, collector_name="ws-btc")
    rows = [tuple(quote(i)) for i in range(400)]
    bad = list(rows[250])
    bad[1] = None  # instrument_name NOT NULL: the database refuses this row
    rows[250] = tuple(bad)
    for start in range(0, 400, 100):
        assert spool.append(SpoolBatch("{cur}_option_quotes", "BTC", rows[start : start + 100]))
    spool.seal()
    proxy = CommitCutter(pg_cluster.port, mode="drop")
    await proxy.start()
    writer = _writer(proxy.url(database_url), spool)
    try:
        # The whole group fails on row 250; the parts then commit one by one. Cut the answer of
        # the 4th COMMIT (status row, then parts) so the replay stops halfway through.
        proxy.armed = 0
        writer.add_many(tables.OPTION_QUOTES, "BTC", [])
        first_commits = proxy.commits_seen

        async def arm_later() -> None:
            while proxy.commits_seen < first_commits + 3:  # noqa: ASYNC110
                await asyncio.sleep(0.001)
            proxy.armed = 1

        arming = asyncio.create_task(arm_later())
        await writer.flush()
        arming.cancel()
        assert proxy.cut == 1, "the replay was not interrupted: the test did not test"
        await _settle(writer, spool)
        await writer.drain()
    finally:
        await proxy.close()
    total, dups = _duplicates(database_url)
    rejected = query(database_url, "SELECT count(*) FROM rejected_messages")[0][0]
    print(f"\nreplay cut after a refused row: {total} rows, {dups} duplicates, {rejected} rejected")
    assert (total, dups, rejected) == (399, 0, 1)
