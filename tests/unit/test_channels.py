"""Channel names and instrument names, against the recorded channels and instrument lists."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import orjson
import pytest

from scripts.deribit import channels as ch
from scripts.deribit.channels import (
    InstrumentName,
    channel_family,
    channel_subject,
    currency_of_instrument,
    parse_instrument_name,
)

FAMILY_OF_FILE = {
    "ws_quote": ch.QUOTE,
    "ws_ticker_option": ch.TICKER,
    "ws_ticker_perpetual": ch.TICKER,
    "ws_ticker_future": ch.TICKER,
    "ws_ticker_combo": ch.TICKER,
    "ws_incremental_ticker": ch.INCREMENTAL_TICKER,
    "ws_trades": ch.TRADES,
    "ws_trades_by_kind": ch.TRADES_BY_KIND,
    "ws_book_snapshot": ch.BOOK,
    "ws_book_change": ch.BOOK,
    "ws_book_grouped": ch.BOOK_GROUPED,
    "ws_chart_trades": ch.CHART_TRADES,
    "ws_perpetual": ch.PERPETUAL,
    "ws_markprice_options": ch.MARKPRICE_OPTIONS,
    "ws_price_index": ch.PRICE_INDEX,
    "ws_price_ranking": ch.PRICE_RANKING,
    "ws_price_statistics": ch.PRICE_STATISTICS,
    "ws_volatility_index": ch.VOLATILITY_INDEX,
    "ws_estimated_expiration_price": ch.ESTIMATED_EXPIRATION_PRICE,
    "ws_instrument_state": ch.INSTRUMENT_STATE,
    "ws_platform_state": ch.PLATFORM_STATE,
    "ws_announcements": ch.ANNOUNCEMENTS,
}


def notifications(shared_data: Path, stem: str) -> list[dict]:
    text = (shared_data / f"{stem}.jsonl").read_text()
    return [orjson.loads(ln)["params"] for ln in text.splitlines() if ln.strip()]


def test_every_recorded_channel_has_its_family(shared_data: Path) -> None:
    for stem, family in FAMILY_OF_FILE.items():
        for params in notifications(shared_data, stem):
            assert channel_family(params["channel"]) == family, params["channel"]


def test_acknowledged_channels_classify(shared_data: Path) -> None:
    text = (shared_data / "ws_subscribe_response.jsonl").read_text().splitlines()
    acked = [c for ln in text for c in orjson.loads(ln)["result"]]
    families = {c: channel_family(c) for c in acked}
    assert families["trades.ETH-30JUL21-2800-C.raw"] == ch.TRADES
    assert families["book.BTC_USDC-PERPETUAL.none.20.100ms"] == ch.BOOK_GROUPED
    assert families["book.BTC_USDC-PERPETUAL.100ms"] == ch.BOOK
    assert families["deribit_price_index.btc_usd"] == ch.PRICE_INDEX
    assert ch.UNKNOWN not in families.values()


def test_other_families() -> None:
    assert channel_family("instrument.creation.option.USDC") == ch.INSTRUMENT_CREATION
    assert channel_family("platform_state.public_methods_state") == ch.PLATFORM_PUBLIC_METHODS_STATE
    assert channel_family("user.orders.any.any.raw") == ch.UNKNOWN
    assert channel_family("") == ch.UNKNOWN


def test_builders_produce_the_recorded_channel_strings() -> None:
    assert ch.quote_channel("BTC-PERPETUAL") == "quote.BTC-PERPETUAL"
    assert ch.ticker_channel("BTC-30SEP22") == "ticker.BTC-30SEP22.100ms"
    assert ch.ticker_channel("ETH-23JUL21-2300-C", "raw") == "ticker.ETH-23JUL21-2300-C.raw"
    assert ch.trades_by_kind_channel("option", "BTC", "raw") == "trades.option.BTC.raw"
    assert ch.trades_by_kind_channel("option", "USDC") == "trades.option.USDC.100ms"
    assert ch.markprice_channel("btc_usd") == "markprice.options.btc_usd"
    assert ch.instrument_state_channel("any", "any") == "instrument.state.any.any"
    assert ch.instrument_creation_channel("option", "USDC") == "instrument.creation.option.USDC"
    built = [
        ch.quote_channel("X-PERPETUAL"),
        ch.ticker_channel("X-PERPETUAL"),
        ch.trades_by_kind_channel("future", "any"),
        ch.markprice_channel("sol_usdc"),
        ch.instrument_state_channel("option", "BTC"),
        ch.instrument_creation_channel("future", "ETH"),
    ]
    assert [channel_family(c) for c in built] == [
        ch.QUOTE,
        ch.TICKER,
        ch.TRADES_BY_KIND,
        ch.MARKPRICE_OPTIONS,
        ch.INSTRUMENT_STATE,
        ch.INSTRUMENT_CREATION,
    ]


def test_channel_subject() -> None:
    assert channel_subject("chart.trades.BTC-PERPETUAL.1") == "BTC-PERPETUAL"
    assert channel_subject("markprice.options.btc_usd") == "btc_usd"
    assert channel_subject("book.BTC-PERPETUAL.none.10.100ms") == "BTC-PERPETUAL"
    assert channel_subject("quote.BTC-PERPETUAL") == "BTC-PERPETUAL"
    assert channel_subject("perpetual.BTC-PERPETUAL.raw") == "BTC-PERPETUAL"
    assert channel_subject("deribit_volatility_index.eth_usd") == "eth_usd"
    assert channel_subject("instrument.state.option.BTC") == "option"
    assert channel_subject("platform_state") is None


def _at8(y: int, m: int, d: int) -> datetime:
    return datetime(y, m, d, 8, tzinfo=UTC)


@pytest.mark.parametrize(
    "name, expected",
    [
        (
            "BTC-27DEC24-100000-C",
            InstrumentName(
                "BTC",
                False,
                "option",
                date(2024, 12, 27),
                _at8(2024, 12, 27),
                100000.0,
                "call",
                "USD",
            ),
        ),
        (
            "BTC-5AUG23-580-P",
            InstrumentName(
                "BTC", False, "option", date(2023, 8, 5), _at8(2023, 8, 5), 580.0, "put", "USD"
            ),
        ),
        (
            "ETH-10SEP21-3350-P",
            InstrumentName(
                "ETH", False, "option", date(2021, 9, 10), _at8(2021, 9, 10), 3350.0, "put", "USD"
            ),
        ),
        (
            "XRP_USDC-30JUN23-0d625-C",
            InstrumentName(
                "XRP", True, "option", date(2023, 6, 30), _at8(2023, 6, 30), 0.625, "call", "USDC"
            ),
        ),
        (
            "MATIC_USDC-9MAR24-1d02-C",
            InstrumentName(
                "MATIC", True, "option", date(2024, 3, 9), _at8(2024, 3, 9), 1.02, "call", "USDC"
            ),
        ),
        (
            "SOL_USDC-25SEP26-118-C",
            InstrumentName(
                "SOL", True, "option", date(2026, 9, 25), _at8(2026, 9, 25), 118.0, "call", "USDC"
            ),
        ),
        (
            "BTC-27DEC24",
            InstrumentName(
                "BTC", False, "future", date(2024, 12, 27), _at8(2024, 12, 27), None, None, "USD"
            ),
        ),
        (
            "BTC-25MAR23",
            InstrumentName(
                "BTC", False, "future", date(2023, 3, 25), _at8(2023, 3, 25), None, None, "USD"
            ),
        ),
        (
            "BTC-5AUG23",
            InstrumentName(
                "BTC", False, "future", date(2023, 8, 5), _at8(2023, 8, 5), None, None, "USD"
            ),
        ),
        ("BTC-PERPETUAL", InstrumentName("BTC", False, "perpetual", None, None, None, None, "USD")),
        ("ETH-PERPETUAL", InstrumentName("ETH", False, "perpetual", None, None, None, None, "USD")),
        (
            "SOL_USDC-PERPETUAL",
            InstrumentName("SOL", True, "perpetual", None, None, None, None, "USDC"),
        ),
        (
            "BTC_USDC-PERPETUAL",
            InstrumentName("BTC", True, "perpetual", None, None, None, None, "USDC"),
        ),
        (
            "1000PEPE_USDC-PERPETUAL",
            InstrumentName("1000PEPE", True, "perpetual", None, None, None, None, "USDC"),
        ),
        (
            "NVDA_USDC-PERPETUAL",
            InstrumentName("NVDA", True, "perpetual", None, None, None, None, "USDC"),
        ),
        ("BTC_USDC", InstrumentName("BTC", True, "spot", None, None, None, None, "USDC")),
        ("BTC_USDT", InstrumentName("BTC", True, "spot", None, None, None, None, "USDT")),
        ("ETH_USDC", InstrumentName("ETH", True, "spot", None, None, None, None, "USDC")),
        (
            "BTC-FS-30SEP22_PERP",
            InstrumentName(
                "BTC", False, "combo", date(2022, 9, 30), _at8(2022, 9, 30), None, None, "USD"
            ),
        ),
        (
            "BTC-FS-22MAY26_19MAY26",
            InstrumentName(
                "BTC", False, "combo", date(2026, 5, 19), _at8(2026, 5, 19), None, None, "USD"
            ),
        ),
        (
            "BTC-CS-19MAY26-70000_75000",
            InstrumentName(
                "BTC", False, "combo", date(2026, 5, 19), _at8(2026, 5, 19), None, None, "USD"
            ),
        ),
        (
            "BTC-STRD-30SEP22-20000",
            InstrumentName(
                "BTC", False, "combo", date(2022, 9, 30), _at8(2022, 9, 30), None, None, "USD"
            ),
        ),
        (
            "BTC-CSR12-16SEP22-21000_23000",
            InstrumentName(
                "BTC", False, "combo", date(2022, 9, 16), _at8(2022, 9, 16), None, None, "USD"
            ),
        ),
        (
            "BTC-BOX-25DEC26-58000_60000",
            InstrumentName(
                "BTC", False, "combo", date(2026, 12, 25), _at8(2026, 12, 25), None, None, "USD"
            ),
        ),
    ],
)
def test_parse_instrument_name_doc_examples(name: str, expected: InstrumentName) -> None:
    assert parse_instrument_name(name) == expected


def test_recorded_instruments_agree_with_their_names(shared_data: Path) -> None:
    kinds = {
        "option": "option",
        "future": "future",
        "option_combo": "combo",
        "future_combo": "combo",
    }
    checked = 0
    for ln in (shared_data / "rest_get_instruments.jsonl").read_text().splitlines():
        for inst in orjson.loads(ln)["result"]:
            parsed = parse_instrument_name(inst["instrument_name"])
            expected_kind = kinds[inst["kind"]]
            if inst["instrument_name"].endswith("-PERPETUAL"):
                expected_kind = "perpetual"
            assert parsed.kind == expected_kind, inst["instrument_name"]
            assert parsed.base == inst["base_currency"]
            assert parsed.linear == (inst.get("settlement_currency") == "USDC")
            if expected_kind != "perpetual":
                assert parsed.expires_at is not None
                expiry_ms = int(parsed.expires_at.timestamp() * 1000)
                assert expiry_ms == inst["expiration_timestamp"], inst["instrument_name"]
            if expected_kind == "option":
                assert parsed.strike == inst["strike"]
                assert parsed.option_type == inst["option_type"]
            checked += 1
    assert checked == 2 + 2 + 398 + 16 + 6


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "btc-perpetual",
        "BTC-32JAN24",
        "BTC-29FEB23",
        "BTC-5XYZ23-100-C",
        "BTC-5AUG23-1.5-C",
        "BTC-5AUG23-100-X",
        "BTC",
        "BTC-",
        "-PERPETUAL",
        "BTC_-PERPETUAL",
        "BTC.X-PERPETUAL",
    ],
)
def test_unparsable_instrument_names_raise(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_instrument_name(bad)


def test_currency_of_instrument() -> None:
    assert currency_of_instrument("BTC-PERPETUAL") == "BTC"
    assert currency_of_instrument("SOL_USDC-25SEP26-118-C") == "SOL"
    assert currency_of_instrument("ETH-10SEP21-3350-P") == "ETH"
    assert currency_of_instrument("BTC_USDC") == "BTC"
    assert currency_of_instrument("1000PEPE_USDC-PERPETUAL") == "1000PEPE"
