"""Applies `schema/` to a database: idempotent, checksummed, safe to run from many containers.

Every collector calls `apply_schema` on start, and `python -m scripts.migrate` does it by hand.
Steps, all under one advisory lock so containers starting together take turns:
1. check that TimescaleDB can be created here (else a clear error naming what to install);
2. apply each numbered file `schema/NNN_*.sql` not yet recorded in `schema_migrations`;
3. write the settings (retention), add the currencies, apply the policies (each run, because
   they depend on the arguments, not on the files);
   and the dashboards' aggregates and views (schema/030_dashboard_aggregates.sql);
4. create or update the read-only Grafana role when a password is given.

Checksums: each applied file is recorded with its SHA-256. A recorded file whose text changed
is applied again only when it is declared idempotent by the first line `-- chaintape:idempotent`
(CREATE ... IF NOT EXISTS, CREATE OR REPLACE: running it again is safe and is how a function
body is updated). Any other changed file stops the migration with an error: a one-off change
(ALTER, UPDATE) that was applied once must not silently differ from the file that describes it;
such changes go into a new numbered file.

On the Apache edition the schema functions raise `chaintape: <feature> skipped for <table>`
warnings; they are collected here and logged once per feature.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import psycopg

from scripts import config_values
from scripts.config import Settings
from scripts.currencies import CurrencySpec
from scripts.logs import mask_secrets
from scripts.storage.roles import check_role, ensure_readonly_role

log = logging.getLogger(__name__)

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schema"
IDEMPOTENT_MARK = "-- chaintape:idempotent"
MIGRATION_FILE = re.compile(r"^\d{3}_[a-z0-9_]+\.sql$")
# pg_advisory_lock key: the bytes of "chaintap" (any fixed number that nothing else uses).
LOCK_KEY = int.from_bytes(b"chaintap", "big") - (1 << 63)
LOCK_WAIT_S = 300
MIN_RETENTION_DAYS = config_values.MIN_RETENTION_DAYS
_SKIPPED = re.compile(r"^chaintape: (?P<feature>.+?) skipped for (?P<relation>\S+?):")
NOT_INSTALLED = (
    "TimescaleDB is not installed in this PostgreSQL: use the timescale/timescaledb image or "
    "install timescaledb-2-postgresql-{major} (and add timescaledb to shared_preload_libraries)"
)
NOT_PRELOADED = (
    "TimescaleDB is installed but not loaded: add shared_preload_libraries = 'timescaledb' to "
    "postgresql.conf and restart PostgreSQL (the timescale/timescaledb image does this)"
)


class MigrationError(Exception):
    """The schema could not be applied; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class MigrationReport:
    edition: str  # 'timescale' (full) or 'apache'
    applied: tuple[str, ...]  # files applied (or re-applied) by this run
    unchanged: tuple[str, ...]  # files already applied with the same checksum
    warnings: tuple[str, ...]  # one line per skipped feature or other server warning
    currencies: tuple[str, ...]  # every currency with tables now (lower case)
    added_currencies: tuple[str, ...]  # those this run created
    grafana_role: str | None  # the read-only role created or updated, None when skipped
    grafana_role_kept: bool = False  # no password given, the role exists from an earlier run


def migration_files(schema_dir: Path = SCHEMA_DIR) -> list[Path]:
    files = sorted(p for p in schema_dir.iterdir() if MIGRATION_FILE.match(p.name))
    if not files:
        raise MigrationError(f"no migration files (NNN_name.sql) in {schema_dir}")
    return files


def check_arguments(
    currencies: Iterable[str | CurrencySpec],
    grafana_user: str | None,
    grafana_password: str | None,
    retention_days: int | None,
) -> list[str]:
    """Validates everything before connecting; returns the lower-case currency codes.

    Raises ValueError (RolePasswordError for the Grafana password) naming the problem.
    """
    codes: list[str] = []
    for cur in currencies:
        code = (cur.code if isinstance(cur, CurrencySpec) else cur).strip().lower()
        if not re.fullmatch(r"[a-z][a-z0-9]{1,15}", code):
            raise ValueError(f"{cur!r} is not a currency code (e.g. BTC, SOL)")
        if code not in codes:
            codes.append(code)
    if grafana_password is not None:
        check_role(grafana_user or "", grafana_password)
    if retention_days is not None and (
        retention_days < 0 or 0 < retention_days < MIN_RETENTION_DAYS
    ):
        raise ValueError(
            f"RETENTION_DAYS={retention_days}: use 0 (keep everything) or at least "
            f"{MIN_RETENTION_DAYS} (chunks are compressed after 2 days and the hourly trade bars "
            "refresh the last 3 days)"
        )
    return codes


def apply_schema(
    database_url: str,
    currencies: Iterable[str | CurrencySpec],
    *,
    grafana_user: str | None = None,
    grafana_password: str | None = None,
    retention_days: int | None = None,
    schedule_policies: bool | None = None,
    schema_dir: Path = SCHEMA_DIR,
) -> MigrationReport:
    """Brings the database up to `schema/` for `currencies` (codes or CurrencySpec).

    `retention_days` (0 = keep everything) and `schedule_policies` (False creates policies
    paused: tests, a restore in progress) are stored in `chaintape_settings`; None keeps what is
    stored, so a collector that passes neither does not undo what `python -m scripts.migrate`
    set. `grafana_password` None skips the read-only role.

    Raises ValueError for bad arguments (a placeholder or short Grafana password, a retention of
    1-6 days) and MigrationError when the database is unreachable, lacks TimescaleDB, or a
    non-idempotent applied file changed.
    """
    codes = check_arguments(currencies, grafana_user, grafana_password, retention_days)
    files = migration_files(schema_dir)
    warnings = _WarningCollector()
    try:
        conn = psycopg.connect(database_url, autocommit=True, connect_timeout=10)
    except psycopg.Error as exc:
        raise MigrationError(f"cannot connect to the database: {_first_line(exc)}") from None
    with conn:
        conn.add_notice_handler(warnings.on_notice)
        _lock(conn)
        try:
            _check_timescaledb(conn)
            applied, unchanged = _apply_files(conn, files)
            try:
                with conn.transaction():
                    before = _registered(conn)
                    _write_settings(conn, retention_days, schedule_policies)
                    for code in codes:
                        conn.execute("SELECT chaintape_add_currency(%s)", (code,))
                    conn.execute("SELECT chaintape_apply_policies()")
                    conn.execute("SELECT chaintape_dashboard_objects()")
                    after = _registered(conn)
            except psycopg.errors.InsufficientPrivilege as exc:
                raise MigrationError(
                    f"this user may not create tables or policies ({_first_line(exc)}): run "
                    "`python -m scripts.migrate` as the database owner for these currencies "
                    "and settings (see schema/README.md)"
                ) from exc
            except psycopg.Error as exc:
                raise MigrationError(f"adding currencies failed: {_first_line(exc)}") from exc
            role, kept = None, False
            if grafana_password is None:
                # Said once, by `python -m scripts.migrate`'s report (never by collectors),
                # and not at all when the role exists already.
                kept = bool(
                    grafana_user
                    and conn.execute(
                        "SELECT 1 FROM pg_roles WHERE rolname = %s", (grafana_user,)
                    ).fetchone()
                )
                role = grafana_user if kept else None
            else:
                try:
                    with conn.transaction():
                        ensure_readonly_role(conn, grafana_user or "", grafana_password)
                except psycopg.Error as exc:
                    raise MigrationError(f"the Grafana role failed: {_first_line(exc)}") from exc
                role = grafana_user
            edition = _edition(conn)
        finally:
            with contextlib.suppress(psycopg.Error):
                conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
    report = MigrationReport(
        edition=edition,
        applied=tuple(applied),
        unchanged=tuple(unchanged),
        warnings=tuple(warnings.summary(edition)),
        currencies=tuple(after),
        added_currencies=tuple(c for c in after if c not in before),
        grafana_role=role,
        grafana_role_kept=kept,
    )
    for line in report.warnings:
        log.warning("%s", line)
    return report


async def apply_settings_schema(
    settings: Settings,
    currencies: Iterable[str | CurrencySpec] | None = None,
    *,
    roles_and_retention: bool = True,
) -> MigrationReport:
    """What a service applies at start, in a worker thread: the schema of `currencies`
    (default `settings.currencies`), and with `roles_and_retention` the Grafana role and the
    retention of `settings`.

    The REST collectors and the backfill pass False: they have always left the role and the
    stored retention to the real-time collector and `python -m scripts.migrate`.
    """
    chosen = list(settings.currencies if currencies is None else currencies)
    if not roles_and_retention:
        return await asyncio.to_thread(apply_schema, settings.database_url, chosen)
    return await asyncio.to_thread(
        apply_schema,
        settings.database_url,
        chosen,
        grafana_user=settings.grafana_db_user,
        grafana_password=settings.grafana_db_password,
        retention_days=settings.retention_days,
    )


def _lock(conn: psycopg.Connection) -> None:
    """Waits for other migrations of this database (containers starting together)."""
    try:
        conn.execute(f"SET lock_timeout = '{LOCK_WAIT_S}s'")
        conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        conn.execute("RESET lock_timeout")
    except psycopg.errors.LockNotAvailable:
        raise MigrationError(
            f"another migration has held the schema lock for {LOCK_WAIT_S} s: is one stuck? "
            "(see pg_locks where locktype = 'advisory')"
        ) from None


def _check_timescaledb(conn: psycopg.Connection) -> None:
    row = conn.execute(
        "SELECT (SELECT count(*) FROM pg_available_extensions WHERE name = 'timescaledb'),"
        " current_setting('server_version_num')::int / 10000"
    ).fetchone()
    assert row is not None
    if row[0] == 0:
        raise MigrationError(NOT_INSTALLED.format(major=row[1]))
    if conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone():
        return  # nothing to create: a writer role without CREATE may go on
    try:
        conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    except psycopg.errors.InsufficientPrivilege:
        raise MigrationError(
            "this user may not create the timescaledb extension: run `python -m scripts.migrate` "
            "once as the database owner (see schema/README.md)"
        ) from None
    except psycopg.Error as exc:
        if "preload" in str(exc):  # the class differs between versions; the message does not
            raise MigrationError(NOT_PRELOADED) from None
        raise MigrationError(
            f"cannot create the timescaledb extension: {_first_line(exc)}"
        ) from exc


def _apply_files(conn: psycopg.Connection, files: list[Path]) -> tuple[list[str], list[str]]:
    if conn.execute("SELECT to_regclass('schema_migrations')").fetchone() == (None,):
        conn.execute(
            "CREATE TABLE schema_migrations ("
            " filename text PRIMARY KEY, checksum text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
    rows = conn.execute("SELECT filename, checksum FROM schema_migrations").fetchall()
    recorded: dict[str, str] = {str(name): str(checksum) for name, checksum in rows}
    applied: list[str] = []
    unchanged: list[str] = []
    for path in files:
        text = path.read_text(encoding="utf-8")
        checksum = hashlib.sha256(text.encode()).hexdigest()
        previous = recorded.get(path.name)
        if previous == checksum:
            unchanged.append(path.name)
            continue
        if previous is not None and not text.startswith(IDEMPOTENT_MARK):
            raise MigrationError(
                f"{path.name} changed after it was applied (checksum {previous[:12]} in "
                f"schema_migrations, {checksum[:12]} on disk) and is not marked "
                f"'{IDEMPOTENT_MARK}': put the change in a new numbered file"
            )
        with conn.transaction():
            try:
                conn.execute(text.encode())
            except psycopg.Error as exc:
                raise MigrationError(f"{path.name} failed: {_first_line(exc)}") from exc
            conn.execute(
                "INSERT INTO schema_migrations (filename, checksum) VALUES (%s, %s)"
                " ON CONFLICT (filename) DO UPDATE"
                " SET checksum = EXCLUDED.checksum, applied_at = now()",
                (path.name, checksum),
            )
        applied.append(path.name)
        log.info("applied %s", path.name)
    return applied, unchanged


def _write_settings(
    conn: psycopg.Connection, retention_days: int | None, scheduled: bool | None
) -> None:
    """Stores changed settings only: a writer role without UPDATE on them can still start."""
    rows = conn.execute("SELECT name, value FROM chaintape_settings").fetchall()
    stored: dict[str, str] = {str(name): str(value) for name, value in rows}
    for name, value in (
        ("retention_days", None if retention_days is None else str(retention_days)),
        ("schedule_policies", None if scheduled is None else str(scheduled).lower()),
    ):
        if value is None or stored.get(name) == value:
            continue
        conn.execute(
            "INSERT INTO chaintape_settings (name, value) VALUES (%s, %s)"
            " ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value, updated_at = now()",
            (name, value),
        )


def _registered(conn: psycopg.Connection) -> list[str]:
    rows = conn.execute("SELECT currency FROM chaintape_currencies ORDER BY currency").fetchall()
    return [r[0] for r in rows]


def _edition(conn: psycopg.Connection) -> str:
    row = conn.execute("SELECT current_setting('timescaledb.license', true)").fetchone()
    return str(row[0]) if row and row[0] else "unknown"


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return mask_secrets(text[0] if text else type(exc).__name__)


class _WarningCollector:
    """Keeps the server's warnings: skipped features grouped by feature, others once each."""

    def __init__(self) -> None:
        self.skipped: dict[str, list[str]] = {}
        self.other: list[str] = []

    def on_notice(self, diag: psycopg.errors.Diagnostic) -> None:
        message = diag.message_primary or ""
        if diag.severity_nonlocalized != "WARNING":
            log.debug("server: %s", message)
            return
        match = _SKIPPED.match(message)
        if match:
            relations = self.skipped.setdefault(match["feature"], [])
            if match["relation"] not in relations:
                relations.append(match["relation"])
        elif message not in self.other:
            self.other.append(message)

    def summary(self, edition: str) -> list[str]:
        lines = [
            f"{feature} skipped for {len(rels)} relation(s) ({', '.join(rels)}): the "
            f"'{edition}' edition of TimescaleDB does not support it; run the "
            "timescale/timescaledb image (full edition) to get it"
            for feature, rels in self.skipped.items()
        ]
        return lines + [f"server warning: {m}" for m in self.other]
