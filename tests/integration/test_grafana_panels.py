"""Every panel and variable of the committed dashboards, expanded as Grafana 12 expands it
(scripts/grafana/macros.py) and run as the read-only Grafana role against a database that
chaintape's collectors filled from the fake exchange: each succeeds and returns rows. Also: the
role reads exactly what the dashboards and alert rules use, and nothing else."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import yaml

from scripts.backups.jobs import run_backup, run_restore_test
from scripts.grafana.build import BUILDERS, DASHBOARD_DIR
from scripts.grafana.runner import default_range, load, panel_queries, resolve_variables
from scripts.storage.roles import DASHBOARD_RELATIONS
from tests.support.backups import backup_settings
from tests.support.grafana_db import Recorded, record
from tests.support.pgcluster import PgCluster

PASSWORD = "grafana-test-password-1"
ALERT_RULES = DASHBOARD_DIR.parent / "provisioning" / "alerting" / "chaintape-rules.yml"
# FROM/JOIN <relation>, not extract(epoch FROM <column>) nor a function or LATERAL subquery.
_RELATION = re.compile(
    r"(?<!epoch )\b(?:FROM|JOIN)\s+([a-z_][a-z0-9_]*)\b(?!\s*\(|\.)", re.IGNORECASE
)
_CTE = re.compile(r"\b([a-z_][a-z0-9_]*)\s+AS\s*\(", re.IGNORECASE)


@pytest.fixture
def reader(pg_cluster: PgCluster, database_url: str) -> Iterator[str]:
    name = f"grafana_{uuid.uuid4().hex[:10]}"
    yield name
    with psycopg.connect(pg_cluster.url(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database_url.rsplit("/", 1)[1]}" WITH (FORCE)')
        conn.execute(f"DROP ROLE IF EXISTS {name}")


def relations_used(sql: str) -> set[str]:
    ctes = {m.lower() for m in _CTE.findall(sql)}
    return {m.lower() for m in _RELATION.findall(sql)} - ctes


def check_dashboards(conn: psycopg.Connection, recorded: Recorded) -> list[str]:
    """Runs everything; returns what failed (so one run reports all of it)."""
    failures: list[str] = []
    used: set[str] = set()
    for name in BUILDERS:
        board = load(DASHBOARD_DIR / name)
        start, end = default_range(board, recorded.end)
        try:
            values, variable_sqls = resolve_variables(conn, board, start, end)
        except LookupError as exc:
            failures.append(str(exc))
            continue
        for sql in variable_sqls:
            used |= relations_used(sql)
        for query in panel_queries(board, values, start, end):
            used |= relations_used(query.sql)
            try:
                rows = conn.execute(query.sql.encode()).fetchall()
            except psycopg.Error as exc:
                failures.append(f"{name} / {query.title}: {exc}".splitlines()[0])
                continue
            if not rows:
                failures.append(f"{name} / {query.title} ({query.repeat_value}): no rows")
    alert_sql = [
        d["model"]["rawSql"]
        for g in yaml.safe_load(ALERT_RULES.read_text())["groups"]
        for r in g["rules"]
        for d in r["data"]
        if "rawSql" in d["model"]
    ]
    for sql in alert_sql:
        used |= relations_used(sql)
        conn.execute(sql.encode()).fetchall()  # may be empty (nothing stale): it must run
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
    # the backup service's rows (issue 15): a real dump and restore test of this database
    backup = backup_settings(database_url, tmp_path / "backups")
    assert (await asyncio.to_thread(run_backup, backup)).success
    assert (await asyncio.to_thread(run_restore_test, backup)).success
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
