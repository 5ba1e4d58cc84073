"""docker-compose-comprehensive.yml on a real Docker engine, against the fake exchange.

The stack comes up with only tests/docker/compose.test.yml over it (stand-in database image,
host network, the fake's URLs, no Grafana) and the production image built from the Dockerfile
on the Python stand-in. The tests run in order on one deployment, each step starting from
where the last left it, as an operator's day would: up, stop, up, a killed process, a new
currency, an upgrade. Trades are compared with the fake's ground truth from the first `up`.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.docker.engine import (
    COMPOSE_FILE,
    REPO_ROOT,
    TEST_OVERRIDE,
    ComposeProject,
    build_app_image,
    spool_segments,
    write_env_file,
)
from tests.docker.fake_thread import ThreadedFake
from tests.docker.guide import guide_block
from tests.fake_deribit.market import MarketConfig
from tests.support.pgcluster import free_port

SPEED = 20.0  # market seconds per wall second
COLLECTORS = ("ws-collector-eth", "ws-collector-btc", "rest-collector", "funding-collector")
GRACE_S = 60.0  # the compose file's stop_grace_period
IN_FLIGHT_MS = 60_000  # trades this close to a stop may still be on the wire: not expected yet
# What each service writes (the tables it is responsible for).
TABLES = {
    "ws-collector-eth": ("eth_option_quotes", "eth_option_trades", "eth_option_orderbook_depth"),
    "ws-collector-btc": ("btc_option_quotes", "btc_option_trades", "btc_option_orderbook_depth"),
    "rest-collector": (
        "perpetuals_ohlcv",
        "futures_ohlcv",
        "options_ohlcv",
        "options_greeks",
        "index_prices",
    ),
    "funding-collector": ("funding_rates",),
}
SHARED_TABLES = ("instruments", "collector_status")
pytestmark = pytest.mark.slow


class Deployment:
    """The compose project under test, its env file, database and fake exchange."""

    def __init__(self, tmp: Path, fake: ThreadedFake, image: str) -> None:
        self.tmp = tmp
        self.fake = fake
        port = free_port()
        password = secrets.token_urlsafe(18)
        self.dsn = f"postgresql://chaintape:{password}@127.0.0.1:{port}/chaintape"
        self.env = {
            "CHAINTAPE_IMAGE": image,
            "POSTGRES_PASSWORD": password,
            "GRAFANA_ADMIN_PASSWORD": secrets.token_urlsafe(18),
            "GRAFANA_DB_PASSWORD": secrets.token_urlsafe(18),
            "POSTGRES_PORT": str(port),
            "DATABASE_URL": f"postgresql://chaintape@127.0.0.1:{port}/chaintape",
            "TS_TUNE_MEMORY": "512MB",
            "CURRENCIES": "BTC,ETH",
            "FAKE_DERIBIT_PORT": str(fake.fake.port),
            "SIM_CLOCK": fake.fake.sim_clock_spec(),
            "FLUSH_INTERVAL_MS": "200",
            "DATA_WATCHDOG_S": "3",
            "DRAIN_DEADLINE_S": "10",
            "TRADE_REPAIR_MAX_AGE_S": "7200",
            "ORDERBOOK_SNAPSHOT_INTERVAL_S": "600",
            "FUNDING_BACKFILL_HOURS": "4",
        }
        self.env_file = tmp / "test.env"
        self.write_env()
        self.project = ComposeProject(
            f"chaintape-test-{os.getpid()}", [COMPOSE_FILE, TEST_OVERRIDE], self.env_file
        )
        self.collectors = list(COLLECTORS)
        self.first_up_ms = 0

    def write_env(self) -> None:
        write_env_file(self.env_file, self.env)

    def rows(self, table: str) -> int:
        with psycopg.connect(self.dsn) as conn:
            row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        return int(row[0]) if row else 0

    def wait_rows(self, tables: list[str], timeout_s: float = 180) -> dict[str, int]:
        deadline = time.monotonic() + timeout_s
        while True:
            counts = {t: self.rows(t) for t in tables}
            if all(counts.values()) or time.monotonic() > deadline:
                return counts
            time.sleep(2)

    def trades_exact(self, currencies: tuple[str, ...] = ("ETH", "BTC")) -> None:
        hi = self.fake.market_ms() - IN_FLIGHT_MS
        for cur in currencies:
            self.fake.assert_trades_exact(self.dsn, cur, self.first_up_ms, hi)


@pytest.fixture(scope="module")
def deployment(app_image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    market = MarketConfig(
        currencies=("BTC", "ETH", "SOL"),
        expiries=2,
        strikes_per_expiry=3,
        quote_rate_hz=4.0,
        trade_rate_hz=0.5,
        perp_trade_rate_hz=0.5,
        future_trade_rate_hz=0.2,
        history_s=6 * 3600.0,
    )
    fake = ThreadedFake(market, SPEED)
    d = Deployment(tmp_path_factory.mktemp("compose"), fake, app_image)
    try:
        d.first_up_ms = fake.market_ms()
        d.project.up()
        yield d
    finally:
        d.project.down()
        fake.stop()


def test_collectors_become_healthy_as_non_root_and_fill_their_tables(d: Deployment) -> None:
    d.project.wait_healthy(["timescaledb", *COLLECTORS])
    migrate = d.project.inspect("migrate")["State"]
    assert (migrate["Status"], migrate["ExitCode"]) == ("exited", 0)
    for service in COLLECTORS:
        info = d.project.inspect(service)
        assert info["Config"]["User"] == "10001:10001"
        assert info["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
        uid = d.project.run("exec", "-T", service, "id", "-u").strip()
        assert uid == "10001", f"{service} runs as uid {uid}"
    tables = [t for owned in TABLES.values() for t in owned] + list(SHARED_TABLES)
    counts = d.wait_rows(tables)
    assert [t for t, n in counts.items() if n == 0] == [], counts
    print(f"[compose] rows after start: {counts}")


def test_stop_drains_every_collector_within_its_grace_period(d: Deployment) -> None:
    d.trades_exact()
    started = time.monotonic()
    d.project.run("stop", "--timeout", str(int(GRACE_S)), timeout=300)
    took = time.monotonic() - started
    stop_ms = d.fake.market_ms()
    for service in COLLECTORS:
        state = d.project.inspect(service)["State"]
        assert (state["Status"], state["ExitCode"], state["OOMKilled"]) == ("exited", 0, False)
        assert "stopping intake and draining" in d.project.logs(service)
    assert took < GRACE_S + 30  # the database stops after them, within its own grace
    assert spool_segments(d.project.volume("chaintape-spool"), d.env["CHAINTAPE_IMAGE"]) == []
    # nothing the collectors received before the stop is missing
    d.project.up("timescaledb")
    d.project.wait_healthy(["timescaledb"])
    for cur in ("ETH", "BTC"):
        d.fake.assert_trades_exact(d.dsn, cur, d.first_up_ms, stop_ms - IN_FLIGHT_MS, wait_s=5)
    print(f"[compose] docker compose stop took {took:.1f} s")


def test_up_again_resumes_and_repairs_the_trades_missed_while_stopped(d: Deployment) -> None:
    before = d.rows("eth_option_quotes")
    d.project.up()
    d.project.wait_healthy(COLLECTORS)
    time.sleep(120 * 1000 / SPEED / 1000)  # two market minutes
    d.trades_exact()  # includes the window the stack was down: repaired through REST
    assert d.rows("eth_option_quotes") > before
    with psycopg.connect(d.dsn) as conn:
        repaired = conn.execute("SELECT count(*) FROM data_gaps WHERE repaired").fetchone()
    print(f"[compose] repaired gaps after restart: {repaired}")


def test_sigkill_of_a_collector_is_restarted_without_losing_a_trade(d: Deployment) -> None:
    info = d.project.inspect("ws-collector-eth")
    pid, restarts = info["State"]["Pid"], info["RestartCount"]
    assert pid > 0
    os.kill(pid, signal.SIGKILL)  # from the host, as an OOM killer or a crash would
    deadline = time.monotonic() + 120
    while d.project.inspect("ws-collector-eth")["RestartCount"] == restarts:
        assert time.monotonic() < deadline, "the restart policy did not bring it back"
        time.sleep(1)
    d.project.wait_healthy(["ws-collector-eth"])
    time.sleep(3)
    d.trades_exact(("ETH",))


def test_adding_sol_from_the_guide_creates_and_fills_sol_tables(d: Deployment) -> None:
    import yaml

    block = guide_block("ws-collector-sol")
    text = COMPOSE_FILE.read_text()
    anchor = "\n  rest-collector:\n"
    assert anchor in text
    edited = d.tmp / "sol" / COMPOSE_FILE.name
    edited.parent.mkdir()
    edited.write_text(text.replace(anchor, "\n" + block.rstrip("\n") + "\n" + anchor, 1))
    override = yaml.safe_load(TEST_OVERRIDE.read_text())
    override["services"]["ws-collector-sol"] = override["services"]["ws-collector-eth"]
    override_file = d.tmp / "sol" / TEST_OVERRIDE.name
    override_file.write_text(yaml.safe_dump(override))
    d.env["CURRENCIES"] = "BTC,ETH,SOL"  # the guide's second step
    d.write_env()
    d.project.files = [edited, override_file]
    sol_up_ms = d.fake.market_ms()
    d.project.up()
    d.collectors.append("ws-collector-sol")
    d.project.wait_healthy(d.collectors)
    counts = d.wait_rows(["sol_option_quotes", "sol_option_trades", "sol_option_orderbook_depth"])
    assert all(counts.values()), counts
    time.sleep(3)
    hi = d.fake.market_ms() - IN_FLIGHT_MS
    d.fake.assert_trades_exact(d.dsn, "SOL", sol_up_ms, hi)
    d.trades_exact()


def test_upgrade_to_an_image_with_a_new_migration_keeps_rows_and_trades(d: Deployment) -> None:
    context = d.tmp / "upgrade-context"
    context.mkdir()
    for name in ("Dockerfile", ".dockerignore", "pyproject.toml"):
        shutil.copy2(REPO_ROOT / name, context / name)
    for name in ("scripts", "schema"):
        shutil.copytree(
            REPO_ROOT / name, context / name, ignore=shutil.ignore_patterns("__pycache__")
        )
    (context / "schema" / "069_test_upgrade_probe.sql").write_text(
        "CREATE TABLE upgrade_probe (id int PRIMARY KEY);\nINSERT INTO upgrade_probe VALUES (1);\n"
    )
    new_image = "chaintape-test/app:upgrade"
    build_app_image(new_image, context)
    tables = [t for owned in TABLES.values() for t in owned] + ["sol_option_trades"]
    before = {t: d.rows(t) for t in tables}
    d.env["CHAINTAPE_IMAGE"] = new_image
    d.write_env()
    try:
        d.project.up()
        d.project.wait_healthy(d.collectors)
        for service in d.collectors:
            assert d.project.inspect(service)["Config"]["Image"] == new_image
        with psycopg.connect(d.dsn) as conn:
            probe = conn.execute("SELECT id FROM upgrade_probe").fetchall()
            applied = conn.execute(
                "SELECT filename FROM schema_migrations WHERE filename LIKE '069_%'"
            ).fetchall()
        assert (probe, applied) == ([(1,)], [("069_test_upgrade_probe.sql",)])
        after = {t: d.rows(t) for t in tables}
        assert [t for t in tables if after[t] < before[t]] == [], (before, after)
        time.sleep(3)
        d.trades_exact(("ETH", "BTC"))
    finally:
        d.project.down()
        from tests.docker.engine import docker

        docker("image", "rm", new_image, check=False)


@pytest.fixture
def d(deployment: Deployment) -> Deployment:
    return deployment
