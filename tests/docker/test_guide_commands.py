"""Every command DEPLOYMENT_GUIDE.md tells a user to run is run by a test, or is listed here
with the reason it cannot run on a test machine. This module runs the set-up commands of
Part 1 (a copy of the project, the passwords, `docker compose config`) and the plain-process
database set-up against the test cluster; the engine tests run the rest (named below)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from tests.docker.engine import REPO_ROOT, require_compose
from tests.docker.guide import COMPOSE_PREFIX, guide_commands
from tests.support.pgcluster import PgCluster

ENGINE_TESTS = "tests/docker/test_compose_stack.py"
SWARM_TESTS = "tests/docker/test_swarm_stack.py (with -c tests/docker/stack.test.yml)"
# Commands other tests run, as written (the compose ones with the test's project and override).
RUN_ELSEWHERE = {
    f"{COMPOSE_PREFIX} up -d": ENGINE_TESTS,
    f"{COMPOSE_PREFIX} stop": ENGINE_TESTS,
    f"{COMPOSE_PREFIX} ps": ENGINE_TESTS,
    f"{COMPOSE_PREFIX} exec ws-collector-eth python -m scripts.verify": ENGINE_TESTS,
    f"{COMPOSE_PREFIX} exec ws-collector-eth python -m scripts.healthcheck": ENGINE_TESTS,
    "docker swarm init --advertise-addr 127.0.0.1": SWARM_TESTS,
    "docker node update --label-add chaintape.realtime=true --label-add chaintape.rest=true \"$(docker info --format '{{.Swarm.NodeID}}')\"": SWARM_TESTS,  # noqa: E501
    "printf '%s' \"$DB_PASSWORD\" | docker secret create chaintape_db_password -": SWARM_TESTS,
    "docker stack deploy -c docker-stack.yml chaintape": SWARM_TESTS,
    "docker service ls": SWARM_TESTS,
    "docker service update --force chaintape_ws-collector-eth": SWARM_TESTS,
    "docker stack rm chaintape": SWARM_TESTS,
    "CURRENCY=ETH .venv/bin/python -m scripts.ws_tick_collector_multi": (
        "tests/integration (the entry point as a process against the fake exchange: "
        "tests/support/collector_proc.py)"
    ),
    "python3 -m venv .venv && .venv/bin/pip install -e .": ".ci/run (with the [dev] extras)",
    f"{COMPOSE_PREFIX} -f docker-compose.small.yml up -d": "python -m tests.docker.measure --small",
}
# Part 4's commands run in order in
# test_compose_stack.py::test_backup_service_dump_restores_into_a_fresh_database_from_the_guide.
PART_4 = re.compile(
    r"(scripts\.backup (now|verify)|scripts\.restore latest"
    r"|up -d --wait timescaledb|run --rm migrate)"
)
NOT_HERE = {
    "sudo mkdir -p /volume1/backup/chaintape && sudo chown 10001:10001 /volume1/backup/chaintape": (
        "a Synology path (the engine test gives the backup service a folder of its own)"
    ),
    "cd /volume1/backup/chaintape && sha256sum -c chaintape-chaintape-20261204T031500Z-ts2.30.0-pg17.dump.sha256": (  # noqa: E501
        "a Synology path; scripts.restore verifies the checksum itself (tests/integration/"
        "test_backup_restore.py)"
    ),
    "sudo mkdir -p /volume1/@docker/volumes/chaintape_timescaledb-data/_data": "a Synology path",
    "sudo chattr +C /volume1/@docker/volumes/chaintape_timescaledb-data/_data": (
        "needs a btrfs volume (this machine's is ext4/overlay)"
    ),
}
RUN_HERE = {
    "cp .env.example .env",
    "openssl rand -base64 18",
    f"{COMPOSE_PREFIX} config -q",
    "sudo -u postgres psql -v ON_ERROR_STOP=1 -c \"CREATE ROLE chaintape LOGIN PASSWORD 'use-a-long-random-password'\"",  # noqa: E501
    'sudo -u postgres psql -v ON_ERROR_STOP=1 -c "CREATE DATABASE chaintape OWNER chaintape"',
    'sudo -u postgres psql -v ON_ERROR_STOP=1 -d chaintape -c "CREATE EXTENSION IF NOT EXISTS timescaledb"',  # noqa: E501
    ".venv/bin/python -m scripts.migrate",
}


def test_every_guide_command_is_run_by_a_test_or_says_why_not() -> None:
    unaccounted = [
        c
        for c in guide_commands()
        if c not in RUN_HERE
        and c not in RUN_ELSEWHERE
        and c not in NOT_HERE
        and not PART_4.search(c)
    ]
    assert unaccounted == []
    assert len(guide_commands()) >= 25


def run(command: str, cwd: Path, **env: str) -> str:
    proc = subprocess.run(
        ["bash", "-c", command],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin", **env},
    )
    assert proc.returncode == 0, f"{command}: {proc.stdout}{proc.stderr}"
    return proc.stdout


def test_part_1_setup_commands_in_a_copy_of_the_project(tmp_path: Path) -> None:
    require_compose()
    project = tmp_path / "chaintape"
    project.mkdir()
    for name in (".env.example", "docker-compose-comprehensive.yml", "Dockerfile"):
        shutil.copy2(REPO_ROOT / name, project / name)
    shutil.copytree(REPO_ROOT / "grafana", project / "grafana")
    run("cp .env.example .env", project)
    env = (project / ".env").read_text()
    # what the guide says next: three passwords from openssl into .env
    for name in ("POSTGRES_PASSWORD", "GRAFANA_ADMIN_PASSWORD", "GRAFANA_DB_PASSWORD"):
        password = run("openssl rand -base64 18", project).strip()
        assert len(password) == 24
        env, n = re.subn(rf"^{name}=$", f"{name}={password}", env, flags=re.M)
        assert n == 1, name
    (project / ".env").write_text(env)
    run(f"docker {COMPOSE_PREFIX[len('docker ') :]} config -q", project)


def test_plain_process_database_setup_from_the_guide(pg_cluster: PgCluster) -> None:
    """Part 1 without Docker: the role, the database and the extension as the guide writes
    them (psql as the superuser), then `scripts.migrate` as that role."""
    psql = f"{pg_cluster.bin}/psql -h 127.0.0.1 -p {pg_cluster.port} -U postgres"
    commands = [c for c in guide_commands() if c.startswith("sudo -u postgres psql")]
    assert len(commands) == 3
    try:
        for command in commands:
            run(command.replace("sudo -u postgres psql", psql), REPO_ROOT)
        migrate = next(c for c in guide_commands() if c.endswith("-m scripts.migrate"))
        out = run(
            migrate.replace(".venv/bin/python", sys.executable),
            REPO_ROOT,
            DATABASE_URL=f"postgresql://chaintape@127.0.0.1:{pg_cluster.port}/chaintape",
            DATABASE_PASSWORD="use-a-long-random-password",
            CURRENCIES="BTC,ETH",
        )
        assert "chaintape schema is up to date" in out
        with psycopg.connect(pg_cluster.url("chaintape")) as conn:
            owner = conn.execute(
                "SELECT tableowner FROM pg_tables WHERE tablename = 'eth_option_trades'"
            ).fetchone()
        assert owner == ("chaintape",)
    finally:
        with psycopg.connect(pg_cluster.url(), autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS chaintape WITH (FORCE)")
            conn.execute("DROP ROLE IF EXISTS chaintape")


@pytest.mark.parametrize("command", sorted(NOT_HERE))
def test_commands_that_cannot_run_here_say_why(command: str) -> None:
    assert command in guide_commands()
    assert NOT_HERE[command]
