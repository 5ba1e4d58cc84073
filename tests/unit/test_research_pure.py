"""The research modules' parts without I/O: day planning, names, Tardis data types, types."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pyarrow as pa
import pytest

from scripts.export import parse_time
from scripts.research.catalog import CatalogError, arrow_type, known_names, registry_name
from scripts.research.export_days import plan_days
from scripts.research.helpers import _expiry_code
from scripts.research.stream import to_lists
from scripts.research.tardis import OPTIONS_CHAIN_HEADER, data_type, file_name


def test_days_are_utc_days_clipped_to_the_range() -> None:
    plans = plan_days(datetime(2026, 6, 1, 12, tzinfo=UTC), datetime(2026, 6, 3, 6, tzinfo=UTC))
    assert [p.label for p in plans] == ["2026-06-01", "2026-06-02", "2026-06-03"]
    assert plans[0].start == datetime(2026, 6, 1, 12, tzinfo=UTC)
    assert plans[0].end == datetime(2026, 6, 2, tzinfo=UTC)
    assert plans[-1].end == datetime(2026, 6, 3, 6, tzinfo=UTC)


def test_times_without_a_zone_are_utc_and_other_zones_are_converted() -> None:
    assert parse_time("2026-06-01") == datetime(2026, 6, 1, tzinfo=UTC)
    assert parse_time("2026-06-01T02:00+02:00") == datetime(2026, 6, 1, tzinfo=UTC)
    assert parse_time("2026-06-01T00:00Z") == datetime(2026, 6, 1, tzinfo=UTC)
    with pytest.raises(ValueError):
        parse_time("yesterday")


def test_names_come_from_the_registry_and_the_views() -> None:
    assert registry_name("btc_option_quotes") and registry_name("sol_option_trades")
    assert registry_name("option_orderbook_depth") and registry_name("funding_rates")
    assert not registry_name("collector_status") and not registry_name("btc_quotes")
    assert "eth_option_quotes" in known_names(("eth",))


def test_sql_types_map_to_exact_arrow_types() -> None:
    assert arrow_type("timestamp with time zone") == pa.timestamp("us", tz="UTC")
    assert arrow_type("double precision") == pa.float64()
    assert arrow_type("smallint") == pa.int16()
    assert arrow_type("double precision[]") == pa.list_(pa.float64())


def test_postgres_float_arrays_become_lists() -> None:
    text = pa.array(["{1.5,2,-0.25}", "{}", None, "{1e-07}"])
    assert to_lists(text).to_pylist() == [[1.5, 2.0, -0.25], [], None, [1e-07]]


def test_tardis_data_types_and_file_names() -> None:
    assert data_type("option_quotes") == "quotes"
    assert data_type("btc_option_trades") == "trades"
    assert data_type("options_chain") == "options_chain"
    with pytest.raises(CatalogError, match="1-minute bars only"):
        data_type("futures_ohlcv")
    assert (
        file_name("options_chain", "2026-06-01")
        == "deribit_options_chain_2026-06-01_OPTIONS.csv.gz"
    )
    assert OPTIONS_CHAIN_HEADER.count(",") == 23


def test_expiry_codes_match_deribit_names() -> None:
    assert _expiry_code("26JUN26") == "26JUN26"
    assert _expiry_code(date(2026, 6, 5)) == "5JUN26"
    assert _expiry_code("2026-06-05") == "5JUN26"
