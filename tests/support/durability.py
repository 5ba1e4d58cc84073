"""What the durability tests share: the real collector process (`Collector`) on the fake's
market clock against a private PostgreSQL cluster per test module, so stopping the database
cannot disturb other tests, and the checks they make of what it stored."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from scripts.config import load_settings
from scripts.storage.migrate import apply_settings_schema
from scripts.storage.status import read_status_file, status_file_path
from tests.fake_deribit.server import FakeDeribit
from tests.support.collector_proc import (
    healthcheck,
    kill_quietly,
    spawn_collector,
    wait_exit,
)
from tests.support.pgcluster import PgCluster
from tests.support.realtime import (
    SPEED,
    collector_env,
    query,
    wait_for,
)

NAME = "ws-eth"
QUOTES = "eth_option_quotes"
TRADES = "eth_option_trades"
MINUTE_WALL_S = 60.0 / SPEED  # one simulated minute in wall seconds


@pytest.fixture(scope="module")
def private_cluster() -> Iterator[PgCluster]:
    """A cluster of this module's own: the tests stop it, "immediate" (a crash) included.

    The test clusters run with synchronous_commit off, which lets a crash lose transactions
    the server already acknowledged; a real deployment keeps it on, and so does this one, so
    that what the collector was told is committed survives the crash."""
    cluster = PgCluster()
    with psycopg.connect(cluster.url(), autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET synchronous_commit = on")
        conn.execute("SELECT pg_reload_conf()")
    try:
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
def db(private_cluster: PgCluster, request: pytest.FixtureRequest) -> Iterator[str]:
    if not private_cluster.running:
        private_cluster.start()
    url = private_cluster.create_database(prefix=request.node.name[:20].lower())
    try:
        yield url
    finally:
        if not private_cluster.running:
            private_cluster.start()
        private_cluster.drop_database(url)


class Collector:
    """One collector deployment: its environment, spool, log, and the process of the moment."""

    def __init__(self, fake: FakeDeribit, db: str, tmp_path: Path, **env: str) -> None:
        self.fake = fake
        self.db = db
        self.spool = tmp_path / "spool"
        self.log = tmp_path / "collector.log"
        self.cwd = tmp_path / "health"
        self.env = collector_env(fake, db, self.spool, **env)
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    async def apply_schema(self) -> None:
        await apply_settings_schema(load_settings(self.env))

    async def start(self, *, wait: bool = True) -> None:
        before = self.fake.stats.connections
        self.proc = spawn_collector(self.env, self.log)
        self.starts += 1
        if wait:
            await self.wait_subscribed(before)
            await wait_for(
                lambda: (
                    self.status_file().get("pid") == self.pid
                    and self.status_file().get("last_flush_at") is not None
                ),
                60,
                "the first flush of this process",
            )

    async def wait_subscribed(self, connections_before: int) -> None:
        fake = self.fake
        await wait_for(
            lambda: (
                fake.stats.connections > connections_before
                and any(len(s.channels) > 4 for s in fake.sessions)
            ),
            60,
            "collector subscribed",
        )

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    async def stop(self, timeout_s: float = 60.0) -> int:
        self.signal(signal.SIGTERM)
        assert self.proc is not None
        return await wait_exit(self.proc, timeout_s)

    async def kill(self) -> None:
        self.signal(signal.SIGKILL)
        assert self.proc is not None
        await wait_exit(self.proc, 10)

    def close(self) -> None:
        if self.proc is not None:
            kill_quietly(self.proc)

    def status_file(self) -> dict[str, Any]:
        """The writer's local status file ({} before the first process wrote it)."""
        path = status_file_path(self.spool, NAME)
        return read_status_file(path) if path.exists() else {}

    async def health(self, **env: str) -> tuple[int, str]:
        return await healthcheck(self.spool, self.cwd, **env)


@pytest.fixture
async def deployments() -> AsyncIterator[list[Collector]]:
    made: list[Collector] = []
    yield made
    for c in made:
        c.close()


async def db_status(db: str) -> dict[str, Any]:
    rows = await query(
        db,
        "SELECT state, messages_total, rows_by_table, rejected_total, reconnects, gaps_total, "
        "spool_bytes, details, connected FROM collector_status WHERE collector_name = %s",
        NAME,
    )
    assert len(rows) == 1, rows
    keys = ["state", "messages_total", "rows_by_table", "rejected_total", "reconnects"]
    keys += ["gaps_total", "spool_bytes", "details", "connected"]
    return dict(zip(keys, rows[0], strict=True))


async def first_start_ms(db: str) -> int:
    """Where the first start's trade repair began: trades are exact from there on."""
    rows = await query(
        db,
        "SELECT min(gap_start) FROM data_gaps "
        "WHERE table_name = %s AND reason LIKE 'first start%%'",
        TRADES,
    )
    assert rows[0][0] is not None, "the first start repaired no trades"
    return int(rows[0][0].timestamp() * 1000)


async def count(db: str, table: str) -> int:
    return int((await query(db, f"SELECT count(*) FROM {table}"))[0][0])


async def quotes_caught_up(db: str, cut_ms: int) -> None:
    """Waits until a quote newer than `cut_ms` is stored: rows are written in the order they
    arrived, so every quote received up to the cut is stored (or recorded lost) by then."""

    async def past_cut() -> bool:
        rows = await query(db, f"SELECT max(timestamp) FROM {QUOTES}")
        return rows[0][0] is not None and rows[0][0].timestamp() * 1000 > cut_ms

    await wait_for(past_cut, 60, "a quote past the cut stored")


def market_cut_ms(fake: FakeDeribit, back_s: float = 10.0) -> int:
    return int((fake.clock.now() - back_s) * 1000)
