"""The research modules' parts without I/O: day planning, names, Tardis data types, types."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pyarrow as pa
import pytest
from psycopg import sql

from scripts.export import parse_time
from scripts.research.catalog import (
    CatalogError,
    Relation,
    arrow_type,
    known_names,
    registry_name,
)
from scripts.research.export_days import plan_days
from scripts.research.helpers import _expiry_code
from scripts.research.stream import binary_query, to_schema
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


def _relation(sql_types: tuple[str, ...]) -> Relation:
    columns = tuple(f"c{i}" for i in range(len(sql_types)))
    return Relation("t", columns, sql_types, None, None, False, False)


def test_columns_the_driver_cannot_decode_are_read_as_text() -> None:
    query = sql.SQL("SELECT * FROM t")
    plain = _relation(("timestamp with time zone", "double precision[]", "text", "bigint"))
    assert binary_query(plain, query) is query
    mixed = _relation(("bigint", "numeric", "jsonb"))
    text = binary_query(mixed, query).as_string()
    assert text == (
        'SELECT "c0", "c1"::text AS "c1", "c2"::text AS "c2" FROM (SELECT * FROM t) AS q'
    )


def test_batches_take_the_relation_schema_exactly() -> None:
    rel = _relation(("timestamp with time zone", "double precision[]", "smallint"))
    driver_types = pa.schema(
        [
            pa.field(
                "c0", pa.timestamp("us", tz="UTC"), metadata={"POSTGRESQL:type": "timestamptz"}
            ),
            pa.field("c1", pa.list_(pa.field("", pa.float64()))),  # another child name
            pa.field("c2", pa.int16()),
        ]
    )
    batch = pa.RecordBatch.from_pylist(
        [{"c0": datetime(2026, 6, 1, tzinfo=UTC), "c1": [1.5, -0.0], "c2": 3}],
        schema=driver_types,
    )
    out = to_schema(batch, rel.schema)
    assert out.schema.equals(rel.schema, check_metadata=True)
    assert out.to_pylist() == batch.to_pylist()


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
