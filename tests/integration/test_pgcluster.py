"""The test bed's database: a real PostgreSQL with TimescaleDB, one fresh database per test."""

from __future__ import annotations

import psycopg
import pytest

from tests.support.pgcluster import PgCluster


def test_cluster_has_timescaledb_preloaded(pg_cluster: PgCluster, database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        preload = conn.execute("SHOW shared_preload_libraries").fetchone()
        license_ = conn.execute("SELECT current_setting('timescaledb.license')").fetchone()
        conn.execute("CREATE TABLE t (ts timestamptz NOT NULL, v float8)")
        conn.execute("SELECT create_hypertable('t', 'ts')")
        chunks = conn.execute("SELECT count(*) FROM timescaledb_information.hypertables").fetchone()
    assert preload is not None and "timescaledb" in preload[0]
    assert license_ is not None and license_[0] == pg_cluster.edition
    assert pg_cluster.edition in ("apache", "timescale")
    assert chunks == (1,)


def test_each_test_gets_an_empty_database(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()
    assert tables == (0,)


def test_cluster_stops_and_starts_on_the_same_port() -> None:
    cluster = PgCluster()
    try:
        port = cluster.port
        cluster.stop()
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(cluster.url(), connect_timeout=2)
        cluster.start()
        with psycopg.connect(cluster.url()) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        assert cluster.port == port
    finally:
        cluster.destroy()


def test_full_edition_features_skip_with_reason_on_apache(
    pg_cluster: PgCluster, database_url: str
) -> None:
    """On the Apache edition compression is refused with the licence error the schema handles."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        conn.execute("CREATE TABLE t (ts timestamptz NOT NULL, v float8)")
        conn.execute("SELECT create_hypertable('t', 'ts')")
        if pg_cluster.edition == "apache":
            with pytest.raises(psycopg.errors.FeatureNotSupported, match="apache"):
                conn.execute("ALTER TABLE t SET (timescaledb.compress)")
        else:
            conn.execute("ALTER TABLE t SET (timescaledb.compress)")
