"""The macro expander against Grafana 12's PostgreSQL datasource (macros.go, sqleng
Interpolate, SqlDatasource.interpolateVariable): the SQL Grafana would send."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from scripts.grafana.macros import MacroError, QueryContext, expand, format_interval

END = datetime(2026, 6, 1, 6, 0, 0, 500000, tzinfo=UTC)
CTX = QueryContext(
    END - timedelta(hours=6),
    END,
    {"currency": "BTC", "expiry": ["2026-06-05 08:00", "O'Brien"], "one": "it's"},
    frozenset({"expiry"}),
)


def test_time_filter_from_and_to_are_rfc3339_utc() -> None:
    assert expand("WHERE $__timeFilter(ts)", CTX) == (
        "WHERE ts BETWEEN '2026-06-01T00:00:00.5Z' AND '2026-06-01T06:00:00.5Z'"
    )
    assert expand("$__timeFrom() $__timeTo()", CTX) == (
        "'2026-06-01T00:00:00.5Z' '2026-06-01T06:00:00.5Z'"
    )


def test_time_group_is_time_bucket_and_a_comma_after_it_adds_the_alias() -> None:
    assert expand("SELECT $__timeGroup(ts, '5m') AS t", CTX) == (
        "SELECT time_bucket('300.000s',ts) AS t"
    )
    assert expand("SELECT $__timeGroup(ts, 5m), v", CTX) == (
        "SELECT time_bucket('300.000s',ts) AS \"time\", v"
    )
    assert expand("SELECT $__timeGroupAlias(ts, $__interval)", CTX, min_interval="1m") == (
        "SELECT time_bucket('60.000s',ts) AS \"time\""
    )


def test_interval_is_the_range_over_max_data_points_rounded_and_at_least_the_minimum() -> None:
    # 6 h / 1000 points = 21.6 s -> 20 s; with a 1-minute floor -> 1m.
    assert expand("$__interval $__interval_ms", CTX) == "20s 20000"
    assert expand("$__interval", CTX, min_interval="1m") == "1m"
    month = QueryContext(END - timedelta(days=30), END)
    assert expand("$__interval", month) == "30m"  # 43.2 min rounds down to 30m
    assert format_interval(0.5) == "500ms" and format_interval(86400) == "1d"


def test_variables_single_raw_and_multi_quoted() -> None:
    sql = "c = '$currency' AND e IN ($expiry) AND o = '${one}'"
    assert expand(sql, CTX) == (
        "c = 'BTC' AND e IN ('2026-06-05 08:00','O''Brien') AND o = 'it''s'"
    )
    repeated = QueryContext(CTX.time_from, CTX.time_to, {"expiry": "x"}, frozenset({"expiry"}))
    assert expand("IN ($expiry)", repeated) == "IN ('x')"


def test_unknown_macros_and_missing_variables_are_errors() -> None:
    with pytest.raises(MacroError, match="unknown macro"):
        expand("$__nope(x)", CTX)
    with pytest.raises(MacroError, match="no value"):
        expand("'$missing'", CTX)
