"""docker-stack.yml on a one-node Docker Swarm: the same image, the database outside the
stack (the PostgreSQL 17 + TimescaleDB stand-in on 127.0.0.1, password authentication), the
password given as a Docker secret, the fake exchange on 127.0.0.1 (tests/docker/stack.test.yml
puts the services on the host network). Every collector service reaches 1/1 and writes rows;
`docker service update --force` of a collector (a rolling restart) loses no trade. The swarm,
stack, secret, database container and volumes are removed at the end."""

from __future__ import annotations

import os
import secrets
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.docker.engine import (
    CLASSIC_CLI,
    HERE,
    STACK_FILE,
    TIMESCALEDB_STANDIN,
    docker,
)
from tests.docker.fake_thread import ThreadedFake
from tests.fake_deribit.market import MarketConfig
from tests.support.pgcluster import free_port

SPEED = 20.0
IN_FLIGHT_MS = 60_000
STACK_OVERRIDE = HERE / "stack.test.yml"
SERVICES = (
    "ws-collector-eth",
    "ws-collector-btc",
    "rest-collector",
    "funding-collector",
    "backup",
)
TABLES = ("eth_option_trades", "btc_option_quotes", "perpetuals_ohlcv", "funding_rates")
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]


def cli() -> str:
    """Debian's 20.10 client reads the stack file when present (what Synology ships)."""
    return CLASSIC_CLI if Path(CLASSIC_CLI).exists() else "docker"


class Swarm:
    def __init__(self, fake: ThreadedFake, image: str) -> None:
        self.fake = fake
        self.name = f"chaintape-swarm-{os.getpid()}"
        self.port = free_port()
        self.password = secrets.token_urlsafe(18)
        self.dsn = f"postgresql://chaintape:{self.password}@127.0.0.1:{self.port}/chaintape"
        self.db = f"{self.name}-db"
        # the backup service's folder, on this (the only) node, writable by the image's uid
        self.backup_dir = tempfile.mkdtemp(prefix="chaintape-swarm-backups-")
        os.chown(self.backup_dir, 10001, 10001)
        self.env = {
            "CHAINTAPE_IMAGE": image,
            "DATABASE_URL": f"postgresql://chaintape@127.0.0.1:{self.port}/chaintape",
            "CURRENCIES": "BTC,ETH",
            "BACKUP_HOST_DIR": self.backup_dir,
            "FAKE_DERIBIT_PORT": str(fake.fake.port),
            "SIM_CLOCK": fake.fake.sim_clock_spec(),
            "DRAIN_DEADLINE_S": "10",
            "TRADE_REPAIR_MAX_AGE_S": "7200",
            "FLUSH_INTERVAL_MS": "200",
            "DATA_WATCHDOG_S": "3",
        }
        self.start_ms = 0

    def start(self) -> None:
        state = docker("info", "--format", "{{.Swarm.LocalNodeState}}").stdout.strip()
        assert state == "inactive", f"this engine is already in a swarm ({state}): not ours"
        docker("swarm", "init", "--advertise-addr", "127.0.0.1")
        docker(
            "node",
            "update",
            "--label-add",
            "chaintape.realtime=true",
            "--label-add",
            "chaintape.rest=true",
            docker("info", "--format", "{{.Swarm.NodeID}}").stdout.strip(),
        )
        docker(
            "run",
            "-d",
            "--name",
            self.db,
            "--network",
            "host",
            "-e",
            "POSTGRES_USER=chaintape",
            "-e",
            "POSTGRES_DB=chaintape",
            "-e",
            f"POSTGRES_PASSWORD={self.password}",
            "-e",
            f"PGPORT={self.port}",
            "-v",
            f"{self.db}:/var/lib/postgresql/data",
            TIMESCALEDB_STANDIN,
        )
        self.wait_database()
        docker("secret", "create", "chaintape_db_password", "-", input=self.password)
        self.start_ms = self.fake.market_ms()
        docker(
            "stack",
            "deploy",
            "--resolve-image",
            "never",
            "-c",
            str(STACK_FILE),
            "-c",
            str(STACK_OVERRIDE),
            self.name,
            cli=cli(),
            env=self.env,
            timeout=300,
        )

    def wait_database(self, timeout_s: float = 120) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with psycopg.connect(self.dsn, connect_timeout=3):
                    return
            except psycopg.OperationalError:
                assert time.monotonic() < deadline, docker("logs", self.db, check=False).stderr
                time.sleep(1)

    def replicas(self) -> dict[str, str]:
        out = docker(
            "service", "ls", "--filter", f"name={self.name}_", "--format", "{{.Name}} {{.Replicas}}"
        ).stdout
        return {line.split()[0]: line.split()[1] for line in out.splitlines()}

    def rows(self, table: str) -> int:
        try:
            with psycopg.connect(self.dsn) as conn:
                row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        except psycopg.errors.UndefinedTable:
            return 0
        return int(row[0]) if row else 0

    def cleanup(self) -> None:
        docker("stack", "rm", self.name, check=False)
        deadline = time.monotonic() + 120
        label = f"label=com.docker.stack.namespace={self.name}"
        while docker("ps", "-a", "-q", "--filter", label).stdout:
            if time.monotonic() > deadline:
                break
            time.sleep(2)
        docker("secret", "rm", "chaintape_db_password", check=False)
        docker("rm", "-f", "-v", self.db, check=False)
        wanted = (self.db, f"{self.name}_chaintape-spool")
        while left := [v for v in docker("volume", "ls", "-q").stdout.split() if v in wanted]:
            docker("volume", "rm", *left, check=False)
            if time.monotonic() > deadline + 60:
                break
            time.sleep(2)
        docker("swarm", "leave", "--force", check=False)
        docker("network", "rm", "docker_gwbridge", check=False)  # made by `swarm init`


@pytest.fixture(scope="module")
def swarm(app_image: str) -> Iterator[Swarm]:
    market = MarketConfig(
        currencies=("BTC", "ETH"),
        expiries=2,
        strikes_per_expiry=3,
        quote_rate_hz=4.0,
        trade_rate_hz=0.5,
        perp_trade_rate_hz=0.5,
        future_trade_rate_hz=0.2,
        history_s=6 * 3600.0,
    )
    fake = ThreadedFake(market, SPEED)
    s = Swarm(fake, app_image)
    try:
        s.start()
        yield s
    finally:
        s.cleanup()
        fake.stop()


def test_every_collector_service_reaches_one_of_one_and_writes_rows(swarm: Swarm) -> None:
    expected = {f"{swarm.name}_{s}": "1/1" for s in SERVICES}
    deadline = time.monotonic() + 300
    while swarm.replicas() != expected:
        assert time.monotonic() < deadline, swarm.replicas()
        time.sleep(3)
    deadline = time.monotonic() + 180
    while not all(swarm.rows(t) for t in TABLES):
        assert time.monotonic() < deadline, {t: swarm.rows(t) for t in TABLES}
        time.sleep(3)
    # the password reached the collectors only as a secret file
    spec = docker("service", "inspect", f"{swarm.name}_ws-collector-eth").stdout
    assert swarm.password not in spec and "/run/secrets/chaintape_db_password" in spec


def test_a_forced_rolling_restart_of_a_collector_loses_no_trade(swarm: Swarm) -> None:
    service = f"{swarm.name}_ws-collector-eth"
    before = docker("service", "ps", "-q", service).stdout.split()
    docker("service", "update", "--force", "--detach=false", service, timeout=300)
    after = docker("service", "ps", "-q", service).stdout.split()
    assert len(after) > len(before)  # a new task replaced the old one
    assert swarm.replicas()[service] == "1/1"
    time.sleep(120 * 1000 / SPEED / 1000)
    hi = swarm.fake.market_ms() - IN_FLIGHT_MS
    for cur in ("ETH", "BTC"):
        swarm.fake.assert_trades_exact(swarm.dsn, cur, swarm.start_ms, hi)
