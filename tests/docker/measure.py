"""Measures the deployment on this machine and prints the figures the README and the guide
quote: image sizes, and each service's memory from `docker stats`, idle (a quiet market of 12
options per currency) and busy (a chain of 240 options per currency at 60 book changes/s and
4 trades/s per currency), for the full stack or the reduced profile.

    python -m tests.docker.measure [--small] [--seconds 60]

Needs the engine and the stand-in images (tests/docker/build_images.sh); it builds the app
image from the Dockerfile, brings the stack up under its own project name and removes it.
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from pathlib import Path

from tests.docker.deployment import COLLECTORS, Deployment, small_market
from tests.docker.engine import (
    APP_IMAGE,
    PYTHON_STANDIN,
    REPO_ROOT,
    TIMESCALEDB_STANDIN,
    build_app_image,
    docker,
    ensure_standins,
)
from tests.docker.fake_thread import ThreadedFake

SPEED = 1.0  # real time: memory under the real message rates
UNITS = {"B": 1 / 2**20, "KiB": 1 / 1024, "MiB": 1.0, "GiB": 1024.0}


def image_mb(tag: str) -> float:
    return int(docker("image", "inspect", "-f", "{{.Size}}", tag).stdout) / 1e6


def sample(d: Deployment, services: list[str], seconds: float) -> dict[str, float]:
    """Each service's peak memory (MiB) over `seconds`, from `docker stats` every 2 s."""
    ids = {d.project.container(s): s for s in services}
    peak = dict.fromkeys(services, 0.0)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        out = docker(
            "stats", "--no-stream", "--format", "{{.ID}} {{.MemUsage}}", *ids, timeout=120
        ).stdout
        for line in out.splitlines():
            cid, usage = line.split(" ", 1)
            m = re.match(r"([\d.]+)(\w+)", usage)
            name = next(s for i, s in ids.items() if i.startswith(cid))
            if m:
                peak[name] = max(peak[name], float(m.group(1)) * UNITS[m.group(2)])
        time.sleep(2)
    return peak


def run(small: bool, seconds: float) -> None:
    ensure_standins()
    build_app_image(APP_IMAGE)
    extra = [REPO_ROOT / "docker-compose.small.yml"] if small else []
    services = ["timescaledb", *COLLECTORS]
    fake = ThreadedFake(small_market(("BTC", "ETH")), SPEED)
    tmp = Path(tempfile.mkdtemp(prefix="chaintape-measure-"))
    d = Deployment(tmp, fake, APP_IMAGE, extra)
    d.project.name = f"chaintape-measure-{'small' if small else 'full'}"
    busy_fake = None
    try:
        d.project.up()
        d.project.wait_healthy(services)
        idle = sample(d, services, seconds)
        busy_fake = ThreadedFake(
            small_market(
                ("BTC", "ETH"),
                expiries=6,
                strikes_per_expiry=20,
                quote_rate_hz=60.0,
                trade_rate_hz=4.0,
            ),
            SPEED,
        )
        d.point_at(busy_fake)
        d.project.up()  # the collectors are recreated against the busy exchange
        d.project.wait_healthy(services)
        busy = sample(d, services, seconds)
    finally:
        d.project.down()
        fake.stop()
        if busy_fake is not None:
            busy_fake.stop()
    profile = "reduced profile (docker-compose.small.yml)" if small else "full stack"
    print(f"chaintape deployment figures, {profile}, {seconds:.0f} s per phase, docker stats peaks")
    print(f"  image {APP_IMAGE} (on the Python stand-in): {image_mb(APP_IMAGE):.0f} MB")
    print(
        f"  stand-ins: python {image_mb(PYTHON_STANDIN):.0f} MB, "
        f"timescaledb {image_mb(TIMESCALEDB_STANDIN):.0f} MB"
    )
    print(f"  {'service':<20}{'idle MiB':>10}{'busy MiB':>10}")
    for s in services:
        print(f"  {s:<20}{idle[s]:>10.0f}{busy[s]:>10.0f}")
    print(f"  {'total':<20}{sum(idle.values()):>10.0f}{sum(busy.values()):>10.0f}")


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m tests.docker.measure", description=__doc__)
    p.add_argument("--small", action="store_true", help="with docker-compose.small.yml")
    p.add_argument("--seconds", type=float, default=60.0, help="sampling time per phase")
    args = p.parse_args()
    run(args.small, args.seconds)


if __name__ == "__main__":
    main()
