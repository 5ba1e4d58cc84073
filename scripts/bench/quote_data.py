"""Synthetic option quotes written with binary COPY: data for the export benchmark and tests.

Rows are spread evenly over `days` UTC days from `start`, across a small chain of ETH options,
every value derived from the row number (and some NULLs), so a run is reproducible.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import psycopg

from scripts.storage.tables import OPTION_QUOTES

STRIKES = (2000, 2500, 3000, 3500, 4000, 4500)


def instrument(i: int) -> str:
    strike = STRIKES[i % len(STRIKES)]
    return f"ETH-26JUN26-{strike}-{'C' if (i // len(STRIKES)) % 2 == 0 else 'P'}"


def write_quotes(
    url: str, rows: int, start: datetime, days: int, table: str = "eth_option_quotes"
) -> None:
    """Appends `rows` quotes to `table` (binary COPY, one transaction per million rows)."""
    step_us = max(1, int(days * 86_400 * 1_000_000 / max(rows, 1)))
    names = [instrument(i) for i in range(len(STRIKES) * 2)]
    cols = ", ".join(f'"{c}"' for c in OPTION_QUOTES.columns)
    done = 0
    with psycopg.connect(url) as conn:
        while done < rows:
            n = min(1_000_000, rows - done)
            with (
                conn.cursor() as cur,
                cur.copy(f'COPY "{table}" ({cols}) FROM STDIN (FORMAT BINARY)') as copy,
            ):
                copy.set_types(list(OPTION_QUOTES.sql_types))
                for i in range(done, done + n):
                    ts = start + timedelta(microseconds=i * step_us)
                    bid = None if i % 11 == 0 else 0.01 + (i % 997) * 1e-5
                    copy.write_row(
                        (
                            ts,
                            names[i % len(names)],
                            bid,
                            None if bid is None else float(i % 50 + 1),
                            0.02 + (i % 991) * 1e-5,
                            float(i % 40 + 1),
                            None,
                            None,
                            40.0 + (i % 300) / 10.0,
                            0.015 + (i % 83) * 1e-5,
                            3000.0 + (i % 1000) / 4.0,
                            ts + timedelta(milliseconds=2),
                        )
                    )
            conn.commit()
            done += n
