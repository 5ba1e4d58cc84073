"""Issue 11 scenario 13: passwords never travel as text, least-privilege roles, no CREATE on
public for everyone, and `rejected_messages` has a retention."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import subprocess
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from scripts.models import RejectedMessageRow
from scripts.storage import tables
from scripts.storage.housekeeping import REJECTED_KEEP_DAYS
from scripts.storage.migrate import apply_schema
from scripts.storage.roles import ensure_readonly_role
from scripts.storage.writer import BatchWriter
from tests.conftest import REPO_ROOT
from tests.support.pg_proxy import CommitCutter
from tests.support.pgcluster import PgCluster
from tests.support.writer_db import book, create_schema, query, quote, trade

PASSWORD = "Grafana-only-reads-7f3a9c"


def _scram_matches(verifier: str, password: str) -> bool:
    """RFC 5802/7677: the verifier's StoredKey is H(HMAC(PBKDF2(password), "Client Key"))."""
    method, rest = verifier.split("$", 1)
    iter_salt, keys = rest.split("$")
    iterations, salt = iter_salt.split(":")
    stored_key = base64.b64decode(keys.split(":")[0])
    salted = hashlib.pbkdf2_hmac(
        "sha256", password.encode(), base64.b64decode(salt), int(iterations)
    )
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    return method == "SCRAM-SHA-256" and hashlib.sha256(client_key).digest() == stored_key


async def test_grafana_password_travels_only_as_a_scram_verifier(
    database_url: str, pg_cluster: PgCluster
) -> None:
    create_schema(database_url, ("BTC",))
    proxy = CommitCutter(pg_cluster.port)
    await proxy.start()

    def set_role() -> None:
        with psycopg.connect(proxy.url(database_url)) as conn:
            ensure_readonly_role(conn, "grafana_reader", PASSWORD)

    try:
        await asyncio.to_thread(set_role)
    finally:
        await proxy.close()
    assert b"ALTER ROLE" in proxy.sent  # the statement went through the proxy
    assert PASSWORD.encode() not in proxy.sent, "the password was sent to the server as text"
    (verifier,) = query(
        database_url, "SELECT rolpassword FROM pg_authid WHERE rolname = 'grafana_reader'"
    )[0]
    assert _scram_matches(verifier, PASSWORD)


def _psql(cluster: PgCluster, url: str, *args: str) -> None:
    subprocess.run(
        [str(cluster.bin / "psql"), url, "-X", "-q", "-v", "ON_ERROR_STOP=1", *args],
        check=True,
        capture_output=True,
    )


async def test_writer_role_can_write_what_the_writer_writes_and_change_no_raw_row(
    database_url: str, pg_cluster: PgCluster
) -> None:
    create_schema(database_url, ("BTC",))
    role_sql = str(REPO_ROOT / "schema" / "writer_role.sql")
    _psql(
        pg_cluster,
        database_url,
        "-v",
        "writer=ct_writer",
        "-v",
        f"password={PASSWORD}",
        "-f",
        role_sql,
    )
    as_writer = database_url.replace("postgresql://postgres@", "postgresql://ct_writer@")
    writer = BatchWriter(as_writer, collector_name="ws-btc", currency="BTC", version="test")
    writer.add_many(tables.OPTION_QUOTES, "BTC", [quote(i) for i in range(10)])
    writer.add_many(tables.OPTION_TRADES, "BTC", [trade(i) for i in range(10)])
    writer.add_many(tables.OPTION_ORDERBOOK_DEPTH, "BTC", [book(i) for i in range(3)])
    writer.add(
        tables.REJECTED_MESSAGES,
        None,
        RejectedMessageRow(datetime.now(UTC), "ws-btc", "c", "bad", "{}"),
    )
    assert await writer.flush()
    assert writer.status.db_ok and writer.status.rows_by_table["btc_option_quotes"] == 10
    await writer.drain()
    with psycopg.connect(as_writer, autocommit=True) as conn:
        for statement in (
            "UPDATE btc_option_quotes SET best_bid_price = 0",
            "DELETE FROM btc_option_quotes",
            "UPDATE btc_option_trades SET price = 0",
            "UPDATE options_greeks SET delta = 0",
            "UPDATE funding_rates SET interest_8h = 0",
            "INSERT INTO schema_migrations (filename, checksum) VALUES ('x', 'y')",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)


def test_migrate_revokes_create_on_public_from_every_role(
    database_url: str, pg_cluster: PgCluster
) -> None:
    # A database created before PostgreSQL 15 (or restored from one) lets everyone create.
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("GRANT CREATE ON SCHEMA public TO PUBLIC")
        conn.execute("DROP ROLE IF EXISTS someone")
        conn.execute("CREATE ROLE someone LOGIN")
    apply_schema(database_url, ["BTC"], schedule_policies=False)
    as_someone = database_url.replace("postgresql://postgres@", "postgresql://someone@")
    try:
        with (
            psycopg.connect(as_someone, autocommit=True) as conn,
            pytest.raises(psycopg.errors.InsufficientPrivilege),
        ):
            conn.execute("CREATE TABLE planted (x int)")
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("DROP TABLE IF EXISTS planted")
            conn.execute("DROP OWNED BY someone")
            conn.execute("DROP ROLE someone")


async def test_rejected_messages_keep_a_bounded_history(database_url: str) -> None:
    create_schema(database_url, ("BTC",))
    now = datetime.now(UTC)
    old = now - timedelta(days=REJECTED_KEEP_DAYS + 5)
    writer = BatchWriter(database_url, collector_name="ws-btc", currency="BTC", version="test")
    writer.add_many(
        tables.REJECTED_MESSAGES,
        None,
        [RejectedMessageRow(t, "ws-btc", "c", "bad", "{}") for t in (old, old, now)],
    )
    assert await writer.flush()  # writes them
    writer.db.next_housekeeping = 0.0  # the next round is due for housekeeping (every 10 min)
    assert await writer.flush()
    await writer.drain()
    kept = query(database_url, "SELECT received_at FROM rejected_messages")
    assert [r[0] for r in kept] == [now]
