"""`python -m scripts.healthcheck` as Docker runs it: a subprocess, exit 0/1 and one line."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scripts.storage import tables
from scripts.storage.spool import Spool
from scripts.storage.status import WriterStatus, status_file_path, write_status_file
from scripts.storage.writer import BatchWriter
from tests.support.pgcluster import free_port
from tests.support.writer_db import create_schema, quote

REPO = Path(__file__).resolve().parents[2]


def healthcheck(tmp_path: Path, *args: str, **env: str) -> tuple[int, str]:
    """Runs the health check in a clean environment (no .env: cwd is a fresh directory)."""
    cwd = tmp_path / "cwd"
    cwd.mkdir(exist_ok=True)
    full_env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(REPO), **env}
    proc = subprocess.run(
        [sys.executable, "-m", "scripts.healthcheck", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1, (proc.stdout, proc.stderr)
    return proc.returncode, lines[0]


def _seconds(line: str, pattern: str) -> int:
    """The number in a one-line verdict of the given shape (the clock moves during a test)."""
    regex = "unhealthy: " + re.escape(pattern).replace(r"\{\}", r"(\d+)")
    match = re.fullmatch(regex, line)
    assert match, line
    return int(match[1])


def _status(tmp_path: Path, name: str = "ws-btc", **fields: object) -> Path:
    status = WriterStatus(name, "BTC", "test")
    for key, value in fields.items():
        setattr(status, key, value)
    path = status_file_path(tmp_path, name)
    write_status_file(path, status)
    return path


def test_no_status_file_means_not_started(tmp_path: Path) -> None:
    code, line = healthcheck(tmp_path, SPOOL_DIR=str(tmp_path), COLLECTOR_NAME="ws-btc")
    path = status_file_path(tmp_path, "ws-btc")
    assert (code, line) == (1, f"unhealthy: no status file at {path}: collector not started")


def test_recent_flush_and_connected_is_healthy(tmp_path: Path) -> None:
    _status(tmp_path, last_flush_at=time.time() - 5, connected=True)
    assert healthcheck(tmp_path, SPOOL_DIR=str(tmp_path), CURRENCY="BTC") == (0, "healthy")


def test_old_flush_is_unhealthy_with_its_age(tmp_path: Path) -> None:
    _status(tmp_path, last_flush_at=time.time() - 312, connected=True)
    code, line = healthcheck(
        tmp_path, SPOOL_DIR=str(tmp_path), COLLECTOR_NAME="ws-btc", HEALTH_MAX_FLUSH_AGE_S="120"
    )
    assert code == 1 and 312 <= _seconds(line, "last flush {} s ago (max 120 s)") < 372


def test_disconnected_from_the_exchange_is_unhealthy(tmp_path: Path) -> None:
    now = time.time()
    _status(tmp_path, last_flush_at=now, connected=False, disconnected_since=now - 45)
    code, line = healthcheck(tmp_path, "ws", SPOOL_DIR=str(tmp_path), CURRENCY="BTC")
    assert code == 1 and 45 <= _seconds(line, "not connected to Deribit for {} s") < 105


def test_a_brief_disconnect_is_tolerated(tmp_path: Path) -> None:
    now = time.time()
    _status(tmp_path, last_flush_at=now, connected=False, disconnected_since=now - 3)
    assert healthcheck(tmp_path, SPOOL_DIR=str(tmp_path), CURRENCY="BTC") == (0, "healthy")


def test_rest_collector_without_an_exchange_connection_and_name_by_kind(tmp_path: Path) -> None:
    _status(tmp_path, "rest", last_flush_at=time.time(), connected=None)
    assert healthcheck(tmp_path, "rest", SPOOL_DIR=str(tmp_path)) == (0, "healthy")
    _status(tmp_path, "funding", last_flush_at=time.time() - 1000)
    code, line = healthcheck(tmp_path, "funding", SPOOL_DIR=str(tmp_path))
    assert code == 1 and 1000 <= _seconds(line, "last flush {} s ago (max 120 s)") < 1060


def test_stopped_and_unreadable_status(tmp_path: Path) -> None:
    _status(tmp_path, last_flush_at=time.time(), state="stopped")
    code, line = healthcheck(tmp_path, SPOOL_DIR=str(tmp_path), COLLECTOR_NAME="ws-btc")
    assert code == 1 and line.startswith("unhealthy: collector ws-btc stopped (pid ")
    status_file_path(tmp_path, "ws-btc").write_text("{not json")
    code, line = healthcheck(tmp_path, SPOOL_DIR=str(tmp_path), COLLECTOR_NAME="ws-btc")
    assert code == 1 and line.startswith("unhealthy: status file ") and "unreadable" in line


def test_waiting_for_the_database_at_start_is_unhealthy_with_the_reason(tmp_path: Path) -> None:
    why = 'connection to server at "127.0.0.1", port 5432 failed: Connection refused'
    _status(tmp_path, state="waiting", waiting_for_database=why)
    code, line = healthcheck(tmp_path, SPOOL_DIR=str(tmp_path), CURRENCY="BTC")
    assert (code, line) == (1, f"unhealthy: waiting for the database: {why}")


def test_which_collector_cannot_be_told(tmp_path: Path) -> None:
    _status(tmp_path, "rest", last_flush_at=time.time())
    _status(tmp_path, "funding", last_flush_at=time.time())
    code, line = healthcheck(tmp_path, SPOOL_DIR=str(tmp_path))
    assert code == 1 and line.endswith(": set COLLECTOR_NAME")


async def test_a_real_writer_is_healthy_on_the_database_then_on_its_spool(
    database_url: str, tmp_path: Path
) -> None:
    create_schema(database_url, ("BTC",))
    env = {"SPOOL_DIR": str(tmp_path), "COLLECTOR_NAME": "ws-btc", "HEALTH_MAX_FLUSH_AGE_S": "1"}
    writer = BatchWriter(
        database_url,
        collector_name="ws-btc",
        currency="BTC",
        version="test",
        status_file=status_file_path(tmp_path, "ws-btc"),
    )
    writer.status.set_connected(True)
    writer.add(tables.OPTION_QUOTES, "BTC", quote(1))
    assert await writer.flush()
    assert healthcheck(tmp_path, **env) == (0, "healthy")
    time.sleep(1.5)  # noqa: ASYNC251 - the health check must see the flush grow old
    code, line = healthcheck(tmp_path, **env)
    assert code == 1 and line.startswith("unhealthy: last flush ")
    await writer.drain()

    # The database is unreachable: a writer with a spool still flushes (to the spool).
    dead = f"postgresql://postgres@127.0.0.1:{free_port()}/none"
    spooled = BatchWriter(
        dead,
        collector_name="ws-eth",
        currency="ETH",
        version="test",
        spool=Spool(tmp_path, max_bytes=1 << 20, collector_name="ws-eth"),
        status_file=status_file_path(tmp_path, "ws-eth"),
        db_timeout_s=1.0,
    )
    spooled.add(tables.OPTION_QUOTES, "ETH", quote(2, "ETH-28MAR25-3000-C"))
    assert not await spooled.flush()
    eth = {**env, "COLLECTOR_NAME": "ws-eth", "HEALTH_MAX_FLUSH_AGE_S": "60"}
    assert healthcheck(tmp_path, **eth) == (0, "healthy")
    assert spooled.status.rows_spooled == 1
    await spooled.drain(deadline_s=1.0)


@pytest.mark.parametrize("kind, want", [("ws", "ws-sol"), ("rest", "rest"), ("funding", "funding")])
def test_default_collector_names(kind: str, want: str) -> None:
    from scripts.config import load_settings
    from scripts.storage.status import default_collector_name

    settings = load_settings({"CURRENCY": "SOL"}, need_currency="any", need_database=False)
    assert default_collector_name(kind, settings) == want
    named = load_settings({"COLLECTOR_NAME": "mine"}, need_currency="any", need_database=False)
    assert default_collector_name(kind, named) == "mine"
