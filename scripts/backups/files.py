"""Files in BACKUP_DIR: atomic writes (temporary name, fsync, rename, fsync of the directory),
checksums, the dumps present, and a lock so one backup or restore test runs at a time."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

from scripts.backups.names import (
    DUMP_SUFFIX,
    MANIFEST_SUFFIX,
    SHA_SUFFIX,
    TMP_SUFFIX,
    DumpName,
    parse_dump_name,
    parse_sha256_line,
)
from scripts.backups.pgtools import BackupError

LOCK_NAME = ".chaintape-backup.lock"
CHUNK = 1 << 20


def fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def tmp_path(final: Path) -> Path:
    return final.with_name(final.name + TMP_SUFFIX)


def commit(tmp: Path, final: Path) -> None:
    """fsync `tmp`, rename it to `final`, fsync the directory: all or nothing after a crash."""
    fsync_path(tmp)
    os.replace(tmp, final)
    fsync_path(final.parent)


def write_atomic(final: Path, text: str) -> None:
    tmp = tmp_path(final)
    tmp.write_text(text, encoding="utf-8")
    commit(tmp, final)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def sha_path(dump: Path) -> Path:
    return dump.with_name(dump.name + SHA_SUFFIX)


def manifest_path(dump: Path) -> Path:
    return dump.with_name(dump.name + MANIFEST_SUFFIX)


def verify_checksum(dump: Path) -> str:
    """The dump's sha256 when it matches its checksum file; BackupError otherwise."""
    if not dump.is_file():
        raise BackupError(f"{dump}: no such dump file")
    sidecar = sha_path(dump)
    try:
        expected = parse_sha256_line(sidecar.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BackupError(f"{dump.name}: checksum file {sidecar.name} is missing") from None
    except ValueError:
        raise BackupError(f"{dump.name}: checksum file {sidecar.name} is unreadable") from None
    actual = sha256_of(dump)
    if actual != expected:
        raise BackupError(
            f"{dump.name}: checksum mismatch (file {actual[:16]}..., {sidecar.name} says "
            f"{expected[:16]}...): the dump is damaged or incomplete, use another one"
        )
    return actual


def list_dumps(backup_dir: Path) -> list[tuple[DumpName, Path]]:
    """Finished dumps (renamed into place), oldest first."""
    if not backup_dir.is_dir():
        return []
    found = []
    for path in backup_dir.iterdir():
        parsed = parse_dump_name(path.name)
        if parsed is not None and path.is_file():
            found.append((parsed, path))
    return sorted(found, key=lambda item: item[0].taken_at)


def remove_dump(dump: Path) -> None:
    """A dump and its sidecars, the dump first: a half-removed set is no longer a dump."""
    for path in (dump, sha_path(dump), manifest_path(dump)):
        path.unlink(missing_ok=True)


def remove_leftovers(backup_dir: Path) -> list[Path]:
    """Temporary files of an interrupted run (the lock is held, so none is in use)."""
    removed = []
    for path in backup_dir.glob(f"*{TMP_SUFFIX}"):
        if path.name.startswith("chaintape-") or path.name.startswith(".chaintape"):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


@contextlib.contextmanager
def backup_lock(backup_dir: Path) -> Iterator[None]:
    """One backup or restore test at a time per BACKUP_DIR; BackupError when one is running."""
    backup_dir.mkdir(parents=True, exist_ok=True)
    with (backup_dir / LOCK_NAME).open("a") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BackupError(
                f"another backup or restore test is running in {backup_dir}"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def is_dump_file(path: Path) -> bool:
    return path.name.endswith(DUMP_SUFFIX)
