"""Research access: export recorded tables to files, and load them into pandas.

    from scripts.research import load, smile, ohlcv, funding, gaps

`load` reads the database (DATABASE_URL, or a URL given as `source=`) or an export folder
written by `python -m scripts.export` (`source="exports/"`), with identical columns and dtypes.
Imported lazily: the exporter's process does not pay for pandas.
"""

from __future__ import annotations

from typing import Any

__all__ = ["funding", "gaps", "load", "load_arrow", "ohlcv", "smile"]


def __getattr__(name: str) -> Any:
    if name in ("load", "load_arrow"):
        from scripts.research import loader

        return getattr(loader, name)
    if name in ("funding", "gaps", "ohlcv", "smile"):
        from scripts.research import helpers

        return getattr(helpers, name)
    raise AttributeError(name)
