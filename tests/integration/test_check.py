"""`python -m scripts.check`: zero when all is well, and one readable line per problem for each
condition it watches, on real files, a real database and real (small) filesystems."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from scripts.backups.jobs import run_backup, run_restore_test
from scripts.check import run_checks
from scripts.checks.local import SAMPLES_FILE
from scripts.config import Settings, load_settings
from scripts.storage.migrate import apply_schema
from scripts.storage.status import WriterStatus, status_file_path, write_status_file
from tests.conftest import REPO_ROOT
from tests.support.tmpfs import small_tmpfs


@dataclass
class Deployment:
    env: dict[str, str]
    tmp: Path

    def settings(self, **extra: str) -> Settings:
        return load_settings({**self.env, **extra}, need_currency="many")

    def sql(self, statement: str, *params: object) -> None:
        with psycopg.connect(self.env["DATABASE_URL"], autocommit=True) as conn:
            conn.execute(statement, params or None)

    def problems(self, **extra: str) -> list[str]:
        return run_checks(self.settings(**extra)).problems


def _status_file(spool: Path, name: str, *, flushed_ago_s: float) -> None:
    status = WriterStatus(collector_name=name, currency="BTC", version="test")
    status.last_flush_at = time.time() - flushed_ago_s
    status.connected = True
    write_status_file(status_file_path(spool, name), status)


@pytest.fixture
def deployment(database_url: str, tmp_path: Path) -> Deployment:
    """Everything healthy: fresh rows of both currencies, a collector that just flushed, a
    backup and a restore test that just succeeded, plenty of disk."""
    apply_schema(database_url, ["btc", "eth"], schedule_policies=False)
    spool = tmp_path / "spool"
    spool.mkdir()
    _status_file(spool, "ws-btc", flushed_ago_s=1)
    env = {
        "DATABASE_URL": database_url,
        "CURRENCIES": "BTC,ETH",
        "SPOOL_DIR": str(spool),
        "BACKUP_DIR": str(tmp_path / "backups"),
        "BACKUP_DISK_MARGIN_MB": "1",
        "CHECK_MIN_FREE_MB": "1",
        "CHECK_DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock",
    }
    d = Deployment(env, tmp_path)
    for cur in ("btc", "eth"):
        d.sql(f"INSERT INTO {cur}_option_quotes (timestamp, instrument_name) VALUES (now(), 'X')")
    assert run_backup(d.settings()).success
    assert run_restore_test(d.settings()).success
    return d


def _cli(env: dict[str, str]) -> tuple[int, list[str]]:
    proc = subprocess.run(
        [sys.executable, "-m", "scripts.check"],
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(REPO_ROOT), **env},
        cwd=REPO_ROOT / "tests",
        capture_output=True,
        text=True,
        timeout=120,
    )
    return proc.returncode, proc.stdout.strip().splitlines()


def test_all_well_exits_zero_with_notes_for_what_it_could_not_check(
    deployment: Deployment,
) -> None:
    code, lines = _cli(deployment.env)
    assert code == 0, lines
    assert lines[-1] == "chaintape check: all well"
    assert f"note: Docker socket unix://{deployment.tmp}/no-docker.sock not mounted" in "\n".join(
        lines
    )
    assert not [ln for ln in lines if ln.startswith("PROBLEM")]


def test_stale_table_of_a_configured_currency(deployment: Deployment) -> None:
    deployment.sql("DELETE FROM eth_option_quotes")  # (an UPDATE may cross a chunk boundary)
    deployment.sql(
        "INSERT INTO eth_option_quotes (timestamp, instrument_name)"
        " VALUES (now() - interval '2 hours', 'X')"
    )
    assert deployment.problems(CURRENCIES="BTC") == []  # ETH not configured here
    code, lines = _cli(deployment.env)
    assert code == 1
    assert lines == [
        "PROBLEM: stale table: eth_option_quotes (ETH) newest row 2.0 h old (STALE_AFTER_S=900)",
        f"note: Docker socket unix://{deployment.tmp}/no-docker.sock not mounted: "
        "container restarts not checked",
        "note: CHECK_DB_VOLUME_PATH not set: the database volume's space not checked",
        "chaintape check: 1 problem(s)",
    ]


def test_unhealthy_collector_status_file(deployment: Deployment) -> None:
    _status_file(Path(deployment.env["SPOOL_DIR"]), "ws-eth", flushed_ago_s=600)
    assert deployment.problems() == ["collector ws-eth unhealthy: last flush 600 s ago (max 120 s)"]


def test_collector_that_stopped_reporting_to_the_database(deployment: Deployment) -> None:
    deployment.sql(
        "INSERT INTO collector_status (collector_name, state, updated_at)"
        " VALUES ('rest', 'running', now() - interval '10 minutes')"
    )
    [line] = deployment.problems()
    assert line.startswith("collector rest: no status update in the database for 60")


def test_failed_backup(deployment: Deployment) -> None:
    assert not run_backup(deployment.settings(PG_BIN_DIR=str(deployment.tmp / "nowhere"))).success
    [line] = deployment.problems()
    assert line.startswith("last backup failed at ")
    assert line.endswith(f"pg_dump not found in PG_BIN_DIR={deployment.tmp / 'nowhere'}")


def test_backup_too_old(deployment: Deployment) -> None:
    deployment.sql(
        "UPDATE backups SET finished_at = now() - interval '30 hours' WHERE kind = 'backup'"
    )
    assert deployment.problems() == [
        "last successful backup is 30.0 h old (CHECK_BACKUP_MAX_AGE_H=26)"
    ]


def test_failed_restore_test(deployment: Deployment) -> None:
    dump = next(Path(deployment.env["BACKUP_DIR"]).glob("*.dump"))
    dump.write_bytes(dump.read_bytes()[:-100])
    assert not run_restore_test(deployment.settings()).success
    [line] = deployment.problems()
    assert line.startswith("last restore test failed at ") and "checksum mismatch" in line


def test_restore_test_too_old(deployment: Deployment) -> None:
    deployment.sql(
        "UPDATE backups SET finished_at = now() - interval '9 days' WHERE kind = 'restore_test'"
    )
    assert deployment.problems() == [
        "last successful restore test is 216.0 h old (CHECK_RESTORE_TEST_MAX_AGE_H=192)"
    ]


def test_open_gaps_over_the_threshold(deployment: Deployment) -> None:
    for i in range(3):
        deployment.sql(
            "INSERT INTO data_gaps (table_name, scope, gap_start, gap_end, reason, repaired,"
            " detected_at) VALUES ('btc_option_trades', %s, now() - interval '1 hour',"
            " now(), 'disconnect', false, now())",
            f"BTC-X-{i}",
        )
    deployment.sql(
        "INSERT INTO data_gaps (table_name, scope, gap_start, reason, repaired, detected_at)"
        " VALUES ('btc_option_trades', 'old', now(), 'disconnect', true, now())"
    )
    assert deployment.problems(CHECK_MAX_OPEN_GAPS="3") == []
    assert deployment.problems() == [
        "3 unrepaired data gaps in the last 24 h (btc_option_trades 3; CHECK_MAX_OPEN_GAPS=0)"
    ]


def test_free_disk_below_the_minimum(deployment: Deployment) -> None:
    with small_tmpfs(deployment.tmp / "dbvol", "8m") as volume:
        problems = deployment.problems(CHECK_DB_VOLUME_PATH=str(volume), CHECK_MIN_FREE_MB="16")
    assert problems == [f"database volume {volume}: 8 MB free, below CHECK_MIN_FREE_MB=16"]


def test_disk_running_out_at_the_measured_growth(deployment: Deployment) -> None:
    with small_tmpfs(deployment.tmp / "small", "64m") as backup_dir:
        env = {"BACKUP_DIR": str(backup_dir)}
        assert deployment.problems(**env) == []  # first sample: no growth known yet
        samples = json.loads((backup_dir / SAMPLES_FILE).read_text())
        [(t, used)] = samples[str(backup_dir)]
        (backup_dir / "grown").write_bytes(b"\0" * (16 << 20))  # 16 MB in a day: 3 days left
        samples[str(backup_dir)] = [[t - 86400, used]]
        (backup_dir / SAMPLES_FILE).write_text(json.dumps(samples))
        [line] = deployment.problems(**env)
    assert line.startswith(f"BACKUP_DIR {backup_dir}: 48 MB free runs out in 3.0 days")
    assert line.endswith("at the measured growth (CHECK_DISK_DAYS=14)")


def test_unreachable_database_is_a_problem_not_a_crash(deployment: Deployment) -> None:
    code, lines = _cli({**deployment.env, "DATABASE_URL": "postgresql://x@127.0.0.1:1/none"})
    assert code == 1
    assert lines[0].startswith("PROBLEM: database unreachable or failing: ")
