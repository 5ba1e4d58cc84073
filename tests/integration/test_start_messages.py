"""What the first start says, and only when it is true: the GRAFANA_DB_PASSWORD note comes
once, from `python -m scripts.migrate`, and not at all once the role exists; a start that
cannot work mentions a spool left by an earlier run only when there is one; backfill chunks
each say what they read."""

from __future__ import annotations

import asyncio
import io
import os
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from scripts.collectors.backfill.job import Progress
from tests.fake_deribit.market import MarketConfig
from tests.support.pgcluster import PgCluster
from tests.support.realtime import sim_fakes

REPO_ROOT = Path(__file__).resolve().parents[2]
GOOD_PASSWORD = "grafana-reader-pass-1234"


async def run(
    module: str, env: dict[str, str], cwd: Path, timeout_s: float = 120
) -> tuple[int, str]:
    base = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(REPO_ROOT), "LOG_LEVEL": "INFO"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        cwd=cwd,
        env={**base, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout_s)
    return int(proc.returncode or 0), out.decode()


async def test_grafana_note_once_from_migrate_and_never_once_the_role_exists(
    pg_cluster: PgCluster, database_url: str, tmp_path: Path
) -> None:
    role = f"grafana_{uuid.uuid4().hex[:10]}"
    try:
        env = {"DATABASE_URL": database_url, "GRAFANA_DB_USER": role}
        code, out = await run("scripts.migrate", env, tmp_path)
        assert code == 0, out
        assert out.count("GRAFANA_DB_PASSWORD is not set") == 1, out
        code, out = await run(
            "scripts.migrate", {**env, "GRAFANA_DB_PASSWORD": GOOD_PASSWORD}, tmp_path
        )
        assert code == 0 and f"read-only role '{role}' granted SELECT" in out, out
        code, out = await run("scripts.migrate", env, tmp_path)  # no password: role exists
        assert code == 0, out
        assert "GRAFANA_DB_PASSWORD" not in out
        assert f"read-only role '{role}' exists (password kept)" in out
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
                conn.execute(f'DROP OWNED BY "{role}"')
                conn.execute(f'DROP ROLE "{role}"')


@pytest.fixture
async def make_fake() -> AsyncIterator[Callable[..., Any]]:
    async with sim_fakes(1.0) as make:
        yield make


async def test_a_start_that_cannot_work_mentions_the_spool_only_when_one_is_left(
    pg_cluster: PgCluster, make_fake: Any, tmp_path: Path
) -> None:
    fake = await make_fake(MarketConfig(currencies=("ETH",), expiries=1, strikes_per_expiry=2))
    url = pg_cluster.url("no_such_database_i12")
    for left in (False, True):
        spool = tmp_path / f"spool-{left}"
        if left:  # an earlier run's segment, as the spool keeps it
            (spool / "ws-eth").mkdir(parents=True)
            (spool / "ws-eth" / "seg-00000000000000000001.spool").write_bytes(b"x" * 100)
        env = {
            "DATABASE_URL": url,
            "CURRENCY": "ETH",
            "DERIBIT_WS_URL": fake.ws_url,
            "DERIBIT_REST_URL": fake.rest_url,
            "SIM_CLOCK": fake.sim_clock_spec(),
            "SPOOL_DIR": str(spool),
        }
        code, out = await run("scripts.ws_tick_collector_multi", env, tmp_path)
        assert code == 1, out
        errors = [ln for ln in out.splitlines() if " ERROR " in ln]
        assert len(errors) == 1 and 'database "no_such_database_i12" does not exist' in errors[0]
        assert ("a spool left by an earlier run, 100 bytes, waits on disk" in errors[0]) is left
        assert "spool left" not in out.replace(errors[0], "")


def test_each_backfill_chunk_says_what_it_read() -> None:
    out = io.StringIO()
    progress = Progress(out)
    progress.update("funding", "BTC", 1_735_689_600_000, 24, 0.5)
    progress.update("funding", "BTC", 1_735_776_000_000, 48, 1.0)
    assert out.getvalue().splitlines() == [
        "backfill funding BTC 2025-01-01T00:00Z 24 rows (+24 this chunk)",
        "backfill funding BTC 2025-01-02T00:00Z 48 rows (+24 this chunk)",
    ]


def test_retiring_a_currency_drops_its_tables_and_keeps_the_others(database_url: str) -> None:
    from scripts.storage.migrate import apply_schema

    apply_schema(database_url, ["BTC", "DOGE"], schedule_policies=False)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            'INSERT INTO btc_option_quotes ("timestamp", instrument_name) '
            "VALUES (now(), 'BTC-1JUN26-90000-C')"
        )
        row = conn.execute("SELECT chaintape_retire_currency('DOGE')").fetchone()
        assert row is not None
        assert {"doge_option_quotes", "doge_option_trades", "doge_option_orderbook_depth"} <= set(
            row[0]
        )
        assert conn.execute("SELECT to_regclass('doge_option_quotes')").fetchone() == (None,)
        assert conn.execute("SELECT currency FROM chaintape_currencies").fetchall() == [("btc",)]
        assert conn.execute("SELECT DISTINCT currency FROM option_quotes").fetchall() == [("BTC",)]
        # the last one too: the union views go with it
        conn.execute("SELECT chaintape_retire_currency('btc')")
        assert conn.execute("SELECT to_regclass('option_quotes')").fetchone() == (None,)
    apply_schema(database_url, ["BTC"], schedule_policies=False)  # and it can come back
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM option_quotes").fetchone() == (0,)
