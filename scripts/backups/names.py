"""Pure: dump file names and their sidecar files.

A dump is `chaintape-<database>-<YYYYmmddTHHMMSSZ>-ts<timescaledb version>-pg<major>.dump`;
beside it `<dump>.sha256` (sha256sum's format) and `<dump>.manifest.json` (what the dump's
snapshot held, per table). The time is when the snapshot was taken, in UTC.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

DUMP_SUFFIX = ".dump"
SHA_SUFFIX = ".sha256"
MANIFEST_SUFFIX = ".manifest.json"
TMP_SUFFIX = ".tmp"
_TIME_FORMAT = "%Y%m%dT%H%M%SZ"
_NAME = re.compile(
    r"^chaintape-(?P<db>[A-Za-z0-9_]+)-(?P<time>\d{8}T\d{6}Z)-ts(?P<ts>\d+\.\d+\.\d+(?:[-.]\w+)?)"
    r"-pg(?P<pg>\d+)\.dump$"
)


@dataclass(frozen=True, slots=True)
class DumpName:
    database: str
    taken_at: datetime
    timescaledb_version: str
    pg_major: int

    @property
    def file_name(self) -> str:
        stamp = self.taken_at.astimezone(UTC).strftime(_TIME_FORMAT)
        return (
            f"chaintape-{self.database}-{stamp}-ts{self.timescaledb_version}"
            f"-pg{self.pg_major}{DUMP_SUFFIX}"
        )


def parse_dump_name(name: str) -> DumpName | None:
    """The parts of a dump's file name, None for any other file."""
    m = _NAME.match(name)
    if m is None:
        return None
    taken = datetime.strptime(m["time"], _TIME_FORMAT).replace(tzinfo=UTC)
    return DumpName(m["db"], taken, m["ts"], int(m["pg"]))


def safe_database_part(dbname: str) -> str:
    """The database name as it may appear in a file name."""
    return re.sub(r"[^A-Za-z0-9_]", "_", dbname) or "db"


def sha256_line(digest: str, file_name: str) -> str:
    """One line in sha256sum's format, so `sha256sum -c` checks it too."""
    return f"{digest}  {file_name}\n"


def parse_sha256_line(text: str) -> str:
    """The digest of a sha256sum line; ValueError when it is not one."""
    parts = text.strip().split()
    if not parts or not re.fullmatch(r"[0-9a-f]{64}", parts[0]):
        raise ValueError("not a sha256sum line")
    return parts[0]
