"""Settings: typed, every problem reported together, exit 2, secrets masked."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest

from scripts.config import ConfigError, load_settings
from scripts.logs import mask_secrets, setup_logging
from tests.conftest import REPO_ROOT

GOOD = {"DATABASE_URL": "postgresql://chaintape:s3cret-pass@db:5432/chaintape", "CURRENCY": "ETH"}


def test_defaults_and_values() -> None:
    s = load_settings(GOOD)
    assert s.currency.code == "ETH" and s.currency.api_currency == "ETH"
    assert s.deribit_ws_url == "wss://www.deribit.com/ws/api/v2"
    assert s.deribit_rest_url == "https://www.deribit.com/api/v2"
    assert s.deribit_history_url == "https://history.deribit.com/api/v2"
    assert s.top_n_instruments == 0
    assert s.orderbook_snapshot_interval_s == 300.0
    assert s.secrets == ("s3cret-pass",)


def test_sol_is_usdc_linear() -> None:
    s = load_settings({**GOOD, "CURRENCY": "sol"})
    assert (s.currency.code, s.currency.api_currency, s.currency.base_currency) == (
        "SOL",
        "USDC",
        "SOL",
    )
    assert s.currency.instrument_prefix == "SOL_USDC-"
    assert s.currency.table_prefix == "sol"


def test_currencies_list_defaults_to_btc_eth() -> None:
    s = load_settings({"DATABASE_URL": GOOD["DATABASE_URL"]}, need_currency="many")
    assert [c.code for c in s.currencies] == ["BTC", "ETH"]
    s = load_settings({**GOOD, "CURRENCIES": "btc, SOL,btc"}, need_currency="many")
    assert [c.code for c in s.currencies] == ["BTC", "SOL"]


def test_every_problem_is_reported_together() -> None:
    env = {
        "DATABASE_URL": "postgresql://u:pw@host:notaport/db x=",
        "CURRENCY": "DOGECOINZ",
        "TOP_N_INSTRUMENTS": "-5",
        "LOG_LEVEL": "LOUD",
        "DERIBIT_WS_URL": "http://nope",
        "FLUSH_INTERVAL_MS": "abc",
    }
    with pytest.raises(ConfigError) as info:
        load_settings(env)
    text = str(info.value)
    problems = info.value.problems
    assert len(problems) == 6, problems
    assert "DATABASE_URL" in text and "unknown currency 'DOGECOINZ'" in text
    assert "TOP_N_INSTRUMENTS='-5'" in text and "LOG_LEVEL" in text
    assert "DERIBIT_WS_URL" in text and "FLUSH_INTERVAL_MS" in text
    assert "pw" not in text.replace("postgresql", "")  # the password never appears


def test_missing_currency_and_database_url() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings({})
    assert any(p.startswith("CURRENCY is not set") for p in info.value.problems)
    assert any(p.startswith("DATABASE_URL is not set") for p in info.value.problems)


def test_real_environment_wins_over_dotenv(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / ".env").write_text(
        "CURRENCY=BTC\nDATABASE_URL=postgresql://a@b/c\nTOP_N_INSTRUMENTS=7\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CURRENCY", "ETH")
    monkeypatch.delenv("TOP_N_INSTRUMENTS", raising=False)
    s = load_settings()
    assert s.currency.code == "ETH"
    assert s.top_n_instruments == 7


def test_bad_environment_exits_2_with_one_message() -> None:
    env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": "mysql://x", "CURRENCY": "FOO"}
    code = "from scripts.config import load_settings_or_exit; load_settings_or_exit()"
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "invalid configuration" in proc.stderr
    assert "DATABASE_URL" in proc.stderr and "unknown currency 'FOO'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_secrets_masked_in_every_log_line(capsys: pytest.CaptureFixture[str]) -> None:
    s = load_settings({**GOOD, "GRAFANA_DB_PASSWORD": "grafana-pass-123"})
    setup_logging("INFO", s.secrets)
    try:
        logging.getLogger("t").info("connecting to %s", s.database_url)
        logging.getLogger("t").info("grafana password is grafana-pass-123")
        logging.getLogger("t").info("settings %s", s.masked())
    finally:
        logging.getLogger().handlers.clear()
    err = capsys.readouterr().err
    assert "s3cret-pass" not in err and "grafana-pass-123" not in err
    assert "chaintape:***@db" in err


def test_mask_secrets_patterns() -> None:
    assert mask_secrets("postgres://me:pw@h/db") == "postgres://me:***@h/db"
    assert mask_secrets("host=h password=hunter2 user=me") == "host=h password=*** user=me"


def test_env_example_documents_every_setting() -> None:
    """Every variable config.py (with config_values.py) and the compose/stack files read is in
    .env.example, and .env.example names no other."""
    import re

    from scripts.config_values import SECRET_FILE_VARIABLES

    source = "".join(
        (REPO_ROOT / "scripts" / name).read_text() for name in ("config.py", "config_values.py")
    )
    read = set(re.findall(r'(?:raw|parse|number|integer|url)\(\s*"([A-Z][A-Z0-9_]+)"', source))
    read |= {"DATABASE_URL", "CURRENCY", "CURRENCIES"}
    read |= {f"{name}_FILE" for name in SECRET_FILE_VARIABLES}
    for compose_file in COMPOSE_FILES:
        read |= set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", (REPO_ROOT / compose_file).read_text()))
    example = (REPO_ROOT / ".env.example").read_text()
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", example, re.M))
    assert read - documented == set()
    assert documented - read == set()


COMPOSE_FILES = (
    "docker-compose-comprehensive.yml",
    "docker-compose.small.yml",
    "docker-compose.db-port.yml",
    "docker-stack.yml",
    "docker-compose.docker-socket.yml",
)


def test_secret_files_and_database_password(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """NAME_FILE (Docker secrets) is read instead of NAME; DATABASE_PASSWORD joins the URL."""
    secret = tmp_path / "db_password"
    secret.write_text("p@ss/w:rd\n")
    grafana = tmp_path / "grafana_password"
    grafana.write_text("reader-secret-42\n")
    s = load_settings(
        {
            "DATABASE_URL": "postgresql://chaintape@db:5432/chaintape",
            "DATABASE_PASSWORD_FILE": str(secret),
            "GRAFANA_DB_PASSWORD_FILE": str(grafana),
            "CURRENCY": "BTC",
        }
    )
    assert s.database_url == "postgresql://chaintape:p%40ss%2Fw%3Ard@db:5432/chaintape"
    assert s.grafana_db_password == "reader-secret-42"
    assert set(s.secrets) == {"p@ss/w:rd", "reader-secret-42"}
    assert "p@ss" not in str(s.masked())
    plain = load_settings(
        {"DATABASE_URL": "host=db dbname=x", "DATABASE_PASSWORD": "pw1", "CURRENCY": "BTC"}
    )
    assert "password=pw1" in plain.database_url


def test_secret_file_problems_are_reported() -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(
            {
                "DATABASE_URL": "postgresql://u:inline@db/x",
                "DATABASE_PASSWORD": "pw",
                "GRAFANA_DB_PASSWORD_FILE": "/nonexistent/secret",
                "CURRENCY": "BTC",
            }
        )
    text = str(err.value)
    assert "DATABASE_URL has a password and DATABASE_PASSWORD is set: keep one" in text
    assert "GRAFANA_DB_PASSWORD_FILE='/nonexistent/secret' cannot be read" in text
