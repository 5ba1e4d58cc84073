"""Order books of the fake market: a few levels a side around the mark, changed as
`[action, price, amount]` entries exactly like `book.{instrument}.{interval}` (§6.5, §9).

Sides are lists of `[price, amount]`, best first. All functions mutate the instrument's sides
and return the change entries they made.
"""

from __future__ import annotations

import random
from typing import Any

from tests.fake_deribit.instruments import Instrument
from tests.fake_deribit.pricing import ceil_to, floor_to

LEVELS = 5


def level_amount(inst: Instrument, rng: random.Random) -> float:
    """A resting size: a whole number of minimum amounts, heavier on perpetuals."""
    lots = (1 + int(rng.random() * 400)) if inst.kind == "future" else (1 + int(rng.random() * 60))
    return round(inst.min_amount * lots, 8)


def half_spread(inst: Instrument, fair: float) -> float:
    if inst.kind == "option":
        return max(inst.tick_at(fair), fair * 0.02)
    return max(inst.tick * 0.5, fair * 0.00005)


def target_prices(inst: Instrument, fair: float, is_bid: bool) -> list[float]:
    """The price levels a side should hold around `fair`, never crossing the other side
    (which may still sit around an older mark). Bids may be empty when the option is worthless."""
    hs = half_spread(inst, fair)
    digits = inst.tick_digits
    out: list[float] = []
    if is_bid:
        p = fair - hs
        if inst.asks:
            p = min(p, inst.asks[0][0] - inst.tick_at(inst.asks[0][0]))
        for _ in range(LEVELS):
            tick = inst.tick_at(p)
            price = floor_to(p, tick, digits)
            if price < tick:
                break
            out.append(price)
            p = price - tick * 2
    else:
        p = max(fair + hs, inst.tick)
        if inst.bids:
            p = max(p, inst.bids[0][0] + inst.tick_at(inst.bids[0][0]))
        for _ in range(LEVELS):
            tick = inst.tick_at(p)
            price = ceil_to(p, tick, digits)
            out.append(price)
            p = price + tick * 2
    return out


def recenter(
    inst: Instrument, fair: float, is_bid: bool, rng: random.Random, partial: bool
) -> list[list[Any]]:
    """Move one side to its target levels; `partial` moves only the level nearest the top."""
    side = inst.bids if is_bid else inst.asks
    targets = target_prices(inst, fair, is_bid)
    if partial and side and targets:
        # Replace the worst off-target level with the best missing target.
        tset = set(targets)
        have = {lv[0] for lv in side}
        missing = [p for p in targets if p not in have]
        stale = [lv for lv in side if lv[0] not in tset]
        if not missing and not stale:
            return []
        changes: list[list[Any]] = []
        if stale:
            lv = stale[0]
            side.remove(lv)
            changes.append(["delete", lv[0], 0.0])
        if missing:
            amount = level_amount(inst, rng)
            side.append([missing[0], amount])
            changes.append(["new", missing[0], amount])
        side.sort(key=_price, reverse=is_bid)
        return changes
    tset = set(targets)
    changes = []
    kept = []
    for lv in side:
        if lv[0] in tset:
            kept.append(lv)
        else:
            changes.append(["delete", lv[0], 0.0])
    have = {lv[0] for lv in kept}
    for p in targets:
        if p not in have:
            amount = level_amount(inst, rng)
            kept.append([p, amount])
            changes.append(["new", p, amount])
    kept.sort(key=_price, reverse=is_bid)
    side[:] = kept
    return changes


def _price(level: list[float]) -> float:
    return level[0]


def resize(inst: Instrument, is_bid: bool, rng: random.Random) -> list[list[Any]]:
    """Change the size resting at one level."""
    side = inst.bids if is_bid else inst.asks
    if not side:
        return []
    lv = side[int(rng.random() * len(side))]
    amount = level_amount(inst, rng)
    if amount == lv[1]:
        amount = round(amount + inst.min_amount, 8)
    lv[1] = amount
    return [["change", lv[0], amount]]


def take(inst: Instrument, is_buy: bool, amount: float) -> tuple[float, float, list[list[Any]]]:
    """A taker order of `amount` against the best level: (price, filled, change entries)."""
    side = inst.asks if is_buy else inst.bids
    lv = side[0]
    filled = min(amount, lv[1])
    left = round(lv[1] - filled, 8)
    if left <= 0:
        side.pop(0)
        return lv[0], filled, [["delete", lv[0], 0.0]]
    lv[1] = left
    return lv[0], filled, [["change", lv[0], left]]


def top(inst: Instrument) -> tuple[float, float, float, float]:
    bids = inst.bids
    asks = inst.asks
    if bids:
        if asks:
            return (bids[0][0], bids[0][1], asks[0][0], asks[0][1])
        return (bids[0][0], bids[0][1], 0.0, 0.0)
    if asks:
        return (0.0, 0.0, asks[0][0], asks[0][1])
    return (0.0, 0.0, 0.0, 0.0)


def snapshot_payload(inst: Instrument) -> dict[str, Any]:
    return {
        "type": "snapshot",
        "timestamp": inst.book_ts,
        "instrument_name": inst.name,
        "change_id": inst.change_id,
        "bids": [["new", p, a] for p, a in inst.bids],
        "asks": [["new", p, a] for p, a in inst.asks],
    }


def quote_payload(inst: Instrument, ts: int) -> dict[str, Any]:
    bid_p, bid_a, ask_p, ask_a = top(inst)
    return {
        "timestamp": ts,
        "instrument_name": inst.name,
        "best_bid_price": bid_p,
        "best_bid_amount": bid_a,
        "best_ask_price": ask_p,
        "best_ask_amount": ask_a,
    }
