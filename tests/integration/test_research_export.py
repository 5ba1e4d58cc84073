"""`python -m scripts.export` and `scripts.research.load` on a database the collectors filled
from the fake exchange: every table and union view exported to Parquet reads back equal to the
database rows (values, types, time zone), the loader gives the same frame from the database and
from the export, Tardis-format files have Tardis's headers and the database's rows."""

from __future__ import annotations

import asyncio
import csv
import gzip
import math
import os
import re
import shutil
import subprocess
import tempfile
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from scripts import export, report
from scripts.research import load
from scripts.research.catalog import arrow_type
from scripts.research.tardis import HEADERS, OPTIONS_CHAIN_HEADER
from tests.support.pgcluster import PgCluster
from tests.support.research import counts, fetch_all, populate

TABLES = [
    "eth_option_quotes",
    "eth_option_trades",
    "eth_option_orderbook_depth",
    "option_quotes",
    "option_trades",
    "option_orderbook_depth",
    "perpetuals_ohlcv",
    "futures_ohlcv",
    "options_ohlcv",
    "options_greeks",
    "funding_rates",
    "index_prices",
    "instruments",
    "data_gaps",
    "rejected_messages",
]
START, END = "2026-05-01", "2026-07-01"


@pytest.fixture(scope="module")
def recorded(pg_cluster: PgCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = pg_cluster.create_database(prefix="research")
    asyncio.run(populate(url, tmp_path_factory.mktemp("collectors")))
    try:
        yield url
    finally:
        pg_cluster.drop_database(url)


def run_export(url: str, monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.setenv("DATABASE_URL", url)
    return export.main(list(args))


def columns_and_types(url: str, table: str) -> list[tuple[str, str]]:
    return [
        (r[0], r[1])
        for r in fetch_all(
            url,
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute"
            " WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
            (table,),
        )
    ]


def norm(value: Any, *, nan_is_null: bool = True) -> Any:
    """One value in a comparable form, whichever side it came from. pandas holds a NULL float
    as NaN, so the pandas comparison treats them alike; the Arrow one does not."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    if hasattr(value, "tolist") and not isinstance(value, str):
        value = value.tolist()
    if isinstance(value, list | tuple):
        return tuple(norm(v, nan_is_null=nan_is_null) for v in value)
    if isinstance(value, float) and math.isnan(value):
        return None if nan_is_null else "NaN"
    return value


def test_every_table_exported_to_parquet_reads_back_equal_to_the_database(
    recorded: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes = counts(recorded, TABLES)
    print(f"[research] rows recorded by the collectors: {sizes}")
    for table, n in sizes.items():
        assert n > 0, f"the collectors wrote no {table}: the test would prove nothing"
    out = tmp_path / "out"
    for table in TABLES:
        assert (
            run_export(
                recorded, monkeypatch, table, "--start", START, "--end", END, "--out", str(out)
            )
            == 0
        )
        folder = out / table
        cols = columns_and_types(recorded, table)
        names = [c for c, _ in cols]
        # Exact Arrow types in the files.
        files = sorted(folder.rglob("part.parquet"))
        assert files, table
        for f in files:
            schema = pq.read_schema(f)
            assert schema.names == names
            for (name, sql_type), field in zip(cols, schema, strict=True):
                assert field.type == arrow_type(sql_type), (table, name, field.type)
                if sql_type.startswith("timestamp"):
                    assert field.type == pa.timestamp("us", tz="UTC")
        # pandas reads the folder back; rows equal the database's (as multisets: rows that share
        # a timestamp have no order).
        frame = pd.read_parquet(folder).drop(columns=["date"], errors="ignore")
        assert list(frame.columns) == names
        for name, sql_type in cols:
            if sql_type == "timestamp with time zone":
                assert str(frame[name].dtype) == "datetime64[us, UTC]", (table, name)
            if sql_type == "double precision":
                assert frame[name].dtype == "float64", (table, name)
        got = Counter(tuple(norm(v) for v in row) for row in frame.itertuples(index=False))
        quoted = ", ".join(f'"{n}"' for n in names)
        db_rows = fetch_all(recorded, f'SELECT {quoted} FROM "{table}"')
        want = Counter(tuple(norm(v) for v in row) for row in db_rows)
        assert got == want, f"{table}: export differs from the database"
        # Exactly, NULL apart from NaN, through Arrow.
        exact = pq.read_table(folder, partitioning=None).select(names).to_pylist()
        got_exact = Counter(tuple(norm(r[n], nan_is_null=False) for n in names) for r in exact)
        want_exact = Counter(tuple(norm(v, nan_is_null=False) for v in row) for row in db_rows)
        assert got_exact == want_exact, f"{table}: export differs from the database"
        manifest = (folder / "_manifest.json").read_text()
        assert '"rows": ' + str(len(db_rows)) in manifest
        assert "password" not in manifest.lower()


def test_loader_gives_identical_frames_from_database_and_export(
    recorded: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    lo, hi = "2026-05-31T23:30:00Z", "2026-06-01T00:20:00Z"
    for table in TABLES:
        assert (
            run_export(
                recorded, monkeypatch, table, "--start", START, "--end", END, "--out", str(out)
            )
            == 0
        )
        from_db = load(table, lo, hi, source=recorded)
        from_files = load(table, lo, hi, source=out)
        pd.testing.assert_frame_equal(
            from_db.reset_index(drop=True), from_files.reset_index(drop=True), check_exact=True
        )
        assert len(from_db) == len(load(table, lo, hi, source=recorded))
    quotes = load("eth_option_quotes", lo, hi, source=recorded)
    assert len(quotes) > 0
    assert str(quotes["timestamp"].dtype) == "datetime64[us, UTC]"
    one = quotes["instrument_name"].iloc[0]
    only = load("eth_option_quotes", lo, hi, instrument=one, source=out)
    assert set(only["instrument_name"]) == {one}
    assert len(only) == int((quotes["instrument_name"] == one).sum())
    trades = load("option_trades", lo, hi, currency="ETH", source=recorded)
    assert str(trades["tick_direction"].dtype) == "Int16"


def _read_gz(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with gzip.open(path, "rt", newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = [dict(zip(header, r, strict=True)) for r in reader]
    return header, rows


def _us(ts: datetime) -> int:
    delta = ts - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def test_tardis_files_have_tardis_headers_units_and_the_database_rows(
    recorded: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "tardis"
    for kind in ("options_chain", "trades", "quotes"):
        code = run_export(
            recorded,
            monkeypatch,
            kind,
            "--start",
            START,
            "--end",
            END,
            "--format",
            "tardis",
            "--out",
            str(out),
        )
        assert code == 0
    assert HEADERS["options_chain"] == tuple(OPTIONS_CHAIN_HEADER.split(","))

    # quotes: one row per recorded quote, per day file, sides empty when the book side is.
    quote_rows = fetch_all(
        recorded,
        'SELECT instrument_name, "timestamp", received_at, best_bid_price, best_bid_amount,'
        " best_ask_price, best_ask_amount, mark_iv, mark_price FROM option_quotes",
    )
    by_day: Counter[str] = Counter(r[1].date().isoformat() for r in quote_rows)
    files = sorted((out / "tardis_quotes").glob("deribit_quotes_*_OPTIONS.csv.gz"))
    assert [f.name for f in files] == [f"deribit_quotes_{d}_OPTIONS.csv.gz" for d in sorted(by_day)]
    seen: Counter[tuple[Any, ...]] = Counter()
    for f in files:
        header, rows = _read_gz(f)
        assert header == list(HEADERS["quotes"])
        assert len(rows) == by_day[f.name.split("_")[2]]
        for r in rows:
            assert r["exchange"] == "deribit"
            seen[
                (
                    r["symbol"],
                    int(r["timestamp"]),
                    int(r["local_timestamp"]),
                    float(r["bid_price"]) if r["bid_price"] else None,
                    float(r["bid_amount"]) if r["bid_amount"] else None,
                    float(r["ask_price"]) if r["ask_price"] else None,
                    float(r["ask_amount"]) if r["ask_amount"] else None,
                )
            ] += 1
    assert seen == Counter((q[0], _us(q[1]), _us(q[2]), *q[3:7]) for q in quote_rows)

    # trades: id, taker side, price and amount in Deribit's units.
    trade_rows = fetch_all(
        recorded,
        'SELECT instrument_name, "timestamp", received_at, trade_id, direction, price, amount'
        " FROM option_trades",
    )
    got_trades: Counter[tuple[Any, ...]] = Counter()
    for f in sorted((out / "tardis_trades").glob("deribit_trades_*_OPTIONS.csv.gz")):
        header, rows = _read_gz(f)
        assert header == list(HEADERS["trades"])
        for r in rows:
            assert r["side"] in ("buy", "sell")
            got_trades[
                (
                    r["symbol"],
                    int(r["timestamp"]),
                    int(r["local_timestamp"]),
                    r["id"],
                    r["side"],
                    float(r["price"]),
                    float(r["amount"]),
                )
            ] += 1
    assert got_trades == Counter((t[0], _us(t[1]), _us(t[2]), *t[3:]) for t in trade_rows)

    # options_chain: the exact header; a row per quote; instrument fields from instruments;
    # IVs in percent as recorded; greeks from the latest options_greeks row at or before.
    instruments = {
        r[0]: r[1:]
        for r in fetch_all(
            recorded,
            "SELECT instrument_name, option_type, strike, expiration_timestamp FROM instruments",
        )
    }
    greeks: dict[str, list[tuple[Any, ...]]] = {}
    for r in fetch_all(
        recorded,
        'SELECT instrument_name, "timestamp", delta, gamma, vega, theta, rho, open_interest,'
        ' underlying_index FROM options_greeks ORDER BY "timestamp"',
    ):
        greeks.setdefault(r[0], []).append(r[1:])
    quotes_by_key = {(q[0], _us(q[1]), _us(q[2])): q for q in quote_rows}
    chain_rows = 0
    filled = 0
    for f in sorted((out / "tardis_options_chain").glob("deribit_options_chain_*_OPTIONS.csv.gz")):
        with gzip.open(f, "rt", newline="") as raw:
            assert raw.readline().rstrip("\n") == OPTIONS_CHAIN_HEADER
        header, rows = _read_gz(f)
        for r in rows:
            chain_rows += 1
            q = quotes_by_key[(r["symbol"], int(r["timestamp"]), int(r["local_timestamp"]))]
            option_type, strike, expiry = instruments[r["symbol"]]
            assert r["type"] == option_type and r["type"] in ("call", "put")
            assert float(r["strike_price"]) == strike
            assert int(r["expiration"]) == _us(expiry)
            assert (float(r["mark_iv"]) if r["mark_iv"] else None) == q[7]
            if q[7] is not None:
                assert 1.0 < q[7] < 500.0, "IV is in percent"
            before = [g for g in greeks.get(r["symbol"], []) if _us(g[0]) <= int(r["timestamp"])]
            if before:
                g = before[-1]
                filled += 1
                assert float(r["delta"]) == g[1] and float(r["vega"]) == g[3]
                assert float(r["open_interest"]) == g[6]
                assert r["underlying_index"] == g[7]
            else:
                assert r["delta"] == "" and r["gamma"] == ""
    assert chain_rows == len(quote_rows)
    assert filled > 0, "no quote came after a greeks row: the fill was not exercised"


def test_bad_arguments_and_a_database_that_is_down_get_one_clear_line(
    recorded: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = str(tmp_path / "o")
    assert (
        run_export(
            recorded, monkeypatch, "btc_option_quotez", "--start", START, "--end", END, "--out", out
        )
        == 2
    )
    assert "unknown table 'btc_option_quotez'; one of:" in capsys.readouterr().err
    assert (
        run_export(
            recorded, monkeypatch, "options_greeks", "--start", END, "--end", START, "--out", out
        )
        == 2
    )
    assert "empty range" in capsys.readouterr().err
    assert (
        run_export(
            recorded,
            monkeypatch,
            "options_greeks",
            "--start",
            "yesterday",
            "--end",
            END,
            "--out",
            out,
        )
        == 2
    )
    assert "ISO" in capsys.readouterr().err
    assert (
        run_export(
            recorded, monkeypatch, "btc_option_trades", "--start", START, "--end", END, "--out", out
        )
        == 2
    )
    assert "does not exist in this database" in capsys.readouterr().err
    assert (
        run_export(
            recorded,
            monkeypatch,
            "rejected_messages",
            "--start",
            START,
            "--end",
            END,
            "--instrument",
            "X",
            "--out",
            out,
        )
        == 2
    )
    assert "no instrument column" in capsys.readouterr().err
    assert (
        run_export(
            recorded,
            monkeypatch,
            "perpetuals_ohlcv",
            "--start",
            START,
            "--end",
            END,
            "--format",
            "tardis",
            "--out",
            out,
        )
        == 2
    )
    assert "1-minute bars only" in capsys.readouterr().err
    down = "postgresql://postgres:s3cretpw@127.0.0.1:1/nowhere"
    assert (
        run_export(
            down, monkeypatch, "options_greeks", "--start", START, "--end", END, "--out", out
        )
        == 1
    )
    err = capsys.readouterr().err
    assert "cannot read the database" in err and "s3cretpw" not in err
    # A range with no rows is not an error: nothing to write, a manifest that says 0.
    assert (
        run_export(
            recorded,
            monkeypatch,
            "options_greeks",
            "--start",
            "2020-01-01",
            "--end",
            "2020-01-03",
            "--out",
            out,
        )
        == 0
    )
    assert '"rows": 0' in (tmp_path / "o" / "options_greeks" / "_manifest.json").read_text()


CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("CI") == "true":
        pytest.fail("chromium is not installed: CI must `apt-get install -y chromium` (Debian)")
    pytest.skip("chromium is not installed (Debian: apt-get install chromium); CI requires it")


def test_report_is_one_self_contained_html_file_that_renders_in_headless_chromium(
    recorded: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    browser = _chromium()
    page = tmp_path / "report.html"
    monkeypatch.setenv("DATABASE_URL", recorded)
    assert report.main(["--start", "2026-05-31", "--end", "2026-06-02", "--out", str(page)]) == 0
    text = page.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//|url\(\s*["']?https?:""", text)
    assert "<link" not in text
    assert text.count("<svg") >= 3  # coverage heatmap, rows per hour, gaps timeline
    assert "ETH" in text and "Rejected messages" in text
    counts_now = counts(recorded, ["eth_option_quotes"])["eth_option_quotes"]
    assert f"{counts_now:,}" in text  # the day's quote rows (all on 2026-06-01)

    def run(*extra: str) -> subprocess.CompletedProcess[str]:
        profile = tempfile.mkdtemp(prefix="chromium-", dir=tmp_path)
        return subprocess.run(
            [
                browser,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                "--enable-logging=stderr",
                "--v=0",
                *extra,
                page.as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    dom = run("--dump-dom", "--virtual-time-budget=5000")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert 'data-rendered="ok"' in dom.stdout, "the page's load handler did not run"
    assert "chaintape data-quality report" in dom.stdout
    console = [ln for ln in dom.stderr.splitlines() if "CONSOLE" in ln or "Uncaught" in ln]
    assert not console, console
    shot = Path(os.environ.get("CHAINTAPE_ARTIFACTS_DIR", tmp_path)) / "report.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    taken = run(f"--screenshot={shot}", "--window-size=1280,2600", "--hide-scrollbars")
    assert taken.returncode == 0 and shot.is_file(), taken.stderr[-2000:]
    assert shot.stat().st_size > 20_000  # a blank page is a few kB
    print(f"[research] report screenshot: {shot}")


def test_csv_export_is_the_servers_csv_with_a_header_and_resumes_by_the_manifest(
    recorded: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = str(tmp_path / "csv")
    args = ["eth_option_trades", "--start", START, "--end", END, "--format", "csv", "--out", out]
    assert run_export(recorded, monkeypatch, *args) == 0
    names = [c for c, _ in columns_and_types(recorded, "eth_option_trades")]
    files = sorted((tmp_path / "csv" / "eth_option_trades").glob("date=*/part.csv"))
    frame = pd.concat(pd.read_csv(f) for f in files)
    assert list(frame.columns) == names
    assert len(frame) == counts(recorded, ["eth_option_trades"])["eth_option_trades"]
    before = {f: f.stat().st_mtime_ns for f in files}
    capsys.readouterr()
    assert run_export(recorded, monkeypatch, *args) == 0
    assert {f: f.stat().st_mtime_ns for f in files} == before  # nothing rewritten
    assert "already exported, skipped" in capsys.readouterr().err


def test_progress_bar_on_a_terminal_counts_rows_and_bytes() -> None:
    from scripts.research.progress import Progress

    bar = Progress("btc_option_quotes", 1000, tty=True)
    bar.advance(400, 50_000)
    bar.advance(600, 70_000)
    bar.day_done("2026-06-01", 1000, 120_000, skipped=False)
    assert (bar.rows, bar.bytes) == (1000, 120_000)
    assert bar._bar is not None and bar._bar.n == 1000
    bar.close()


@pytest.mark.parametrize("table", ["eth_option_quotes", "eth_option_orderbook_depth", "data_gaps"])
def test_rows_read_as_arrow_from_binary_copy_are_the_rows_psycopg_reads(
    recorded: str, table: str
) -> None:
    import psycopg

    from scripts.research.catalog import resolve
    from scripts.research.query import Filters, select
    from scripts.research.stream import record_batches, session_utc

    with psycopg.connect(recorded, autocommit=True) as conn:
        session_utc(conn)
        rel = resolve(conn, table)
        query, params = select(rel, None, None, Filters())
        batches = [b for b, _ in record_batches(conn, rel, query, params)]
        rows = conn.execute(query, params).fetchall()
    got = pa.Table.from_batches(batches, schema=rel.schema)
    want = pa.Table.from_pylist([dict(zip(rel.columns, r, strict=True)) for r in rows], rel.schema)
    assert got.num_rows > 0
    assert got.equals(want)
