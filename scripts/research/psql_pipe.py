"""`COPY ... TO STDOUT` through psql's libpq loop, read from a pipe in large blocks.

The server sends one protocol message per row. psycopg hands each to Python (several µs per
row), which on a small NAS costs as much CPU as the server spends producing the rows; psql
does the same loop in C. When psql is installed, the exporter reads its stdout instead: the same
bytes, a pipe read per megabyte. The password goes to the child in PGPASSWORD (never on its
command line), and the session settings the CSV depends on in PGOPTIONS.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from typing import Any

import psycopg

from scripts.logs import mask_secrets

SESSION_OPTIONS = "-c TimeZone=UTC -c DateStyle=ISO,YMD -c extra_float_digits=1"


class CopyFailed(Exception):
    """psql could not run the COPY; the message is psql's, with secrets masked."""


def psql_binary() -> str | None:
    return shutil.which("psql")


class PsqlReader(io.RawIOBase):
    """A read-only file over psql's stdout running one `\\copy (...) TO STDOUT`."""

    def __init__(self, psql: str, conn: psycopg.Connection, copy_sql: str) -> None:
        info = conn.info
        env = {
            **os.environ,
            "PGHOST": info.host,
            "PGPORT": str(info.port),
            "PGDATABASE": info.dbname,
            "PGUSER": info.user,
            "PGOPTIONS": SESSION_OPTIONS,
            "PGAPPNAME": "chaintape-export",
            "PGCONNECT_TIMEOUT": "10",
        }
        if info.password:
            env["PGPASSWORD"] = info.password
        self._secret = info.password or ""
        self._proc = subprocess.Popen(
            [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", copy_sql],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        assert self._proc.stdout is not None
        self._out: Any = self._proc.stdout  # a BufferedReader: readinto without a copy
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = self._out.readinto(buffer)
        if not n:
            self._finish()
            return 0
        self.bytes_read += n
        return n

    def _finish(self) -> None:
        code = self._proc.wait()
        if code != 0:
            err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
            line = next((ln for ln in err.splitlines() if ln.strip()), f"psql exited {code}")
            raise CopyFailed(mask_secrets(line, [self._secret]))

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        for pipe in (self._proc.stdout, self._proc.stderr):
            if pipe is not None:
                pipe.close()
        super().close()
