"""Collector status: the counters a collector keeps, `collector_status` in the database, and a
small local JSON file so `python -m scripts.healthcheck` works without the database.

Counters are per process run (`started_at`); `collector_status` holds one row per collector.
On start, a row still in state 'running' means the previous process died without draining:
`previous_run` reports the window from its last flush to now, for which rows without a repair
path (quotes) are lost and belong in `data_gaps`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from scripts.clock import utc_from_s
from scripts.config import Settings
from scripts.models import GapRow
from scripts.storage.tables import TableSpec

STATUS_FILE_SUFFIX = ".status.json"
LOSS_SCOPE = "spool_full"
_TIME_COLUMNS = ("timestamp", "received_at", "last_seen", "detected_at")
PER_CURRENCY_KINDS = frozenset({"ws"})


def default_collector_name(kind: str, settings: Settings) -> str:
    """The collector's name: COLLECTOR_NAME when set, else `ws-btc` (per-currency kinds) or `kind`.

    Kinds: "ws" (real-time, one per currency: ws-btc, ws-eth, ws-sol), "rest" (the REST
    pollers: OHLCV, greeks, indices), "funding". The name keys `collector_status`,
    `spool_offsets`, the spool subdirectory and the status file.
    """
    if settings.collector_name:
        return settings.collector_name
    if kind in PER_CURRENCY_KINDS:
        if not settings.currencies:
            raise ValueError(f"collector kind {kind!r} needs a currency (CURRENCY)")
        return f"{kind}-{settings.currency.code.lower()}"
    return kind


def status_file_path(spool_dir: str | os.PathLike[str], collector_name: str) -> Path:
    return Path(spool_dir) / f"{collector_name}{STATUS_FILE_SUFFIX}"


def _iso(ts: float | None) -> datetime | None:
    return None if ts is None else utc_from_s(ts)


@dataclass(slots=True)
class WriterStatus:
    """What a collector and its writer count; the collector calls the `note_*` methods."""

    collector_name: str
    currency: str | None
    version: str
    hostname: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)
    started_at: float = field(default_factory=time.time)
    state: str = "running"
    connected: bool | None = None  # None: this collector has no exchange connection
    disconnected_since: float | None = None
    messages_total: int = 0
    rejected_total: int = 0
    reconnects: int = 0
    gaps_total: int = 0
    rows_by_table: dict[str, int] = field(default_factory=dict)
    duplicates_by_table: dict[str, int] = field(default_factory=dict)
    rows_spooled: int = 0
    rows_dropped: int = 0
    spool_bytes: int = 0
    last_message_at: float | None = None
    last_flush_at: float | None = None  # to the database or the spool
    last_db_flush_at: float | None = None
    last_flush_to: str | None = None  # "db" or "spool"
    db_ok: bool = False
    waiting_for_database: str | None = None  # why the start waits (state "waiting")
    problem: str | None = None  # why a running collector is unhealthy (no options, refused channel)
    details: dict[str, Any] = field(default_factory=dict)

    def note_messages(self, n: int = 1) -> None:
        self.messages_total += n
        self.last_message_at = time.time()

    def note_rejected(self, n: int = 1) -> None:
        self.rejected_total += n

    def note_reconnect(self) -> None:
        self.reconnects += 1

    def note_gap(self, n: int = 1) -> None:
        self.gaps_total += n

    def set_connected(self, connected: bool) -> None:
        if connected:
            self.disconnected_since = None
        elif self.connected is not False:
            self.disconnected_since = time.time()
        self.connected = connected

    def note_rows(self, table: str, written: int, duplicates: int = 0) -> None:
        self.rows_by_table[table] = self.rows_by_table.get(table, 0) + written
        if duplicates:
            self.duplicates_by_table[table] = self.duplicates_by_table.get(table, 0) + duplicates

    def file_dict(self) -> dict[str, Any]:
        return {
            "collector": self.collector_name,
            "currency": self.currency,
            "version": self.version,
            "pid": self.pid,
            "hostname": self.hostname,
            "state": self.state,
            "started_at": self.started_at,
            "last_flush_at": self.last_flush_at,
            "last_flush_to": self.last_flush_to,
            "last_db_flush_at": self.last_db_flush_at,
            "last_message_at": self.last_message_at,
            "connected": self.connected,
            "disconnected_since": self.disconnected_since,
            "db_ok": self.db_ok,
            "waiting_for_database": self.waiting_for_database,
            "problem": self.problem,
            "spool_bytes": self.spool_bytes,
            "rows_spooled": self.rows_spooled,
            "rows_dropped": self.rows_dropped,
            "updated_at": time.time(),
        }

    def db_params(self) -> dict[str, Any]:
        details = {
            **self.details,
            "duplicates_by_table": self.duplicates_by_table,
            "rows_spooled": self.rows_spooled,
            "rows_dropped": self.rows_dropped,
            "last_flush_to": self.last_flush_to,
        }
        return {
            "collector_name": self.collector_name,
            "currency": self.currency,
            "version": self.version,
            "hostname": self.hostname,
            "pid": self.pid,
            "state": self.state,
            "started_at": _iso(self.started_at),
            "last_flush_at": _iso(time.time()),
            "last_message_at": _iso(self.last_message_at),
            "connected": self.connected,
            "messages_total": self.messages_total,
            "rows_by_table": Jsonb(self.rows_by_table),
            "rejected_total": self.rejected_total,
            "reconnects": self.reconnects,
            "gaps_total": self.gaps_total,
            "spool_bytes": self.spool_bytes,
            "details": Jsonb(details),
        }


def write_status_file(path: Path, status: WriterStatus) -> None:
    """Writes the status file atomically (temp file + rename)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(status.file_dict()))
    os.replace(tmp, path)


def read_status_file(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text())
    if not isinstance(data, dict):
        raise ValueError("status file does not hold a JSON object")
    return data


def read_status_file_or_none(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    try:
        return read_status_file(path)
    except (OSError, ValueError):
        return None


_UPSERT_COLUMNS = (
    "collector_name",
    "currency",
    "version",
    "hostname",
    "pid",
    "state",
    "started_at",
    "last_flush_at",
    "last_message_at",
    "connected",
    "messages_total",
    "rows_by_table",
    "rejected_total",
    "reconnects",
    "gaps_total",
    "spool_bytes",
    "details",
)
UPSERT_STATUS_SQL = (
    f"INSERT INTO collector_status ({', '.join(_UPSERT_COLUMNS)}, updated_at) "
    f"VALUES ({', '.join(f'%({c})s' for c in _UPSERT_COLUMNS)}, now()) "
    "ON CONFLICT (collector_name) DO UPDATE SET "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in _UPSERT_COLUMNS[1:])
    + ", updated_at = now()"
)


async def upsert_status(conn: AsyncConnection[Any], status: WriterStatus) -> None:
    """Upserts this collector's row (inside the caller's transaction when there is one)."""
    await conn.execute(UPSERT_STATUS_SQL, status.db_params())


async def mark_stopped(conn: AsyncConnection[Any], status: WriterStatus) -> None:
    """Records a clean exit: state 'stopped' and the final counters."""
    status.state = "stopped"
    await upsert_status(conn, status)


@dataclass(frozen=True, slots=True)
class PreviousRun:
    """The previous process's row, read before this one overwrites it."""

    collector_name: str
    state: str
    pid: int | None
    hostname: str | None
    last_flush_at: datetime | None
    last_message_at: datetime | None
    detected_at: datetime

    @property
    def unclean(self) -> bool:
        return self.state == "running"

    @property
    def lost_window(self) -> tuple[datetime, datetime] | None:
        """(last flush, now) when the previous run died without draining, else None."""
        if not self.unclean:
            return None
        start = self.last_flush_at or self.last_message_at or self.detected_at
        return start, self.detected_at

    def gap_rows(self, tables: list[str], currency: str | None) -> list[GapRow]:
        """`data_gaps` rows for the lost window of each table that has no repair path."""
        window = self.lost_window
        if window is None:
            return []
        reason = f"unclean exit of {self.collector_name} (pid {self.pid} on {self.hostname})"
        return [
            GapRow(t, currency, "process", window[0], window[1], reason, False, self.detected_at)
            for t in tables
        ]


def amend_previous_run(prev: PreviousRun, file: dict[str, Any] | None) -> PreviousRun:
    """Corrects the database's view of the previous run with its local status file, which
    knows of a clean stop during an outage and of flushes to the spool after the last one to
    the database."""
    if not prev.unclean or not file or file.get("pid") != prev.pid:
        return prev
    if file.get("collector") != prev.collector_name:
        return prev
    if file.get("state") == "stopped":
        return dataclasses.replace(prev, state="stopped")
    flushed = file.get("last_flush_at")
    if isinstance(flushed, int | float):
        at = utc_from_s(flushed)
        if prev.last_flush_at is None or at > prev.last_flush_at:
            return dataclasses.replace(prev, last_flush_at=at)
    return prev


async def previous_run(conn: AsyncConnection[Any], collector_name: str) -> PreviousRun | None:
    cur = await conn.execute(
        "SELECT state, pid, hostname, last_flush_at, last_message_at FROM collector_status "
        "WHERE collector_name = %s",
        (collector_name,),
    )
    row = await cur.fetchone()
    if row is None:
        return None
    return PreviousRun(collector_name, row[0], row[1], row[2], row[3], row[4], datetime.now(UTC))


def record_loss(
    held: list[GapRow],
    open_windows: dict[str, datetime],
    spec: TableSpec,
    currency: str | None,
    rows: list[tuple],
    reason: str,
    now: datetime,
) -> tuple[GapRow, bool]:
    """Records dropped rows as a `data_gaps` window in `held`; returns the gap row that now
    covers them and True when it is a new row (False: an earlier row was extended).

    The window is the rows' min..max time. `open_windows` maps a table to the start of its
    current loss window: a loss that follows it in time extends it (an outage longer than the
    spool is one row, not one per batch); the caller closes the window (pops the table) as soon
    as a row of the table is stored again, so a window never spans a stored row.
    """
    table = spec.table_name(currency)
    ti = next((spec.columns.index(c) for c in _TIME_COLUMNS if c in spec.columns), None)
    times = [r[ti] for r in rows if r[ti] is not None] if ti is not None else []
    start, end = (min(times), max(times)) if times else (now, now)
    open_start = open_windows.get(table)
    for i, g in enumerate(held):
        if (g.table_name, g.gap_start, g.scope) == (table, open_start, LOSS_SCOPE):
            if start >= g.gap_end:
                held[i] = g._replace(gap_end=end)
                return held[i], False
            break
    row = GapRow(table, currency, LOSS_SCOPE, start, end, reason, False, now)
    held.append(row)
    if open_start is None or start >= open_start:
        open_windows[table] = start
    return row, True
