"""A real database outage under the three long-running collectors (each its own process): every
one writes again within seconds of the database accepting connections, and the log says so in
three kinds of line per pool (the outage starts, once a minute while it lasts, it ends), with
a status line per STATUS_LOG_INTERVAL_S and no GRAFANA_DB_PASSWORD note from a collector.

The database is a private cluster of this module (stopping it must not disturb other tests);
the fake exchange runs at SPEED x wall time so the REST collectors have rows every second.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from scripts.config import load_settings
from scripts.storage.migrate import apply_settings_schema
from scripts.storage.status import read_status_file, status_file_path
from tests.fake_deribit.market import MarketConfig
from tests.fake_deribit.server import FakeDeribit
from tests.support.collector_proc import kill_quietly, start_database, stop_database, wait_exit
from tests.support.pgcluster import PgCluster
from tests.support.realtime import sim_fakes

REPO_ROOT = Path(__file__).resolve().parents[2]
SPEED = 60.0
OUTAGE_S = 70.0  # over a minute: one "still cannot connect" line is due
RECONNECT_WITHIN_S = 5.0  # the pool's reconnect delay is capped at 2 s; a busy box
WRITTEN_WITHIN_S = 20.0  # ... then a round: the outage's spool replayed, then the buffers
COMMANDS = {
    "ws-eth": "scripts.ws_tick_collector_multi",
    "rest": "scripts.collect_realtime",
    "funding": "scripts.funding_rates_collector",
}


@pytest.fixture(scope="module")
def private_cluster() -> Iterator[PgCluster]:
    cluster = PgCluster()
    try:
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
async def fake() -> AsyncIterator[FakeDeribit]:
    config = MarketConfig(currencies=("ETH",), expiries=2, strikes_per_expiry=3)
    async with sim_fakes(SPEED) as make:
        yield await make(config)


def spawn(module: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    full = {**os.environ, **env, "PYTHONPATH": str(REPO_ROOT)}
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", module], env=full, cwd=log.parent, stdout=out, stderr=out
        )


async def until(cond: Any, timeout_s: float, what: str, state: Any = None) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            seen = f": {state()}" if state else ""
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}{seen}")
        await asyncio.sleep(0.1)


def reconnected_after(text: str, back_at: float) -> float:
    """Seconds from `back_at` to the log's "connected again" line (its local-time stamp)."""
    line = next(ln for ln in text.splitlines() if "connected again after" in ln)
    stamp = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
    return stamp - back_at


def quotes(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM eth_option_quotes").fetchone()
    return int(row[0]) if row else 0


def status(spool: Path, name: str) -> dict[str, Any]:
    try:
        return read_status_file(status_file_path(spool, name))
    except (OSError, ValueError):
        return {}


async def test_every_collector_writes_within_seconds_of_the_database_coming_back(
    private_cluster: PgCluster, fake: FakeDeribit, tmp_path: Path
) -> None:
    db = private_cluster.create_database("outage")
    spool = tmp_path / "spool"
    env = {
        "DATABASE_URL": db,
        "CURRENCY": "ETH",
        "CURRENCIES": "ETH",
        "DERIBIT_WS_URL": fake.ws_url,
        "DERIBIT_REST_URL": fake.rest_url,
        "DERIBIT_HISTORY_URL": fake.history_url,
        "SIM_CLOCK": fake.sim_clock_spec(),
        "SPOOL_DIR": str(spool),
        "FLUSH_INTERVAL_MS": "200",
        "TRADE_REPAIR_MAX_AGE_S": "600",
        "STATUS_LOG_INTERVAL_S": "5",
        "DRAIN_DEADLINE_S": "10",
        "LOG_LEVEL": "INFO",
    }
    await apply_settings_schema(load_settings(env, need_currency="many"))
    logs = {name: tmp_path / f"{name}.log" for name in COMMANDS}
    procs = {name: spawn(COMMANDS[name], env, logs[name]) for name in COMMANDS}
    try:
        for name in COMMANDS:
            await until(
                lambda n=name: (
                    status(spool, n).get("last_flush_to") == "db"
                    and status(spool, n).get("last_db_flush_at")
                    and (n != "ws-eth" or quotes(db) > 0)  # collecting, past its start-up
                ),
                90,
                f"{name} writing to the database",
            )
        await stop_database(private_cluster, "fast")
        # a precondition, not a figure under test: generous for a loaded machine
        await until(
            lambda: all(status(spool, n).get("db_ok") is False for n in COMMANDS),
            90,
            "every collector noticing the outage",
            lambda: {n: status(spool, n).get("db_ok") for n in COMMANDS},
        )
        await asyncio.sleep(OUTAGE_S)
        await start_database(private_cluster)  # pg_ctl -w: returns once it accepts connections
        back_at = time.time()
        resumed: dict[str, float] = {}  # first write to the database after it came back
        replayed: dict[str, float] = {}  # ... and the outage's spool written too

        def all_resumed() -> bool:
            for n in COMMANDS:
                st = status(spool, n)
                at = st.get("last_db_flush_at")
                if isinstance(at, float | int) and at > back_at:
                    resumed.setdefault(n, at - back_at)
                    if st.get("spool_bytes") == 0:
                        replayed.setdefault(n, time.time() - back_at)
            return len(replayed) == len(COMMANDS)

        await until(all_resumed, 90, "every collector writing again")
        print(
            "\nfirst write after the database accepted connections: "
            + ", ".join(f"{n} {s:.1f} s" for n, s in sorted(resumed.items()))
            + "; spool replayed: "
            + ", ".join(f"{n} {s:.1f} s" for n, s in sorted(replayed.items()))
        )
        await asyncio.sleep(6)  # one more status line after the outage
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.terminate()
        for p in procs.values():
            try:
                await wait_exit(p, 60)
            finally:
                kill_quietly(p)
        if not private_cluster.running:
            private_cluster.start()
    reconnected = {n: reconnected_after(logs[n].read_text(), back_at) for n in COMMANDS}
    print(
        "pool connected again after the database accepted connections: "
        + ", ".join(f"{n} {s:.1f} s" for n, s in sorted(reconnected.items()))
    )
    for name in COMMANDS:
        text = logs[name].read_text()
        assert reconnected[name] <= RECONNECT_WITHIN_S, reconnected
        assert resumed[name] <= WRITTEN_WITHIN_S, resumed
        lines = text.splitlines()
        started = [ln for ln in lines if "cannot connect to the database" in ln]
        still = [ln for ln in lines if "still cannot connect after" in ln]
        ended = [ln for ln in lines if "connected again after" in ln]
        assert len(started) == 1, (name, started)
        assert len(still) == 1, (name, still)  # a 70 s outage: one line a minute
        assert len(ended) == 1, (name, ended)
        assert "error connecting in" not in text  # psycopg_pool's own two-line warnings
        assert "GRAFANA_DB_PASSWORD" not in text
        status_lines = [ln for ln in lines if f"status {name}: " in ln]
        assert len(status_lines) >= (OUTAGE_S // 5) - 2, name
        assert any("rows/s" in ln and "total)" in ln for ln in status_lines), name
        assert any("db down: spooling" in ln for ln in status_lines), name
        assert "spool " in status_lines[-1] and "REST " in status_lines[-1]
        if name == "ws-eth":
            assert any("lag p50 " in ln and " p99 " in ln for ln in status_lines)
            assert "reconnects " in status_lines[-1] and "open gaps" in status_lines[-1]
        else:
            assert "REST calls per simulated hour" in text  # on a simulated clock only
        if name == "funding":
            assert "funding ETH-PERPETUAL: start-up backfill read " in text
