"""SQL fragments shared by the dashboards (Grafana macros and variables left for Grafana).

Single-value variables are written quoted ('$currency'), multi-value ones inside IN ($expiry):
Grafana's PostgreSQL datasource quotes each value of a multi-value variable itself.
"""

from __future__ import annotations

# An option's expiry as the `expiry` variable shows and compares it.
EXPIRY_OF = "to_char({i}.expiration_timestamp AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI')"
# Ranges longer than this read the hourly aggregates instead of the 1-minute ones.
LONG_RANGE = "interval '2 days'"
RANGE_LENGTH = "($__timeTo()::timestamptz - $__timeFrom()::timestamptz)"


def expiry_of(alias: str = "i") -> str:
    return EXPIRY_OF.format(i=alias)


def short_range() -> str:
    """A predicate PostgreSQL evaluates once (a one-time filter): the branch for short ranges."""
    return f"{RANGE_LENGTH} <= {LONG_RANGE}"


def long_range() -> str:
    return f"{RANGE_LENGTH} > {LONG_RANGE}"


def latest_quote(columns: str, *, lookback: str = "interval '3 hours'") -> str:
    """A LATERAL subquery: the newest 1-minute quote summary of option `i` in the range's end."""
    return f"""LATERAL (
    SELECT {columns}
      FROM option_quotes_1m q
     WHERE q.currency = '$currency' AND q.instrument_name = i.instrument_name
       AND q.bucket > greatest($__timeFrom()::timestamptz, $__timeTo()::timestamptz - {lookback})
       AND q.bucket <= $__timeTo()
     ORDER BY q.bucket DESC
     LIMIT 1) q"""


# The currency's price index at the end of the range: the underlying for "at the money" and
# "out of the money" (quote rows from the quote channel carry no underlying price).
INDEX_AT_END = """(SELECT x.value FROM index_prices x
      WHERE x.currency = '$currency' AND x.kind = 'price' AND x."timestamp" <= $__timeTo()
      ORDER BY x."timestamp" DESC LIMIT 1)"""
