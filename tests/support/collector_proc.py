"""The real-time collector as a separate process, seen from outside: spawn it, signal it, read
its memory from /proc, ask `python -m scripts.healthcheck` about it, and stop or start a
private database under it without blocking the event loop the fake exchange runs on."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.support.pgcluster import PgCluster

REPO_ROOT = Path(__file__).resolve().parents[2]


def spawn_collector(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`python -m scripts.ws_tick_collector_multi` with `env` over ours; output appends to `log`."""
    full = {**os.environ, **env, "PYTHONPATH": str(REPO_ROOT)}
    with log.open("ab") as out:  # the child keeps its own descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "scripts.ws_tick_collector_multi"],
            env=full,
            cwd=REPO_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def wait_exit(proc: subprocess.Popen[bytes], timeout_s: float) -> int:
    """The exit code, polled so the event loop (and the fake exchange on it) keeps running."""
    deadline = time.monotonic() + timeout_s
    while proc.poll() is None:
        if time.monotonic() > deadline:
            raise AssertionError(f"collector pid {proc.pid} still running after {timeout_s} s")
        await asyncio.sleep(0.05)
    return int(proc.returncode)


def kill_quietly(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait(10)


def proc_status_kb(pid: int, field: str) -> int:
    """A `kB` figure of /proc/<pid>/status, e.g. VmHWM (peak resident set) or VmRSS."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise KeyError(f"{field} not in /proc/{pid}/status")


async def healthcheck(spool_dir: Path, cwd: Path, **env: str) -> tuple[int, str]:
    """Runs `python -m scripts.healthcheck` as Docker would: exit code and its one line."""
    os.makedirs(cwd, exist_ok=True)  # a fresh directory: no .env is read
    full = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(REPO_ROOT),
        "SPOOL_DIR": str(spool_dir),
        "CURRENCY": "ETH",
        **env,
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "scripts.healthcheck",
        cwd=cwd,
        env=full,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    lines = out.decode().strip().splitlines()
    assert len(lines) == 1, (out, err)
    assert proc.returncode is not None
    return proc.returncode, lines[0]


async def stop_database(cluster: PgCluster, mode: str = "fast") -> None:
    await asyncio.to_thread(cluster.stop, mode)


async def start_database(cluster: PgCluster) -> None:
    await asyncio.to_thread(cluster.start)
