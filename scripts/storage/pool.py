"""The database connection pool: opened explicitly, checked on checkout, never blocking start-up."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

CONNECT_TIMEOUT_S = 5
POOL_TIMEOUT_S = 10.0
RECONNECT_TIMEOUT_S = 300.0


async def open_pool(
    database_url: str,
    *,
    min_size: int = 1,
    max_size: int = 4,
    timeout_s: float = POOL_TIMEOUT_S,
    reconnect_timeout_s: float = RECONNECT_TIMEOUT_S,
    application_name: str = "chaintape",
) -> AsyncConnectionPool[AsyncConnection[Any]]:
    """An open pool; returns at once even when the database is down (`open(wait=False)`).

    Every connection is checked when handed out (`check_connection`), so a connection killed by
    a database restart is replaced instead of failing the next flush. `timeout_s` bounds how
    long a caller waits for a connection (then `PoolTimeout`, an OperationalError); a
    connection that cannot be re-established is retried with backoff for `reconnect_timeout_s`.
    """
    pool: AsyncConnectionPool[AsyncConnection[Any]] = AsyncConnectionPool(
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
    await pool.open(wait=False)
    return pool
