"""CPU time and peak memory of processes, read from /proc (Linux).

`process_cpu_s(pid)` is user+sys of a process and of its children (live ones, and those it
has waited for). `PostgresCpu` sums a PostgreSQL server: the postmaster's own and reaped
children's time plus every live backend's, so backends that exit between two readings are
still counted (their time moves into the postmaster's cutime/cstime).
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

PROC = Path("/proc")
CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name may contain spaces and parentheses: split after the last ')'.
    return text[text.rindex(")") + 2 :].split()


def _own_and_reaped(fields: list[str]) -> tuple[float, float]:
    """(user+sys of the process itself, user+sys of children it waited for), in seconds."""
    utime, stime, cutime, cstime = (int(fields[i]) for i in (11, 12, 13, 14))
    return (utime + stime) / CLK_TCK, (cutime + cstime) / CLK_TCK


def children_of() -> dict[int, list[int]]:
    """Parent pid -> live child pids, for every process we can read."""
    out: dict[int, list[int]] = defaultdict(list)
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is not None:
            out[int(fields[1])].append(int(entry.name))
    return out


def process_cpu_s(pid: int, *, exclude: frozenset[int] = frozenset()) -> float | None:
    """User+sys seconds of `pid` and all its descendants; None when it cannot be read."""
    fields = _stat_fields(pid)
    if fields is None:
        return None
    tree = children_of()
    total = 0.0
    stack = [pid]
    while stack:
        p = stack.pop()
        f = fields if p == pid else _stat_fields(p)
        if f is None:
            continue
        own, reaped = _own_and_reaped(f)
        if p not in exclude:
            total += own
        total += reaped
        stack.extend(tree.get(p, ()))
    return total


def peak_rss_bytes(pid: int) -> int | None:
    """VmHWM: the highest resident set size the process has had."""
    try:
        for line in (PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return None


def parent_pid(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[1]) if fields is not None else None


class PostgresCpu:
    """CPU seconds of a local PostgreSQL server, minus some backends (the benchmark's own)."""

    def __init__(self, postmaster_pid: int, exclude_backends: set[int]) -> None:
        self.postmaster_pid = postmaster_pid
        self.exclude = exclude_backends

    @classmethod
    def from_backend_pid(cls, backend_pid: int, exclude: set[int]) -> PostgresCpu | None:
        """The server a backend belongs to, or None if its processes are not visible here."""
        parent = parent_pid(backend_pid)
        if parent is None or _stat_fields(parent) is None:
            return None
        return cls(parent, exclude)

    def cpu_s(self) -> float | None:
        """Server CPU so far; excluded backends count only while alive (read them separately)."""
        return process_cpu_s(self.postmaster_pid, exclude=frozenset(self.exclude))

    def excluded_cpu_s(self) -> float:
        """CPU of the excluded backends (taken out of cpu_s, but reaped time still counts)."""
        total = 0.0
        for pid in self.exclude:
            fields = _stat_fields(pid)
            if fields is not None:
                total += _own_and_reaped(fields)[0]
        return total
