"""`python -m bench` with tiny settings: every figure present and a finite number
(their values are not asserted: performance is never asserted in tests)."""

from __future__ import annotations

import asyncio
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import orjson
import psycopg
import pytest

import bench.__main__ as benchmark
from bench import lag, procs, procstat
from bench.report import figures, render_text, to_json
from bench.run import BenchConfig, run_benchmark
from scripts.storage.migrate import apply_schema
from tests.support.pgcluster import PgCluster

REPO_ROOT = Path(__file__).resolve().parents[2]
TINY = {
    "expiries": 2,
    "strikes": 4,
    "rates": (300.0, 600.0),
    "lag_rate": 300.0,
    "step_s": 2.0,
    "mix_s": 1.0,
    "baseline_s": 1.0,
    "copy_rows": 4000,
    "snapshot_interval_s": 1.0,
}


@pytest.mark.timeout(300)
async def test_tiny_benchmark_reports_every_figure(
    pg_cluster: PgCluster, database_url: str
) -> None:
    res = await run_benchmark(BenchConfig.quick_settings(database_url=database_url, **TINY))

    assert res.missing == [], res.missing
    assert [rate for rate, _ in res.steps] == [300.0, 600.0] or res.steps[-1][1].behind
    figs = figures(res)
    keys = [f.key for f in figs]
    assert len(keys) == len(set(keys))
    for key in (
        "sustained_msgs_s",
        "collector_us_per_msg",
        "db_us_per_row",
        "peak_rss_mb",
        "lag_fixed.p99",
        "lag_sustained.p99",
        "copy_rows_s.quotes",
        "drain_msgs_s",
        "ratio_drain",
        "ratio_copy",
        "compressed_bytes_per_row.quotes",
        "gb_per_month.total",
    ):
        assert key in keys
    apache = pg_cluster.edition == "apache"
    for f in figs:
        if not f.required:
            continue
        compressed = f.key.startswith(("compressed_bytes_per_row.", "compression_ratio."))
        if apache and compressed:
            assert f.value is None and "Apache edition" in f.note, f
            continue
        assert f.value is not None and math.isfinite(f.value), f
    text = render_text(res)
    for f in figs:
        assert f.label in text
    assert "Apache edition" in text or not apache
    decoded = orjson.loads(orjson.dumps(to_json(res)))
    assert [f["key"] for f in decoded["figures"]] == keys
    assert res.meta["quote_ivs"] and "WITHOUT the quote IVs" not in text
    assert _quotes_with_ivs(database_url) > 0  # the collector as in production


def _quotes_with_ivs(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FILTER (WHERE underlying_price IS NOT NULL"
            " OR bid_iv IS NOT NULL OR ask_iv IS NOT NULL) FROM btc_option_quotes"
        ).fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.timeout(300)
async def test_without_ivs_the_collector_stores_quotes_without_forwards_or_ivs(
    database_url: str,
) -> None:
    """`--without-ivs` (the A/B of what the IVs cost) leaves out only the flush-time
    enrichment: the quotes are stored, with NULL forward and IVs, and the report says so."""
    args = benchmark.parse_args(["--quick", "--without-ivs"])
    assert benchmark.config_from(args, {}).without_ivs

    res = await run_benchmark(
        BenchConfig.quick_settings(database_url=database_url, without_ivs=True, **TINY)
    )

    assert res.missing == [], res.missing
    assert res.steps and (res.steps[0][1].committed_msgs_s or 0) > 0
    assert not res.meta["quote_ivs"]
    assert "WITHOUT the quote IVs (--without-ivs)" in render_text(res)
    assert _quotes_with_ivs(database_url) == 0


@pytest.mark.timeout(300)
async def test_without_a_working_collector_the_rest_is_still_measured(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(procs, "COLLECTOR_MODULE", "bench.no_such_collector")

    res = await run_benchmark(BenchConfig.quick_settings(database_url=database_url, **TINY))

    assert res.steps == []
    assert any("collector exited before subscribing" in m for m in res.missing), res.missing
    by_key = {f.key: f for f in figures(res)}
    for key in ("sustained_msgs_s", "collector_us_per_msg", "peak_rss_mb", "lag_fixed.p99"):
        assert by_key[key].value is None and by_key[key].note == "collector not measured"
    for key in ("copy_rows_s.quotes", "drain_msgs_s", "bytes_per_row.quotes"):
        assert by_key[key].finite, by_key[key]
    text = render_text(res)
    assert "Could not measure:" in text and "no_such_collector" in text


def test_benchmark_refuses_a_database_with_data(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    apply_schema(database_url, ["BTC"], schedule_policies=False)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            'INSERT INTO btc_option_quotes ("timestamp", instrument_name) '
            "VALUES (now(), 'BTC-1JUN26-90000-C')"
        )
    monkeypatch.setenv("DATABASE_URL", database_url)

    assert benchmark.main(["--quick"]) == 2
    assert "btc_option_quotes already has rows" in capsys.readouterr().err


def test_command_line_settings_override_the_quick_defaults() -> None:
    args = benchmark.parse_args(["--quick", "--rates", "100,200", "--step-s", "1.5"])
    cfg = benchmark.config_from(args, {"DATABASE_URL": "postgresql://x@127.0.0.1/db"})
    assert cfg.quick and cfg.rates == (100.0, 200.0) and cfg.step_s == 1.5
    assert cfg.database_url == "postgresql://x@127.0.0.1/db"
    assert benchmark.config_from(benchmark.parse_args([]), {}).database_url is None


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert lag.percentile(values, 50) == 50.0
    assert lag.percentile(values, 99) == 99.0
    assert math.isnan(lag.percentile([], 50))
    assert lag.summarize([0.2, 0.1])["max_s"] == 0.2


def test_cpu_of_a_process_tree_counts_its_busy_child() -> None:
    busy = "x = 0\\nfor i in range(10**7): x += i"
    code = f"import subprocess, sys; subprocess.run([sys.executable, '-c', '{busy}'])"
    proc = subprocess.Popen([sys.executable, "-c", code], env=dict(os.environ))
    try:
        deadline = time.monotonic() + 60
        seen = 0.0
        while proc.poll() is None and time.monotonic() < deadline:
            seen = max(seen, procstat.process_cpu_s(proc.pid) or 0.0)
            time.sleep(0.05)
    finally:
        proc.wait(timeout=60)
    assert seen > 0.05  # the grandchild's loop, seen through its parent
    assert (procstat.peak_rss_bytes(os.getpid()) or 0) > 1_000_000
    assert procstat.process_cpu_s(proc.pid) is None  # gone


def test_each_figure_with_a_target_is_marked_met_or_missed() -> None:
    from bench.report import Figure, missed

    figs = [
        Figure("a", "a", 41_000.0, "msg/s", ">= 40,000"),
        Figure("b", "b", 12.5, "us", "<= 12"),
        Figure("c", "c", None, "B", "<= 20", "needs the full edition"),
        Figure("d", "d", 3.0, "x"),
    ]
    assert [f.verdict for f in figs] == ["met", "missed", "n/a", ""]
    assert [f.key for f in missed(figs)] == ["b"]


@pytest.mark.timeout(300)
async def test_check_exits_non_zero_when_a_target_is_missed(
    database_url: str, tmp_path: Path
) -> None:
    """`--check` on a tiny run: the 40,000 msgs/s target cannot be met at 300-600 offered."""
    args = ["--quick", "--check", "--rates", "300,600", "--step-s", "2", "--mix-s", "2"]
    args += ["--copy-rows", "2000", "--expiries", "2", "--strikes", "4", "--lag-rate", "300"]
    env = {**os.environ, "DATABASE_URL": database_url, "PYTHONPATH": str(REPO_ROOT)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench",
        *args,
        cwd=REPO_ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 280)
    text = out.decode()
    assert proc.returncode == 1, (text, err.decode())
    rows = [ln for ln in text.splitlines() if ln.startswith("sustained messages/s")]
    assert rows and "missed" in rows[0].split(), rows  # the verdict column
    assert "targets: " in text and "missed: sustained_msgs_s" in text
    assert "target(s) missed: " in err.decode()
