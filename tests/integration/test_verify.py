"""`python -m scripts.verify`, schema/verify.sql and, on the full edition, compression."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from scripts.storage.migrate import apply_schema
from scripts.storage.verify_queries import TableCheck, check_tables, failing, format_table
from tests.conftest import REPO_ROOT
from tests.support.pgcluster import pg_bin_dir

QUOTE = (
    "INSERT INTO btc_option_quotes (timestamp, instrument_name, best_bid_price, best_ask_price,"
    " received_at) VALUES (%s, %s, %s, %s, %s)"
)
TRADE = (
    "INSERT INTO btc_option_trades (timestamp, instrument_name, trade_id, price, amount)"
    " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (trade_id, timestamp) DO NOTHING"
)


def _by_key(checks: list[TableCheck], table: str, currency: str = "BTC") -> TableCheck:
    return next(c for c in checks if c.table == table and c.currency == currency)


@pytest.fixture
def migrated(database_url: str) -> str:
    apply_schema(database_url, ["BTC"], schedule_policies=False)
    return database_url


def test_fresh_stale_and_empty_tables(migrated: str) -> None:
    now = datetime.now(UTC)
    with psycopg.connect(migrated) as conn:
        conn.execute(QUOTE, (now - timedelta(seconds=10), "BTC-X-C", 0.1, 0.2, now))
        conn.execute(QUOTE, (now - timedelta(seconds=20), "BTC-Y-C", 0.1, 0.2, now))
        conn.execute(TRADE, (now - timedelta(hours=2), "BTC-X-C", "t1", 0.1, 1.0))
        conn.execute(
            "INSERT INTO options_greeks (timestamp, instrument_name, currency, delta)"
            " VALUES (%s, 'BTC-X-C', 'BTC', 0.5), (%s, 'SOL_USDC-X-C', 'SOL', 0.4)",
            (now - timedelta(minutes=40), now - timedelta(hours=3)),
        )
        checks = check_tables(conn, max_age_s=900)
    quotes = _by_key(checks, "btc_option_quotes")
    assert (quotes.rows, quotes.status) == (2, "ok")
    assert quotes.age_s is not None and 10 <= quotes.age_s < 600
    trades = _by_key(checks, "btc_option_trades")
    assert (trades.rows, trades.status) == (1, "stale")
    assert trades.age_s is not None and trades.age_s >= 7200
    assert _by_key(checks, "btc_option_orderbook_depth").status == "empty"
    # greeks are polled hourly: 40 minutes is fresh, 3 hours is not; SOL has rows though it has
    # no per-currency tables here
    assert _by_key(checks, "options_greeks").status == "ok"
    assert _by_key(checks, "options_greeks", "SOL").status == "stale"
    assert _by_key(checks, "funding_rates").status == "empty"
    assert {(c.table, c.currency) for c in failing(checks)} == {
        ("btc_option_trades", "BTC"),
        ("options_greeks", "SOL"),
    }
    assert len(failing(checks, require_all=True)) == len([c for c in checks if c.status != "ok"])
    text = format_table(checks, show_compression=False).splitlines()
    assert text[0].split() == ["table", "currency", "rows", "newest", "(UTC)", "age", "status"]
    trade_line = next(line for line in text if line.startswith("btc_option_trades"))
    assert trade_line.split()[-2:] == ["2h00m", "STALE"]
    status_at = text[0].index("status")  # aligned: every status starts under its header
    assert {line[status_at:].split()[0] for line in text[1:]} == {"ok", "STALE", "empty"}


def _env(database_url: str, **extra: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(REPO_ROOT),
        "DATABASE_URL": database_url,
        **extra,
    }


def _verify(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scripts.verify", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_verify_command_exit_codes(migrated: str, database_url: str, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    with psycopg.connect(migrated) as conn:
        conn.execute(QUOTE, (now - timedelta(seconds=5), "BTC-X-C", 0.1, 0.2, now))
        conn.execute(TRADE, (now - timedelta(minutes=30), "BTC-X-C", "t1", 0.1, 1.0))
    fresh = _verify(["--max-age-s", "3600"], _env(migrated), tmp_path)
    assert fresh.returncode == 0, fresh.stderr
    assert "all fresh (threshold 3600 s)" in fresh.stdout
    assert "btc_option_quotes" in fresh.stdout

    stale = _verify([], _env(migrated, STALE_AFTER_S="600"), tmp_path)
    assert stale.returncode == 1
    assert "1 stale (threshold 600 s)" in stale.stdout

    as_json = _verify(["--json", "--max-age-s", "3600", "--require-all"], _env(migrated), tmp_path)
    assert as_json.returncode == 1  # empty tables count with --require-all
    doc = json.loads(as_json.stdout)
    assert doc["ok"] is False
    rows = {(t["table"], t["currency"]): t for t in doc["tables"]}
    assert rows[("btc_option_quotes", "BTC")]["rows"] == 1
    assert rows[("btc_option_quotes", "BTC")]["status"] == "ok"
    assert rows[("btc_option_orderbook_depth", "BTC")]["status"] == "empty"

    with psycopg.connect(migrated, autocommit=True) as conn:
        conn.execute("CREATE DATABASE verify_unmigrated")
    try:
        bare = _verify([], _env(migrated.rsplit("/", 1)[0] + "/verify_unmigrated"), tmp_path)
    finally:
        with psycopg.connect(migrated, autocommit=True) as conn:
            conn.execute("DROP DATABASE verify_unmigrated WITH (FORCE)")
    assert bare.returncode == 1
    assert "python -m scripts.migrate" in bare.stderr

    no_url = _verify(
        [], {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(REPO_ROOT)}, tmp_path
    )
    assert no_url.returncode == 2
    assert "DATABASE_URL is not set" in no_url.stderr


def _psql() -> str:
    for candidate in (shutil.which("psql"), str(pg_bin_dir() / "psql")):
        if candidate and Path(candidate).exists():
            return candidate
    pytest.skip("psql is not installed")


def test_verify_sql_runs_in_psql(migrated: str) -> None:
    now = datetime.now(UTC)
    with psycopg.connect(migrated) as conn:
        conn.execute(QUOTE, (now - timedelta(seconds=5), "BTC-X-C", 0.1, 0.2, now))
        conn.execute(TRADE, (now - timedelta(hours=2), "BTC-X-C", "t1", 0.1, 1.0))
    out = (
        subprocess.run(
            [
                _psql(),
                migrated,
                "-X",
                "-At",
                "-v",
                "ON_ERROR_STOP=1",
                "-v",
                "max_age_s=900",
                "-f",
                str(REPO_ROOT / "schema" / "verify.sql"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        .stdout.strip()
        .splitlines()
    )
    rows = {tuple(line.split("|")[:2]): line.split("|") for line in out[:-1]}
    assert rows[("btc_option_quotes", "BTC")][2] == "1"
    assert rows[("btc_option_quotes", "BTC")][5] == "ok"
    assert rows[("btc_option_trades", "BTC")][5] == "STALE"
    assert rows[("futures_ohlcv", "BTC")][5] == "empty"
    assert out[-1] == "1"  # the number of stale rows, for a scheduler


@pytest.mark.usefixtures("full_edition")
def test_full_edition_policies_compression_and_verify(database_url: str) -> None:
    apply_schema(database_url, ["BTC", "SOL"], retention_days=30, schedule_policies=False)
    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=5)
    with psycopg.connect(database_url) as conn:
        jobs = conn.execute(
            "SELECT hypertable_name, proc_name, scheduled, config ->> 'compress_after',"
            " config ->> 'drop_after' FROM timescaledb_information.jobs"
            " WHERE hypertable_name IS NOT NULL"
        ).fetchall()
        quotes = [
            (day + timedelta(seconds=i), f"BTC-X-{i % 5}", 0.1 + i * 1e-4, 0.2, day)
            for i in range(2000)
        ]
        with conn.cursor() as cur:
            cur.executemany(QUOTE, quotes)
        conn.execute(TRADE, (day, "BTC-X-0", "t1", 0.1, 1.0))
        conn.commit()
        compressed = conn.execute(
            "SELECT count(compress_chunk(c)) FROM show_chunks('btc_option_quotes') c"
        ).fetchone()
        conn.execute("SELECT compress_chunk(c) FROM show_chunks('btc_option_trades') c")
        conn.execute(TRADE, (day, "BTC-X-0", "t1", 0.1, 1.0))  # the key holds when compressed
        trades = conn.execute("SELECT count(*) FROM btc_option_trades").fetchone()
        conn.commit()
        checks = check_tables(conn, max_age_s=900)
    by_table: dict[str, set[tuple[str, bool, str | None, str | None]]] = {}
    for table, proc, scheduled, after, drop in jobs:
        by_table.setdefault(table, set()).add((proc, scheduled, after, drop))
    for table in ("btc_option_quotes", "sol_option_trades", "options_greeks", "index_prices"):
        assert by_table[table] == {
            ("policy_compression", False, "2 days", None),
            ("policy_retention", False, None, "30 days"),
        }, table
    assert ("policy_refresh_continuous_aggregate", False, None, None) in by_table[
        "btc_option_trade_bars_1h"
    ]
    assert compressed is not None and compressed[0] >= 1
    assert trades == (1,)
    quotes_check = _by_key(checks, "btc_option_quotes")
    assert quotes_check.rows == 2000
    assert quotes_check.before_bytes and quotes_check.after_bytes
    assert quotes_check.ratio is not None and quotes_check.ratio > 1
    table = format_table(checks, show_compression=True)
    assert "ratio" in table.splitlines()[0]
    assert f"{quotes_check.ratio:.1f}x" in table

    apply_schema(database_url, ["BTC"], retention_days=60)
    with psycopg.connect(database_url) as conn:
        drops = conn.execute(
            "SELECT DISTINCT config ->> 'drop_after' FROM timescaledb_information.jobs"
            " WHERE proc_name = 'policy_retention'"
        ).fetchall()
    assert drops == [("60 days",)]
    apply_schema(database_url, ["BTC"], retention_days=0)
    with psycopg.connect(database_url) as conn:
        retention = conn.execute(
            "SELECT count(*) FROM timescaledb_information.jobs WHERE proc_name = 'policy_retention'"
        ).fetchone()
        bars = conn.execute(
            "SELECT currency, count(*) FROM option_trade_bars_1h GROUP BY 1"
        ).fetchall()
    assert retention == (0,)
    assert bars == []  # created WITH NO DATA; its refresh policy fills it
