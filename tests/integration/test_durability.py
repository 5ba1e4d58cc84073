"""Durability end to end: the real collector process, the fake exchange and a real database
that stops under it. Nothing is lost across database outages, kills and SIGTERM, or the loss
is exactly what `data_gaps` records; memory stays bounded; the health check tells from outside.

Every test runs `python -m scripts.ws_tick_collector_multi` as a subprocess on the fake's
market clock (SIM_CLOCK, SPEED x wall time) against a private PostgreSQL cluster of this
module, so stopping the database cannot disturb other tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
import subprocess
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from scripts.clock import SimClock
from scripts.collectors.rest.service import RestService
from scripts.config import load_settings
from scripts.funding_rates_collector import build_funding
from scripts.healthcheck import check as healthcheck_verdict
from scripts.storage.migrate import apply_settings_schema
from scripts.storage.status import read_status_file, status_file_path
from tests.fake_deribit.market import DEFAULT_START_MS
from tests.fake_deribit.server import FakeDeribit
from tests.integration.rest_support import fake_settings
from tests.integration.test_realtime_collector import (
    SPEED,
    assert_trades_exact,
    collector_env,
    db_quotes,
    fake_hour,  # noqa: F401 (fixture)
    hour_market,
    query,
    quote_key,
    sent_quotes,
    truth_trades,
    wait_for,
)
from tests.support.collector_proc import (
    healthcheck,
    kill_quietly,
    proc_status_kb,
    spawn_collector,
    start_database,
    stop_database,
    wait_exit,
)
from tests.support.pgcluster import PgCluster
from tests.support.realtime import SIM_HEARTBEAT_SCALE

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


# ---- 1. a database outage of ten simulated minutes during a busy feed --------------------------
async def test_database_outage_of_ten_minutes_loses_nothing_and_stays_healthy(
    db: str,
    private_cluster: PgCluster,
    tmp_path: Path,
    fake_hour: Any,  # noqa: F811
    deployments: list[Collector],
) -> None:
    fake = await fake_hour(hour_market(listing_every_s=None, quote_rate_hz=20.0))
    c = Collector(fake, db, tmp_path, FLUSH_INTERVAL_MS="200")
    deployments.append(c)
    await c.apply_schema()
    await c.start()
    await asyncio.sleep(2 * MINUTE_WALL_S)
    await wait_for(lambda: c.status_file().get("last_flush_to") == "db", 30, "a flush")
    assert await c.health() == (0, "healthy")

    await stop_database(private_cluster, "immediate")  # like a crash of the database
    outage_start = fake.clock.now()
    await wait_for(
        lambda: c.status_file().get("last_flush_to") == "spool", 30, "flushes to the spool"
    )
    # Spooling loses nothing, so the collector is healthy: Docker must not restart it.
    # (Flushes to the spool come every round, or after a try of the database of up to 5 s.)
    assert await c.health(HEALTH_MAX_FLUSH_AGE_S="15") == (0, "healthy")
    remaining = 600.0 - (fake.clock.now() - outage_start)
    await asyncio.sleep(max(0.0, remaining) / SPEED)
    during = c.status_file()
    assert during["db_ok"] is False and during["spool_bytes"] > 0 and during["rows_spooled"] > 0
    await start_database(private_cluster)
    print(
        f"outage: {fake.clock.now() - outage_start:.0f} market s, {during['rows_spooled']} rows"
        f" spooled, {during['spool_bytes']} spool bytes"
    )

    await wait_for(lambda: c.status_file().get("spool_bytes") == 0, 60, "spool replayed")
    await asyncio.sleep(2 * MINUTE_WALL_S)
    cut_ms = market_cut_ms(fake)
    await quotes_caught_up(db, cut_ms)
    assert await c.health() == (0, "healthy")
    assert await c.stop() == 0

    # Trades: exactly the market's, from the first start's repair horizon to the cut.
    await assert_trades_exact(db, fake, await first_start_ms(db), cut_ms)
    # Quotes have no natural key: the spool's exactly-once replay is what keeps them exact.
    assert await db_quotes(db, cut_ms) == sent_quotes(fake, cut_ms)
    lost = await query(db, "SELECT table_name, reason FROM data_gaps WHERE NOT repaired")
    assert lost == []
    st = await db_status(db)
    rows = st["rows_by_table"]
    assert st["state"] == "stopped" and st["spool_bytes"] == 0 and st["rejected_total"] == 0
    assert rows[QUOTES] == await count(db, QUOTES)  # one run wrote every quote row
    assert st["messages_total"] >= rows[QUOTES] and st["reconnects"] == 0
    assert st["gaps_total"] == await count(db, "data_gaps")
    assert st["details"]["rows_spooled"] >= during["rows_spooled"]
    assert st["details"]["rows_dropped"] == 0
    assert await count(db, "spool_offsets") == 0
    code, line = await c.health()
    assert code == 1 and line.startswith(f"unhealthy: collector {NAME} stopped (pid ")


# ---- 1b. an outage longer than the spool holds ---------------------------------------------------
async def trade_loss_windows(db: str) -> list[tuple[int, int, bool]]:
    """The writer's `data_gaps` rows for trades it dropped: (start ms, end ms, repaired)."""
    rows = await query(
        db,
        "SELECT (extract(epoch from gap_start) * 1000)::bigint, "
        "(extract(epoch from gap_end) * 1000)::bigint, repaired FROM data_gaps "
        "WHERE table_name = %s AND scope = 'spool_full' ORDER BY gap_start",
        TRADES,
    )
    return [(int(r[0]), int(r[1]), bool(r[2])) for r in rows]


async def test_outage_beyond_the_spool_loses_exactly_the_windows_in_data_gaps(
    db: str,
    private_cluster: PgCluster,
    tmp_path: Path,
    fake_hour: Any,  # noqa: F811
    deployments: list[Collector],
) -> None:
    fake = await fake_hour(hour_market(listing_every_s=None, quote_rate_hz=20.0))
    spool_max = 60_000  # a few hundred rows: a small part of what ten minutes bring
    c = Collector(fake, db, tmp_path, FLUSH_INTERVAL_MS="200", SPOOL_MAX_BYTES=str(spool_max))
    deployments.append(c)
    await c.apply_schema()
    await c.start()
    await asyncio.sleep(2 * MINUTE_WALL_S)
    await wait_for(lambda: c.status_file().get("last_flush_to") == "db", 30, "a flush")

    await stop_database(private_cluster, "fast")
    outage_start = fake.clock.now()
    await wait_for(lambda: c.status_file().get("rows_dropped", 0) > 0, 60, "the spool full")
    remaining = 600.0 - (fake.clock.now() - outage_start)
    await asyncio.sleep(max(0.0, remaining) / SPEED)
    during = c.status_file()
    assert 0 < during["spool_bytes"] <= spool_max
    await start_database(private_cluster)
    await wait_for(lambda: c.status_file().get("spool_bytes") == 0, 60, "spool replayed")

    async def trades_repaired() -> bool:
        wins = await trade_loss_windows(db)
        return bool(wins) and all(w[2] for w in wins)

    # The trades the writer dropped are re-read through REST once the database takes writes.
    await wait_for(trades_repaired, 60, "the dropped trades re-read")
    await asyncio.sleep(2 * MINUTE_WALL_S)
    cut_ms = market_cut_ms(fake)
    await quotes_caught_up(db, cut_ms)
    assert await c.stop() == 0

    gaps = await query(
        db,
        "SELECT table_name, scope, (extract(epoch from gap_start) * 1000)::bigint, "
        "(extract(epoch from gap_end) * 1000)::bigint, reason, repaired FROM data_gaps "
        "WHERE NOT repaired ORDER BY gap_start",
    )
    print("windows lost:", *gaps, sep="\n  ")
    assert gaps and all(g[1] == "spool_full" and g[4] == "spool full: rows dropped" for g in gaps)

    def windows(table: str) -> list[tuple[int, int]]:
        return [(g[2], g[3]) for g in gaps if g[0] == table]

    def inside(ts: int, wins: list[tuple[int, int]], strict: bool = False) -> bool:
        return any((lo < ts < hi) if strict else (lo <= ts <= hi) for lo, hi in wins)

    # Quotes: nothing stored twice or invented; every quote missing is inside a recorded
    # window, and no stored quote is strictly inside one (a window may share its first or
    # last millisecond with a stored row: rows of one ms can straddle the moment it filled).
    sent = sent_quotes(fake, cut_ms)
    stored = await db_quotes(db, cut_ms)
    assert stored - sent == Counter()
    missing = sent - stored
    qwin = windows(QUOTES)
    assert missing and qwin
    assert [q for q in missing if not inside(q[1], qwin)] == []
    assert [q for q in stored if inside(q[1], qwin, strict=True)] == []
    # Trades have a repair path: what the writer dropped was re-read through REST once the
    # database was back, so they are exact, and the writer's loss rows say repaired.
    assert windows(TRADES) == []
    twin = await trade_loss_windows(db)
    assert twin and all(repaired for _, _, repaired in twin)
    lo_ms = await first_start_ms(db)
    await assert_trades_exact(db, fake, lo_ms, cut_ms)
    truth = truth_trades(fake, lo_ms, cut_ms)
    tspans = [(lo, hi) for lo, hi, _ in twin]
    dropped_trades = [i for i, t in truth.items() if inside(t["timestamp"], tspans)]
    assert dropped_trades  # the windows held trades, all of them stored now
    said = c.log.read_text()
    assert "that the writer had dropped" in said

    st = await db_status(db)
    dropped = st["details"]["rows_dropped"]
    print(
        f"spool {spool_max} bytes; dropped {dropped} rows: {sum(missing.values())} quotes lost; "
        f"{len(dropped_trades)} trades in {len(twin)} repaired windows"
    )
    assert dropped >= sum(missing.values())
    assert st["details"]["trade_repair"]["windows_failed"] == 0
    assert st["gaps_total"] >= len(gaps) and st["spool_bytes"] == 0


# ---- 2. SIGKILL at random points of a simulated hour ---------------------------------------------
def spool_files(c: Collector) -> list[Path]:
    return sorted((c.spool / NAME).glob("seg-*.spool"))


async def wait_replay_in_progress(db: str, timeout_s: float = 60.0) -> int:
    """Returns once a spool offset is committed: one is while a segment is being replayed
    (it is deleted when the segment is done). Polled often: a replay lasts about a second.
    Returns `collector_status.spool_bytes`, committed with the offset."""
    deadline = time.monotonic() + timeout_s
    async with await psycopg.AsyncConnection.connect(db, autocommit=True) as conn:
        while True:
            cur = await conn.execute(
                "SELECT s.spool_bytes FROM spool_offsets o JOIN collector_status s "
                "USING (collector_name) WHERE collector_name = %s",
                (NAME,),
            )
            row = await cur.fetchone()
            if row is not None:
                return int(row[0])
            if time.monotonic() > deadline:
                raise AssertionError("no spool replay seen")
            await asyncio.sleep(0.01)


@pytest.mark.slow
async def test_sigkill_at_random_points_of_an_hour_loses_no_trade_and_doubles_nothing(
    db: str,
    private_cluster: PgCluster,
    tmp_path: Path,
    fake_hour: Any,  # noqa: F811
    deployments: list[Collector],
) -> None:
    rng = random.Random(6)
    fake = await fake_hour(hour_market(listing_every_s=1200.0))
    # Tiny flush groups (8 rows) make a spool replay a hundred transactions long: a kill can
    # land in it.
    c = Collector(fake, db, tmp_path, FLUSH_INTERVAL_MS="200", FLUSH_MAX_ROWS="2")
    deployments.append(c)
    await c.apply_schema()
    hour_end = fake.clock.now() + 3600.0
    await c.start()
    kills: list[tuple[float, str]] = []  # market time of each kill, and what it interrupted

    async def kill(what: str) -> None:
        await c.kill()
        kills.append((fake.clock.now(), what))

    for what in ("running", "database down", "running", "running"):
        await asyncio.sleep(rng.uniform(1.5, 4.0))
        if what == "database down":
            await stop_database(private_cluster, rng.choice(("fast", "immediate")))
            await wait_for(lambda: c.status_file().get("rows_spooled", 0) >= 800, 60, "spooled")
            await asyncio.sleep(rng.uniform(0.0, 1.0))
        await kill(what)
        if len(kills) == 1:  # seen from outside: the flushes stopped
            await asyncio.sleep(1.5)
            code, line = await c.health(HEALTH_MAX_FLUSH_AGE_S="1")
            assert code == 1 and line.startswith("unhealthy: last flush "), line
        await asyncio.sleep(rng.uniform(0.2, 1.0))  # a minute or two without a collector
        if not private_cluster.running:
            left = {p.name: p.stat().st_size for p in spool_files(c)}
            assert left  # the killed process left its rows in the spool
            # A start while the database is still down waits for it, saying why (in the log
            # once, and to the health check), and leaves the spool alone meanwhile.
            waited_from = time.monotonic()
            await c.start(wait=False)
            await wait_for(
                lambda: (
                    c.status_file().get("pid") == c.pid
                    and c.status_file().get("state") == "waiting"
                ),
                60,
                "the start waiting for the database",
            )
            code, line = await c.health()
            assert code == 1 and line.startswith("unhealthy: waiting for the database: "), line
            assert "Connection refused" in line, line
            await asyncio.sleep(1.0)  # a few attempts
            assert c.proc is not None and c.proc.poll() is None
            assert {p.name: p.stat().st_size for p in spool_files(c)} == left
            said = [ln for ln in c.log.read_text().splitlines() if "waiting for the database" in ln]
            if time.monotonic() - waited_from < 50:  # (logged again once a minute)
                assert len(said) == 1 and " WARNING " in said[0], said
            await start_database(private_cluster)
            # Once the database answers, the waiting process replays the spool; kill it in the
            # middle of that replay.
            assert await wait_replay_in_progress(db) > 0  # the status says what waits
            await asyncio.sleep(rng.uniform(0.0, 0.1))
            await kill("spool replay")
            assert spool_files(c)  # the segment was not finished: the next start resumes it
            await asyncio.sleep(rng.uniform(0.2, 1.0))
        await c.start()
    await asyncio.sleep(max(0.0, hour_end - fake.clock.now()) / SPEED)
    cut_ms = market_cut_ms(fake)
    await quotes_caught_up(db, cut_ms)
    assert await c.stop() == 0
    print("kills (market s, during):", [(round(t - hour_end + 3600), w) for t, w in kills])
    assert len(kills) == 5

    await assert_trades_exact(db, fake, await first_start_ms(db), cut_ms)
    # Every start after a kill repaired trades from the newest stored one across the kill.
    starts = await query(
        db,
        "SELECT extract(epoch from gap_start), extract(epoch from gap_end) FROM data_gaps "
        "WHERE table_name = %s AND repaired AND reason LIKE 'collector start%%'",
        TRADES,
    )
    for at, what in kills:
        assert any(lo <= at <= hi for lo, hi in starts), (at, what, starts)
    # Quotes: the spool replayed exactly once across kills, one in its middle (nothing
    # doubled), and each quote lost with a killed process's memory is in a recorded window.
    sent = sent_quotes(fake, cut_ms)
    stored = await db_quotes(db, cut_ms)
    assert stored - sent == Counter()
    gaps = await query(
        db,
        "SELECT (extract(epoch from gap_start) * 1000)::bigint, "
        "(extract(epoch from gap_end) * 1000)::bigint FROM data_gaps "
        "WHERE table_name = %s AND NOT repaired",
        QUOTES,
    )
    lost = sent - stored
    print(
        f"quotes sent {sum(sent.values())}, stored {sum(stored.values())}; "
        f"{len(gaps)} windows recorded lost"
    )
    assert lost and [q for q in lost if not any(lo <= q[1] <= hi for lo, hi in gaps)] == []
    assert await count(db, "spool_offsets") == 0 and spool_files(c) == []
    st = await db_status(db)
    assert st["state"] == "stopped" and st["spool_bytes"] == 0


# ---- 3. SIGTERM during a burst -------------------------------------------------------------------
def quotes_of(facts: list[Any]) -> Counter[tuple[Any, ...]]:
    """The quotes among frames the fake sent (`truth.sent` items), as rows store them."""
    out: Counter[tuple[Any, ...]] = Counter()
    for f in facts:
        if f.channel.startswith("quote."):
            d = f.data
            out[
                quote_key(
                    d["instrument_name"],
                    d["timestamp"],
                    d["best_bid_price"],
                    d["best_bid_amount"],
                    d["best_ask_price"],
                    d["best_ask_amount"],
                )
            ] += 1
    return out


async def all_quotes(db: str) -> Counter[tuple[Any, ...]]:
    return await db_quotes(db, 4_000_000_000_000)  # year 2096


IN_FLIGHT_S = 0.5


async def sigterm_timed(c: Collector, deadline_s: float) -> tuple[int, float, int, int]:
    """SIGTERM; returns the exit code, the wall seconds it took, how many frames the fake had
    sent half a second before the signal went out, and how many when the process had exited.
    Frames sent between those two counts were in flight when intake stopped: not yet the
    collector's to keep, so no later check may expect them."""
    sent_at_signal = len(c.fake.truth.sent)
    await asyncio.sleep(IN_FLIGHT_S)
    started = time.monotonic()
    code = await c.stop(timeout_s=deadline_s + 60)
    return code, time.monotonic() - started, sent_at_signal, len(c.fake.truth.sent)


def received_quotes(sent: list[Any], windows: list[tuple[int, int]]) -> Counter[Any]:
    """The quotes among `sent[a:b]` for each (a, b): what the collector processes received."""
    return sum((quotes_of(sent[a:b]) for a, b in windows), Counter())


@pytest.mark.slow
async def test_sigterm_during_a_burst_exits_in_time_and_loses_nothing(
    db: str,
    private_cluster: PgCluster,
    tmp_path: Path,
    fake_hour: Any,  # noqa: F811
    deployments: list[Collector],
) -> None:
    fake = await fake_hour(
        hour_market(listing_every_s=None, quote_rate_hz=80.0, trade_rate_hz=20.0)
    )
    drain_s = 10.0
    # Seconds of rows wait in memory: the SIGTERM finds a burst to drain.
    c = Collector(
        fake,
        db,
        tmp_path,
        FLUSH_INTERVAL_MS="4000",
        FLUSH_MAX_ROWS="1000000",
        DRAIN_DEADLINE_S=str(drain_s),
    )
    deployments.append(c)
    await c.apply_schema()
    await c.start()
    await asyncio.sleep(2.0)
    code, took_s, n_sent, n_exit = await sigterm_timed(c, drain_s)
    windows = [(0, n_sent)]
    print(f"SIGTERM with the database up: exit {code} after {took_s:.1f} s")
    # The bound: intake stops (the collector's tasks get up to 10 s), a flush in flight ends
    # (at most 5 s waiting for a connection), then the drain of at most DRAIN_DEADLINE_S.
    assert code == 0 and took_s <= drain_s + 15.0
    sent_before = received_quotes(fake.truth.sent, windows)
    stored = await all_quotes(db)
    assert sent_before - stored == Counter()  # everything sent before the signal is stored
    assert stored - quotes_of(fake.truth.sent) == Counter()  # once

    # Again with the database down: the drain goes to the spool, the next start replays it.
    await c.start()
    await asyncio.sleep(1.0)
    await stop_database(private_cluster, "fast")
    await asyncio.sleep(1.5)
    code, took_s, n_sent, n_exit_2 = await sigterm_timed(c, drain_s)
    windows.append((n_exit, n_sent))
    n_exit = n_exit_2
    print(f"SIGTERM with the database down: exit {code} after {took_s:.1f} s")
    assert code == 0 and took_s <= drain_s + 15.0
    assert spool_files(c)
    assert c.status_file()["state"] == "stopped"
    await start_database(private_cluster)
    await c.start()
    await wait_for(lambda: not spool_files(c), 60, "the spool replayed")
    sent_before = received_quotes(fake.truth.sent, windows)
    stored = await all_quotes(db)
    assert sent_before - stored == Counter()
    code, took_s, n_sent, _ = await sigterm_timed(c, drain_s)
    windows.append((n_exit, n_sent))
    assert code == 0
    stored = await all_quotes(db)
    assert received_quotes(fake.truth.sent, windows) - stored == Counter()
    assert stored - quotes_of(fake.truth.sent) == Counter()
    # Trades: every one sent before the last signal is stored, once, with the market's fields.
    trade_ids = {r[0] for r in await query(db, f"SELECT trade_id FROM {TRADES}")}
    sent_trades = {
        t["trade_id"]: t["timestamp"]
        for f in fake.truth.sent[:n_sent]
        if f.channel.startswith("trades.")
        for t in f.data
        if t["instrument_name"].startswith("ETH-") and len(t["instrument_name"].split("-")) == 4
    }
    assert sent_trades and set(sent_trades) - trade_ids == set()
    # ... and so is every trade the market made up to the last one sent, whether the stream or
    # a start's repair brought it (the fake's clock runs ahead of what it has sent).
    await assert_trades_exact(db, fake, await first_start_ms(db), max(sent_trades.values()))
    drained = [ln.split(" INFO ")[-1] for ln in c.log.read_text().splitlines() if " drained " in ln]
    print(*drained, sep="\n")
    assert int(drained[0].split(" drained ")[1].split()[0]) > 1000  # the first SIGTERM's burst


# ---- 4. peak memory during a long outage ---------------------------------------------------------
RSS_SPEED = 240.0  # an hour of market in 15 wall seconds
MAX_BUFFERED_ROWS = 5_000
ROW_BYTES = 1024  # a generous in-memory size of one buffered row (tuple, datetimes, floats)
BASE_RSS_KB = 150_000  # interpreter, libraries, the option chain and the sockets


@pytest.mark.slow
async def test_peak_memory_during_a_long_outage_is_bounded_by_the_buffer_not_the_outage(
    db: str, private_cluster: PgCluster, tmp_path: Path, deployments: list[Collector]
) -> None:
    clock = SimClock.starting_now(DEFAULT_START_MS / 1000, RSS_SPEED)
    config = hour_market(listing_every_s=None, quote_rate_hz=20.0, trade_rate_hz=2.0)
    async with FakeDeribit(config, clock=clock, heartbeat_scale=SIM_HEARTBEAT_SCALE) as fake:
        env = {"WRITER_MAX_BUFFERED_ROWS": str(MAX_BUFFERED_ROWS), "FLUSH_INTERVAL_MS": "1000"}
        c = Collector(fake, db, tmp_path, **env)
        deployments.append(c)
        await c.apply_schema()
        await c.start()
        await asyncio.sleep(2.0)
        base_kb = proc_status_kb(c.pid, "VmHWM")

        await stop_database(private_cluster, "fast")
        outage_start = fake.clock.now()
        await wait_for(lambda: c.status_file().get("db_ok") is False, 60, "the outage noticed")

        async def after(wall_s: float) -> tuple[int, int, float]:
            """VmHWM (kB), rows spooled and the outage's market minutes, `wall_s` from now."""
            await asyncio.sleep(wall_s)
            st = c.status_file()
            assert st["db_ok"] is False and st["rows_dropped"] == 0
            minutes = (fake.clock.now() - outage_start) / 60
            return proc_status_kb(c.pid, "VmHWM"), st["rows_spooled"], minutes

        short_kb, short_rows, short_min = await after(4.0)
        # The long outage: until 30,000 more rows came (about an hour of this market).
        await wait_for(
            lambda: c.status_file().get("rows_spooled", 0) >= short_rows + 30_000, 120, "rows"
        )
        long_kb, long_rows, long_min = await after(0.0)
        long_bytes = c.status_file()["spool_bytes"]
        await start_database(private_cluster)
        replay_started = time.monotonic()
        await wait_for(lambda: c.status_file().get("spool_bytes") == 0, 120, "spool replayed")
        replay_s = time.monotonic() - replay_started
        replay_kb = proc_status_kb(c.pid, "VmHWM")
        assert await c.stop() == 0

    bound_kb = BASE_RSS_KB + MAX_BUFFERED_ROWS * ROW_BYTES // 1024
    print(
        f"\nVmHWM: {base_kb / 1024:.0f} MB before the outage, {short_kb / 1024:.0f} MB after "
        f"{short_min:.0f} market minutes ({short_rows} rows spooled), {long_kb / 1024:.0f} MB "
        f"after {long_min:.0f} ({long_rows} rows, {long_bytes / 2**20:.1f} MB spooled), "
        f"{replay_kb / 1024:.0f} MB after the replay ({replay_s:.1f} s); "
        f"bound {bound_kb / 1024:.0f} MB "
        f"(WRITER_MAX_BUFFERED_ROWS={MAX_BUFFERED_ROWS}, FLUSH_INTERVAL_MS=1000, "
        f"SPOOL_MAX_BYTES=1 GiB default, {RSS_SPEED:.0f}x market speed)"
    )
    assert long_rows >= short_rows + 30_000 and short_rows > 0
    # Had those rows stayed in memory, the peak would have grown by some 300 bytes each (a
    # row tuple with its datetimes and floats); it grows by less than half of that (what
    # does grow is bounded elsewhere: e.g. the trade ids remembered to tell repairs from
    # duplicates), and stays under the bound the configuration sets.
    grown_kb = long_kb - short_kb
    assert long_kb / short_kb < 1.25
    assert grown_kb * 1024 < 0.5 * 300 * (long_rows - short_rows), grown_kb
    assert long_kb <= bound_kb and replay_kb <= bound_kb


# ---- 6. health from outside ----------------------------------------------------------------------
async def test_health_check_from_outside_follows_the_exchange_and_the_process(
    db: str,
    tmp_path: Path,
    fake_hour: Any,  # noqa: F811
    deployments: list[Collector],
) -> None:
    fake = await fake_hour(hour_market(listing_every_s=None))
    c = Collector(fake, db, tmp_path, FLUSH_INTERVAL_MS="200")
    deployments.append(c)
    await c.apply_schema()
    await c.start()
    strict = {"HEALTH_MAX_DISCONNECTED_S": "2", "HEALTH_MAX_FLUSH_AGE_S": "2"}
    assert await c.health(**strict) == (0, "healthy")

    async def unhealthy_because(prefix: str) -> str:
        lines: list[str] = []

        async def says() -> bool:
            code, line = await c.health(**strict)
            lines.append(line)
            return code == 1 and line.startswith(prefix)

        await wait_for(says, 60, f"health check saying {prefix!r} (said {lines[-3:]})")
        return lines[-1]

    # The exchange refuses connections (503 on the upgrade): unhealthy after 2 s, although
    # the collector goes on flushing.
    fake.faults.refuse_connections_until = time.time() + 3600
    await fake.drop_all_connections()
    line = await unhealthy_because("unhealthy: not connected to Deribit for ")
    assert c.status_file()["last_flush_at"] > time.time() - 2
    print(line)
    fake.faults.refuse_connections_until = None
    await wait_for(lambda: c.status_file().get("connected") is True, 60, "reconnected")
    assert await c.health(**strict) == (0, "healthy")
    # The exchange is gone altogether (its port closed).
    await fake.stop()
    print(await unhealthy_because("unhealthy: not connected to Deribit for "))
    # The process is killed: its last flush grows old.
    await c.kill()
    print(await unhealthy_because("unhealthy: last flush "))
    st = await db_status(db)
    assert st["state"] == "running" and st["connected"] is False  # as the dead process left it
    assert st["reconnects"] >= 2 and st["gaps_total"] >= 1
    gaps = await query(db, "SELECT reason FROM data_gaps WHERE table_name = %s", QUOTES)
    assert any(r[0].startswith("websocket down") for r in gaps)


# ---- 7. starting while the database is down, or with a URL that can never work ------------------
async def test_starts_wait_for_a_database_that_is_down_and_sigterm_ends_the_wait(
    db: str,
    private_cluster: PgCluster,
    tmp_path: Path,
    fake_hour: Any,  # noqa: F811
    deployments: list[Collector],
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = await fake_hour(hour_market(listing_every_s=None))
    await stop_database(private_cluster, "fast")
    # The real-time collector: waits, unhealthy saying why, and SIGTERM ends the wait: exit 0.
    c = Collector(fake, db, tmp_path / "ws")
    deployments.append(c)
    c.log.parent.mkdir(parents=True)
    await c.start(wait=False)
    await wait_for(lambda: c.status_file().get("state") == "waiting", 60, "waiting")
    code, line = await c.health()
    assert code == 1 and line.startswith("unhealthy: waiting for the database: "), line
    assert await c.stop() == 0
    assert c.status_file()["state"] == "stopped"
    said = c.log.read_text()
    assert " ERROR " not in said and "waiting for the database: " in said
    assert fake.stats.connections == 0  # it collected nothing

    # A REST collector (funding) waits the same way, then collects once the database answers.
    settings = fake_settings(
        fake, db, tmp_path / "rest", CURRENCIES="ETH", FUNDING_BACKFILL_HOURS="2"
    )

    def rest_state() -> dict[str, Any]:
        path = status_file_path(settings.spool_dir, "funding")
        return read_status_file(path) if path.exists() else {}

    async def start_rest() -> tuple[asyncio.Event, asyncio.Task[int]]:
        stop = asyncio.Event()
        service = RestService(settings, "funding", build_funding, clock=fake.clock)
        task = asyncio.create_task(service.run(stop))
        await wait_for(lambda: rest_state().get("state") == "waiting", 60, "REST waiting")
        return stop, task

    stop, task = await start_rest()
    reason = healthcheck_verdict(settings, "funding")
    assert reason is not None and reason.startswith("waiting for the database: "), reason
    await asyncio.sleep(1.5)  # several attempts: logged once (then once a minute), quietly
    said = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.getMessage().split(": ")[1] for r in said] == ["waiting for the database"], said
    stop.set()
    assert await asyncio.wait_for(task, 30) == 0
    assert rest_state()["state"] == "stopped"

    stop, task = await start_rest()
    await start_database(private_cluster)

    async def funding_stored() -> bool:
        with contextlib.suppress(psycopg.Error):  # (the table comes with the schema)
            return await count(db, "funding_rates") > 0
        return False

    await wait_for(funding_stored, 60, "funding rates stored after the wait")
    assert rest_state()["state"] == "running" and rest_state()["db_ok"] is True
    assert healthcheck_verdict(settings, "funding") is None
    stop.set()
    assert await asyncio.wait_for(task, 60) == 0


async def test_a_database_url_that_can_never_work_exits_1_at_once_with_one_line(
    db: str,
    private_cluster: PgCluster,
    tmp_path: Path,
    fake_hour: Any,  # noqa: F811
    deployments: list[Collector],
) -> None:
    fake = await fake_hour(hour_market(listing_every_s=None))
    role, password = "chaintape_pw_test", "right-password-123"
    with psycopg.connect(private_cluster.url(), autocommit=True) as conn:
        conn.execute(f"DROP ROLE IF EXISTS {role}")
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
        hba = private_cluster.datadir / "pg_hba.conf"  # the cluster trusts everyone else
        if role not in hba.read_text():
            hba.write_text(f"host all {role} 127.0.0.1/32 scram-sha-256\n{hba.read_text()}")
        conn.execute("SELECT pg_reload_conf()")
    dbname = db.rsplit("/", 1)[1]
    cases = {
        "password": (
            private_cluster.url(dbname, user=role, password="wrong-password-456"),
            f'password authentication failed for user "{role}"',
        ),
        "database": (private_cluster.url("no_such_db"), 'database "no_such_db" does not exist'),
    }
    for case, (url, why) in cases.items():
        c = Collector(fake, url, tmp_path / case)
        deployments.append(c)
        c.log.parent.mkdir(parents=True)
        await c.start(wait=False)
        assert c.proc is not None and await wait_exit(c.proc, 60) == 1
        lines = c.log.read_text().splitlines()
        bad = [ln for ln in lines if " ERROR " in ln or " WARNING " in ln]
        assert len(bad) == 1 and " ERROR " in bad[0] and why in bad[0], lines
        assert "wrong-password-456" not in c.log.read_text()
        assert "waiting for the database" not in c.log.read_text()  # it did not wait
        print(bad[0])
    assert fake.stats.connections == 0
