"""A small tmpfs of its own, for real out-of-space conditions (needs root, as CI runs)."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def small_tmpfs(path: Path, size: str) -> Iterator[Path]:
    """`path` mounted as a tmpfs of `size` (e.g. "4m"); unmounted on exit."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs for a real full-disk condition needs root")
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill_to(path: Path, free_bytes: int) -> None:
    """Writes a ballast file so that about `free_bytes` stay free on `path`'s filesystem."""
    stat = os.statvfs(path)
    free = stat.f_bavail * stat.f_frsize
    with (path / "ballast").open("wb") as f:
        f.write(b"\0" * max(0, free - free_bytes))
