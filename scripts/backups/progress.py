"""Restore progress: pg_restore's --verbose lines counted against the dump's TOC entries.

On a terminal a tqdm bar; otherwise (logs, Task Scheduler) a plain line at every 10 %.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from tqdm import tqdm

# --verbose prints one of these per TOC entry it handles
_STEP_PREFIXES = (
    "pg_restore: creating ",
    "pg_restore: processing data for ",
    "pg_restore: executing ",
    "pg_restore: restoring ",
    "pg_restore: processing item ",
)


class Progress:
    def __init__(self, total: int, label: str, on_line: Callable[[str], None] | None) -> None:
        self.total = max(total, 1)
        self.done = 0
        self.label = label
        self.on_line = on_line
        self._next_report = 10
        self._bar = tqdm(total=self.total, desc=label, unit="item") if sys.stderr.isatty() else None

    def line(self, text: str) -> None:
        if self.on_line is not None:
            self.on_line(text)
        if not text.startswith(_STEP_PREFIXES) or self.done >= self.total:
            return
        self.done += 1
        if self._bar is not None:
            self._bar.update(1)
            return
        percent = 100 * self.done // self.total
        if percent >= self._next_report:
            print(f"{self.label}: {percent}% ({self.done}/{self.total} items)", file=sys.stderr)
            self._next_report = (percent // 10 + 1) * 10

    def finish(self) -> None:
        """pg_restore succeeded: a last plain line when the count fell short of the TOC."""
        if self._bar is None and self._next_report <= 100:
            print(f"{self.label}: done ({self.done}/{self.total} items seen)", file=sys.stderr)
            self._next_report = 110

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
