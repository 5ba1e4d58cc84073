"""The database connection pool: opened explicitly, checked on checkout, never blocking start-up,
reconnecting at most RECONNECT_MAX_DELAY_S apart (so writing resumes within seconds of the
database accepting connections) and saying so in three kinds of line: when an outage starts,
once a minute while it lasts, when it ends (`OutageLog`, instead of psycopg_pool's two-line
warning per attempt); and the start-up wait for a database that is not up yet
(`start_when_database_ready`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool
from psycopg_pool.pool_async import AddConnection

from scripts.logs import mask_secrets
from scripts.retry import backoff_delay
from scripts.runtime import EXIT_FAILURE, EXIT_OK, until_stopped

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5
POOL_TIMEOUT_S = 10.0
RECONNECT_TIMEOUT_S = 300.0
WAIT_BASE_S = 0.5  # start-up wait for the database: first retry ...
WAIT_MAX_S = 15.0  # ... and the cap (jittered 50-100 %)
WAIT_LOG_EVERY_S = 60.0
# psycopg_pool doubles its reconnect delay without a cap (1, 2, 4, ... 64 s): a 31 s outage
# could be noticed 48 s late. Capped here, the pool is back within this of the database.
RECONNECT_MAX_DELAY_S = 2.0
OUTAGE_LOG_EVERY_S = 60.0
# Connection failures that waiting cannot cure: the server answered and refused this URL.
# (psycopg gives no SQLSTATE for a failed connection attempt, only libpq's message.)
FATAL_CONNECT_MESSAGES = (
    "authentication failed",  # password, scram, md5, peer, ident
    "does not exist",  # role or database
    "no pg_hba.conf entry",
    "no password supplied",
)
TIMESCALEDB_MISSING = (
    "TimescaleDB is not installed in this PostgreSQL: use the timescale/timescaledb image or "
    "install timescaledb-2-postgresql-<major> (and add timescaledb to shared_preload_libraries)"
)


class DatabaseUnusable(Exception):
    """The database answered, but this DATABASE_URL can never work (authentication, a missing
    database or role, no TimescaleDB): fail at once with the message instead of waiting."""


async def open_pool(
    database_url: str,
    *,
    min_size: int = 1,
    max_size: int = 4,
    timeout_s: float = POOL_TIMEOUT_S,
    reconnect_timeout_s: float = RECONNECT_TIMEOUT_S,
    application_name: str = "chaintape",
) -> AsyncConnectionPool[AsyncConnection[Any]]:
    """`new_pool`, opened; returns at once even when the database is down (`open(wait=False)`)."""
    pool = new_pool(
        database_url,
        min_size=min_size,
        max_size=max_size,
        timeout_s=timeout_s,
        reconnect_timeout_s=reconnect_timeout_s,
        application_name=application_name,
    )
    await pool.open(wait=False)
    return pool


def new_pool(
    database_url: str,
    *,
    min_size: int = 1,
    max_size: int = 4,
    timeout_s: float = POOL_TIMEOUT_S,
    reconnect_timeout_s: float = RECONNECT_TIMEOUT_S,
    application_name: str = "chaintape",
) -> AsyncConnectionPool[AsyncConnection[Any]]:
    """A pool not opened yet (`open(wait=False)` it once the database answers: until then it
    would log each of its own connection attempts).

    Every connection is checked when handed out (`check_connection`), so a connection killed by
    a database restart is replaced instead of failing the next flush. `timeout_s` bounds how
    long a caller waits for a connection (then `PoolTimeout`, an OperationalError); a
    connection that cannot be re-established is retried with backoff for `reconnect_timeout_s`.
    """
    pool: AsyncConnectionPool[AsyncConnection[Any]] = ReconnectingPool(
        database_url,
        min_size=min_size,
        max_size=max_size,
        open=False,
        check=AsyncConnectionPool.check_connection,
        timeout=timeout_s,
        reconnect_timeout=reconnect_timeout_s,
        kwargs={"connect_timeout": CONNECT_TIMEOUT_S, "application_name": application_name},
        name=application_name,
    )
    return pool


class OutageLog:
    """One WARNING line when connecting starts failing, one per `every_s` while it goes on, one
    INFO line when a connection succeeds again."""

    def __init__(self, name: str, every_s: float = OUTAGE_LOG_EVERY_S) -> None:
        self.name, self.every_s = name, every_s
        self.down_since: float | None = None
        self.logged_at = 0.0
        self.attempts = 0

    def failed(self, exc: BaseException) -> None:
        now = time.monotonic()
        self.attempts += 1
        reason = mask_secrets(_first_line(exc))
        if self.down_since is None:
            self.down_since = self.logged_at = now
            log.warning(
                "pool %s: cannot connect to the database (%s); retrying every %.0f s at most",
                self.name,
                reason,
                RECONNECT_MAX_DELAY_S,
            )
        elif now - self.logged_at >= self.every_s:
            self.logged_at = now
            log.warning(
                "pool %s: still cannot connect after %.0f s (%d attempts): %s",
                self.name,
                now - self.down_since,
                self.attempts,
                reason,
            )

    def connected(self) -> None:
        if self.down_since is not None:
            log.info(
                "pool %s: connected again after %.1f s (%d failed attempts)",
                self.name,
                time.monotonic() - self.down_since,
                self.attempts,
            )
        self.down_since, self.attempts = None, 0


class _PoolAttemptFilter(logging.Filter):
    """Drops psycopg_pool's per-attempt connection warnings (OutageLog says it once)."""

    DROPPED = ("error connecting in", "reconnection attempt in pool")

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.msg, str) and record.msg.startswith(self.DROPPED))


logging.getLogger("psycopg.pool").addFilter(_PoolAttemptFilter())


class ReconnectingPool(AsyncConnectionPool[AsyncConnection[Any]]):
    """AsyncConnectionPool with a capped reconnect delay and `OutageLog` lines."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.outage = OutageLog(self.name)

    async def schedule_task(self, task: Any, delay: float) -> None:
        if isinstance(task, AddConnection):
            delay = min(delay, RECONNECT_MAX_DELAY_S)
        await super().schedule_task(task, delay)

    async def _connect(self, timeout: float | None = None) -> AsyncConnection[Any]:  # noqa: ASYNC109 (psycopg_pool's signature)
        try:
            conn = await super()._connect(timeout)
        except Exception as exc:
            self.outage.failed(exc)
            raise
        self.outage.connected()
        return conn


class RetrySchedule:
    """When to try the database again: the retry policy of `scripts/retry.py`, half jitter.

    It resets only on success, so a database that accepts connections but fails every write
    is not hammered.
    """

    def __init__(self, base_s: float = 0.5, max_s: float = 30.0) -> None:
        self.base_s, self.max_s = base_s, max_s
        self.failures = 0
        self.down_since: float | None = None
        self.retry_at = 0.0

    @property
    def down(self) -> bool:
        return self.down_since is not None

    def due(self) -> bool:
        return time.monotonic() >= self.retry_at

    def failed(self) -> bool:
        """Schedules the next try; True on the first failure of an outage."""
        now = time.monotonic()
        first = self.down_since is None
        if first:
            self.down_since = now
        self.failures += 1
        delay = backoff_delay(
            self.failures - 1, base_s=self.base_s, cap_s=self.max_s, jitter="half"
        )
        self.retry_at = now + delay
        return first

    def recovered(self) -> float | None:
        """Resets; returns how long the outage lasted, None when there was none."""
        outage = None if self.down_since is None else time.monotonic() - self.down_since
        self.failures, self.down_since, self.retry_at = 0, None, 0.0
        return outage


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    line = " ".join(text.splitlines()[0].split())
    return line.removeprefix("connection failed: ")


def classify_connect_error(exc: BaseException) -> str:
    """The one-line, secret-free reason a connection attempt failed, when waiting may cure it
    (refused, timed out, the server starting or shutting down, a host not resolvable yet);
    raises DatabaseUnusable when it cannot (see FATAL_CONNECT_MESSAGES)."""
    reason = mask_secrets(_first_line(exc))
    if isinstance(exc, psycopg.ProgrammingError) or any(
        m in str(exc).lower() for m in FATAL_CONNECT_MESSAGES
    ):
        raise DatabaseUnusable(f"the database refuses DATABASE_URL: {reason}") from None
    return reason


async def probe_database(url: str, *, connect_timeout_s: float = CONNECT_TIMEOUT_S) -> str | None:
    """None when the database answers and offers TimescaleDB; else why it does not answer (a
    reason worth waiting on). Raises DatabaseUnusable when waiting cannot help."""
    try:

        async def ask() -> tuple[Any, ...] | None:
            async with await psycopg.AsyncConnection.connect(
                url, autocommit=True, connect_timeout=max(1, int(connect_timeout_s))
            ) as conn:
                cur = await conn.execute(
                    "SELECT count(*) FROM pg_available_extensions WHERE name = 'timescaledb'"
                )
                return await cur.fetchone()

        row = await asyncio.wait_for(ask(), connect_timeout_s + 5.0)
    except (psycopg.Error, OSError, TimeoutError) as exc:
        return classify_connect_error(exc)
    if row is None or row[0] == 0:
        raise DatabaseUnusable(TIMESCALEDB_MISSING)
    return None


async def wait_for_database(
    url: str,
    stop: asyncio.Event,
    *,
    name: str,
    on_wait: Callable[[str | None], None] | None = None,
    base_s: float = WAIT_BASE_S,
    max_s: float = WAIT_MAX_S,
    log_every_s: float = WAIT_LOG_EVERY_S,
) -> bool:
    """Waits until the database answers: True then, False when `stop` is set first (at any
    moment, a connection attempt in flight included).

    Tries again with capped, jittered backoff; logs the first failure and then at most once
    every `log_every_s`, with the reason (secrets masked); calls `on_wait(reason)` after each
    failure (e.g. for the status file). Raises DatabaseUnusable at once for a URL that can
    never work (see `classify_connect_error`).
    """
    retry = RetrySchedule(base_s, max_s)
    logged_at: float | None = None
    while not stop.is_set():
        answered, reason = await until_stopped(stop, probe_database(url))  # (DatabaseUnusable)
        if not answered:
            return False
        if reason is None:
            outage_s = retry.recovered()
            if outage_s is not None:
                log.info("%s: the database answers, after %.0f s of waiting", name, outage_s)
            return True
        retry.failed()
        now = time.monotonic()
        if logged_at is None or now - logged_at >= log_every_s:
            log.warning("%s: waiting for the database: %s", name, reason)
            logged_at = now
        if on_wait is not None:
            on_wait(reason)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), max(0.0, retry.retry_at - time.monotonic()))
    return False


async def start_when_database_ready(
    url: str,
    stop: asyncio.Event,
    setup: Callable[[], Awaitable[None]],
    *,
    name: str,
    on_wait: Callable[[str | None], None] | None = None,
    spool_bytes: Callable[[], int] | None = None,
) -> int | None:
    """A service's start: waits for the database (`wait_for_database`), then runs `setup`
    (schema, reading the previous run's state); when `setup` fails because the database went
    away again, waits again.

    Returns None when the service may go on (`on_wait(None)` was called), else its exit code:
    0 when `stop` came first, 1 when the start failed, said in one ERROR line (a URL that can
    never work, a migration error; it mentions the spool only when `spool_bytes()` says an
    earlier run left one) or with the traceback of a `setup` error that is not the
    database's absence.
    """
    from scripts.storage.migrate import MigrationError

    try:
        while await wait_for_database(url, stop, name=name, on_wait=on_wait):
            try:
                await setup()
            except Exception as exc:
                reason = await probe_database(url)
                if reason is None:
                    raise
                log.warning("%s: the database went away during start-up (%s); waiting", name, exc)
                if on_wait is not None:
                    on_wait(reason)
                continue
            if on_wait is not None:
                on_wait(None)
            return None
    except (DatabaseUnusable, MigrationError) as exc:
        left = spool_bytes() if spool_bytes is not None else 0
        spool_note = (
            f" (a spool left by an earlier run, {left} bytes, waits on disk)" if left else ""
        )
        log.error("%s: %s; exiting%s", name, exc, spool_note)
        return EXIT_FAILURE
    except Exception:
        log.exception("%s: the start failed", name)
        return EXIT_FAILURE
    return EXIT_OK
