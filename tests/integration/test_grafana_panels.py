"""Every panel and variable of the committed dashboards, expanded as Grafana 12 expands it
(scripts/grafana/macros.py) and run as the read-only Grafana role against a database that
chaintape's collectors filled from the fake exchange: each succeeds and returns rows. Also: the
role reads exactly what the dashboards and alert rules use, and nothing else."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from scripts.grafana.build import BUILDERS, DASHBOARD_DIR
from scripts.grafana.macros import QueryContext, expand
from scripts.storage.roles import DASHBOARD_RELATIONS
from tests.support.grafana_db import Recorded, record
from tests.support.pgcluster import PgCluster

PASSWORD = "grafana-test-password-1"
ALERT_RULES = DASHBOARD_DIR.parent / "provisioning" / "alerting" / "chaintape-rules.yml"
_RANGE = re.compile(r"^now-(\d+)([mhd])$")
# FROM/JOIN <relation>, not extract(epoch FROM <column>) nor a function or LATERAL subquery.
_RELATION = re.compile(
    r"(?<!epoch )\b(?:FROM|JOIN)\s+([a-z_][a-z0-9_]*)\b(?!\s*\(|\.)", re.IGNORECASE
)
_OPTION = re.compile(r"-\d+-[CP]$")
_CTE = re.compile(r"\b([a-z_][a-z0-9_]*)\s+AS\s*\(", re.IGNORECASE)


@pytest.fixture
def reader(pg_cluster: PgCluster, database_url: str) -> Iterator[str]:
    name = f"grafana_{uuid.uuid4().hex[:10]}"
    yield name
    with psycopg.connect(pg_cluster.url(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database_url.rsplit("/", 1)[1]}" WITH (FORCE)')
        conn.execute(f"DROP ROLE IF EXISTS {name}")


def default_range(board: dict[str, Any], end: datetime) -> tuple[datetime, datetime]:
    match = _RANGE.match(board["time"]["from"])
    assert match and board["time"]["to"] == "now"
    unit = {"m": "minutes", "h": "hours", "d": "days"}[match[2]]
    return end - timedelta(**{unit: int(match[1])}), end


def run(conn: psycopg.Connection, sql: str) -> list[tuple[Any, ...]]:
    return conn.execute(sql.encode()).fetchall()


def choose(conn: psycopg.Connection, var: dict[str, Any], rows: list[tuple[Any, ...]]) -> Any:
    """What a user would pick: the first values; for an option, one that was quoted."""
    values = [str(r[0]) for r in rows]
    if var["name"] == "instrument" and all(_OPTION.search(v) for v in values):
        quoted = conn.execute(
            "SELECT instrument_name FROM option_quotes_1m WHERE instrument_name = ANY(%s)"
            " GROUP BY 1 ORDER BY count(*) DESC LIMIT 1",
            (values,),
        ).fetchone()
        assert quoted is not None, values
        return quoted[0]
    return values[:2] if var["multi"] else values[0]


def relations_used(sql: str) -> set[str]:
    ctes = {m.lower() for m in _CTE.findall(sql)}
    return {m.lower() for m in _RELATION.findall(sql)} - ctes


def check_dashboards(conn: psycopg.Connection, recorded: Recorded) -> list[str]:
    """Runs everything; returns what failed (so one run reports all of it)."""
    failures: list[str] = []
    used: set[str] = set()
    for name in BUILDERS:
        board = json.loads((DASHBOARD_DIR / name).read_text(encoding="utf-8"))
        start, end = default_range(board, recorded.end)
        variables = board["templating"]["list"]
        multi = frozenset(v["name"] for v in variables if v["multi"] or v["includeAll"])
        values: dict[str, Any] = {}
        for var in variables:
            ctx = QueryContext(start, end, values, multi)
            sql = expand(var["query"], ctx)
            used |= relations_used(sql)
            rows = run(conn, sql)
            if not rows:
                failures.append(f"{name} variable {var['name']}: no values")
                return failures
            values[var["name"]] = choose(conn, var, rows)
        for panel in board["panels"]:
            repeat = panel.get("repeat")
            for value in values[repeat] if repeat else [None]:
                scoped = {**values, repeat: value} if repeat else values
                ctx = QueryContext(start, end, scoped, multi)
                for target in panel["targets"]:
                    sql = expand(target["rawSql"], ctx, min_interval=panel.get("interval"))
                    used |= relations_used(sql)
                    try:
                        rows = run(conn, sql)
                    except psycopg.Error as exc:
                        failures.append(f"{name} / {panel['title']}: {exc}".splitlines()[0])
                        continue
                    if not rows:
                        failures.append(f"{name} / {panel['title']} ({value}): no rows")
    alert_sql = [
        d["model"]["rawSql"]
        for g in yaml.safe_load(ALERT_RULES.read_text())["groups"]
        for r in g["rules"]
        for d in r["data"]
        if "rawSql" in d["model"]
    ]
    for sql in alert_sql:
        used |= relations_used(sql)
        run(conn, sql)  # may be empty (nothing stale): it must run
    extra = used - set(DASHBOARD_RELATIONS) - {"chaintape_newest_rows", "chaintape_table_sizes"}
    if extra:
        failures.append(f"relations read but not granted: {sorted(extra)}")
    return failures


async def test_every_panel_and_variable_returns_rows_as_the_readonly_role(
    pg_cluster: PgCluster, database_url: str, tmp_path: Path, reader: str
) -> None:
    recorded = await record(database_url, tmp_path, reader, PASSWORD)
    with psycopg.connect(database_url, autocommit=True) as owner:
        counts = owner.execute(
            "SELECT (SELECT count(*) FROM data_gaps), (SELECT count(*) FROM rejected_messages),"
            " (SELECT count(*) FROM instruments WHERE expiration_timestamp <= %s),"
            " (SELECT count(*) FROM instruments WHERE creation_timestamp > %s)",
            (recorded.end, recorded.start),
        ).fetchone()
        assert counts is not None and all(n > 0 for n in counts), (
            "gaps, rejected messages, expiries, listings",
            counts,
        )
        if pg_cluster.edition == "timescale":
            # Materialize part of the aggregates: panels then read both the materialized
            # buckets and the real-time ones after the watermark.
            for view in ("btc_option_quotes_1m", "btc_option_trades_1m"):
                owner.execute(
                    "CALL refresh_continuous_aggregate(%s, NULL, %s)",
                    (view, recorded.start + (recorded.end - recorded.start) / 2),
                )
    dbname = database_url.rsplit("/", 1)[1]
    with psycopg.connect(pg_cluster.url(dbname, user=reader, password=PASSWORD)) as conn:
        conn.autocommit = True
        failures = check_dashboards(conn, recorded)
        assert failures == [], "\n".join(failures)
        for table in (
            "btc_option_quotes",
            "btc_option_trades",
            "options_ohlcv",
            "spool_offsets",
            "schema_migrations",
            "chaintape_settings",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(f"SELECT 1 FROM {table} LIMIT 1")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT * FROM chaintape_verify()")
