"""The read-only database role for Grafana: password rules and the grants.

The role can connect, read every table and view in the public schema (now and later, through
default privileges) and write nothing. Its password is sent as a SCRAM-SHA-256 verifier
computed client-side, never as text. Its password comes from GRAFANA_DB_PASSWORD; placeholders
and short passwords are refused before anything touches the database.
"""

from __future__ import annotations

import re

import psycopg
from psycopg import sql

from scripts.config import MIN_GRAFANA_PASSWORD_LENGTH, PLACEHOLDER_PASSWORDS

MIN_PASSWORD_LENGTH = MIN_GRAFANA_PASSWORD_LENGTH
_ROLE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


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
        "GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}",
        "ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO {role}",
    )
    for text in statements:
        conn.execute(sql.SQL(text).format(db=sql.Identifier(dbname[0]), role=role))
