"""`python -m scripts.restore DUMP [--into DBNAME] [--force]`: restore a chaintape dump.

DUMP is a file, or `latest`: the newest dump in BACKUP_DIR.
Into DATABASE_URL's database, or with --into into another database of the same server (created
when missing). A database that already holds tables is refused unless --force, which drops and
recreates it (disconnecting everyone: stop the collectors first). Exit 0 when the restore
finished and agrees row for row with the dump's manifest, 1 with the reason otherwise.
Afterwards run `python -m scripts.migrate` to recreate the Grafana role and its grants.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import psycopg

from scripts.backups.files import list_dumps
from scripts.backups.pgtools import BackupError, dbname_of, with_dbname
from scripts.backups.restore import restore_dump
from scripts.config import load_settings_or_exit
from scripts.logs import mask_secrets, setup_logging


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.restore", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "dump", help="a chaintape-*.dump file (its .sha256 beside it), or `latest` in BACKUP_DIR"
    )
    parser.add_argument("--into", metavar="DBNAME", help="restore into this database instead")
    parser.add_argument("--force", action="store_true", help="drop and recreate a non-empty target")
    args = parser.parse_args(argv)
    settings = load_settings_or_exit(need_currency="any")
    setup_logging(settings.log_level, settings.secrets)
    dump = Path(args.dump)
    if args.dump == "latest":
        found = list_dumps(Path(settings.backup_dir))
        if not found:
            print(f"restore FAILED: no dump in BACKUP_DIR={settings.backup_dir}", file=sys.stderr)
            return 1
        dump = found[-1][1]
    target = with_dbname(settings.database_url, args.into) if args.into else settings.database_url
    try:
        result = restore_dump(dump, target, pg_bin_dir=settings.pg_bin_dir, force=args.force)
    except (BackupError, psycopg.Error, OSError) as exc:
        print(
            f"restore FAILED: {mask_secrets(str(exc).strip(), settings.secrets)}", file=sys.stderr
        )
        return 1
    rows = sum(t.rows for t in result.manifest.values())
    if result.differences:
        print(f"restore FAILED: {dbname_of(target)} differs from the dump:", file=sys.stderr)
        for line in result.differences:
            print(f"  {line}", file=sys.stderr)
        return 1
    verdict = (
        "agrees row for row with the dump's manifest"
        if result.compared
        else "NOT compared: the dump has no manifest beside it"
    )
    print(
        f"restored {dump.name} into {result.database}: {len(result.manifest)} tables, "
        f"{rows} rows, {result.duration_s:.1f} s; {verdict}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
