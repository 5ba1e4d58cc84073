"""get_funding_rate_history -> FundingRow."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from scripts.models import FundingRow
from scripts.normalize import funding
from scripts.normalize.common import MalformedMessage
from scripts.normalize.funding import parse_funding_history

RECV = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_funding_history(shared_data: Path) -> None:
    result = orjson.loads((shared_data / "rest_get_funding_rate_history.jsonl").read_text())[
        "result"
    ]
    rows = parse_funding_history(
        result, instrument_name="BTC-PERPETUAL", currency="BTC", received_at=RECV
    )
    assert len(rows) == 4
    assert rows[0] == FundingRow(
        datetime(2019, 10, 1, 1, tzinfo=UTC),
        "BTC-PERPETUAL",
        "BTC",
        -0.00009234260068476106,
        -4.739622041017375e-7,
        8222.87,
        8305.72,
        RECV,
    )
    assert [r.timestamp.hour for r in rows] == [1, 2, 3, 4]  # hourly rows
    assert rows[3].interest_1h == 8.312033064379086e-7
    assert all(funding.unknown_fields("funding", r) == frozenset() for r in result)


def test_bad_funding_rows() -> None:
    kw = {"instrument_name": "BTC-PERPETUAL", "currency": "BTC", "received_at": RECV}
    with pytest.raises(MalformedMessage, match="funding\\[1\\]: missing field 'timestamp'"):
        parse_funding_history([{"timestamp": 1}, {"interest_8h": 0.1}], **kw)  # type: ignore[arg-type]
    with pytest.raises(MalformedMessage, match="interest_8h: expected a number"):
        parse_funding_history([{"timestamp": 1, "interest_8h": "0.1"}], **kw)  # type: ignore[arg-type]
    with pytest.raises(MalformedMessage, match="expected an array"):
        parse_funding_history({"timestamp": 1}, **kw)  # type: ignore[arg-type]
    (row,) = parse_funding_history([{"timestamp": 1}], **kw)  # type: ignore[arg-type]
    assert row[3:7] == (None, None, None, None)
