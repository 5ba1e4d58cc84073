"""The alert check's container part on a real Docker engine: a container in a restart loop and
one whose health check fails are each reported in one line; other projects' are not."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from scripts.checks.local import containers
from scripts.config import load_settings
from tests.docker.engine import PYTHON_STANDIN, docker, ensure_standins, require_engine

pytestmark = pytest.mark.timeout(600)


@pytest.fixture
def project() -> Iterator[str]:
    require_engine()
    ensure_standins()
    name = f"chaintape-check-{os.getpid()}"
    try:
        yield name
    finally:
        ids = docker("ps", "-aq", "--filter", f"label=com.docker.compose.project={name}").stdout
        if ids.split():
            docker("rm", "-f", *ids.split(), check=False)


def _run(project: str, service: str, *args: str) -> None:
    docker(
        "run",
        "-d",
        "--network",
        "none",
        "--label",
        f"com.docker.compose.project={project}",
        "--label",
        f"com.docker.compose.service={service}",
        "--name",
        f"{project}-{service}",
        *args,
    )


def test_restarting_and_unhealthy_containers_are_reported(project: str) -> None:
    settings = load_settings(
        {
            "DATABASE_URL": "postgresql://x@127.0.0.1:1/x",
            "CHECK_COMPOSE_PROJECT": project,
            "CHECK_DOCKER_HOST": "unix:///var/run/docker.sock",
        },
        need_currency="many",
    )
    empty = containers(settings)
    assert empty.problems == []
    assert empty.notes == [f"no containers of compose project {project!r}"]
    _run(
        project,
        "crasher",
        "--restart",
        "always",
        PYTHON_STANDIN,
        "python3",
        "-c",
        "raise SystemExit(3)",
    )
    _run(
        project,
        "sick",
        "--health-cmd",
        "false",
        "--health-interval",
        "1s",
        "--health-retries",
        "1",
        PYTHON_STANDIN,
        "sleep",
        "600",
    )
    _run(project, "fine", PYTHON_STANDIN, "sleep", "600")
    deadline = time.monotonic() + 120
    while True:
        found = containers(settings)
        if len(found.problems) == 2 or time.monotonic() > deadline:
            break
        time.sleep(1)
    crash, sick = sorted(found.problems)
    assert crash.startswith(f"container {project}-crasher (crasher) is restarting (restarted ")
    assert crash.endswith("last exit code 3)")
    assert sick == f"container {project}-sick (sick) is unhealthy"
