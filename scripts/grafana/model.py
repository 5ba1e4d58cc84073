"""Small builders for Grafana dashboard JSON (the v1 dashboard model, schemaVersion 41).

Every panel and variable reads the provisioned PostgreSQL datasource by its fixed uid, so alert
rules and dashboards keep working whatever name the user gives it. Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

# grafana/grafana:12.1.1 (pinned in the README and the compose file) reads schemaVersion 41
# dashboards without migrating them.
GRAFANA_IMAGE = "grafana/grafana:12.1.1"
SCHEMA_VERSION = 41
DATASOURCE_UID = "chaintape-timescaledb"
DATASOURCE = {"type": "grafana-postgresql-datasource", "uid": DATASOURCE_UID}
STALE_AFTER_S = 900  # the same default as STALE_AFTER_S in .env.example

Json = dict[str, Any]


def target(sql: str, *, fmt: str = "table", ref: str = "A") -> Json:
    """A raw-SQL query; fmt 'time_series' turns long rows (time, metric, value) into series."""
    return {
        "datasource": DATASOURCE,
        "editorMode": "code",
        "format": fmt,
        "rawQuery": True,
        "rawSql": sql.strip(),
        "refId": ref,
    }


def panel(
    kind: str,
    title: str,
    sql: str,
    *,
    w: int = 12,
    h: int = 8,
    fmt: str = "table",
    description: str = "",
    unit: str | None = None,
    interval: str | None = None,
    options: Json | None = None,
    defaults: Json | None = None,
    overrides: list[Json] | None = None,
    repeat: str | None = None,
) -> Json:
    """A panel without id and position: `layout` numbers and places them."""
    field_defaults: Json = dict(defaults or {})
    if unit:
        field_defaults["unit"] = unit
    out: Json = {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": [target(sql, fmt=fmt)],
        "fieldConfig": {"defaults": field_defaults, "overrides": overrides or []},
        "options": options or {},
        "gridPos": {"h": h, "w": w, "x": 0, "y": 0},
    }
    if interval:
        out["interval"] = interval
    if repeat:
        out["repeat"] = repeat
        out["repeatDirection"] = "h"
        out["maxPerRow"] = 3
    return out


def red_above(value: float) -> Json:
    """Thresholds: green, then red from `value` on."""
    return {
        "mode": "absolute",
        "steps": [{"color": "green", "value": None}, {"color": "red", "value": value}],
    }


def query_variable(
    name: str, label: str, sql: str, *, multi: bool = False, include_all: bool = False
) -> Json:
    """A variable filled by SQL (refreshed when the time range changes)."""
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DATASOURCE,
        "definition": sql.strip(),
        "query": sql.strip(),
        "refresh": 2,
        "multi": multi,
        "includeAll": include_all,
        "sort": 0,
        "current": {},
        "options": [],
        "hide": 0,
    }


def layout(panels: list[Json]) -> list[Json]:
    """Numbers panels 1..n and flows them left to right, top to bottom, 24 columns wide."""
    x = y = row_h = 0
    for pid, p in enumerate(panels, start=1):
        pos = p["gridPos"]
        if x + pos["w"] > 24:
            x, y, row_h = 0, y + row_h, 0
        pos["x"], pos["y"] = x, y
        x += pos["w"]
        row_h = max(row_h, pos["h"])
        p["id"] = pid
    return panels


def dashboard(
    uid: str,
    title: str,
    description: str,
    panels: list[Json],
    variables: list[Json],
    *,
    time_from: str = "now-6h",
    refresh: str = "1m",
) -> Json:
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["chaintape"],
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "timezone": "utc",
        "refresh": refresh,
        "time": {"from": time_from, "to": "now"},
        "timepicker": {},
        "annotations": {"list": []},
        "links": [],
        "templating": {"list": variables},
        "panels": layout(panels),
    }
