"""Research access: export recorded tables to files, and load them into pandas.

    from scripts.research import load, smile, ohlcv, funding, gaps

`load` reads the database (DATABASE_URL, or a URL given as `source=`) or an export folder
written by `python -m scripts.export` (`source="exports/"`), with identical columns and dtypes.
"""

from scripts.research.helpers import funding, gaps, ohlcv, smile
from scripts.research.loader import load, load_arrow

__all__ = ["funding", "gaps", "load", "load_arrow", "ohlcv", "smile"]
