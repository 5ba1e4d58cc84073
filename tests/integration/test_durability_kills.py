"""Durability across kills, end to end: SIGKILL at random points of a simulated hour loses no
trade and doubles nothing; SIGTERM during a burst exits within the drain deadline and loses
nothing. Helpers: tests/support/durability.py."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.support.collector_proc import (
    start_database,
    stop_database,
)
from tests.support.durability import (
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
    quote_key,
    sent_quotes,
    wait_for,
)


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
    fake_hour: Any,
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
    fake_hour: Any,
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
