"""Issue 11 scenario 12: settings that used to fail late (a traceback, exit 1) fail at start."""

from __future__ import annotations

import subprocess
import sys

import pytest

from scripts.config import EXIT_CONFIG_ERROR, ConfigError, load_settings
from tests.conftest import REPO_ROOT

GOOD = {
    "DATABASE_URL": "postgresql://chaintape:s3cret-pass@127.0.0.1:1/chaintape",
    "CURRENCY": "BTC",
}


@pytest.mark.parametrize("days", ["1", "3", "6"])
def test_retention_days_below_the_minimum_is_a_config_error(days: str) -> None:
    with pytest.raises(ConfigError, match="RETENTION_DAYS"):
        load_settings({**GOOD, "RETENTION_DAYS": days})


@pytest.mark.parametrize("days", ["0", "7", "365"])
def test_retention_days_zero_or_a_week_or_more_is_accepted(days: str) -> None:
    assert load_settings({**GOOD, "RETENTION_DAYS": days}).retention_days == int(days)


@pytest.mark.parametrize("password", ["postgres", "short-pw", "Password"])
def test_placeholder_or_short_grafana_password_is_a_config_error(password: str) -> None:
    with pytest.raises(ConfigError, match="GRAFANA_DB_PASSWORD") as err:
        load_settings({**GOOD, "GRAFANA_DB_PASSWORD": password})
    assert password not in str(err.value)  # the message never repeats the secret


def test_currency_naming_two_currencies_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"CURRENCY=.*one currency.*CURRENCIES"):
        load_settings({**GOOD, "CURRENCY": "BTC,ETH"})


def test_several_problems_are_reported_together() -> None:
    env = {**GOOD, "CURRENCY": "BTC,ETH", "RETENTION_DAYS": "2", "GRAFANA_DB_PASSWORD": "x"}
    with pytest.raises(ConfigError) as err:
        load_settings(env)
    assert len(err.value.problems) == 3


def test_a_collector_exits_2_with_one_message_before_touching_anything() -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", **GOOD, "RETENTION_DAYS": "3"}
    proc = subprocess.run(
        [sys.executable, "-m", "scripts.ws_tick_collector_multi"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == EXIT_CONFIG_ERROR, proc.stderr[-2000:]
    assert "RETENTION_DAYS" in proc.stderr and "Traceback" not in proc.stderr
