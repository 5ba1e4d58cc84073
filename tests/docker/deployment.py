"""One deployment of docker-compose-comprehensive.yml under test: its compose project (the
production file plus tests/docker/compose.test.yml), env file, database and fake exchange."""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Sequence
from pathlib import Path

import psycopg

from tests.docker.engine import COMPOSE_FILE, TEST_OVERRIDE, ComposeProject, write_env_file
from tests.docker.fake_thread import ThreadedFake
from tests.fake_deribit.market import MarketConfig
from tests.support.pgcluster import free_port

IN_FLIGHT_MS = 60_000  # trades this close to a stop may still be on the wire: not expected yet
COLLECTORS = ("ws-collector-eth", "ws-collector-btc", "rest-collector", "funding-collector")


def small_market(currencies: Sequence[str], **overrides: float) -> MarketConfig:
    """A small, quiet market (12 options per currency): the tests check behaviour, not load."""
    base: dict[str, object] = {
        "currencies": tuple(currencies),
        "expiries": 2,
        "strikes_per_expiry": 3,
        "quote_rate_hz": 4.0,
        "trade_rate_hz": 0.5,
        "perp_trade_rate_hz": 0.5,
        "future_trade_rate_hz": 0.2,
        "history_s": 6 * 3600.0,
    }
    base.update(overrides)
    return MarketConfig(**base)  # type: ignore[arg-type]


class Deployment:
    """The compose project under test, its env file, database and fake exchange."""

    def __init__(
        self, tmp: Path, fake: ThreadedFake, image: str, extra_files: Sequence[Path] = ()
    ) -> None:
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
        # the backup service's BACKUP_DIR, writable by the image's uid
        self.backup_dir = tmp / "backups"
        self.backup_dir.mkdir()
        os.chown(self.backup_dir, 10001, 10001)
        self.env["BACKUP_HOST_DIR"] = str(self.backup_dir)
        self.env_file = tmp / "test.env"
        self.write_env()
        self.project = ComposeProject(
            f"chaintape-test-{os.getpid()}",
            [COMPOSE_FILE, TEST_OVERRIDE, *extra_files],
            self.env_file,
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

    def point_at(self, fake: ThreadedFake) -> None:
        """Another fake exchange (its port and clock) for the next `up`."""
        self.fake = fake
        self.env["FAKE_DERIBIT_PORT"] = str(fake.fake.port)
        self.env["SIM_CLOCK"] = fake.fake.sim_clock_spec()
        self.write_env()
