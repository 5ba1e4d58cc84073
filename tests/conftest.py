"""Shared fixtures: a real PostgreSQL + TimescaleDB cluster, and per-test databases."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.durability import db, deployments, private_cluster  # noqa: F401 (fixtures)
from tests.support.pgcluster import PgCluster
from tests.support.realtime import fake_hour, stalls  # noqa: F401 (fixtures for every test)

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(
    os.environ.get("CHAINTAPE_SHARED_DATA", REPO_ROOT.parent / "shared" / "data" / "deribit")
)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Under pytest-xdist (`make test` runs two workers) the deployment tests form one unit of
    work, run in order on one worker: they share the host's network and one Docker engine, and
    a module's tests build on each other. Every other test is its own unit. (Not `--dist
    loadgroup`: its group marks are lost with pytest 9.2's node ids.)"""
    from xdist.scheduler import LoadScopeScheduling

    class DeploymentTestsTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return "tests/docker" if nodeid.startswith("tests/docker/") else nodeid

    return DeploymentTestsTogether(config, log)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """One throwaway cluster for the whole session; its `edition` is 'apache' or 'timescale'."""
    cluster = PgCluster()
    print(
        f"\n[chaintape] test cluster on port {cluster.port}, "
        f"TimescaleDB edition: {cluster.edition}",
        file=sys.stderr,
    )
    try:
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
def database_url(pg_cluster: PgCluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh, empty database for one test (dropped afterwards)."""
    url = pg_cluster.create_database(
        prefix=re.sub(r"[^a-z0-9_]", "_", request.node.name.lower())[:24]
    )
    try:
        yield url
    finally:
        pg_cluster.drop_database(url)


@pytest.fixture
def full_edition(pg_cluster: PgCluster) -> None:
    """Skips, saying why, where the cluster has only the Apache edition of TimescaleDB."""
    if pg_cluster.edition != "timescale":
        pytest.skip(
            "needs the full TimescaleDB edition (license 'timescale'); this cluster has "
            f"'{pg_cluster.edition}', as CI does: run on a machine with the full edition installed"
        )


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(
            f"recorded Deribit messages not found at {SHARED_DATA} (set CHAINTAPE_SHARED_DATA)"
        )
    return SHARED_DATA
