"""Disk safety on a real small filesystem, and retention in a real run."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

from scripts.backups.files import list_dumps, manifest_path, sha_path
from scripts.backups.jobs import run_backup
from scripts.backups.names import DumpName, parse_dump_name
from scripts.backups.retention import to_keep
from tests.support.backups import backup_settings, fill
from tests.support.tmpfs import fill_to, small_tmpfs

MB = 1024 * 1024


def test_backup_refuses_to_start_without_room_for_the_last_dump_plus_margin(
    database_url: str, tmp_path: Path
) -> None:
    fill(database_url, rows=20000)
    with small_tmpfs(tmp_path / "small", "8m") as backup_dir:
        settings = backup_settings(database_url, backup_dir, BACKUP_DISK_MARGIN_MB="2")
        first = run_backup(settings)
        assert first.success, first.error
        size = first.size_bytes or 0
        assert size > 100_000
        fill_to(backup_dir, size + MB)  # less than the last dump plus 2 MB
        refused = run_backup(settings)
        assert not refused.success
        assert refused.error is not None
        assert refused.error.startswith(f"not enough free space in {backup_dir}: ")
        assert "plus a margin of 2 MB" in refused.error
        assert [p.name for _, p in list_dumps(backup_dir)] == [first.file_name]
        assert not list(backup_dir.glob("*.tmp"))


def test_a_dump_that_fills_the_disk_fails_and_leaves_nothing_behind(
    database_url: str, tmp_path: Path
) -> None:
    fill(database_url, rows=20000)
    with small_tmpfs(tmp_path / "tiny", "8m") as backup_dir:
        fill_to(backup_dir, 60_000)  # enough for the (empty) margin check, not for the dump
        settings = backup_settings(database_url, backup_dir, BACKUP_DISK_MARGIN_MB="0")
        outcome = run_backup(settings)
        assert not outcome.success
        assert outcome.error is not None and "pg_dump failed" in outcome.error
        assert list_dumps(backup_dir) == []
        assert not list(backup_dir.glob("chaintape-*.dump*"))


def test_a_real_run_prunes_to_the_tiers(database_url: str, tmp_path: Path) -> None:
    fill(database_url, rows=50)
    backup_dir = tmp_path / "b"
    seed = run_backup(backup_settings(database_url, backup_dir))
    assert seed.success, seed.error
    real = backup_dir / str(seed.file_name)
    parsed = parse_dump_name(real.name)
    assert parsed is not None
    now = parsed.taken_at
    for days in range(1, 400):  # a year of earlier dumps (copies under earlier names)
        old = DumpName(parsed.database, now - timedelta(days=days), "2.19.3", 15)
        target = backup_dir / old.file_name
        shutil.copy(real, target)
        shutil.copy(sha_path(real), sha_path(target))
        shutil.copy(manifest_path(real), manifest_path(target))
    real.unlink()  # the seed's own day is taken by the run below
    sha_path(real).unlink()
    manifest_path(real).unlink()
    settings = backup_settings(
        database_url,
        backup_dir,
        BACKUP_KEEP_DAILY="3",
        BACKUP_KEEP_WEEKLY="2",
        BACKUP_KEEP_MONTHLY="4",
    )
    outcome = run_backup(settings)
    assert outcome.success, outcome.error
    before = [now - timedelta(days=d) for d in range(1, 400)]
    left = [name.taken_at for name, _ in list_dumps(backup_dir)]
    assert set(left) == to_keep([*before, left[-1]], daily=3, weekly=2, monthly=4)
    newest = left[-1]
    assert outcome.file_name == list_dumps(backup_dir)[-1][1].name
    days = {(newest - t).days for t in left if newest - t < timedelta(days=3)}
    assert days == {0, 1, 2}
    assert len({t.isocalendar()[:2] for t in left}) >= 2
    months = sorted({(t.year, t.month) for t in left})
    assert len(months) == 4
    assert len(left) <= 3 + 2 + 4
    assert len(outcome.details["pruned"]) == 400 - len(left)
    # every file of a pruned dump is gone
    assert len(list(backup_dir.glob("chaintape-*.dump*"))) == 3 * len(left)
    assert all(t.tzinfo == UTC for t in left) and newest <= datetime.now(UTC)
