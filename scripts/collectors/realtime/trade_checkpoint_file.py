"""The trade checkpoint's file: `{collector}.trades-complete.json` beside the spool, written
atomically (a temporary file, then a rename) and read at the next start (trade_checkpoint.py).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

FILE_SUFFIX = ".trades-complete.json"


class CheckpointFile:
    """One collector's checkpoint file; `path` None keeps nothing (tests, no spool)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path

    @classmethod
    def beside_spool(cls, spool_dir: str | Path, collector_name: str) -> CheckpointFile:
        return cls(Path(spool_dir) / f"{collector_name}{FILE_SUFFIX}")

    def read(self) -> int | None:
        """The checkpoint a previous run left, or None (no file, or an unreadable one)."""
        return read_checkpoint(self.path)

    def write(self, mark_ms: int) -> None:
        """Writes `mark_ms`; a failure is logged, and the previous file stays as it was."""
        if self.path is None:
            return
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps({"trades_complete_through_ms": mark_ms}))
            os.replace(tmp, self.path)
        except OSError as exc:
            log.warning("could not write %s: %s", self.path, exc)


def read_checkpoint(path: Path | None) -> int | None:
    """The checkpoint in `path`, or None (missing or unreadable)."""
    if path is None:
        return None
    with contextlib.suppress(OSError, ValueError, TypeError):
        value = json.loads(path.read_text()).get("trades_complete_through_ms")
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None
