"""Progress of an export: a tqdm bar (rows, bytes, ETA) on a terminal, log lines otherwise.

Shared by the lanes of a parallel export (one lock), and the way to stop them: after
`cancel()`, the next `advance` of every lane raises `Cancelled`.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from typing import Any

log = logging.getLogger("scripts.export")

LOG_EVERY_S = 10.0


class Cancelled(Exception):
    """Another lane of the export failed, or the user interrupted it."""


class Progress:
    """`advance(rows, nbytes)` as batches are written; `day_done(...)` after each day."""

    def __init__(self, label: str, estimated_rows: int | None, *, tty: bool | None = None) -> None:
        self.label = label
        self.rows = 0
        self.bytes = 0
        self.started = time.monotonic()
        self._last_log = self.started
        self.tty = sys.stderr.isatty() if tty is None else tty
        self._bar: Any = None
        if self.tty:
            from tqdm import tqdm

            self._bar = tqdm(
                total=estimated_rows or None,
                unit=" rows",
                unit_scale=True,
                desc=label,
                file=sys.stderr,
                dynamic_ncols=True,
            )
        else:
            est = f", about {estimated_rows:,} rows (planner estimate)" if estimated_rows else ""
            log.info("%s: export started%s", label, est)
        self.estimated_rows = estimated_rows
        self._lock = threading.Lock()
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True

    def advance(self, rows: int, nbytes: int) -> None:
        if self.cancelled:
            raise Cancelled
        with self._lock:
            self.rows += rows
            self.bytes += nbytes
            if self._bar is not None:
                self._bar.update(rows)
                self._bar.set_postfix_str(f"{self.bytes / 1e6:,.1f} MB read", refresh=False)
                return
            now = time.monotonic()
            if now - self._last_log >= LOG_EVERY_S:
                self._last_log = now
                log.info("%s: %s", self.label, self._summary(now))

    def day_done(self, day: str, rows: int, nbytes: int, skipped: bool) -> None:
        with self._lock:
            if self._bar is not None:
                if skipped:
                    self._bar.update(rows)
                return
            what = "already exported, skipped" if skipped else "written"
            log.info("%s %s: %s rows, %.1f MB %s", self.label, day, f"{rows:,}", nbytes / 1e6, what)
            if skipped:
                self.rows += rows

    def _summary(self, now: float) -> str:
        elapsed = max(now - self.started, 1e-9)
        rate = self.rows / elapsed
        line = f"{self.rows:,} rows, {self.bytes / 1e6:,.1f} MB, {rate:,.0f} rows/s"
        if self.estimated_rows and rate > 0 and self.rows < self.estimated_rows:
            line += f", ETA {(self.estimated_rows - self.rows) / rate:,.0f} s"
        return line

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        log.info("%s: done, %s", self.label, self._summary(time.monotonic()))
