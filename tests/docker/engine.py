"""The Docker engine as the deployment tests use it: the CLI, the stand-in and app images, and
one compose project (its files, env file and containers), with nothing mocked.

In CI (`CI=true`, or `CHAINTAPE_REQUIRE_DOCKER=1`, which `.ci/run` sets) a missing engine or
Compose fails the test instead of skipping it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
COMPOSE_FILE = REPO_ROOT / "docker-compose-comprehensive.yml"
STACK_FILE = REPO_ROOT / "docker-stack.yml"
TEST_OVERRIDE = HERE / "compose.test.yml"
BUILD_IMAGES = HERE / "build_images.sh"
PYTHON_STANDIN = "chaintape-test/python:3.13"
TIMESCALEDB_STANDIN = "chaintape-test/timescaledb:pg17"
# CHAINTAPE_TEST_APP_IMAGE: another tag, so two checkouts can test on one engine side by side.
APP_IMAGE = os.environ.get("CHAINTAPE_TEST_APP_IMAGE", "chaintape-test/app:current")
# Debian's 20.10 client when present: what Synology ships, so the stack file is read by it.
CLASSIC_CLI = "/usr/bin/docker"


def engine_required() -> bool:
    return os.environ.get("CI") == "true" or os.environ.get("CHAINTAPE_REQUIRE_DOCKER") == "1"


def skip_or_fail(reason: str) -> None:
    if engine_required():
        pytest.fail(f"{reason} (CI requires the Docker engine: .ci/run installs it)")
    pytest.skip(reason)


def docker(
    *args: str,
    check: bool = True,
    timeout: float = 600,
    input: str | None = None,
    cli: str = "docker",
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Runs the docker CLI; on failure the error names the command and its output."""
    proc = subprocess.run(
        [cli, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input,
        env={**os.environ, **(env or {})},
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"docker {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def require_compose() -> None:
    if shutil.which("docker") is None:
        skip_or_fail("the docker CLI is not installed")
    if docker("compose", "version", check=False, timeout=60).returncode != 0:
        skip_or_fail("Docker Compose v2 (`docker compose`) is not installed")


def require_engine() -> None:
    require_compose()
    if docker("info", check=False, timeout=60).returncode != 0:
        skip_or_fail("no Docker engine answers (`docker info` failed)")


def image_exists(tag: str) -> bool:
    return docker("image", "inspect", tag, check=False, timeout=60).returncode == 0


def ensure_standins() -> None:
    """The stand-in images, built by tests/docker/build_images.sh when missing."""
    if image_exists(PYTHON_STANDIN) and image_exists(TIMESCALEDB_STANDIN):
        return
    proc = subprocess.run(["bash", str(BUILD_IMAGES)], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"build_images.sh failed:\n{proc.stdout}\n{proc.stderr}"


def build_app_image(tag: str, context: Path = REPO_ROOT) -> None:
    """The production Dockerfile with only PYTHON_IMAGE replaced by the stand-in."""
    docker(
        "build",
        "--network",
        "host",
        "--build-arg",
        f"PYTHON_IMAGE={PYTHON_STANDIN}",
        "-t",
        tag,
        str(context),
        timeout=900,
    )


def write_env_file(path: Path, values: dict[str, str]) -> Path:
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    return path


class ComposeProject:
    """`docker compose -p NAME --env-file ENV -f FILE...` and the project's containers."""

    def __init__(self, name: str, files: Sequence[Path], env_file: Path) -> None:
        self.name = name
        self.files = list(files)
        self.env_file = env_file

    def args(self) -> list[str]:
        """What follows `docker compose` to address this project."""
        out = ["-p", self.name, "--env-file", str(self.env_file)]
        for f in self.files:
            out += ["-f", str(f)]
        return out

    def run(self, *args: str, check: bool = True, timeout: float = 600) -> str:
        return docker("compose", *self.args(), *args, check=check, timeout=timeout).stdout

    def shell(
        self, command: str, cwd: Path, timeout: float = 600, ok: tuple[int, ...] = (0,)
    ) -> str:
        """A shell command line (a guide's, with its redirections); its exit code is one of
        `ok`, and its output is returned."""
        proc = subprocess.run(
            ["bash", "-c", command], cwd=cwd, capture_output=True, text=True, timeout=timeout
        )
        assert proc.returncode in ok, (
            f"{command}\nexit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        )
        return proc.stdout

    def up(self, *services: str) -> None:
        self.run("up", "-d", "--no-build", *services)

    def down(self) -> None:
        self.run("down", "--volumes", "--remove-orphans", "--timeout", "30", check=False)

    def container(self, service: str) -> str:
        ids = self.run("ps", "-a", "-q", service).split()
        assert len(ids) == 1, f"{service}: containers {ids}"
        return ids[0]

    def inspect(self, service: str) -> dict[str, Any]:
        out = docker("inspect", self.container(service)).stdout
        return dict(json.loads(out)[0])

    def health(self, service: str) -> str:
        state = self.inspect(service)["State"]
        return str(state.get("Health", {}).get("Status", state["Status"]))

    def wait_healthy(self, services: Sequence[str], timeout_s: float = 300) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            status = {s: self.health(s) for s in services}
            if all(v == "healthy" for v in status.values()):
                return
            if time.monotonic() > deadline:
                detail = {
                    s: (self.inspect(s)["RestartCount"], self.inspect(s)["State"].get("Health"))
                    for s in services
                    if status[s] != "healthy"
                }
                logs = {s: self.logs(s)[-3000:] for s in services if status[s] != "healthy"}
                raise AssertionError(f"not healthy after {timeout_s} s: {status}\n{detail}\n{logs}")
            time.sleep(2)

    def logs(self, service: str) -> str:
        return self.run("logs", "--no-color", service, check=False)

    def volume(self, name: str) -> str:
        return f"{self.name}_{name}"


def spool_segments(volume: str, image: str) -> list[str]:
    """The spool segments with rows in them on a spool volume (empty = nothing pending)."""
    out = docker(
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        f"{volume}:/spool:ro",
        "--entrypoint",
        "find",
        image,
        "/spool",
        "-name",
        "seg-*.spool",
        "-size",
        "+0c",
    ).stdout
    return out.split()
