"""The alert check's parts: each returns problems (one line each) and notes (what it skipped)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class Findings:
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def extend(self, other: Findings) -> None:
        self.problems.extend(other.problems)
        self.notes.extend(other.notes)
