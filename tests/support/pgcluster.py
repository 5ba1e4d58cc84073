"""A throwaway PostgreSQL cluster with TimescaleDB preloaded, for tests and the benchmark.

initdb into a temp dir, a free 127.0.0.1 port, `shared_preload_libraries = 'timescaledb'`.
PostgreSQL refuses to run as root, so as root the cluster runs as the `postgres` user.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg

PG_MAJOR = os.environ.get("CHAINTAPE_PG_MAJOR", "15")


def pg_bin_dir() -> Path:
    explicit = os.environ.get("CHAINTAPE_PG_BIN")
    if explicit:
        return Path(explicit)
    path = Path(f"/usr/lib/postgresql/{PG_MAJOR}/bin")
    if path.is_dir():
        return path
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    raise RuntimeError(
        f"PostgreSQL {PG_MAJOR} server binaries not found: install postgresql-{PG_MAJOR} "
        "(bash .ci/install-timescaledb does) or set CHAINTAPE_PG_BIN"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgCluster:
    """One PostgreSQL server; start/stop/restart keep its data directory and port."""

    superuser = "postgres"

    def __init__(self, base_dir: str | None = None, port: int | None = None) -> None:
        self.bin = pg_bin_dir()
        self._tmp = tempfile.mkdtemp(prefix="chaintape-pg-", dir=base_dir)
        self.datadir = Path(self._tmp) / "data"
        self.port = port or free_port()
        self._as_postgres = os.geteuid() == 0
        self._db_counter = 0
        if self._as_postgres:
            pw = pwd.getpwnam("postgres")
            os.chown(self._tmp, pw.pw_uid, pw.pw_gid)
        self._run(
            "initdb",
            "-D",
            str(self.datadir),
            "-U",
            self.superuser,
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
        )
        conf = self.datadir / "postgresql.conf"
        with conf.open("a") as f:
            f.write(
                "\n# chaintape test cluster\n"
                "listen_addresses = '127.0.0.1'\n"
                f"port = {self.port}\n"
                f"unix_socket_directories = '{self._tmp}'\n"
                "shared_preload_libraries = 'timescaledb'\n"
                "timescaledb.telemetry_level = off\n"
                "max_connections = 200\n"
                "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                "shared_buffers = 128MB\n"
                "timescaledb.max_background_workers = 8\n"
                "max_worker_processes = 16\n"
                "log_min_messages = warning\n"
            )
        self.start()
        self.edition = self._read_edition()

    def _run(self, tool: str, *args: str) -> None:
        cmd = [str(self.bin / tool), *args]
        if self._as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def start(self) -> None:
        log = Path(self._tmp) / "server.log"
        self._run("pg_ctl", "-D", str(self.datadir), "-l", str(log), "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        """Stops the server (mode fast or immediate, the latter like a crash)."""
        self._run("pg_ctl", "-D", str(self.datadir), "-m", mode, "-w", "-t", "60", "stop")

    @property
    def running(self) -> bool:
        return (self.datadir / "postmaster.pid").exists()

    def url(
        self, dbname: str = "postgres", user: str | None = None, password: str | None = None
    ) -> str:
        auth = user or self.superuser
        if password is not None:
            auth += f":{password}"
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, prefix: str = "t") -> str:
        """A new empty database with the timescaledb extension; returns its URL."""
        self._db_counter += 1
        name = f"{prefix}_{os.getpid()}_{self._db_counter}".lower()
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def _read_edition(self) -> str:
        """'apache' or 'timescale' (full edition), from the extension's license setting."""
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
            row = conn.execute("SELECT current_setting('timescaledb.license')").fetchone()
            conn.execute("DROP EXTENSION timescaledb")
        assert row is not None
        return str(row[0])

    def destroy(self) -> None:
        with contextlib.suppress(Exception):
            if self.running:
                self.stop("immediate")
        shutil.rmtree(self._tmp, ignore_errors=True)

    def wait_ready(self, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with psycopg.connect(self.url(), connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)


@contextlib.contextmanager
def running_cluster() -> Iterator[PgCluster]:
    cluster = PgCluster()
    try:
        yield cluster
    finally:
        cluster.destroy()
