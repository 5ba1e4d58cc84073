"""Settings, decided once at the edge: the only module that reads the environment.

`.env` is loaded through python-dotenv from the working directory, else from the project root
(`find_dotenv_file`); the real environment wins, and `loaded_env_file()` says which file was
read (entry points log it). Every invalid value is collected and reported together, then the process
exits with status 2 (`load_settings_or_exit`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from scripts import config_values as values
from scripts import fleet
from scripts.currencies import KNOWN_CURRENCIES, CurrencySpec

EXIT_CONFIG_ERROR = 2
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
PROJECT_ROOT = Path(__file__).resolve().parent.parent
# The image declares this directory a volume; outside it, the spool sits in the project root.
SYSTEM_SPOOL_DIR = Path("/var/lib/chaintape/spool")
SPOOL_DIR_DEFAULT_TEXT = f"{SYSTEM_SPOOL_DIR} when it exists and is writable, else <project>/spool"


class ConfigError(Exception):
    """Every problem found in the environment, one per line."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str
    currencies: tuple[CurrencySpec, ...]  # CURRENCY (one) or CURRENCIES (list)
    deribit_ws_url: str = "wss://www.deribit.com/ws/api/v2"
    deribit_rest_url: str = "https://www.deribit.com/api/v2"
    deribit_history_url: str = "https://history.deribit.com/api/v2"
    top_n_instruments: int = 0  # 0 = the whole chain
    log_level: str = "INFO"
    collector_name: str = ""
    # real-time collector
    orderbook_snapshot_interval_s: float = 300.0
    orderbook_depth: int = 10
    heartbeat_interval_s: int = 10
    data_watchdog_s: float = 30.0
    ws_channels_per_connection: int = 2000
    ws_max_connections: int = 4
    instrument_reconcile_interval_s: float = 600.0
    trade_repair_max_age_s: float = 86400.0
    # quotes' underlying_price and bid/ask IVs: an expiry's forward older than this is not used
    quote_forward_max_age_s: float = 10.0
    # REST credits: this process's share of Deribit's 10,000 credits/s (500 per request)
    rest_requests_per_s: float = 5.0
    rest_burst: int = 20
    # the fleet's total when its processes derive their shares (0 = each its own REST_*)
    fleet_rest_requests_per_s: float = 0.0
    subscribe_share: float = 1.0  # of Deribit's subscribe pool (the fleet's ws collectors split it)
    # writer
    flush_interval_ms: int = 1000
    flush_max_rows: int = 5000
    writer_max_buffered_rows: int = 200_000
    drain_deadline_s: float = 20.0
    spool_dir: str = ""  # "" until load_settings: default_spool_dir(), always absolute
    spool_max_bytes: int = 1 << 30
    # health
    health_max_flush_age_s: float = 120.0
    health_max_disconnected_s: float = 30.0
    # REST collectors
    ohlcv_poll_interval_s: float = 60.0
    greeks_poll_interval_s: float = 3600.0
    index_poll_interval_s: float = 60.0
    funding_poll_interval_s: float = 600.0
    funding_backfill_hours: float = 48.0
    # schema
    grafana_db_user: str = "grafana_reader"
    grafana_db_password: str | None = None
    retention_days: int = 0  # 0 = keep forever
    stale_after_s: float = 900.0
    # backups, restore test and alert check (issue 15)
    backup_dir: str = "./backups"
    backup_schedule: str = "15 3 * * *"  # cron, UTC: daily at 03:15
    restore_test_schedule: str = "45 4 * * 0"  # cron, UTC: Sundays at 04:45
    backup_keep_daily: int = 7
    backup_keep_weekly: int = 4
    backup_keep_monthly: int = 6
    backup_disk_margin_mb: float = 512.0
    pg_bin_dir: str = ""  # "" = pg_dump/pg_restore from PATH
    check_backup_max_age_h: float = 26.0
    check_restore_test_max_age_h: float = 192.0
    check_max_open_gaps: int = 0
    check_gap_window_h: float = 24.0
    check_min_free_mb: float = 2048.0
    check_disk_days: float = 14.0
    check_db_volume_path: str = ""
    check_docker_host: str = "unix:///var/run/docker.sock"
    check_compose_project: str = "chaintape"
    # one status line per interval from each long-running process (0 = none)
    status_log_interval_s: float = 60.0
    # simulation clock "wall_start:sim_start:speed" (tests and benchmark only)
    sim_clock: str = ""
    secrets: tuple[str, ...] = field(default=(), repr=False)

    @property
    def currency(self) -> CurrencySpec:
        """The one currency of a per-currency collector (the first when several are set)."""
        return self.currencies[0]

    def masked(self) -> dict[str, Any]:
        """Settings as a dict with every secret replaced, for a start-up log line."""
        from scripts.logs import mask_secrets

        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name == "secrets":
                continue
            value = getattr(self, f.name)
            if f.name == "currencies":
                value = ",".join(c.code for c in value)
            elif f.name == "grafana_db_password":
                value = None if value is None else "***"
            elif isinstance(value, str):
                value = mask_secrets(value, self.secrets)
            out[f.name] = value
        return out


_loaded_env_file: Path | None = None


def find_dotenv_file(cwd: str | os.PathLike[str] | None = None) -> Path | None:
    """`.env` in the working directory, else in the project root; None when neither has one."""
    for folder in (Path(cwd) if cwd is not None else Path.cwd(), PROJECT_ROOT):
        candidate = folder / ".env"
        if candidate.is_file():
            return candidate.resolve()
    return None


def load_dotenv_file(path: str | os.PathLike[str] | None = None) -> Path | None:
    """Loads `path` (default: `find_dotenv_file()`) without overriding the real environment;
    returns the file read, also kept for `loaded_env_file()`."""
    from dotenv import load_dotenv

    global _loaded_env_file
    found = find_dotenv_file() if path is None else Path(path)
    if found is None or not found.is_file():
        return None
    load_dotenv(found, override=False)
    _loaded_env_file = found.resolve()
    return _loaded_env_file


def loaded_env_file() -> Path | None:
    """The `.env` file the settings were read from in this process, None when there was none."""
    return _loaded_env_file


def default_spool_dir() -> str:
    """An absolute default for SPOOL_DIR: the image's volume when present and writable (so
    every process in the container agrees), else `<project>/spool` whatever the working dir."""
    if SYSTEM_SPOOL_DIR.is_dir() and os.access(SYSTEM_SPOOL_DIR, os.W_OK | os.X_OK):
        return str(SYSTEM_SPOOL_DIR)
    return str(PROJECT_ROOT / "spool")


def load_settings(
    env: Mapping[str, str] | None = None,
    *,
    need_currency: str = "one",
    need_database: bool = True,
    fleet_role: str | None = None,
) -> Settings:
    """Reads settings; raises ConfigError listing every problem.

    need_currency: "one" (CURRENCY required), "many" (CURRENCIES, default BTC,ETH), "any"
    (CURRENCY/CURRENCIES optional, e.g. for migrate or healthcheck).
    fleet_role: "ws", "rest" or "funding" for the collectors of a deployment; with
    FLEET_REST_REQUESTS_PER_S set, the process takes its share of that total (scripts/fleet.py)
    unless REST_REQUESTS_PER_S / REST_BURST / WS_MAX_CONNECTIONS are set explicitly.
    """
    if env is None:
        load_dotenv_file()
        env = os.environ
    r = values.EnvReader(env)
    database_url, secrets = values.database_url(r, need_database)
    currencies = values.currencies(r, need_currency)
    log_level = r.parse(
        "LOG_LEVEL",
        "INFO",
        lambda t: values.one_of(t.upper(), LOG_LEVELS),
        f"must be one of {', '.join(LOG_LEVELS)}",
    )
    grafana_password = r.raw("GRAFANA_DB_PASSWORD")
    if grafana_password:
        secrets.append(grafana_password)
        values.check_grafana_password(r, grafana_password)
    defaults = Settings(database_url="", currencies=())
    settings = Settings(
        database_url=database_url,
        currencies=currencies,
        deribit_ws_url=r.url("DERIBIT_WS_URL", defaults.deribit_ws_url, ("wss", "ws")),
        deribit_rest_url=r.url("DERIBIT_REST_URL", defaults.deribit_rest_url, ("https", "http")),
        deribit_history_url=r.url(
            "DERIBIT_HISTORY_URL", defaults.deribit_history_url, ("https", "http")
        ),
        top_n_instruments=r.integer("TOP_N_INSTRUMENTS", 0),
        log_level=log_level,
        collector_name=r.raw("COLLECTOR_NAME") or "",
        orderbook_snapshot_interval_s=r.number(
            "ORDERBOOK_SNAPSHOT_INTERVAL_S", 300.0, minimum=0.001
        ),
        orderbook_depth=r.integer("ORDERBOOK_DEPTH", 10, minimum=1),
        heartbeat_interval_s=r.integer("HEARTBEAT_INTERVAL_S", 10, minimum=10),
        data_watchdog_s=r.number("DATA_WATCHDOG_S", 30.0, minimum=0.1),
        ws_channels_per_connection=r.integer("WS_CHANNELS_PER_CONNECTION", 2000, minimum=1),
        ws_max_connections=r.integer("WS_MAX_CONNECTIONS", 4, minimum=1),
        instrument_reconcile_interval_s=r.number(
            "INSTRUMENT_RECONCILE_INTERVAL_S", 600.0, minimum=0.001
        ),
        trade_repair_max_age_s=r.number("TRADE_REPAIR_MAX_AGE_S", 86400.0, minimum=0.0),
        quote_forward_max_age_s=r.number("QUOTE_FORWARD_MAX_AGE_S", 10.0, minimum=0.001),
        rest_requests_per_s=r.number("REST_REQUESTS_PER_S", 5.0, minimum=0.01),
        rest_burst=r.integer("REST_BURST", 20, minimum=1),
        flush_interval_ms=r.integer("FLUSH_INTERVAL_MS", 1000, minimum=1),
        flush_max_rows=r.integer("FLUSH_MAX_ROWS", 5000, minimum=1),
        writer_max_buffered_rows=r.integer("WRITER_MAX_BUFFERED_ROWS", 200_000, minimum=1),
        drain_deadline_s=r.number("DRAIN_DEADLINE_S", 20.0, minimum=0.1),
        spool_dir=os.path.abspath(r.raw("SPOOL_DIR") or default_spool_dir()),
        spool_max_bytes=r.integer("SPOOL_MAX_BYTES", 1 << 30, minimum=0),
        health_max_flush_age_s=r.number("HEALTH_MAX_FLUSH_AGE_S", 120.0, minimum=1.0),
        health_max_disconnected_s=r.number("HEALTH_MAX_DISCONNECTED_S", 30.0, minimum=1.0),
        ohlcv_poll_interval_s=r.number("OHLCV_POLL_INTERVAL_S", 60.0, minimum=0.001),
        greeks_poll_interval_s=r.number("GREEKS_POLL_INTERVAL_S", 3600.0, minimum=0.001),
        index_poll_interval_s=r.number("INDEX_POLL_INTERVAL_S", 60.0, minimum=0.001),
        funding_poll_interval_s=r.number("FUNDING_POLL_INTERVAL_S", 600.0, minimum=0.001),
        funding_backfill_hours=r.number("FUNDING_BACKFILL_HOURS", 48.0),
        grafana_db_user=r.parse(
            "GRAFANA_DB_USER",
            "grafana_reader",
            values.identifier,
            "must be a lower-case SQL identifier",
        ),
        grafana_db_password=grafana_password,
        retention_days=values.retention_days(r),
        stale_after_s=r.number("STALE_AFTER_S", 900.0, minimum=1.0),
        backup_dir=r.raw("BACKUP_DIR") or "./backups",
        backup_schedule=r.parse(
            "BACKUP_SCHEDULE", "15 3 * * *", values.cron, "must be a 5-field cron expression (UTC)"
        ),
        restore_test_schedule=r.parse(
            "RESTORE_TEST_SCHEDULE",
            "45 4 * * 0",
            values.cron,
            "must be a 5-field cron expression (UTC)",
        ),
        backup_keep_daily=r.integer("BACKUP_KEEP_DAILY", 7),
        backup_keep_weekly=r.integer("BACKUP_KEEP_WEEKLY", 4),
        backup_keep_monthly=r.integer("BACKUP_KEEP_MONTHLY", 6),
        backup_disk_margin_mb=r.number("BACKUP_DISK_MARGIN_MB", 512.0),
        pg_bin_dir=r.raw("PG_BIN_DIR") or "",
        check_backup_max_age_h=r.number("CHECK_BACKUP_MAX_AGE_H", 26.0, minimum=0.01),
        check_restore_test_max_age_h=r.number("CHECK_RESTORE_TEST_MAX_AGE_H", 192.0, minimum=0.01),
        check_max_open_gaps=r.integer("CHECK_MAX_OPEN_GAPS", 0),
        check_gap_window_h=r.number("CHECK_GAP_WINDOW_H", 24.0, minimum=0.01),
        check_min_free_mb=r.number("CHECK_MIN_FREE_MB", 2048.0),
        check_disk_days=r.number("CHECK_DISK_DAYS", 14.0),
        check_db_volume_path=r.raw("CHECK_DB_VOLUME_PATH") or "",
        check_docker_host=r.raw("CHECK_DOCKER_HOST") or "unix:///var/run/docker.sock",
        check_compose_project=r.raw("CHECK_COMPOSE_PROJECT") or "chaintape",
        status_log_interval_s=r.number("STATUS_LOG_INTERVAL_S", 60.0),
        sim_clock=r.parse("SIM_CLOCK", "", values.sim_clock, "must be wall_start:sim_start:speed"),
        secrets=tuple(secrets),
    )
    if fleet_role is not None:
        settings = _fleet_shares(r, settings, fleet_role)
    if r.problems:
        raise ConfigError(r.problems)
    return settings


def _fleet_shares(r: values.EnvReader, settings: Settings, role: str) -> Settings:
    """The settings with this process's share of the fleet's credits and connections."""
    total = r.number("FLEET_REST_REQUESTS_PER_S", 0.0)
    if total <= 0:
        return settings
    if total > fleet.DERIBIT_REQUESTS_PER_S:
        r.problems.append(
            f"FLEET_REST_REQUESTS_PER_S={total:g}: Deribit allows about "
            f"{fleet.DERIBIT_REQUESTS_PER_S:g} requests/s per IP in total"
        )
    fleet_codes = [c.strip().upper() for c in (r.raw("CURRENCIES") or "BTC,ETH").split(",")]
    fleet_codes = list(dict.fromkeys(c for c in fleet_codes if c))
    if role == "ws" and settings.currencies and settings.currency.code not in fleet_codes:
        r.problems.append(
            f"CURRENCY={settings.currency.code} is not in CURRENCIES={','.join(fleet_codes)}: "
            "the fleet's credit shares count one real-time collector per currency in CURRENCIES"
        )
    n = max(1, len(fleet_codes))
    if n > fleet.MAX_CURRENCIES:
        r.problems.append(
            f"CURRENCIES lists {n} currencies: one IP has room for {fleet.MAX_CURRENCIES} "
            "real-time collectors (Deribit's 32 connections); run more on a second host"
        )
    changes: dict[str, Any] = {
        "fleet_rest_requests_per_s": total,
        "subscribe_share": fleet.subscribe_share(role, n) or 1.0,
    }
    if r.raw("REST_REQUESTS_PER_S") is None:
        changes["rest_requests_per_s"] = fleet.rest_requests_share(total, role, n)
    if r.raw("REST_BURST") is None:
        changes["rest_burst"] = fleet.rest_burst_share(role, n)
    if role == "ws" and r.raw("WS_MAX_CONNECTIONS") is None:
        changes["ws_max_connections"] = fleet.ws_connections_share(n)
    return replace(settings, **changes)


def env_defaults(need_currency: str = "one") -> dict[str, str]:
    """Every environment variable `load_settings` reads, with its default as text (derived from
    `Settings`' defaults, so `--help` never drifts from the code)."""
    out: dict[str, str] = {}
    for f in fields(Settings):
        if f.name == "secrets":
            continue
        if f.name == "currencies":
            known = ",".join(KNOWN_CURRENCIES)
            out["CURRENCY"] = "required, one of " + known if need_currency == "one" else "unset"
            if need_currency != "one":
                out["CURRENCIES"] = "BTC,ETH (else CURRENCY)"
            continue
        name = f.name.upper()
        if f.name == "database_url":
            out[name] = "required"
        elif f.name == "spool_dir":
            out[name] = SPOOL_DIR_DEFAULT_TEXT
        elif f.default is None or f.default == "":
            out[name] = "unset"
        else:
            out[name] = str(f.default)
    return out


def load_settings_or_exit(**kwargs: Any) -> Settings:
    """load_settings for an entry point: on a bad environment, one message and exit 2."""
    try:
        return load_settings(**kwargs)
    except ConfigError as exc:
        print(f"chaintape: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG_ERROR) from None
