"""docker-compose-comprehensive.yml on a real Docker engine, against the fake exchange.

The stack comes up with only tests/docker/compose.test.yml over it (stand-in database image,
host network, the fake's URLs, no Grafana) and the production image built from the Dockerfile
on the Python stand-in. The tests run in order on one deployment, each step starting from
where the last left it, as an operator's day would: up, stop, up, a killed process, a new
currency, an upgrade. Trades are compared with the fake's ground truth from the first `up`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator

import psycopg
import pytest

from tests.docker.deployment import IN_FLIGHT_MS, Deployment, small_market
from tests.docker.engine import (
    COMPOSE_FILE,
    REPO_ROOT,
    TEST_OVERRIDE,
    build_app_image,
    docker,
    spool_segments,
)
from tests.docker.fake_thread import ThreadedFake
from tests.docker.guide import as_test_command, guide_block, guide_compose_commands

SPEED = 20.0  # market seconds per wall second
COLLECTORS = ("ws-collector-eth", "ws-collector-btc", "rest-collector", "funding-collector")
GRACE_S = 60.0  # the compose file's stop_grace_period
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
UPGRADE_IMAGE = "chaintape-test/app:upgrade"
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]


@pytest.fixture(scope="module")
def deployment(app_image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    fake = ThreadedFake(small_market(("BTC", "ETH", "SOL")), SPEED)
    d = Deployment(tmp_path_factory.mktemp("compose"), fake, app_image)
    try:
        d.first_up_ms = fake.market_ms()
        d.project.up()
        yield d
    finally:
        d.project.down()
        fake.stop()
        docker("image", "rm", UPGRADE_IMAGE, check=False)


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
    stop_ms = d.fake.market_ms()  # SIGTERM goes to every collector at once, now
    started = time.monotonic()
    d.project.run("stop", "--timeout", str(int(GRACE_S)), timeout=300)
    took = time.monotonic() - started
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


def test_the_guides_everyday_commands_work_on_the_running_stack(d: Deployment) -> None:
    """Parts 1 and 3: config, ps, verify, the health check and logs, as the guide writes them."""
    commands = guide_compose_commands("## Part 1") + guide_compose_commands("## Part 3")
    ran = []
    for command in commands:
        if command.split()[4:6] in (["up", "-d"], ["stop"]):
            continue  # up and stop are the steps above, with their checks
        verify = "scripts.verify" in command
        # verify measures freshness on the wall clock, and the market here runs on the fake's
        # simulated clock (months behind): every table is "STALE", which exits 1
        out = d.project.shell(
            as_test_command(command, d.project.args()), cwd=d.tmp, ok=(0, 1) if verify else (0,)
        )
        ran.append(command)
        if "scripts.healthcheck" in command:
            assert out.strip() == "healthy"
        if verify:
            line = next(
                ln for ln in out.splitlines() if ln.lstrip().startswith("eth_option_trades")
            )
            assert int(line.split()[2].replace(",", "")) > 0, line
    assert len(ran) >= 4, ran


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
    new_image = UPGRADE_IMAGE
    build_app_image(new_image, context)
    tables = [t for owned in TABLES.values() for t in owned] + ["sol_option_trades"]
    before = {t: d.rows(t) for t in tables}
    d.env["CHAINTAPE_IMAGE"] = new_image
    d.write_env()
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


def test_the_dsm_alert_script_passes_the_checks_report_and_exit_code_through(
    d: Deployment,
) -> None:
    """scripts/dsm-check.sh as DSM's Task Scheduler runs it (sh, from the project folder with
    its .env): the check's report and exit code, in the running backup service and, with that
    service stopped, in a one-off container of it. No backup has run yet: exit 1, one problem."""
    d.project.wait_healthy(["backup"])
    # the NAS's project folder: the compose file, .env and scripts/dsm-check.sh
    folder = d.tmp / "nas"
    (folder / "scripts").mkdir(parents=True)
    shutil.copy2(COMPOSE_FILE, folder / COMPOSE_FILE.name)
    shutil.copy2(d.env_file, folder / ".env")
    script = str(shutil.copy2(REPO_ROOT / "scripts" / "dsm-check.sh", folder / "scripts"))
    env = {
        **os.environ,
        "COMPOSE_FILE": f"{COMPOSE_FILE.name}:{TEST_OVERRIDE}",
        "COMPOSE_PROJECT_NAME": d.project.name,
    }

    def problems(out: str) -> list[str]:
        """The problem lines, figures masked (ages and free space move between runs)."""
        lines = [ln for ln in out.splitlines() if ln.startswith("PROBLEM: ")]
        return [re.sub(r"\d+(\.\d+)?", "N", ln) for ln in lines]

    direct = docker(
        "compose",
        *d.project.args(),
        "exec",
        "-T",
        "backup",
        "python",
        "-m",
        "scripts.check",
        check=False,
    )
    assert direct.returncode == 1, direct.stdout
    assert "PROBLEM: no successful backup recorded yet" in direct.stdout.splitlines()
    for backup_running in (True, False):
        if not backup_running:
            d.project.run("stop", "backup")
        via = subprocess.run(["sh", script], env=env, capture_output=True, text=True, timeout=300)
        assert via.returncode == direct.returncode, via.stdout + via.stderr
        assert problems(via.stdout) == problems(direct.stdout), via.stdout
        assert via.stdout.rstrip().endswith(f"{len(problems(direct.stdout))} problem(s)")
    d.project.up("backup")
    missing = subprocess.run(
        ["sh", script],
        env={**env, "CHAINTAPE_DIR": str(d.tmp / "no-such-folder")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode == 3
    assert "cannot cd to" in missing.stdout


def test_backup_service_dump_restores_into_a_fresh_database_from_the_guide(d: Deployment) -> None:
    """Part 4 of the guide, command by command: the backup service dumps the running stack
    (collectors writing), its restore test passes; then on a fresh database container and
    volume `scripts.restore latest` brings back exactly the rows of the dump's snapshot, and
    the stack resumes, repairing the trades of the time it was down."""
    commands = guide_compose_commands("## Part 4")
    dump_cmds = [c for c in commands if "scripts.backup" in c]
    restore_cmds = [c for c in commands if "scripts.backup" not in c]
    assert [c.split()[-1] for c in dump_cmds] == ["now", "verify"]
    assert any("scripts.restore latest" in c for c in restore_cmds)
    d.project.wait_healthy(["backup"])
    assert d.project.inspect("backup")["Config"]["User"] == "10001:10001"
    for command in dump_cmds:
        out = d.project.shell(as_test_command(command, d.project.args()), cwd=d.tmp)
        assert "FAILED" not in out, out
    dumps = sorted(d.backup_dir.glob("chaintape-*.dump"))
    assert len(dumps) == 1, dumps
    manifest = json.loads((d.backup_dir / (dumps[0].name + ".manifest.json")).read_text())
    dumped = {t: v["rows"] for t, v in manifest["tables"].items()}
    assert dumped["eth_option_quotes"] > 0 and dumped["btc_option_trades"] > 0
    with psycopg.connect(d.dsn) as conn:
        kinds = conn.execute("SELECT kind, success FROM backups ORDER BY finished_at").fetchall()
    assert kinds == [("backup", True), ("restore_test", True)]
    d.project.run("down", "--volumes")  # a fresh database container and volume
    for command in restore_cmds:
        out = d.project.shell(as_test_command(command, d.project.args()), cwd=d.tmp)
        if "scripts.restore" in command:
            assert "agrees row for row" in out, out
            restored = {t: d.rows(t) for t in dumped}
            assert restored == dumped
    d.project.wait_healthy(d.collectors)
    time.sleep(3)
    d.trades_exact(("ETH", "BTC"))


@pytest.fixture
def d(deployment: Deployment) -> Deployment:
    return deployment
