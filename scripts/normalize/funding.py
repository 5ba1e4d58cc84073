"""`public/get_funding_rate_history` -> `FundingRow`s (hourly rows, §7 of the protocol notes)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from scripts.models import FundingRow
from scripts.normalize.common import (
    MalformedMessage,
    missing,
    ms_to_datetime,
    opt_num,
    require_list,
    unknown_of,
)

FUNDING_FIELDS = frozenset(
    {"timestamp", "index_price", "prev_index_price", "interest_8h", "interest_1h"}
)
KNOWN_FIELDS: dict[str, frozenset[str]] = {"funding": FUNDING_FIELDS}


def unknown_fields(kind: str, data: Any) -> frozenset[str]:
    """Fields of one funding-history element (kind "funding") this module does not know."""
    return unknown_of(KNOWN_FIELDS, kind, data)


def parse_funding_history(
    result: Any, *, instrument_name: str, currency: str, received_at: datetime
) -> list[FundingRow]:
    """A `get_funding_rate_history` result (an array) -> one `FundingRow` per hour."""
    out: list[FundingRow] = []
    for i, item in enumerate(require_list(result, "funding")):
        if type(item) is not dict:
            raise MalformedMessage(f"funding[{i}]: expected an object")
        try:
            ts = item["timestamp"]
        except KeyError as e:
            raise missing(f"funding[{i}]", e) from None
        get = item.get
        out.append(
            FundingRow(
                ms_to_datetime(ts),
                instrument_name,
                currency,
                opt_num(get("interest_8h"), "interest_8h"),
                opt_num(get("interest_1h"), "interest_1h"),
                opt_num(get("index_price"), "index_price"),
                opt_num(get("prev_index_price"), "prev_index_price"),
                received_at,
            )
        )
    return out
