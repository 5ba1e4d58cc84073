"""Durability across database outages, end to end (the collector process, the fake exchange, a
private database cluster that stops under it): nothing lost over ten minutes, exactly the
windows in `data_gaps` beyond the spool, a start that waits for a database that is down, and
one line for a URL that can never work. Helpers: tests/support/durability.py."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg
import pytest

from scripts.collectors.rest.service import RestService
from scripts.funding_rates_collector import build_funding
from scripts.healthcheck import check as healthcheck_verdict
from scripts.storage.status import read_status_file, status_file_path
from tests.support.collector_proc import (
    start_database,
    stop_database,
    wait_exit,
)
from tests.support.durability import (
    MINUTE_WALL_S,
    NAME,
    QUOTES,
    TRADES,
    Collector,
    count,
    db_status,
    first_start_ms,
    market_cut_ms,
    quotes_caught_up,
)
from tests.support.pgcluster import PgCluster
from tests.support.realtime import (
    SPEED,
    assert_trades_exact,
    db_quotes,
    hour_market,
    query,
    sent_quotes,
    truth_trades,
    wait_for,
)
from tests.support.rest import fake_settings


# ---- 1. a database outage of ten simulated minutes during a busy feed --------------------------
async def test_database_outage_of_ten_minutes_loses_nothing_and_stays_healthy(
    db: str,
    private_cluster: PgCluster,
    tmp_path: Path,
    fake_hour: Any,
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
    fake_hour: Any,
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


# ---- 7. starting while the database is down, or with a URL that can never work ------------------
async def test_starts_wait_for_a_database_that_is_down_and_sigterm_ends_the_wait(
    db: str,
    private_cluster: PgCluster,
    tmp_path: Path,
    fake_hour: Any,
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
    fake_hour: Any,
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
