"""The database connection pool: opened explicitly, checked on checkout, never blocking start-up."""

from __future__ import annotations

import random
import time
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


class RetrySchedule:
    """When to try the database again: capped exponential backoff with jitter (50-100 %).

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
        delay = min(self.max_s, self.base_s * 2 ** min(self.failures - 1, 30))
        self.retry_at = now + delay * random.uniform(0.5, 1.0)
        return first

    def recovered(self) -> float | None:
        """Resets; returns how long the outage lasted, None when there was none."""
        outage = None if self.down_since is None else time.monotonic() - self.down_since
        self.failures, self.down_since, self.retry_at = 0, None, 0.0
        return outage
