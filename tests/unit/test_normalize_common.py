"""The shared checks: milliseconds to datetimes (fast and exact paths agree), numbers, text."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from scripts.normalize.common import (
    MAX_MS,
    MalformedMessage,
    amount,
    id_text,
    integer,
    ms_to_datetime,
    num,
    side,
    text,
    unknown_of,
)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def test_ms_to_datetime_is_exact_to_the_millisecond() -> None:
    rng = random.Random(7)
    samples = [0, 1, 999, 1550658624149, 2**32 * 1000 - 1, 2**32 * 1000, 32503708800000, MAX_MS]
    samples += [rng.randrange(0, 2**32 * 1000) for _ in range(20_000)]
    samples += [rng.randrange(2**32 * 1000, MAX_MS) for _ in range(2_000)]
    for ms in samples:
        got = ms_to_datetime(ms)
        assert got == EPOCH + timedelta(milliseconds=ms), ms
        assert got.tzinfo is UTC
    assert ms_to_datetime(1550658624149).isoformat() == "2019-02-20T10:30:24.149000+00:00"


@pytest.mark.parametrize("bad", [-1, MAX_MS + 1, 1.5e12, "1550658624149", None, True])
def test_ms_to_datetime_rejects(bad: Any) -> None:
    with pytest.raises(MalformedMessage):
        ms_to_datetime(bad)


def test_numbers() -> None:
    assert num(3, "f") == 3.0 and type(num(3, "f")) is float
    assert num(-2.5, "f") == -2.5
    for bad in (True, None, "1", float("nan"), float("inf"), [1], 10**400):
        with pytest.raises(MalformedMessage, match=r"^f: "):
            num(bad, "f")
    assert amount(0, "a") == 0.0
    with pytest.raises(MalformedMessage, match="a: negative"):
        amount(-0.1, "a")
    assert integer(5, "i") == 5
    for bad in (5.0, True, 2**63, "5"):
        with pytest.raises(MalformedMessage):
            integer(bad, "i")


def test_text_and_ids() -> None:
    assert text("BTC", "t") == "BTC"
    for bad in ("", "a\x00", 5, None):
        with pytest.raises(MalformedMessage):
            text(bad, "t")
    assert id_text(244343053, "id") == "244343053"
    assert id_text("ETH-1", "id") == "ETH-1"
    with pytest.raises(MalformedMessage):
        id_text(1.5, "id")


def test_side_empty_rules() -> None:
    assert side(0.0, 0.0, "p", "a") == (None, None)
    assert side(None, None, "p", "a") == (None, None)
    assert side(5.0, None, "p", "a") == (None, None)
    assert side(0, 3, "p", "a") == (0.0, 3.0)
    with pytest.raises(MalformedMessage, match="p: expected a number"):
        side("x", 0.0, "p", "a")  # a bad price is reported even on an empty side


def test_unknown_of() -> None:
    known = {"k": frozenset({"a", "b"})}
    assert unknown_of(known, "k", {"a": 1}) == frozenset()
    assert unknown_of(known, "k", {"a": 1, "c": 2}) == frozenset({"c"})
    assert unknown_of(known, "k", [1]) == frozenset()
    with pytest.raises(ValueError):
        unknown_of(known, "z", {})
