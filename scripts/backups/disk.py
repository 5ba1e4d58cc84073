"""Free space: the backup's own guard, and the growth projection the alert check uses.

`days_left` is pure: from samples (time, used bytes) of one filesystem it fits the growth rate
between the oldest and newest sample inside the window and says when the free space runs out.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

from scripts.backups.files import list_dumps
from scripts.backups.pgtools import BackupError

MB = 1024 * 1024


def free_bytes(path: Path) -> int:
    return int(shutil.disk_usage(path).free)


def last_dump_size(backup_dir: Path) -> int:
    """The newest finished dump's size (0 before the first)."""
    dumps = list_dumps(backup_dir)
    return dumps[-1][1].stat().st_size if dumps else 0


def check_room(backup_dir: Path, margin_mb: float) -> tuple[int, int]:
    """(free, needed) bytes; BackupError when the last dump plus the margin does not fit."""
    needed = last_dump_size(backup_dir) + int(margin_mb * MB)
    free = free_bytes(backup_dir)
    if free < needed:
        raise BackupError(
            f"not enough free space in {backup_dir}: {free / MB:.0f} MB free, the last dump "
            f"needed {(needed - margin_mb * MB) / MB:.0f} MB plus a margin of {margin_mb:.0f} MB "
            "(BACKUP_DISK_MARGIN_MB): free space or lower BACKUP_KEEP_*"
        )
    return free, needed


def days_left(
    samples: Sequence[tuple[float, int]], free_now: int, *, window_s: float = 7 * 86400.0
) -> float | None:
    """Days until `free_now` is used up at the growth of `used` bytes over the window's samples.

    None when it cannot tell (fewer than two samples at least an hour apart) or nothing grows.
    """
    if not samples:
        return None
    newest_t = max(t for t, _ in samples)
    recent = sorted((t, u) for t, u in samples if t >= newest_t - window_s)
    (t0, u0), (t1, u1) = recent[0], recent[-1]
    if t1 - t0 < 3600.0:
        return None
    rate = (u1 - u0) / (t1 - t0)  # bytes per second
    if rate <= 0:
        return None
    return free_now / rate / 86400.0
