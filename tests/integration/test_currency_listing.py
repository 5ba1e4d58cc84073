"""CURRENCY against what the exchange lists: a currency it does not list exits 2 with the
currencies that have options; one it lists without live options runs, unhealthy with that
reason; a channel the exchange refuses makes the collector unhealthy until it is granted.
The real-time collector runs as a process against the fake exchange over real sockets."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from scripts.collectors.realtime.listing import (
    CurrencyNotListed,
    listing_verdict,
    option_currencies,
)
from scripts.currencies import currency_spec
from tests.fake_deribit.market import MarketConfig
from tests.fake_deribit.server import FakeDeribit
from tests.support.collector_proc import healthcheck, kill_quietly, spawn_collector, wait_exit
from tests.support.realtime import sim_fakes

REPO_ROOT = Path(__file__).resolve().parents[2]
RECORDED = Path("/work/wt/shared/data/deribit/rest_get_instruments.jsonl")


def test_listing_verdict_on_recorded_instruments() -> None:
    import orjson

    if not RECORDED.is_file():
        pytest.skip(f"recorded messages not found at {RECORDED}")
    instruments: list[Any] = []
    for line in RECORDED.read_bytes().splitlines():
        result = orjson.loads(line).get("result")
        if isinstance(result, list):
            instruments += result
    with_options = option_currencies(instruments)
    assert "BTC" in with_options
    assert listing_verdict(currency_spec("BTC"), instruments) is None
    # DOGE_USDC-PERPETUAL is listed, DOGE options are not: runs, unhealthy with the reason
    assert any(i["instrument_name"].startswith("DOGE_USDC-") for i in instruments)
    reason = listing_verdict(currency_spec("DOGE"), instruments)
    listed = ", ".join(with_options)
    assert reason == f"DOGE has no live options on the exchange (currencies with options: {listed})"
    # nothing of BNB in these recordings: not listed
    with pytest.raises(CurrencyNotListed) as info:
        listing_verdict(currency_spec("BNB"), instruments)
    assert f"currencies with options: {', '.join(with_options)}" in str(info.value)


@pytest.fixture
async def make_fake() -> AsyncIterator[Callable[..., Any]]:
    async with sim_fakes(1.0) as make:
        yield make


def env_for(fake: FakeDeribit, database_url: str, spool: Path, **extra: str) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "DERIBIT_WS_URL": fake.ws_url,
        "DERIBIT_REST_URL": fake.rest_url,
        "DERIBIT_HISTORY_URL": fake.history_url,
        "SIM_CLOCK": fake.sim_clock_spec(),
        "SPOOL_DIR": str(spool),
        "FLUSH_INTERVAL_MS": "200",
        "TRADE_REPAIR_MAX_AGE_S": "60",
        "DRAIN_DEADLINE_S": "10",
        "LOG_LEVEL": "INFO",
        **extra,
    }


async def test_a_currency_the_exchange_does_not_list_exits_2_with_the_list(
    make_fake: Any, tmp_path: Path
) -> None:
    fake = await make_fake(MarketConfig(currencies=("BTC", "ETH", "SOL"), expiries=1))
    env = env_for(fake, "postgresql://u:pw@127.0.0.1:1/none", tmp_path / "spool", CURRENCY="DOGE")
    proc = await asyncio.create_subprocess_exec(  # async: the fake answers on this loop
        sys.executable,
        "-m",
        "scripts.ws_tick_collector_multi",
        env={**os.environ, **env, "PYTHONPATH": str(REPO_ROOT)},
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 120)
    stderr = err.decode()
    assert proc.returncode == 2, stderr
    assert "the exchange lists no DOGE instrument" in stderr
    assert "currencies with options: BTC, ETH, SOL" in stderr
    assert fake.stats.connections == 0  # nothing subscribed


async def until_health(spool: Path, cwd: Path, want: Callable[[int, str], bool], **env: str) -> str:
    deadline = time.monotonic() + 90
    while True:
        code, line = await healthcheck(spool, cwd, **env)
        if want(code, line):
            return line
        assert time.monotonic() < deadline, line
        await asyncio.sleep(1)


async def test_a_listed_currency_without_options_runs_unhealthy_with_the_reason(
    make_fake: Any, database_url: str, tmp_path: Path
) -> None:
    fake = await make_fake(MarketConfig(currencies=("ETH", "BTC"), expiries=0, history_s=600))
    spool = tmp_path / "spool"
    env = env_for(fake, database_url, spool, CURRENCY="ETH")
    proc = spawn_collector(env, tmp_path / "collector.log")
    try:
        line = await until_health(
            spool, tmp_path / "h", lambda c, ln: c == 1 and "no live options" in ln, CURRENCY="ETH"
        )
        assert line.startswith("unhealthy: ETH has no live options on the exchange"), line
        await asyncio.sleep(3)
        assert proc.poll() is None  # it runs: options may be listed later
        code, again = await healthcheck(spool, tmp_path / "h", CURRENCY="ETH")
        assert (code, again) == (1, line)
    finally:
        proc.terminate()
        await wait_exit(proc, 60)
        kill_quietly(proc)
    assert proc.returncode == 0


async def test_a_refused_channel_is_unhealthy_until_granted(
    make_fake: Any, database_url: str, tmp_path: Path
) -> None:
    def refuse_markprice(fake: FakeDeribit) -> None:
        fake.catalog.option_indices.discard("eth_usd")

    fake = await make_fake(
        MarketConfig(currencies=("ETH",), expiries=1, strikes_per_expiry=2),
        before_start=refuse_markprice,
    )
    fake.catalog.option_indices.discard("eth_usd")
    spool = tmp_path / "spool"
    env = env_for(fake, database_url, spool, CURRENCY="ETH")
    proc = spawn_collector(env, tmp_path / "collector.log")
    try:
        line = await until_health(
            spool, tmp_path / "h", lambda c, ln: "the exchange refused" in ln, CURRENCY="ETH"
        )
        assert line.startswith(
            "unhealthy: the exchange refused 1 channel(s): markprice.options.eth_usd"
        )
        fake.catalog.option_indices.add("eth_usd")  # granted from now on ...
        await fake.drop_all_connections()  # ... and asked again on the next connection
        await until_health(spool, tmp_path / "h", lambda c, ln: c == 0, CURRENCY="ETH")
    finally:
        proc.terminate()
        await wait_exit(proc, 60)
        kill_quietly(proc)
    log = (tmp_path / "collector.log").read_text()
    assert "healthy again" in log
