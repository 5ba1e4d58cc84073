"""Micro-benchmark of `ForwardCurves.enrich`: microseconds per quote row on a realistic batch.

    python -m bench.enrich [--rows 2000 5000 20000] [--repeat 7]

A BTC-like chain (10 expiries from a day to half a year, 80 options each), forwards noted
once a second per expiry for two minutes, and batches of one flush second of quote rows:
prices from Black-76 at IVs of 40-120% on 0.0005 BTC ticks, near-the-money options quoting
most, empty sides, deep in- and out-of-the-money strikes, a few rows that already carry a
forward (from ticker frames) and a few non-options. Prints the best of `repeat` timed calls.
"""

from __future__ import annotations

import argparse
import math
import random
import time
from datetime import UTC, datetime, timedelta

from scripts.normalize.quote_ivs import ForwardCurves

NOW = datetime(2026, 1, 12, 14, 0, tzinfo=UTC)  # the batch's second: 14:00:00-14:00:01
EXPIRY_DAYS = (1, 2, 3, 4, 11, 18, 25, 53, 81, 172)  # Fridays and dailies, 08:00 UTC
STRIKES_PER_EXPIRY = 40
TICK = 0.0005
HISTORY_S = 120
SPOT = 95_000.0
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


def _name(expiry: datetime, strike: float, call: bool) -> str:
    day = f"{expiry.day}{MONTHS[expiry.month - 1]}{expiry.year % 100:02d}"
    return f"BTC-{day}-{strike:.0f}-{'C' if call else 'P'}"


def _black76(f: float, k: float, t: float, vol: float, call: bool) -> float:
    """Undiscounted Black-76 price in BTC (per unit of forward)."""
    s = vol * math.sqrt(t)
    d1 = math.log(f / k) / s + 0.5 * s
    n = 0.5 * math.erfc(-d1 / math.sqrt(2.0))
    n2 = 0.5 * math.erfc(-(d1 - s) / math.sqrt(2.0))
    c = n - k / f * n2
    return c if call else c - (1.0 - k / f)


def _chain(rng: random.Random) -> list[tuple[str, datetime, float, bool, float]]:
    """(name, expiry, strike, call, ATM vol) for each option."""
    out = []
    base = NOW.replace(hour=8, minute=0)
    for days in EXPIRY_DAYS:
        expiry = base + timedelta(days=days)
        t = (expiry - NOW).total_seconds() / (365 * 86_400)
        width = 3.0 * 0.6 * math.sqrt(t)
        step = 500 if t < 0.02 else 1000 if t < 0.1 else 5000
        for i in range(STRIKES_PER_EXPIRY):
            z = -width + 2 * width * i / (STRIKES_PER_EXPIRY - 1)
            strike = max(step, round(SPOT * math.exp(z) / step) * step)
            atm = rng.uniform(0.45, 0.6)
            for call in (True, False):
                out.append((_name(expiry, strike, call), expiry, float(strike), call, atm))
    return out


def make_case(seed: int, n_rows: int) -> tuple[ForwardCurves, list[tuple]]:
    """A ForwardCurves with two minutes of forwards noted, and one batch of `n_rows` rows."""
    rng = random.Random(seed)
    chain = _chain(rng)
    fc = ForwardCurves(max_age_ms=10_000)
    now_ms = int(NOW.timestamp() * 1000)
    forwards: dict[datetime, list[tuple[int, float]]] = {}
    for expiry in sorted({c[1] for c in chain}):
        t = (expiry - NOW).total_seconds() / (365 * 86_400)
        drift = SPOT * (1.0 + 0.05 * t)
        name = next(c[0] for c in chain if c[1] == expiry)
        offset = rng.randrange(1000)
        points = forwards[expiry] = []
        for sec in range(-HISTORY_S, 1):
            ms = now_ms + 1000 * sec + offset
            f = round(drift * (1.0 + 0.0005 * math.sin(sec / 7.0 + offset)), 2)
            fc.note(name, ms, f)
            points.append((ms, f))
    # Near-the-money options quote most.
    weights = [math.exp(-4.0 * abs(math.log(c[2] / SPOT)) ** 2) + 0.02 for c in chain]
    recv = NOW + timedelta(seconds=1, milliseconds=30)
    rows: list[tuple] = []
    for _ in range(n_rows):
        roll = rng.random()
        ms = now_ms + rng.randrange(-50 if roll < 0.02 else 0, 1000)
        when = datetime.fromtimestamp(ms / 1000, UTC)
        if roll > 0.995:  # not an option
            name = rng.choice(("BTC-PERPETUAL", "BTC-27MAR26", "not an instrument"))
            rows.append((when, name, 95_000.0, 10.0, 95_001.0, 5.0) + (None,) * 5 + (recv,))
            continue
        name, expiry, strike, call, atm = rng.choices(chain, weights)[0]
        f = next((v for s, v in reversed(forwards[expiry]) if s <= ms), forwards[expiry][0][1])
        t = (expiry.timestamp() - ms / 1000) / (365 * 86_400)
        vol = min(1.2, max(0.4, atm + 0.25 * math.log(strike / f) ** 2 / t**0.5))
        theo = _black76(f, strike, t, vol * rng.uniform(0.98, 1.02), call)
        intrinsic = max(0.0, (1.0 - strike / f) if call else (strike / f - 1.0))
        half = max(TICK, 0.05 * (theo - intrinsic))
        bid: float | None = math.floor((theo - half) / TICK) * TICK
        ask: float | None = math.ceil((theo + half) / TICK) * TICK
        if bid is not None and (bid <= 0.0 or rng.random() < 0.03):
            bid = None
        if rng.random() < 0.03:
            ask = None
        bid = None if bid is None else round(bid, 4)
        ask = None if ask is None else round(ask, 4)
        row: tuple
        if roll < 0.005:  # from a ticker frame: its own forward and IVs
            row = (when, name, bid, 1.0, ask, 2.0, 50.0, 51.0, 50.5, theo, f, recv)
        else:
            amounts = (None if bid is None else 1.0, None if ask is None else 2.5)
            row = (when, name, bid, amounts[0], ask, amounts[1], None, None, None, None, None, recv)
        rows.append(row)
    fc.enrich(rows[:10])  # registers the chain, as the collector's first batches would
    return fc, rows


def time_per_row(fc: ForwardCurves, rows: list[tuple], repeat: int) -> float:
    """Best of `repeat` calls, microseconds per row."""
    best = math.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fc.enrich(rows)
        best = min(best, time.perf_counter() - t0)
    return best / len(rows) * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[2000, 5000, 20000])
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    for n in args.rows:
        fc, rows = make_case(1, n)
        print(f"{n:>6} rows: {time_per_row(fc, rows, args.repeat):.3f} us/row")


if __name__ == "__main__":
    main()
