"""The README, followed literally: its "Try it without Deribit" lines, parsed out of README.md
(so they cannot drift), run as written against a fresh database and end with `verify` green
and rows in every kind of table; and its "First ten minutes" steps (install excepted: the
suite runs in the venv it needs) from a folder holding only a `.env` copied from
`.env.example`, against the fake exchange (the one deviation: no Deribit from here).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from scripts.clock import SimClock
from tests.fake_deribit.market import MarketConfig
from tests.fake_deribit.server import FakeDeribit

REPO_ROOT = Path(__file__).resolve().parents[2]
README = (REPO_ROOT / "README.md").read_text()
MUST_HAVE_ROWS = (
    "option_quotes",
    "option_trades",
    "perpetuals_ohlcv",
    "index_prices",
    "funding_rates",
)


def section(title: str) -> str:
    start = README.index(f"## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end >= 0 else None]


def bash_block(text: str) -> str:
    match = re.search(r"```bash\n(.*?)```", text, re.S)
    assert match, "no ```bash block"
    return match.group(1)


def verify_rows(out: str) -> dict[str, int]:
    """table (with currency) -> rows, from verify's text table."""
    rows: dict[str, int] = {}
    for line in out.splitlines():
        cells = line.split()
        if len(cells) >= 3 and cells[2].replace(",", "").isdigit():
            rows[f"{cells[0]}:{cells[1]}"] = int(cells[2].replace(",", ""))
    return rows


def base_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": str(tmp_path),
        "LOG_LEVEL": "INFO",
    }
    env.update(extra)
    return env


def test_try_it_without_deribit_runs_as_written(database_url: str, tmp_path: Path) -> None:
    script = bash_block(section("Try it without Deribit"))
    port = int(re.search(r"--port (\d+)", script).group(1))  # type: ignore[union-attr]
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0, f"port {port} is taken: the README uses it"
    log = tmp_path / "fleet.log"
    env = base_env(tmp_path, DATABASE_URL=database_url, SPOOL_DIR=str(tmp_path / "spool"))
    started = time.monotonic()
    with log.open("w") as err:
        proc = subprocess.run(
            ["bash", "-c", script],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            timeout=400,
        )
    took = time.monotonic() - started
    print(proc.stdout)
    assert proc.returncode == 0, log.read_text()[-4000:]
    assert "all fresh" in proc.stdout, proc.stdout
    rows = verify_rows(proc.stdout)
    for table in MUST_HAVE_ROWS:
        assert any(table in k and n > 0 for k, n in rows.items()), (table, rows)
    assert rows.get("btc_option_quotes:BTC", 0) > 0 or any(
        k.startswith("btc_option_quotes") and n > 0 for k, n in rows.items()
    ), rows
    text = log.read_text()
    assert "Traceback" not in text
    assert "following 0 of" not in text
    assert "REST calls per simulated hour" not in text  # the wall clock: no simulation
    print(f"README lines ran in {took:.0f} s")


def dump_logs(logs: list[Path], spool: Path) -> None:
    """What the fleet said, for a failure's report."""
    for log in logs:
        print(log.name, log.read_text()[-3000:])
    print(sorted(str(p) for p in spool.rglob("*")))


@pytest.fixture
async def wall_fake() -> AsyncIterator[FakeDeribit]:
    now = time.time()
    config = MarketConfig(currencies=("BTC", "ETH"), start_ms=int(now * 1000))
    fake = FakeDeribit(config, clock=SimClock(now, now, 1.0))
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


async def test_first_ten_minutes_followed_literally(
    database_url: str, tmp_path: Path, wall_fake: FakeDeribit
) -> None:
    import asyncio

    steps = section("First ten minutes")
    for command in (
        "python -m scripts.migrate",
        "python -m scripts.collect_realtime",
        "python -m scripts.funding_rates_collector",
        "python -m scripts.verify",
        "python -m scripts.healthcheck",
    ):
        assert command in steps, command
    # Step 2: copy .env.example to .env and set DATABASE_URL (and the fake's URLs, here).
    home = tmp_path / "home"
    home.mkdir()
    env_text = (REPO_ROOT / ".env.example").read_text()
    env_text = re.sub(r"^DATABASE_URL=.*$", f"DATABASE_URL={database_url}", env_text, flags=re.M)
    env_text = re.sub(
        r"^DERIBIT_WS_URL=.*$", f"DERIBIT_WS_URL={wall_fake.ws_url}", env_text, flags=re.M
    )
    env_text = re.sub(
        r"^DERIBIT_REST_URL=.*$", f"DERIBIT_REST_URL={wall_fake.rest_url}", env_text, flags=re.M
    )
    env_text = re.sub(
        r"^DERIBIT_HISTORY_URL=.*$",
        f"DERIBIT_HISTORY_URL={wall_fake.history_url}",
        env_text,
        flags=re.M,
    )
    env_text += f"\nSPOOL_DIR={tmp_path / 'spool'}\n"
    (home / ".env").write_text(env_text)
    env = base_env(tmp_path)  # nothing else: every setting comes from ./.env

    async def run(*args: str, extra: dict[str, str] | None = None) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            *args,
            cwd=home,
            env={**env, **(extra or {})},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 120)
        return int(proc.returncode or 0), out.decode(), err.decode()

    # Step 3: migrate.
    code, out, err = await run("scripts.migrate")
    assert code == 0, err
    assert "currencies: btc, eth" in out
    assert f"settings: environment, then {(home / '.env').resolve()}" in err
    # Step 4: one real-time collector per currency, plus the two REST collectors.
    fleet: list[asyncio.subprocess.Process] = []
    logs = []
    for module, extra in (
        ("scripts.ws_tick_collector_multi", {"CURRENCY": "BTC"}),
        ("scripts.ws_tick_collector_multi", {"CURRENCY": "ETH"}),
        ("scripts.collect_realtime", {}),
        ("scripts.funding_rates_collector", {}),
    ):
        log = (tmp_path / f"{module}-{extra.get('CURRENCY', '')}.log").open("w")
        logs.append(log)
        fleet.append(
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                module,
                cwd=home,
                env={**env, **extra},
                stdout=log,
                stderr=log,
            )
        )
    try:
        # Step 5: verify shows fresh rows (within two minutes); step 6: the health check.
        deadline = time.monotonic() + 150
        while True:
            code, out, err = await run("scripts.verify")
            rows = verify_rows(out)
            have = all(any(t in k and n > 0 for k, n in rows.items()) for t in MUST_HAVE_ROWS)
            if code == 0 and have:
                break
            assert time.monotonic() < deadline, out + err
            await asyncio.sleep(10)
        assert "all fresh" in out
        deadline = time.monotonic() + 60  # each collector's first flush
        for _ in range(13):
            code, out, _ = await run("scripts.healthcheck")
            if code == 0 or time.monotonic() > deadline:
                break
            await asyncio.sleep(5)
        if (code, out.strip()) != (0, "healthy"):
            dump_logs([Path(log.name) for log in logs], tmp_path / "spool")
        assert (code, out.strip()) == (0, "healthy")
    finally:
        for p in fleet:
            if p.returncode is None:
                p.terminate()
        for p in fleet:
            await asyncio.wait_for(p.wait(), 60)
        for log in logs:
            log.close()
    assert all(p.returncode == 0 for p in fleet), [p.returncode for p in fleet]
