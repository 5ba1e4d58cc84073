"""apply_schema and `python -m scripts.migrate` against real clusters."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest

from scripts.storage.migrate import (
    SCHEMA_DIR,
    MigrationError,
    apply_schema,
    migration_files,
)
from scripts.storage.roles import DASHBOARD_RELATIONS, RolePasswordError
from tests.conftest import REPO_ROOT
from tests.support.pgcluster import PgCluster, free_port, pg_bin_dir

GOOD_PASSWORD = "s3cret-enough-for-grafana"

SNAPSHOT_QUERIES = {
    "relations": "SELECT c.oid::int8, n.nspname, c.relname, c.relkind FROM pg_class c"
    " JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') ORDER BY 2, 3",
    "columns": "SELECT table_schema, table_name, column_name, ordinal_position, data_type,"
    " column_default, is_nullable FROM information_schema.columns"
    " WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2, 4",
    "indexes": "SELECT schemaname, tablename, indexname, indexdef FROM pg_indexes"
    " WHERE schemaname <> 'pg_catalog' ORDER BY 1, 2, 3",
    "constraints": "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)"
    " FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2",
    "views": "SELECT viewname, definition, obj_description(format('%I', viewname)::regclass)"
    " FROM pg_views WHERE schemaname = 'public' ORDER BY 1",
    "functions": "SELECT p.oid::int8, proname, md5(prosrc) FROM pg_proc p"
    " WHERE pronamespace = 'public'::regnamespace ORDER BY 2",
    "dimensions": "SELECT hypertable_name, column_name, time_interval"
    " FROM timescaledb_information.dimensions ORDER BY 1",
    "jobs": "SELECT job_id, proc_name, hypertable_name, config::text, scheduled"
    " FROM timescaledb_information.jobs ORDER BY 1",
    "migrations": "SELECT filename, checksum, applied_at FROM schema_migrations ORDER BY 1",
    "settings": "SELECT name, value, updated_at FROM chaintape_settings ORDER BY 1",
    "currencies": "SELECT currency, added_at FROM chaintape_currencies ORDER BY 1",
    "grants": "SELECT table_name, grantee, privilege_type FROM information_schema.role_table_grants"
    " WHERE table_schema = 'public' ORDER BY 1, 2, 3",
    "default_acl": "SELECT defaclobjtype, defaclacl::text FROM pg_default_acl ORDER BY 1",
}


def catalog_snapshot(url: str) -> dict[str, list[tuple[object, ...]]]:
    with psycopg.connect(url) as conn:
        return {name: conn.execute(q).fetchall() for name, q in SNAPSHOT_QUERIES.items()}  # type: ignore[arg-type]


@pytest.fixture
def grafana_role(pg_cluster: PgCluster, database_url: str) -> Iterator[str]:
    """A role name unique to the test (roles belong to the whole cluster); dropped afterwards."""
    yield from _temporary_role(pg_cluster, database_url, "grafana")


@pytest.fixture
def writer_role(pg_cluster: PgCluster, database_url: str) -> Iterator[str]:
    yield from _temporary_role(pg_cluster, database_url, "writer")


def _temporary_role(cluster: PgCluster, database_url: str, prefix: str) -> Iterator[str]:
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    yield name
    with psycopg.connect(cluster.url(), autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone() is None:
            return
    for url in (database_url, cluster.url()):  # privileges in the test database, then the role
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP OWNED BY "{name}"')
    with psycopg.connect(cluster.url(), autocommit=True) as conn:
        conn.execute(f'DROP ROLE "{name}"')


def test_fresh_database_migrates(pg_cluster: PgCluster, database_url: str) -> None:
    report = apply_schema(database_url, ["BTC", "eth"], schedule_policies=False)
    assert report.edition == pg_cluster.edition
    assert report.applied == tuple(p.name for p in migration_files())
    assert report.unchanged == ()
    assert report.currencies == ("btc", "eth")
    assert report.added_currencies == ("btc", "eth")
    assert report.grafana_role is None
    with psycopg.connect(database_url) as conn:
        hypertables = {
            r[0]
            for r in conn.execute(
                "SELECT hypertable_name FROM timescaledb_information.hypertables"
            ).fetchall()
        }
    assert {"btc_option_trades", "eth_option_quotes", "options_greeks"} <= hypertables


def test_migrating_twice_changes_nothing(database_url: str, grafana_role: str) -> None:
    kwargs = dict(grafana_user=grafana_role, grafana_password=GOOD_PASSWORD, retention_days=30)
    apply_schema(database_url, ["BTC", "SOL"], schedule_policies=False, **kwargs)  # type: ignore[arg-type]
    before = catalog_snapshot(database_url)
    report = apply_schema(database_url, ["sol", "BTC"], schedule_policies=False, **kwargs)  # type: ignore[arg-type]
    after = catalog_snapshot(database_url)
    assert report.applied == ()
    assert report.added_currencies == ()
    assert before == after


def test_concurrent_migrations_all_succeed(database_url: str) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [
            pool.submit(apply_schema, database_url, ["BTC", "ETH"], schedule_policies=False)
            for _ in range(4)
        ]
        reports = [f.result(timeout=120) for f in futures]
    all_files = tuple(p.name for p in migration_files())
    assert sorted(r.applied for r in reports) == [(), (), (), all_files]
    assert all(r.currencies == ("btc", "eth") for r in reports)
    assert sum(len(r.added_currencies) for r in reports) == 2


def test_concurrent_migrate_processes_all_succeed(database_url: str, tmp_path: Path) -> None:
    env = _env(database_url, CURRENCIES="BTC,SOL")
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "scripts.migrate"],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    results = [(p.wait(timeout=120), *p.communicate()) for p in procs]
    assert [code for code, _, _ in results] == [0, 0, 0], results
    assert all("currencies: btc, sol" in out for _, out, _ in results)


def _copy_schema(tmp_path: Path) -> Path:
    target = tmp_path / "schema"
    shutil.copytree(SCHEMA_DIR, target)
    return target


def test_changed_idempotent_file_is_applied_again(database_url: str, tmp_path: Path) -> None:
    schema = _copy_schema(tmp_path)
    apply_schema(database_url, ["BTC"], schema_dir=schema, schedule_policies=False)
    settings = schema / "002_settings.sql"
    settings.write_text(settings.read_text() + "\nCOMMENT ON TABLE chaintape_settings IS 'v2';\n")
    report = apply_schema(database_url, ["BTC"], schema_dir=schema)
    with psycopg.connect(database_url) as conn:
        comment = conn.execute("SELECT obj_description('chaintape_settings'::regclass)").fetchone()
    assert report.applied == ("002_settings.sql",)
    assert comment == ("v2",)


def test_changed_one_off_file_is_refused(database_url: str, tmp_path: Path) -> None:
    schema = _copy_schema(tmp_path)
    once = schema / "900_one_off.sql"
    once.write_text("CREATE TABLE one_off (id int);\n")
    apply_schema(database_url, ["BTC"], schema_dir=schema, schedule_policies=False)
    once.write_text("CREATE TABLE one_off (id int8);\n")
    with pytest.raises(MigrationError, match=r"900_one_off.sql changed after it was applied"):
        apply_schema(database_url, ["BTC"], schema_dir=schema)


def test_failing_file_is_rolled_back_and_named(database_url: str, tmp_path: Path) -> None:
    schema = _copy_schema(tmp_path)
    (schema / "900_broken.sql").write_text("CREATE TABLE half (id int);\nSELECT 1/0;\n")
    with pytest.raises(MigrationError, match=r"900_broken.sql failed: division by zero"):
        apply_schema(database_url, ["BTC"], schema_dir=schema)
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT to_regclass('half')").fetchone() == (None,)
        names = [r[0] for r in conn.execute("SELECT filename FROM schema_migrations").fetchall()]
    assert "900_broken.sql" not in names and "001_extension.sql" in names


@pytest.mark.parametrize("password", ["changeme", "", "  Password ", "postgres", "short-pw"])
def test_bad_grafana_passwords_are_refused(database_url: str, password: str) -> None:
    with pytest.raises(RolePasswordError, match="GRAFANA_DB_PASSWORD"):
        apply_schema(database_url, ["BTC"], grafana_user="grafana_x", grafana_password=password)
    with psycopg.connect(database_url) as conn:  # refused before touching the database
        assert conn.execute("SELECT to_regclass('schema_migrations')").fetchone() == (None,)


def test_readonly_role_reads_and_writes_nothing(
    pg_cluster: PgCluster, database_url: str, grafana_role: str
) -> None:
    apply_schema(database_url, ["BTC"], grafana_user=grafana_role, grafana_password=GOOD_PASSWORD)
    apply_schema(database_url, ["SOL"])  # added after the role: read through the union view
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO sol_option_trades (timestamp, instrument_name, trade_id, price, amount)"
            " VALUES ('2025-03-01T12:00Z', 'SOL_USDC-X', 't1', 1, 1)"
        )
    dbname = database_url.rsplit("/", 1)[1]
    role_url = pg_cluster.url(dbname, user=grafana_role, password=GOOD_PASSWORD)
    with psycopg.connect(role_url, autocommit=True) as conn:
        assert conn.execute("SELECT currency, trade_id FROM option_trades").fetchall() == [
            ("SOL", "t1")
        ]
        for table in DASHBOARD_RELATIONS:
            conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        # Exactly what the dashboards read: not the raw per-currency tables, nor the rest.
        for table in ("btc_option_quotes", "sol_option_trades", "spool_offsets", "options_ohlcv"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(f"SELECT 1 FROM {table} LIMIT 1")
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("INSERT INTO collector_status (collector_name) VALUES ('x')")
        # Even with the read-only default switched off, the grants allow no writes.
        conn.execute("SET default_transaction_read_only = off")
        for statement in (
            "INSERT INTO collector_status (collector_name) VALUES ('x')",
            "INSERT INTO sol_option_trades (timestamp, instrument_name, trade_id)"
            " VALUES (now(), 'x', 'x')",
            "UPDATE sol_option_trades SET price = 2",
            "DELETE FROM sol_option_trades",
            "TRUNCATE instruments",
            "CREATE TABLE mine (id int)",
            "SELECT chaintape_add_currency('xrp')",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*), max(price) FROM sol_option_trades").fetchone() == (
            1,
            1.0,
        )


def test_writer_role_restarts_collectors_but_cannot_change_the_schema(
    pg_cluster: PgCluster, database_url: str, writer_role: str
) -> None:
    apply_schema(database_url, ["BTC"], retention_days=0, schedule_policies=False)
    password = "writer-password-1234"
    subprocess.run(
        [
            _psql(),
            database_url,
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-v",
            f"writer={writer_role}",
            "-v",
            f"password={password}",
            "-f",
            str(SCHEMA_DIR / "writer_role.sql"),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    dbname = database_url.rsplit("/", 1)[1]
    writer_url = pg_cluster.url(dbname, user=writer_role, password=password)
    # what a collector does on start, with the settings the owner already applied
    report = apply_schema(writer_url, ["BTC"], retention_days=0)
    assert report.applied == () and report.currencies == ("btc",)
    with psycopg.connect(writer_url) as conn:
        conn.execute(
            "INSERT INTO btc_option_trades (timestamp, instrument_name, trade_id)"
            " VALUES ('2025-03-01T12:00Z', 'BTC-X', 't1') ON CONFLICT DO NOTHING"
        )
        conn.execute(
            "INSERT INTO data_gaps (table_name, scope, gap_start, reason)"
            " VALUES ('btc_option_trades', 'BTC-X', now(), 'test')"
        )
        conn.execute(
            "INSERT INTO collector_status (collector_name, state) VALUES ('c1', 'running')"
            " ON CONFLICT (collector_name) DO UPDATE SET state = EXCLUDED.state"
        )
        conn.execute("CREATE TEMP TABLE staging (LIKE btc_option_trades)")
        conn.commit()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("CREATE TABLE mine (id int)")
    with pytest.raises(MigrationError, match="as the database owner"):
        apply_schema(writer_url, ["SOL"])
    with pytest.raises(MigrationError, match="as the database owner"):
        apply_schema(writer_url, ["BTC"], retention_days=30)
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT to_regclass('sol_option_trades')").fetchone() == (None,)
        assert conn.execute("SELECT chaintape_setting('retention_days')").fetchone() == ("0",)


def _psql() -> str:
    found = shutil.which("psql") or str(pg_bin_dir() / "psql")
    if not Path(found).exists():
        pytest.skip("psql is not installed")
    return found


def test_apache_edition_warns_once_per_skipped_feature(
    pg_cluster: PgCluster, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    if pg_cluster.edition != "apache":
        pytest.skip(f"the cluster has the '{pg_cluster.edition}' edition, not 'apache'")
    caplog.set_level(logging.WARNING, logger="scripts.storage.migrate")
    report = apply_schema(database_url, ["BTC", "SOL"], retention_days=30)
    features = [w.split(" skipped for ")[0] for w in report.warnings]
    assert sorted(features) == ["compression", "continuous aggregate", "retention policy"]
    assert all("timescale/timescaledb" in w for w in report.warnings)
    logged = [r.getMessage() for r in caplog.records if "skipped for" in r.getMessage()]
    assert sorted(logged) == sorted(report.warnings)
    compression = next(w for w in report.warnings if w.startswith("compression"))
    assert "sol_option_quotes" in compression and "options_greeks" in compression
    with psycopg.connect(database_url) as conn:  # the rest works: hypertables, no policies
        count = conn.execute("SELECT count(*) FROM timescaledb_information.hypertables").fetchone()
        jobs = conn.execute(
            "SELECT count(*) FROM timescaledb_information.jobs WHERE hypertable_name IS NOT NULL"
        ).fetchone()
    assert count == (12,)
    assert jobs == (0,)


def test_unreachable_database_is_one_clear_error() -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere"
    with pytest.raises(MigrationError, match=r"^cannot connect to the database: "):
        apply_schema(url, ["BTC"])


def test_retention_of_a_few_days_is_refused(database_url: str) -> None:
    with pytest.raises(ValueError, match="RETENTION_DAYS=3"):
        apply_schema(database_url, ["BTC"], retention_days=3)


class _PlainCluster(PgCluster):
    """A cluster that does not preload TimescaleDB (the server may still have it installed)."""

    def start(self) -> None:
        conf = self.datadir / "postgresql.conf"
        lines = conf.read_text().splitlines()
        conf.write_text("\n".join(ln for ln in lines if "timescaledb" not in ln) + "\n")
        super().start()

    def _read_edition(self) -> str:
        return "none"


def _install_without_timescaledb() -> Path:
    """A relocated copy of this PostgreSQL whose extension directory lacks TimescaleDB.

    Debian's server finds its share/ and lib/ directories relative to its binary, so copying the
    binaries and linking everything else except timescaledb gives an honest "not installed".
    """
    src_bin = pg_bin_dir()
    src_lib = src_bin.parent / "lib"
    major = src_bin.parent.name
    src_share = src_bin.parents[3] / "share" / "postgresql" / major
    root = Path(tempfile.mkdtemp(prefix="chaintape-plainpg-"))
    os.chmod(root, 0o755)
    bin_dir = root / "usr/lib/postgresql" / major / "bin"
    lib_dir = root / "usr/lib/postgresql" / major / "lib"
    share_dir = root / "usr/share/postgresql" / major
    for d in (bin_dir, lib_dir, share_dir / "extension"):
        d.mkdir(parents=True)
    for tool in ("postgres", "initdb", "pg_ctl"):
        shutil.copy2(src_bin / tool, bin_dir / tool)
    for entry in src_lib.iterdir():
        if "timescaledb" not in entry.name:
            (lib_dir / entry.name).symlink_to(entry)
    for entry in src_share.iterdir():
        if entry.name != "extension":
            (share_dir / entry.name).symlink_to(entry)
    for entry in (src_share / "extension").iterdir():
        if "timescaledb" not in entry.name:
            (share_dir / "extension" / entry.name).symlink_to(entry)
    return bin_dir


def test_postgresql_without_timescaledb_names_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    src_bin = pg_bin_dir()
    if not (src_bin.parents[3] / "share" / "postgresql" / src_bin.parent.name).is_dir():
        pytest.skip("needs a Debian-layout PostgreSQL to build a copy without TimescaleDB")
    bin_dir = _install_without_timescaledb()
    monkeypatch.setenv("CHAINTAPE_PG_BIN", str(bin_dir))
    cluster = _PlainCluster()
    try:
        with pytest.raises(MigrationError) as info:
            apply_schema(cluster.create_database(), ["BTC"])
    finally:
        cluster.destroy()
        shutil.rmtree(bin_dir.parents[3], ignore_errors=True)
    assert str(info.value).startswith("TimescaleDB is not installed in this PostgreSQL")
    assert "timescale/timescaledb image" in str(info.value)
    assert "timescaledb-2-postgresql-15" in str(info.value)


def test_timescaledb_not_preloaded_says_how_to_fix() -> None:
    cluster = _PlainCluster()
    try:
        with pytest.raises(MigrationError, match="shared_preload_libraries = 'timescaledb'"):
            apply_schema(cluster.create_database(), ["BTC"])
    finally:
        cluster.destroy()


def _env(database_url: str, **extra: str) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(REPO_ROOT),
        "DATABASE_URL": database_url,
        "LOG_LEVEL": "WARNING",
    }
    env.update(extra)
    return env


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_migrate_command_exit_codes(database_url: str, tmp_path: Path, grafana_role: str) -> None:
    ok = _run(
        ["-m", "scripts.migrate"],
        _env(
            database_url,
            CURRENCY="SOL",
            GRAFANA_DB_USER=grafana_role,
            GRAFANA_DB_PASSWORD=GOOD_PASSWORD,
        ),
        tmp_path,
    )
    assert ok.returncode == 0, ok.stderr
    assert "currencies: sol (added now: sol)" in ok.stdout
    assert f"read-only role '{grafana_role}'" in ok.stdout
    assert GOOD_PASSWORD not in ok.stdout + ok.stderr

    # Roles belong to the cluster: name one no other test creates, so "not set" is the answer.
    absent_role = f"{grafana_role}_never_made"
    default = _run(
        ["-m", "scripts.migrate"], _env(database_url, GRAFANA_DB_USER=absent_role), tmp_path
    )
    assert default.returncode == 0, default.stderr
    assert "currencies: btc, eth, sol (added now: btc, eth)" in default.stdout
    assert "GRAFANA_DB_PASSWORD is not set" in default.stdout

    placeholder = _run(
        ["-m", "scripts.migrate"], _env(database_url, GRAFANA_DB_PASSWORD="changeme"), tmp_path
    )
    assert placeholder.returncode == 2
    assert "placeholder" in placeholder.stderr

    bad_env = _run(["-m", "scripts.migrate"], _env(database_url, CURRENCY="NOPE"), tmp_path)
    assert bad_env.returncode == 2
    assert "unknown currency" in bad_env.stderr

    url = f"postgresql://postgres:hunter2hunter2@127.0.0.1:{free_port()}/nowhere"
    down = _run(["-m", "scripts.migrate"], _env(url), tmp_path)
    assert down.returncode == 1
    lines = down.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("chaintape: migration failed: cannot connect")
    assert "hunter2" not in down.stderr
