"""The benchmark run: database, exchange, baselines, collector, natural mix, ramp, storage.

Every phase records what it measured in `Results`; a phase that fails records why and the
run carries on, so a missing or crashing collector still yields the machine's limits and a
table that says what could not be measured.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from psycopg import AsyncConnection

from bench import baselines, procstat, storage
from bench.lag import LagProbe
from bench.procs import CollectorProcess, ExchangeProcess
from bench.steps import Meter, StepResult, evaluate
from scripts.clock import SimClock
from scripts.storage.tables import OPTION_ORDERBOOK_DEPTH, OPTION_QUOTES, OPTION_TRADES

log = logging.getLogger(__name__)

CURRENCY = "BTC"
COLLECTOR_NAME = "ws-btc"
LAG_RATE = 5000.0  # the fixed rate the issue asks lag at
PRODUCTION_SNAPSHOT_INTERVAL_S = 300.0  # ORDERBOOK_SNAPSHOT_INTERVAL_S default, for sizing
READY_TIMEOUT_S = 180.0
MIX_WARMUP_S = 3.0
TABLES = [s.table_name(CURRENCY) for s in (OPTION_QUOTES, OPTION_TRADES, OPTION_ORDERBOOK_DEPTH)]


@dataclass
class BenchConfig:
    quick: bool = False
    expiries: int = 10
    strikes: int = 40
    book_rate_hz: float = 400.0  # natural book changes per second (the "real" mix)
    rates: tuple[float, ...] = (5000, 10000, 20000, 30000, 40000, 50000, 60000, 80000)
    lag_rate: float = LAG_RATE  # a step at this rate is always run (lag figures)
    step_s: float = 12.0
    mix_s: float = 20.0
    baseline_s: float = 5.0
    copy_rows: int = 200_000
    flush_interval_ms: int = 200
    # None: the collector's default (300 s), so REST book snapshots load it as in production
    snapshot_interval_s: float | None = None
    database_url: str | None = None
    profile: Path | None = None
    without_ivs: bool = False  # the collector without quote IV enrichment (bench.without_ivs)

    @classmethod
    def quick_settings(cls, **overrides: Any) -> BenchConfig:
        base: dict[str, Any] = {
            "quick": True,
            "rates": (5000, 10000, 20000, 40000),
            "step_s": 5.0,
            "mix_s": 5.0,
            "baseline_s": 3.0,
            "copy_rows": 60_000,
        }
        return cls(**{**base, **overrides})


@dataclass
class Results:
    meta: dict[str, Any] = field(default_factory=dict)
    mix: dict[str, Any] = field(default_factory=dict)
    steps: list[tuple[float, StepResult]] = field(default_factory=list)
    copy: dict[str, baselines.CopyRate] = field(default_factory=dict)
    drain_msgs_s: float | None = None
    peak_rss_bytes: int | None = None
    storage: list[storage.TableStorage] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


async def run_benchmark(cfg: BenchConfig) -> Results:
    res = Results()
    res.meta = {
        "quick": cfg.quick,
        "cpus": os.cpu_count(),
        "flush_interval_ms": cfg.flush_interval_ms,
        "step_s": cfg.step_s,
        "lag_rate": cfg.lag_rate,
        "book_rate_hz": cfg.book_rate_hz,
        "currency": CURRENCY,
        "loadavg_start": _loadavg(),
        "quote_ivs": not cfg.without_ivs,
    }
    started = time.monotonic()
    async with contextlib.AsyncExitStack() as stack:
        url = cfg.database_url or await _throwaway_database(stack)
        await asyncio.to_thread(_apply_schema, url)
        if cfg.database_url:
            await asyncio.to_thread(_refuse_if_not_empty, url)
        res.meta["edition"] = await asyncio.to_thread(storage.edition, url)
        exchange = await ExchangeProcess.start(
            expiries=cfg.expiries, strikes=cfg.strikes, book_rate_hz=cfg.book_rate_hz
        )
        stack.push_async_callback(exchange.stop)
        res.meta["options"] = exchange.ready["options"]
        channels = (await exchange.call("templates"))["channels"]
        await _drain_baseline(cfg, exchange, channels, res)
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="chaintape-bench-")))
        await _collector_phases(cfg, url, exchange, workdir, res)
        # After the collector: its start reads the newest stored trade, and COPY runs alone.
        await _copy_baseline(cfg, url, channels, res)
        await _storage(url, res)
        await asyncio.to_thread(baselines.drop_baseline_rows, url, TABLES)
    res.meta["elapsed_s"] = time.monotonic() - started
    res.meta["loadavg_end"] = _loadavg()
    return res


def _loadavg() -> str:
    """Other work on the machine skews every figure: the header shows the load averages."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


async def _throwaway_database(stack: contextlib.AsyncExitStack) -> str:
    from tests.support.pgcluster import PgCluster  # the repository's test cluster

    cluster = await asyncio.to_thread(PgCluster)
    stack.callback(cluster.destroy)
    return await asyncio.to_thread(cluster.create_database, "bench")


class NotScratchDatabase(Exception):
    """DATABASE_URL points at a database that already holds BTC option data."""


def _refuse_if_not_empty(url: str) -> None:
    """The benchmark writes synthetic quotes and compresses chunks: never over real data."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        for table in TABLES:
            row = conn.execute(f'SELECT 1 FROM "{table}" LIMIT 1').fetchone()
            if row is not None:
                raise NotScratchDatabase(
                    f"DATABASE_URL: {table} already has rows; point the benchmark at an empty "
                    "scratch database (it writes synthetic data and compresses chunks)"
                )


def _apply_schema(url: str) -> None:
    from scripts.storage.migrate import apply_schema

    apply_schema(url, [CURRENCY], schedule_policies=False)


async def _copy_baseline(cfg: BenchConfig, url: str, channels: list[str], res: Results) -> None:
    names = [c.split(".", 1)[1] for c in channels]
    try:
        res.copy = await asyncio.to_thread(
            baselines.copy_baselines, url, CURRENCY, names, cfg.copy_rows
        )
    except Exception as exc:
        res.missing.append(f"raw COPY baseline failed: {exc}")


async def _drain_baseline(
    cfg: BenchConfig, exchange: ExchangeProcess, channels: list[str], res: Results
) -> None:
    await exchange.set_rate(1e9)  # as fast as the client takes them
    try:
        res.drain_msgs_s = await asyncio.wait_for(
            baselines.drain_rate(exchange.ready["ws_url"], channels, cfg.baseline_s),
            cfg.baseline_s + 60,
        )
    except Exception as exc:
        res.missing.append(f"bare websockets drain failed: {exc!r}")
    finally:
        await exchange.set_rate(0)
    await _wait_sessions_gone(exchange)


async def _poll_exchange(
    exchange: ExchangeProcess, done: Callable[[dict[str, Any]], bool], timeout_s: float
) -> None:
    """Waits until `done(stats)` or the timeout; the exchange is another process, so poll."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if done(await exchange.call("stats")):
            return
        await asyncio.sleep(0.1)


async def _wait_sessions_gone(exchange: ExchangeProcess, timeout_s: float = 15) -> None:
    await _poll_exchange(exchange, lambda stats: stats["sessions"] == 0, timeout_s)


def collector_env(cfg: BenchConfig, url: str, exchange: ExchangeProcess, spool: Path) -> dict:
    ready = exchange.ready
    env = {
        "DATABASE_URL": url,
        "CURRENCY": CURRENCY,
        "DERIBIT_WS_URL": ready["ws_url"],
        "DERIBIT_REST_URL": ready["rest_url"],
        "DERIBIT_HISTORY_URL": ready["history_url"],
        "SIM_CLOCK": ready["sim_clock"],
        "FLUSH_INTERVAL_MS": str(cfg.flush_interval_ms),
        "SPOOL_DIR": str(spool),
        "LOG_LEVEL": "WARNING",
        "REST_REQUESTS_PER_S": "200",
        "REST_BURST": "200",
        "TRADE_REPAIR_MAX_AGE_S": "60",
    }
    if cfg.snapshot_interval_s is not None:
        env["ORDERBOOK_SNAPSHOT_INTERVAL_S"] = str(cfg.snapshot_interval_s)
    return env


async def _collector_phases(
    cfg: BenchConfig, url: str, exchange: ExchangeProcess, workdir: Path, res: Results
) -> None:
    env = collector_env(cfg, url, exchange, workdir / "spool")
    try:
        module = "bench.without_ivs" if cfg.without_ivs else None  # None: the collector
        collector = await CollectorProcess.start(
            env, workdir / "collector.log", cfg.profile, module
        )
    except Exception as exc:
        res.missing.append(f"the collector did not start: {exc!r}")
        return
    try:
        if not await _wait_ready(collector, exchange, url, res):
            return
        await _measure(cfg, url, exchange, collector, res)
    finally:
        code = await collector.stop()
        if code not in (0, None):
            res.missing.append(f"collector exited with {code}: {collector.log_tail(5)}")


async def _wait_ready(
    collector: CollectorProcess, exchange: ExchangeProcess, url: str, res: Results
) -> bool:
    """True once every option's quote channel is subscribed and the status row exists."""
    options = exchange.ready["options"]
    deadline = time.monotonic() + READY_TIMEOUT_S
    async with await AsyncConnection.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            if not collector.running:
                res.missing.append(
                    "the collector exited before subscribing "
                    f"(python -m scripts.ws_tick_collector_multi):\n{collector.log_tail()}"
                )
                return False
            stats = await exchange.call("stats")
            cur = await conn.execute(
                "SELECT 1 FROM collector_status WHERE collector_name = %s", (COLLECTOR_NAME,)
            )
            if stats["quote_channels"] >= options and await cur.fetchone():
                return True
            await asyncio.sleep(0.25)
    res.missing.append(f"the collector did not subscribe within {READY_TIMEOUT_S:.0f} s")
    return False


async def _measure(
    cfg: BenchConfig,
    url: str,
    exchange: ExchangeProcess,
    collector: CollectorProcess,
    res: Results,
) -> None:
    channels = (await exchange.call("channels"))["channels"]
    probes = [c.split(".", 1)[1] for c in channels[:: max(1, len(channels) // 8)]][:8]
    clock = SimClock.parse(exchange.ready["sim_clock"])
    probe = LagProbe(url, TABLES[0], probes, clock)
    stop = asyncio.Event()
    probe_ready = asyncio.Event()
    probe_task = asyncio.create_task(probe.run(stop, probe_ready))
    try:
        async with await AsyncConnection.connect(url, autocommit=True) as conn:
            await asyncio.wait_for(probe_ready.wait(), 30)
            row = await (await conn.execute("SELECT pg_backend_pid()")).fetchone()
            mine = {int(row[0])} if row else set()
            if probe.backend_pid is not None:
                mine.add(probe.backend_pid)
            db_cpu = procstat.PostgresCpu.from_backend_pid(next(iter(mine)), mine)
            if db_cpu is None:
                res.missing.append("database CPU: the server's processes are not visible here")
            meter = Meter(exchange, conn, COLLECTOR_NAME, collector.pid, db_cpu)
            res.mix = await _natural_mix(cfg, meter, exchange)
            for rate in sorted({*cfg.rates, cfg.lag_rate}):
                step = await _step(cfg, meter, exchange, probe, rate)
                res.steps.append((rate, step))
                if step.behind or not collector.running:
                    break
                await _settle(cfg, exchange)
            res.peak_rss_bytes = procstat.peak_rss_bytes(collector.pid)
    finally:
        stop.set()
        await exchange.set_rate(0)
        with contextlib.suppress(Exception):
            await probe_task


async def _natural_mix(cfg: BenchConfig, meter: Meter, exchange: ExchangeProcess) -> dict:
    """Rows/s per table of the market model alone (no extra quotes): the mix for sizing."""
    await exchange.set_rate(0)
    await asyncio.sleep(MIX_WARMUP_S)  # the start-up trade repair is not the market's mix
    a = await meter.snapshot()
    await asyncio.sleep(cfg.mix_s)
    b = await meter.snapshot()
    step = evaluate(a, b, None)
    return {
        "msgs_s": step.committed_msgs_s,
        "rows_s": step.rows_s,
        "options": exchange.ready["options"],
        "seconds": b.wall - a.wall,
    }


async def _step(
    cfg: BenchConfig, meter: Meter, exchange: ExchangeProcess, probe: LagProbe, rate: float
) -> StepResult:
    await exchange.set_rate(rate)
    await asyncio.sleep(min(2.0, cfg.step_s / 4))  # warm-up: queues fill to their steady level
    a = await meter.snapshot()
    await asyncio.sleep(cfg.step_s)
    b = await meter.snapshot()
    return evaluate(a, b, probe)


async def _settle(cfg: BenchConfig, exchange: ExchangeProcess, timeout_s: float = 20) -> None:
    """Between steps: no extra quotes until the exchange's queue is empty and a flush passed."""
    await exchange.set_rate(0)
    await _poll_exchange(exchange, lambda stats: stats["queued"] == 0, timeout_s)
    await asyncio.sleep(3 * cfg.flush_interval_ms / 1000.0)


async def _storage(url: str, res: Results) -> None:
    full = res.meta.get("edition") == "timescale"
    try:
        res.storage = await asyncio.to_thread(
            storage.measure, url, TABLES, compress=full, split=baselines.BASELINE_EPOCH
        )
    except Exception as exc:
        res.missing.append(f"storage could not be measured: {exc}")
