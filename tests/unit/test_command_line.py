"""Every entry point behaves like a command-line tool: `--help` says what it does and lists the
environment it reads with the defaults config.py uses; an unknown argument exits 2; `.env` is
found in the current directory, else the project root, and the log says which; paths are
absolute; a malformed DATABASE_URL port is a configuration error (exit 2)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

from scripts.config import (
    PROJECT_ROOT,
    ConfigError,
    Settings,
    env_defaults,
    find_dotenv_file,
    load_settings,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
COMMANDS = (
    "scripts.ws_tick_collector_multi",
    "scripts.collect_realtime",
    "scripts.funding_rates_collector",
    "scripts.backfill",
    "scripts.migrate",
    "scripts.verify",
    "scripts.healthcheck",
    "bench",
    "tests.fake_deribit",
)
ENV_LINE = re.compile(r"^  ([A-Z][A-Z0-9_]+) +\(default: (.*)\)$", re.M)


def run(
    module: str, *args: str, cwd: Path = REPO_ROOT, **env: str
) -> subprocess.CompletedProcess[str]:
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        env={**base, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("module", COMMANDS)
def test_help_says_what_the_command_does_and_lists_its_environment(module: str) -> None:
    proc = run(module, "--help")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.startswith(f"usage: python -m {module}")
    assert "environment variables" in out
    listed = dict(ENV_LINE.findall(out))
    if module == "tests.fake_deribit":
        assert listed == {} and "environment variables: none" in out
        return
    assert "DATABASE_URL" in listed or module == "scripts.healthcheck"
    for need in ("one", "many", "any"):  # every default shown is the one config.py has
        defaults = env_defaults(need)
        if all(defaults.get(k) == v for k, v in listed.items() if k != "DATABASE_URL"):
            break
    else:
        pytest.fail(f"{module}: listed defaults differ from config.env_defaults: {listed}")
    # nothing ran: no collector started, no migration, no status-file lookup
    assert "Traceback" not in proc.stderr and "healthy" not in out.splitlines()[-1]


@pytest.mark.parametrize("module", COMMANDS)
def test_unknown_argument_exits_2(module: str) -> None:
    required = (
        ("--currency", "BTC", "--since", "2025-01-01") if module == "scripts.backfill" else ()
    )
    proc = run(module, *required, "--no-such-option")
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "unrecognized arguments: --no-such-option" in proc.stderr


def test_env_defaults_are_the_defaults_load_settings_applies() -> None:
    """`--help`'s defaults come from Settings; load_settings must apply the same ones."""
    s = load_settings({"DATABASE_URL": "postgresql://u@h/d", "CURRENCY": "BTC"})
    defaults = Settings(database_url="", currencies=())
    skip = {"database_url", "currencies", "secrets", "spool_dir"}
    for f in fields(Settings):
        if f.name not in skip:
            assert getattr(s, f.name) == getattr(defaults, f.name), f.name
    names = {f.name.upper() for f in fields(Settings)} - {"SECRETS", "CURRENCIES"}
    assert set(env_defaults("many")) == names | {"CURRENCY", "CURRENCIES"}


def test_spool_dir_is_absolute_whatever_the_working_directory(tmp_path: Path) -> None:
    base = {"DATABASE_URL": "postgresql://u@h/d", "CURRENCY": "BTC"}
    s = load_settings(base)
    assert Path(s.spool_dir).is_absolute()
    assert s.spool_dir in ("/var/lib/chaintape/spool", str(PROJECT_ROOT / "spool"))
    relative = load_settings({**base, "SPOOL_DIR": "rel/spool"})
    assert relative.spool_dir == str(Path.cwd() / "rel" / "spool")


def test_dotenv_found_in_the_current_directory_first_then_the_project_root(tmp_path: Path) -> None:
    assert find_dotenv_file(tmp_path) == (
        (PROJECT_ROOT / ".env").resolve() if (PROJECT_ROOT / ".env").is_file() else None
    )
    (tmp_path / ".env").write_text("CURRENCY=ETH\n")
    assert find_dotenv_file(tmp_path) == (tmp_path / ".env").resolve()


def test_the_log_says_which_env_file_was_loaded(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("DATABASE_URL=postgresql://u:pw@127.0.0.1:1/x\nCURRENCY=ETH\n")
    code = (
        "from scripts.config import load_settings_or_exit\n"
        "from scripts.cli import setup_command_logging\n"
        "setup_command_logging(load_settings_or_exit())\n"
    )
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(REPO_ROOT)}
    here = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert here.returncode == 0, here.stderr
    assert f"settings: environment, then {(tmp_path / '.env').resolve()}" in here.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env_only = {**env, "DATABASE_URL": "postgresql://u@h/d", "CURRENCY": "BTC"}
    other = subprocess.run(
        [sys.executable, "-c", code], env=env_only, cwd=elsewhere, capture_output=True, text=True
    )
    assert other.returncode == 0, other.stderr
    if (PROJECT_ROOT / ".env").is_file():
        assert f"then {(PROJECT_ROOT / '.env').resolve()}" in other.stderr
    else:
        assert "settings: environment only (no .env in the current directory or" in other.stderr


@pytest.mark.parametrize("port", ["54x2", "abc", "99999"])
def test_database_url_with_a_bad_port_is_a_config_error(port: str) -> None:
    url = f"postgresql://chaintape:pw@localhost:{port}/chaintape"
    with pytest.raises(ConfigError) as info:
        load_settings({"DATABASE_URL": url, "CURRENCY": "BTC"})
    assert any("port" in p and port in p for p in info.value.problems)
    proc = run("scripts.migrate", DATABASE_URL=url, cwd=Path("/"))
    assert proc.returncode == 2, proc.stderr
    assert "must be a number from 1 to 65535" in proc.stderr and "pw" not in proc.stderr
