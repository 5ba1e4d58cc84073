"""One measured step of the ramp: counters read before and after, turned into rates.

A step is behind when the exchange had to hold frames back (its queue to the collector is
full), when fewer messages were committed than offered, when the exchange's queue grew by more
than a second of traffic, or when lag grows during the step.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

from psycopg import AsyncConnection

from bench import procstat
from bench.lag import LagProbe, summarize

BEHIND_COMMITTED_SHARE = 0.9  # committed/offered below this: behind
BEHIND_WITHHELD_SHARE = 0.02
LAG_GROWTH_S = 1.0  # p50 lag of the step's last third above its first third by this: behind


@dataclass
class Snapshot:
    wall: float
    exchange: dict[str, Any]
    messages: int | None
    rows: dict[str, int]
    collector_cpu_s: float | None
    db_cpu_s: float | None


@dataclass
class StepResult:
    offered_msgs_s: float
    sent_msgs_s: float
    committed_msgs_s: float | None
    rows_s: dict[str, float]
    collector_us_per_msg: float | None
    db_us_per_row: float | None
    lag: dict[str, float]
    backlog_frames: int
    behind: bool
    reasons: list[str] = field(default_factory=list)

    @property
    def total_rows_s(self) -> float:
        return sum(self.rows_s.values())


async def read_status(conn: AsyncConnection[Any], collector: str) -> tuple[int | None, dict]:
    cur = await conn.execute(
        "SELECT messages_total, rows_by_table FROM collector_status WHERE collector_name = %s",
        (collector,),
    )
    row = await cur.fetchone()
    if row is None:
        return None, {}
    return (int(row[0]) if row[0] is not None else None), dict(row[1] or {})


class Meter:
    """Takes snapshots of the exchange, the collector's status row, and CPU counters."""

    def __init__(
        self,
        exchange: Any,
        conn: AsyncConnection[Any],
        collector_name: str,
        collector_pid: int | None,
        db_cpu: procstat.PostgresCpu | None,
    ) -> None:
        self.exchange = exchange
        self.conn = conn
        self.collector_name = collector_name
        self.collector_pid = collector_pid
        self.db_cpu = db_cpu

    async def snapshot(self) -> Snapshot:
        ex = await self.exchange.call("stats")
        messages, rows = await read_status(self.conn, self.collector_name)
        cpu = procstat.process_cpu_s(self.collector_pid) if self.collector_pid else None
        db = None
        if self.db_cpu is not None:
            total = self.db_cpu.cpu_s()
            db = None if total is None else total
        return Snapshot(time.time(), ex, messages, {k: int(v) for k, v in rows.items()}, cpu, db)


def evaluate(a: Snapshot, b: Snapshot, probe: LagProbe | None) -> StepResult:
    dt = max(1e-6, b.wall - a.wall)
    ea, eb = a.exchange, b.exchange
    offered = (eb["offered"] - ea["offered"]) / dt
    # frames through aiohttp (market model, replies) plus the blaster's direct writes
    sent = (eb["frames_sent"] - ea["frames_sent"] + eb["direct"] - ea["direct"]) / dt
    withheld = eb["withheld"] - ea["withheld"]
    msgs = None
    if a.messages is not None and b.messages is not None:
        msgs = b.messages - a.messages
    rows = {t: (b.rows.get(t, 0) - a.rows.get(t, 0)) / dt for t in b.rows}
    total_rows = sum(rows.values()) * dt
    cpu = _delta(a.collector_cpu_s, b.collector_cpu_s)
    db = _delta(a.db_cpu_s, b.db_cpu_s)
    lags = probe.lags_between(a.wall, b.wall) if probe else []
    reasons = []
    natural = max(0.0, sent - offered)
    if withheld > BEHIND_WITHHELD_SHARE * max(1.0, offered * dt):
        reasons.append(f"exchange held back {withheld} frames (queue to the collector full)")
    if msgs is not None and msgs / dt < BEHIND_COMMITTED_SHARE * (offered + natural):
        reasons.append(f"committed {msgs / dt:,.0f} msgs/s of {offered + natural:,.0f} offered")
    if eb["queued"] - ea["queued"] > offered:
        reasons.append(f"exchange backlog grew to {eb['queued']} frames")
    third = dt / 3
    early = summarize(probe.lags_between(a.wall, a.wall + third))["p50_s"] if probe else math.nan
    late = summarize(probe.lags_between(b.wall - third, b.wall))["p50_s"] if probe else math.nan
    if late > early + LAG_GROWTH_S:
        reasons.append(f"lag growing (p50 {early:.2f} s -> {late:.2f} s)")
    return StepResult(
        offered_msgs_s=offered,
        sent_msgs_s=sent,
        committed_msgs_s=None if msgs is None else msgs / dt,
        rows_s=rows,
        collector_us_per_msg=None if cpu is None or not msgs else cpu / msgs * 1e6,
        db_us_per_row=None if db is None or not total_rows else db / total_rows * 1e6,
        lag=summarize(lags),
        backlog_frames=int(eb["queued"]),
        behind=bool(reasons),
        reasons=reasons,
    )


def _delta(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else max(0.0, b - a)
