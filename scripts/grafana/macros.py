"""Grafana's query-time expansion of a PostgreSQL panel's SQL, for tests and the benchmark.

Follows Grafana 12's order and semantics:
1. the frontend replaces template variables ($name, ${name}) and the built-ins $__interval,
   $__interval_ms, $__from, $__to: a single-value variable is inserted as is (quotes doubled),
   a multi-value or include-all variable as a comma-separated list of quoted literals
   (`SqlDatasource.interpolateVariable`);
2. the backend replaces $__interval_ms, $__interval, $__unixEpochFrom(), $__unixEpochTo()
   (`sqleng.Interpolate`);
3. the backend's macro engine replaces `$__name(args)`: $__time, $__timeEpoch, $__timeFilter,
   $__timeFrom, $__timeTo, $__timeGroup, $__timeGroupAlias, $__unixEpochFilter,
   $__unixEpochGroup(Alias) (pkg/tsdb/grafana-postgresql-datasource/macros.go, with
   `timescaledb: true`: $__timeGroup is `time_bucket('<seconds>s', col)`), including its rule
   that `$__timeGroup(...)` directly followed by a comma gets the `AS "time"` alias.
The interval is Grafana's: the range over the panel's max data points, rounded to a "nice"
step, at least the panel's min interval. Pure: no I/O.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

_UNITS_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
_INTERVAL = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)$")
_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)(?!\w|\()")
_MACRO = re.compile(r"\$([_a-zA-Z0-9]+)\(([^\)]*)\)")
# Grafana's roundInterval steps (public/app/core/utils/rangeutil, kbn.round_interval), in ms.
_NICE_MS = (
    (15, 10), (35, 20), (75, 50), (150, 100), (350, 200), (750, 500), (1_500, 1_000),
    (3_500, 2_000), (7_500, 5_000), (12_500, 10_000), (17_500, 15_000), (25_000, 20_000),
    (45_000, 30_000), (90_000, 60_000), (210_000, 120_000), (450_000, 300_000),
    (750_000, 600_000), (1_050_000, 900_000), (1_500_000, 1_200_000), (2_700_000, 1_800_000),
    (5_400_000, 3_600_000), (9_000_000, 7_200_000), (16_200_000, 10_800_000),
    (32_400_000, 21_600_000), (86_400_000, 43_200_000), (604_800_000, 86_400_000),
    (1_814_400_000, 604_800_000), (3_628_800_000, 2_592_000_000),
)  # fmt: skip


class MacroError(ValueError):
    """The SQL uses a macro Grafana does not know, or with bad arguments."""


@dataclass(frozen=True, slots=True)
class QueryContext:
    time_from: datetime  # timezone-aware
    time_to: datetime
    values: Mapping[str, str | Sequence[str]] = field(default_factory=dict)
    multi: frozenset[str] = frozenset()  # variables declared multi or include-all
    max_data_points: int = 1000


def parse_interval(text: str) -> float:
    """Seconds of a Grafana interval such as '1m', '30s', '500ms'."""
    match = _INTERVAL.match(text.strip().strip("'"))
    if not match:
        raise MacroError(f"not an interval: {text!r}")
    return float(match[1]) * _UNITS_S[match[2]]


def format_interval(seconds: float) -> str:
    """gtime.FormatInterval: the largest whole unit (ms, s, m, h, d, y)."""
    ms = round(seconds * 1000)
    for unit, size in (("y", 31_536_000_000), ("d", 86_400_000), ("h", 3_600_000),
                       ("m", 60_000), ("s", 1_000)):  # fmt: skip
        if ms >= size:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def panel_interval_s(ctx: QueryContext, min_interval: str | None) -> float:
    span_ms = (ctx.time_to - ctx.time_from).total_seconds() * 1000
    raw = span_ms / max(ctx.max_data_points, 1)
    nice = next((step for limit, step in _NICE_MS if raw < limit), 31_536_000_000)
    floor_s = parse_interval(min_interval) if min_interval else 0.001
    return max(nice / 1000, floor_s)


def _utc(ts: datetime) -> datetime:
    if ts.tzinfo is None:
        raise MacroError("times must be timezone-aware")
    return ts.astimezone(UTC)


def _rfc3339(ts: datetime) -> str:
    """Go's time.RFC3339Nano of a UTC time: no trailing zeros in the fraction, 'Z'."""
    t = _utc(ts)
    fraction = f".{t.microsecond:06d}".rstrip("0").rstrip(".")
    return t.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z"


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _variables(sql: str, ctx: QueryContext, interval_s: float) -> str:
    builtins = {
        "__interval": format_interval(interval_s),
        "__interval_ms": str(int(interval_s * 1000)),
        "__from": str(int(_utc(ctx.time_from).timestamp() * 1000)),
        "__to": str(int(_utc(ctx.time_to).timestamp() * 1000)),
    }

    def replace(match: re.Match[str]) -> str:
        name = match[1] or match[2]
        if name in builtins:
            return builtins[name]
        if name not in ctx.values:
            if name.startswith("__"):
                return match[0]  # a macro or another built-in: left to the backend
            raise MacroError(f"variable ${name} has no value")
        value = ctx.values[name]
        if isinstance(value, str):
            return _quote(value) if name in ctx.multi else value.replace("'", "''")
        if not value:
            raise MacroError(f"variable ${name} has no value selected")
        return ",".join(_quote(v) for v in value)

    return _VARIABLE.sub(replace, sql)


def _macro(name: str, args: list[str], ctx: QueryContext, following: str) -> str:
    frm, to = _utc(ctx.time_from), _utc(ctx.time_to)
    if name == "__timeGroup" and following.startswith(","):
        name = "__timeGroupAlias"  # Grafana's pre-5.3 compatibility rule
    if name in ("__time", "__timeEpoch", "__timeFilter", "__unixEpochFilter") and not args[0]:
        raise MacroError(f"missing time column argument for macro {name}")
    if name == "__time":
        return f'{args[0]} AS "time"'
    if name == "__timeEpoch":
        return f'extract(epoch from {args[0]}) as "time"'
    if name == "__timeFilter":
        return f"{args[0]} BETWEEN '{_rfc3339(frm)}' AND '{_rfc3339(to)}'"
    if name == "__timeFrom":
        return f"'{_rfc3339(frm)}'"
    if name == "__timeTo":
        return f"'{_rfc3339(to)}'"
    if name in ("__timeGroup", "__timeGroupAlias"):
        if len(args) < 2:
            raise MacroError(f"macro {name} needs time column and interval")
        expr = f"time_bucket('{parse_interval(args[1]):.3f}s',{args[0]})"
        return expr + (' AS "time"' if name == "__timeGroupAlias" else "")
    if name == "__unixEpochFilter":
        return f"{args[0]} >= {int(frm.timestamp())} AND {args[0]} <= {int(to.timestamp())}"
    if name in ("__unixEpochGroup", "__unixEpochGroupAlias"):
        if len(args) < 2:
            raise MacroError(f"macro {name} needs time column and interval")
        s = parse_interval(args[1])
        step = int(s) if s == math.floor(s) else s
        expr = f"floor(({args[0]})/{step})*{step}"
        return expr + (' AS "time"' if name == "__unixEpochGroupAlias" else "")
    raise MacroError(f"unknown macro {name!r}")


def expand(sql: str, ctx: QueryContext, *, min_interval: str | None = None) -> str:
    """The SQL Grafana sends to PostgreSQL for this panel query."""
    interval_s = panel_interval_s(ctx, min_interval)
    sql = _variables(sql, ctx, interval_s)
    sql = sql.replace("$__unixEpochFrom()", str(int(_utc(ctx.time_from).timestamp())))
    sql = sql.replace("$__unixEpochTo()", str(int(_utc(ctx.time_to).timestamp())))

    def replace(match: re.Match[str]) -> str:
        args = [a.strip() for a in match[2].split(",")]
        return _macro(match[1], args, ctx, match.string[match.end() :])

    return _MACRO.sub(replace, sql)
