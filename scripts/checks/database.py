"""Checks read from the database: stale tables, collectors that stopped reporting, backups and
restore tests, open gaps."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg

from scripts.checks import Findings
from scripts.config import Settings
from scripts.storage.verify_queries import check_tables

KIND_LABEL = {"backup": "backup", "restore_test": "restore test"}


def stale_tables(conn: psycopg.Connection, settings: Settings) -> Findings:
    """A table of a configured currency whose newest row is older than STALE_AFTER_S."""
    wanted = {c.code.upper() for c in settings.currencies}
    found = Findings()
    for c in check_tables(conn, max_age_s=settings.stale_after_s):
        if c.status == "stale" and (c.currency or "").upper() in wanted:
            found.problems.append(
                f"stale table: {c.table} ({c.currency}) newest row {_hours(c.age_s)} old "
                f"(STALE_AFTER_S={settings.stale_after_s:.0f})"
            )
    return found


def silent_collectors(conn: psycopg.Connection, settings: Settings) -> Findings:
    """A collector whose row says running but has not been updated for a flush period."""
    rows = conn.execute(
        "SELECT collector_name, extract(epoch FROM now() - updated_at)::float8"
        " FROM collector_status WHERE state = 'running'"
        " AND updated_at < now() - make_interval(secs => %s) ORDER BY collector_name",
        (settings.health_max_flush_age_s,),
    ).fetchall()
    return Findings(
        [
            f"collector {name}: no status update in the database for {age:.0f} s"
            for name, age in rows
        ]
    )


def backups(conn: psycopg.Connection, settings: Settings, now: datetime) -> Findings:
    """The last backup and restore test: failed, missing, or older than allowed."""
    found = Findings()
    limits = {
        "backup": (settings.check_backup_max_age_h, "CHECK_BACKUP_MAX_AGE_H"),
        "restore_test": (settings.check_restore_test_max_age_h, "CHECK_RESTORE_TEST_MAX_AGE_H"),
    }
    for kind, (max_h, name) in limits.items():
        label = KIND_LABEL[kind]
        last = conn.execute(
            "SELECT success, finished_at, error, file_name FROM backups WHERE kind = %s"
            " ORDER BY finished_at DESC LIMIT 1",
            (kind,),
        ).fetchone()
        ok = conn.execute(
            "SELECT max(finished_at) FROM backups WHERE kind = %s AND success", (kind,)
        ).fetchone()
        last_ok: datetime | None = ok[0] if ok else None
        if last is not None and not last[0]:
            found.problems.append(
                f"last {label} failed at {_stamp(last[1])}: {last[2] or 'no reason recorded'}"
            )
        elif last_ok is None:
            found.problems.append(f"no successful {label} recorded yet")
        elif (now - last_ok).total_seconds() > max_h * 3600:
            age = (now - last_ok).total_seconds() / 3600
            found.problems.append(f"last successful {label} is {age:.1f} h old ({name}={max_h:g})")
    return found


def open_gaps(conn: psycopg.Connection, settings: Settings) -> Findings:
    """Unrepaired gaps detected within CHECK_GAP_WINDOW_H, over CHECK_MAX_OPEN_GAPS."""
    rows = conn.execute(
        "SELECT table_name, count(*) FROM data_gaps WHERE repaired IS NOT TRUE"
        " AND coalesce(detected_at, gap_start) > now() - make_interval(secs => %s)"
        " GROUP BY table_name ORDER BY table_name",
        (settings.check_gap_window_h * 3600,),
    ).fetchall()
    total = sum(int(n) for _, n in rows)
    if total <= settings.check_max_open_gaps:
        return Findings()
    tables = ", ".join(f"{t} {n}" for t, n in rows)
    return Findings(
        [
            f"{total} unrepaired data gaps in the last {settings.check_gap_window_h:g} h "
            f"({tables}; CHECK_MAX_OPEN_GAPS={settings.check_max_open_gaps})"
        ]
    )


def _hours(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    return f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def _stamp(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
