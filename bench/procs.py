"""The benchmark's child processes: the exchange (bench.exchange, line-controlled)
and the real-time collector (python -m scripts.ws_tick_collector_multi, configured by env)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path
from typing import Any

import orjson

REPO_ROOT = Path(__file__).resolve().parents[1]
COLLECTOR_MODULE = "scripts.ws_tick_collector_multi"


class ExchangeProcess:
    """`python -m bench.exchange`; `call("stats")` sends a command, returns the reply."""

    def __init__(self, proc: asyncio.subprocess.Process, ready: dict[str, Any]) -> None:
        self.proc = proc
        self.ready = ready
        self._lock = asyncio.Lock()

    @classmethod
    async def start(cls, *, expiries: int, strikes: int, book_rate_hz: float) -> ExchangeProcess:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.exchange",
            "--expiries", str(expiries), "--strikes", str(strikes),
            "--book-rate-hz", str(book_rate_hz),
            cwd=REPO_ROOT, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 120)
        if not line:
            raise RuntimeError("the fake exchange exited before listening (see stderr)")
        return cls(proc, orjson.loads(line))

    async def call(self, command: str) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        async with self._lock:
            self.proc.stdin.write(command.encode() + b"\n")
            await self.proc.stdin.drain()
            line = await asyncio.wait_for(self.proc.stdout.readline(), 30)
        if not line:
            raise RuntimeError("the fake exchange exited")
        return dict(orjson.loads(line))

    async def set_rate(self, rate: float) -> None:
        await self.call(f"rate {rate}")

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            assert self.proc.stdin is not None
            self.proc.stdin.write(b"quit\n")
            await self.proc.stdin.drain()
        await _reap(self.proc, 20)


class CollectorProcess:
    """The collector under test; `profile` runs it under cProfile writing to that path."""

    def __init__(self, proc: asyncio.subprocess.Process, log_path: Path) -> None:
        self.proc = proc
        self.log_path = log_path

    @property
    def pid(self) -> int:
        return self.proc.pid

    @classmethod
    async def start(
        cls,
        env: dict[str, str],
        log_path: Path,
        profile: Path | None = None,
        module: str | None = None,
    ) -> CollectorProcess:
        args = ["-m", module or COLLECTOR_MODULE]
        if profile is not None:
            args = ["-m", "cProfile", "-o", str(profile), *args]
        full_env = {**os.environ, **env, "PYTHONPATH": str(REPO_ROOT)}
        with log_path.open("ab") as log:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, *args, cwd=REPO_ROOT, env=full_env,
                stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log,
            )  # fmt: skip
        return cls(proc, log_path)

    @property
    def running(self) -> bool:
        return self.proc.returncode is None

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    async def stop(self, timeout_s: float = 60) -> int | None:
        if self.running:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
        return await _reap(self.proc, timeout_s)


async def _reap(proc: asyncio.subprocess.Process, timeout_s: float) -> int | None:
    try:
        return await asyncio.wait_for(proc.wait(), timeout_s)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        return await proc.wait()
