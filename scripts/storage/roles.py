"""The read-only database role for Grafana: password rules and the grants.

The role can connect, read exactly the tables and views the Grafana dashboards and alert rules
use (`DASHBOARD_RELATIONS`; tests/integration/test_grafana_panels.py checks it against their
SQL), call the two SECURITY DEFINER functions of the Fleet health dashboard, and write nothing.
Its password is sent as a SCRAM-SHA-256 verifier computed client-side, never as text.
Raw per-currency tables (btc_option_quotes, ...) are read only through the union views. Its
password comes from GRAFANA_DB_PASSWORD; placeholders and short passwords are refused before
anything touches the database.
"""

from __future__ import annotations

import re

import psycopg
from psycopg import sql

from scripts.config_values import MIN_GRAFANA_PASSWORD_LENGTH, PLACEHOLDER_PASSWORDS

MIN_PASSWORD_LENGTH = MIN_GRAFANA_PASSWORD_LENGTH
_ROLE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")

# What grafana/dashboards/*.json and grafana/provisioning/alerting/*.yml read.
DASHBOARD_RELATIONS = (
    "instruments",
    "collector_status",
    "data_gaps",
    "rejected_messages",
    "option_quotes",
    "option_trades",
    "option_orderbook_depth",
    "option_quotes_1m",
    "option_quotes_1h",
    "option_trades_1m",
    "option_trades_1h",
    "options_greeks",
    "index_prices",
    "perpetuals_ohlcv",
    "futures_ohlcv",
    "funding_rates",
    "backups",
)
DASHBOARD_FUNCTIONS = ("chaintape_newest_rows()", "chaintape_table_sizes()")


class RolePasswordError(ValueError):
    """A password the read-only role must not get (placeholder, too short)."""


def check_role(user: str, password: str) -> None:
    """Raises ValueError (RolePasswordError for the password) naming what is wrong."""
    if not _ROLE_NAME.fullmatch(user):
        raise ValueError(f"GRAFANA_DB_USER={user!r} must be a lower-case SQL identifier")
    if password.strip().lower() in PLACEHOLDER_PASSWORDS:
        raise RolePasswordError(
            "GRAFANA_DB_PASSWORD is a placeholder (e.g. 'changeme'): set a real password of at "
            f"least {MIN_PASSWORD_LENGTH} characters, e.g. from `openssl rand -base64 18`"
        )
    if len(password) < MIN_PASSWORD_LENGTH:
        raise RolePasswordError(
            f"GRAFANA_DB_PASSWORD is {len(password)} characters long: use at least "
            f"{MIN_PASSWORD_LENGTH}, e.g. from `openssl rand -base64 18`"
        )


def scram_verifier(conn: psycopg.Connection, user: str, password: str) -> str:
    """The SCRAM-SHA-256 verifier of `password`, computed here with a fresh random salt."""
    raw = conn.pgconn.encrypt_password(password.encode(), user.encode(), b"scram-sha-256")
    return raw.decode("ascii")


def ensure_readonly_role(conn: psycopg.Connection, user: str, password: str) -> None:
    """Creates or updates the role `user` and grants it read access to this database.

    Runs inside the caller's transaction. Roles belong to the whole cluster, so two databases
    migrated at once may both try to create it: the loser of that race updates it instead.
    """
    check_role(user, password)
    role = sql.Identifier(user)
    exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (user,)).fetchone()
    if exists is None:
        try:
            with conn.transaction():
                conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(role))
        except (psycopg.errors.DuplicateObject, psycopg.errors.UniqueViolation):
            pass  # created by a migration of another database in the same moment
    attrs = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"
    # Only the SCRAM verifier travels: the password never reaches the server's logs or
    # pg_stat_statements (libpq's PQencryptPasswordConn, as psql's \password does).
    verifier = scram_verifier(conn, user, password)
    conn.execute(
        sql.SQL("ALTER ROLE {} WITH " + attrs + " PASSWORD {}").format(role, sql.Literal(verifier))
    )
    # A second lock on writes: even a grant added by hand later cannot make a session write
    # unless it turns this off on purpose.
    conn.execute(sql.SQL("ALTER ROLE {} SET default_transaction_read_only = on").format(role))
    dbname = conn.execute("SELECT current_database()").fetchone()
    assert dbname is not None
    statements = (
        "GRANT CONNECT ON DATABASE {db} TO {role}",
        "GRANT USAGE ON SCHEMA public TO {role}",
        # Earlier versions granted every table, now and later: take that back first.
        "REVOKE SELECT ON ALL TABLES IN SCHEMA public FROM {role}",
        "ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE SELECT ON TABLES FROM {role}",
    )
    for text in statements:
        conn.execute(sql.SQL(text).format(db=sql.Identifier(dbname[0]), role=role))
    for name in DASHBOARD_RELATIONS:
        # The union views exist once a currency does; the rest once the schema is applied.
        if conn.execute("SELECT to_regclass(%s)", (name,)).fetchone() != (None,):
            conn.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(sql.Identifier(name), role))
    for function in DASHBOARD_FUNCTIONS:
        if conn.execute("SELECT to_regprocedure(%s)", (function,)).fetchone() != (None,):
            conn.execute(sql.SQL("GRANT EXECUTE ON FUNCTION " + function + " TO {}").format(role))
