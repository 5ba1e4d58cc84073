"""`public/get_instruments` elements (and `instrument.creation.*` data) -> `InstrumentRow`;
`instrument.state.*` data -> `InstrumentState`.

Fields come and go between API versions (protocol notes §5.6), so only the name and kind are
required; `instrument_type` falls back to the deprecated `future_type` that older payloads send.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from scripts.models import InstrumentRow
from scripts.normalize.common import (
    MalformedMessage,
    check_ms,
    missing,
    opt_amount,
    opt_integer,
    opt_ms_to_datetime,
    opt_num,
    opt_text,
    require_dict,
    text,
    unknown_of,
)

INSTRUMENT_FIELDS = frozenset(
    {
        "instrument_name",
        "instrument_id",
        "kind",
        "option_type",
        "strike",
        "expiration_timestamp",
        "creation_timestamp",
        "settlement_period",
        "settlement_currency",
        "base_currency",
        "quote_currency",
        "counter_currency",
        "price_index",
        "instrument_type",
        "future_type",
        "is_active",
        "state",
        "tick_size",
        "tick_size_steps",
        "contract_size",
        "min_trade_amount",
        "maker_commission",
        "taker_commission",
        "block_trade_commission",
        "block_trade_min_trade_amount",
        "block_trade_tick_size",
        "max_leverage",
        "max_liquidation_commission",
        "max_non_default_leverage",
        "rfq",
        "underlying_type",
    }
)
INSTRUMENT_STATE_FIELDS = frozenset({"instrument_name", "state", "timestamp"})
KNOWN_FIELDS: dict[str, frozenset[str]] = {
    "instrument": INSTRUMENT_FIELDS,
    "instrument_state": INSTRUMENT_STATE_FIELDS,
}
_OPTION_TYPES = frozenset({"call", "put"})


def unknown_fields(kind: str, data: Any) -> frozenset[str]:
    """Fields of one `kind` ("instrument", "instrument_state") this module does not know."""
    return unknown_of(KNOWN_FIELDS, kind, data)


class InstrumentState(NamedTuple):
    """An `instrument.state.{kind}.{currency}` notification: created, started, settled, ..."""

    instrument_name: str
    state: str
    timestamp_ms: int


def parse_instrument(data: Any, *, currency: str, seen_at: datetime) -> InstrumentRow:
    """One instrument object -> `InstrumentRow`; `currency` is chaintape's code (BTC, SOL)."""
    d = require_dict(data, "instrument")
    try:
        name = d["instrument_name"]
        kind = d["kind"]
    except KeyError as e:
        raise missing("instrument", e) from None
    get = d.get
    option_type = opt_text(get("option_type"), "option_type")
    if option_type is not None and option_type not in _OPTION_TYPES:
        raise MalformedMessage("instrument: option_type is not call/put")
    is_active = get("is_active", True)
    if type(is_active) is not bool:
        raise MalformedMessage("instrument: is_active is not a boolean")
    instrument_type = get("instrument_type")
    if instrument_type is None:
        instrument_type = get("future_type")
    return InstrumentRow(
        text(name, "instrument_name"),
        currency,
        text(kind, "kind"),
        option_type,
        opt_num(get("strike"), "strike"),
        opt_ms_to_datetime(get("expiration_timestamp"), "expiration_timestamp"),
        opt_ms_to_datetime(get("creation_timestamp"), "creation_timestamp"),
        opt_amount(get("contract_size"), "contract_size"),
        opt_amount(get("tick_size"), "tick_size"),
        opt_amount(get("min_trade_amount"), "min_trade_amount"),
        opt_text(get("settlement_currency"), "settlement_currency"),
        opt_text(get("base_currency"), "base_currency"),
        opt_text(get("quote_currency"), "quote_currency"),
        opt_text(get("counter_currency"), "counter_currency"),
        opt_text(get("settlement_period"), "settlement_period"),
        opt_text(instrument_type, "instrument_type"),
        opt_text(get("price_index"), "price_index"),
        opt_integer(get("instrument_id"), "instrument_id"),
        is_active,
        seen_at,
    )


def parse_instrument_state(data: Any) -> InstrumentState:
    """An `instrument.state.{kind}.{currency}` notification's data -> `InstrumentState`."""
    d = require_dict(data, "instrument_state")
    try:
        name = d["instrument_name"]
        state = d["state"]
        ts = d["timestamp"]
    except KeyError as e:
        raise missing("instrument_state", e) from None
    return InstrumentState(text(name, "instrument_name"), text(state, "state"), check_ms(ts))
