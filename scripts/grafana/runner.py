"""Runs a dashboard's variables and panels the way Grafana would, on a psycopg connection:
variables in order (each value chosen as a user would), then every panel's SQL, expanded by
`scripts.grafana.macros`. Used by the panel test and the benchmark."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from scripts.grafana.macros import QueryContext, expand

_RANGE = re.compile(r"^now-(\d+)([mhd])$")
_OPTION = re.compile(r"-\d+-[CP]$")


@dataclass(frozen=True, slots=True)
class PanelQuery:
    dashboard: str
    title: str
    repeat_value: str | None
    sql: str


def load(path: Path) -> dict[str, Any]:
    board: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return board


def default_range(board: dict[str, Any], end: datetime) -> tuple[datetime, datetime]:
    """The dashboard's default time range ("now-6h" to "now"), ending at `end`."""
    match = _RANGE.match(board["time"]["from"])
    if not match or board["time"]["to"] != "now":
        raise ValueError(f"unsupported default range {board['time']}")
    unit = {"m": "minutes", "h": "hours", "d": "days"}[match[2]]
    return end - timedelta(**{unit: int(match[1])}), end


def multi_names(board: dict[str, Any]) -> frozenset[str]:
    return frozenset(
        v["name"] for v in board["templating"]["list"] if v["multi"] or v["includeAll"]
    )


def _choose(conn: psycopg.Connection, var: dict[str, Any], rows: list[tuple[Any, ...]]) -> Any:
    """What a user would pick: the first values; for an option, the most quoted one."""
    values = [str(r[0]) for r in rows]
    if var["name"] == "instrument" and all(_OPTION.search(v) for v in values):
        quoted = conn.execute(
            "SELECT instrument_name FROM option_quotes_1m WHERE instrument_name = ANY(%s)"
            " GROUP BY 1 ORDER BY count(*) DESC LIMIT 1",
            (values,),
        ).fetchone()
        return quoted[0] if quoted else values[0]
    return values[:2] if var["multi"] else values[0]


def resolve_variables(
    conn: psycopg.Connection, board: dict[str, Any], start: datetime, end: datetime
) -> tuple[dict[str, Any], list[str]]:
    """Each variable's chosen value, and the expanded SQL of each variable query.

    Raises LookupError naming a variable whose query returned nothing."""
    values: dict[str, Any] = {}
    sqls = []
    for var in board["templating"]["list"]:
        sql = expand(var["query"], QueryContext(start, end, values, multi_names(board)))
        sqls.append(sql)
        rows = conn.execute(sql.encode()).fetchall()
        if not rows:
            raise LookupError(f"{board['title']}: variable {var['name']} has no values")
        values[var["name"]] = _choose(conn, var, rows)
    return values, sqls


def panel_queries(
    board: dict[str, Any], values: dict[str, Any], start: datetime, end: datetime
) -> Iterator[PanelQuery]:
    """Every panel target's SQL as Grafana sends it; repeated panels once per value."""
    multi = multi_names(board)
    for panel in board["panels"]:
        repeat = panel.get("repeat")
        for value in values[repeat] if repeat else [None]:
            scoped = {**values, repeat: value} if repeat else values
            ctx = QueryContext(start, end, scoped, multi)
            for target in panel["targets"]:
                sql = expand(target["rawSql"], ctx, min_interval=panel.get("interval"))
                yield PanelQuery(board["title"], panel["title"], value, sql)
