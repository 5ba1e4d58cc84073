"""What `python -m scripts.verify` checks: per table and currency, how much data and how fresh.

The numbers come from the schema function `chaintape_verify()` (schema/006_verify.sql), which
`schema/verify.sql` also uses from psql, so both report the same thing.

Staleness: a (table, currency) row is stale when its newest `timestamp` is older than
`max_age_s` (STALE_AFTER_S, 900 s by default) plus the table's own cadence: options_greeks is
polled hourly and funding_rates published hourly, so they get an extra hour. An empty table is
reported as "empty" and counts as stale only with `require_all` (a fresh install, or a table
no collector of this deployment writes, is not an alarm by default).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import psycopg

CADENCE_SLACK_S = {"options_greeks": 3600.0, "funding_rates": 3600.0}


@dataclass(frozen=True, slots=True)
class TableCheck:
    table: str
    currency: str | None
    rows: int
    newest: datetime | None
    age_s: float | None  # seconds since `newest`; None when empty
    status: str  # "ok", "stale" or "empty"
    # full edition: the table's compressed chunks, their size before and after compression
    before_bytes: int | None
    after_bytes: int | None

    @property
    def ratio(self) -> float | None:
        if self.before_bytes and self.after_bytes:
            return self.before_bytes / self.after_bytes
        return None

    def as_json(self) -> dict[str, object]:
        out = asdict(self)
        out["newest"] = self.newest.isoformat() if self.newest else None
        out["ratio"] = None if self.ratio is None else round(self.ratio, 2)
        return out


def check_tables(conn: psycopg.Connection, *, max_age_s: float) -> list[TableCheck]:
    """Reads chaintape_verify() and judges each row; raises psycopg errors as they come."""
    rows = conn.execute(
        "SELECT table_name, currency, row_count, newest,"
        " extract(epoch FROM now() - newest)::float8, before_bytes, after_bytes"
        " FROM chaintape_verify()"
    ).fetchall()
    checks = []
    for table, currency, count, newest, age_s, before, after in rows:
        allowed = max_age_s + CADENCE_SLACK_S.get(table, 0.0)
        if not count:
            status = "empty"
        else:
            status = "stale" if age_s is not None and age_s > allowed else "ok"
        age = None if age_s is None else max(0.0, float(age_s))
        checks.append(TableCheck(table, currency, int(count), newest, age, status, before, after))
    return checks


def failing(checks: Sequence[TableCheck], *, require_all: bool = False) -> list[TableCheck]:
    """The checks that make verify exit 1."""
    bad = {"stale", "empty"} if require_all else {"stale"}
    return [c for c in checks if c.status in bad]


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m"
    if s < 172800:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    return f"{s // 86400}d{(s % 86400) // 3600:02d}h"


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    size, unit = float(n), "B"
    for bigger in ("kB", "MB", "GB", "TB"):
        if size < 1024:
            break
        size, unit = size / 1024, bigger
    return f"{n} B" if unit == "B" else f"{size:.1f} {unit}"


def format_table(checks: Sequence[TableCheck], *, show_compression: bool) -> str:
    """An aligned text table; compression columns only on the full edition."""
    header = ["table", "currency", "rows", "newest (UTC)", "age", "status"]
    if show_compression:
        header += ["before", "after", "ratio"]
    body = []
    for c in checks:
        line = [
            c.table,
            c.currency or "-",
            f"{c.rows:,}",
            c.newest.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if c.newest else "-",
            _age(c.age_s),
            c.status.upper() if c.status == "stale" else c.status,
        ]
        if show_compression:
            ratio = c.ratio
            line += [
                _size(c.before_bytes),
                _size(c.after_bytes),
                "-" if ratio is None else f"{ratio:.1f}x",
            ]
        body.append(line)
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    numeric = {"rows", "before", "after", "ratio", "age"}
    out = []
    for r in [header, *body]:
        cells = [
            cell.rjust(w) if header[i] in numeric else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(r, widths, strict=True))
        ]
        out.append("  ".join(cells).rstrip())
    return "\n".join(out)
