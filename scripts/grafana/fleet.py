"""The Fleet health dashboard: is everything being recorded, and how big is it."""

from __future__ import annotations

from scripts.grafana.model import STALE_AFTER_S, Json, dashboard, panel, red_above
from scripts.grafana.sql import long_range, short_range

UID = "chaintape-fleet"
# Tables polled hourly get an hour more before they count as stale (as scripts.verify does).
HOURLY_TABLES = "('options_greeks', 'funding_rates')"


def _override(name: str, props: list[Json]) -> Json:
    return {"matcher": {"id": "byName", "options": name}, "properties": props}


def _red_cells(name: str, value: float, unit: str | None = None) -> Json:
    props: list[Json] = [
        {"id": "thresholds", "value": red_above(value)},
        {"id": "custom.cellOptions", "value": {"type": "color-background"}},
    ]
    if unit:
        props.append({"id": "unit", "value": unit})
    return _override(name, props)


def _rows_per_minute() -> str:
    agg = []
    for kind, column in (("option_quotes", "quotes"), ("option_trades", "trades")):
        for suffix, cond, bucket_ms in (
            ("1m", short_range(), 60_000),
            ("1h", long_range(), 3_600_000),
        ):
            agg.append(
                f"""SELECT $__timeGroupAlias(bucket, $__interval), currency || ' {kind}' AS metric,
       sum({column}) * 60000.0 / greatest($__interval_ms, {bucket_ms}) AS value
  FROM {kind}_{suffix}
 WHERE $__timeFilter(bucket) AND {cond}
 GROUP BY 1, 2"""
            )
    for table, currency in (
        ("option_orderbook_depth", "currency"),
        ("options_greeks", "currency"),
        ("index_prices", "currency"),
        ("funding_rates", "currency"),
    ):
        agg.append(
            f"""SELECT $__timeGroupAlias("timestamp", $__interval), {currency} || ' {table}',
       count(*) * 60000.0 / $__interval_ms
  FROM {table}
 WHERE $__timeFilter("timestamp")
 GROUP BY 1, 2"""
        )
    return "\nUNION ALL\n".join(agg) + "\n ORDER BY 1"


def panels() -> list[Json]:
    return [
        panel(
            "table",
            "Newest row per table",
            f"""SELECT table_name AS "table", currency, newest,
       extract(epoch FROM now() - newest) AS age,
       extract(epoch FROM now() - newest)
           / CASE WHEN table_name IN {HOURLY_TABLES} THEN {STALE_AFTER_S + 3600}
                  ELSE {STALE_AFTER_S} END AS "age / limit"
  FROM chaintape_newest_rows()
 ORDER BY 5 DESC NULLS FIRST""",
            w=12,
            h=10,
            description=f"Newest stored row per table and currency. Red: older than "
            f"{STALE_AFTER_S} s (an hour more for the hourly greeks and funding), or none.",
            overrides=[
                _override("age", [{"id": "unit", "value": "s"}]),
                _red_cells("age / limit", 1.0),
            ],
        ),
        panel(
            "table",
            "Collectors",
            """SELECT collector_name AS collector, currency, state, connected,
       extract(epoch FROM now() - last_message_at) AS "last message",
       extract(epoch FROM now() - last_flush_at) AS "last flush",
       messages_total / nullif(extract(epoch FROM updated_at - started_at), 0)
           AS "messages/s",
       reconnects, rejected_total AS rejected, gaps_total AS gaps, spool_bytes AS spool,
       updated_at
  FROM collector_status
 ORDER BY 1""",
            w=12,
            h=10,
            description="One row per collector from its status row. Red: no message or no "
            f"flush for {STALE_AFTER_S} s. Messages/s is the average since the collector started.",
            overrides=[
                _red_cells("last message", STALE_AFTER_S, "s"),
                _red_cells("last flush", STALE_AFTER_S, "s"),
                _override("spool", [{"id": "unit", "value": "bytes"}]),
            ],
        ),
        panel(
            "table",
            "Last backup and restore test",
            """SELECT CASE kind WHEN 'backup' THEN 'backup' ELSE 'restore test' END AS job,
       finished_at AS finished,
       extract(epoch FROM now() - finished_at) AS age,
       extract(epoch FROM now() - finished_at)
           / CASE kind WHEN 'backup' THEN 93600 ELSE 691200 END AS "age / limit",
       CASE WHEN success THEN 'ok' ELSE 'FAILED' END AS result,
       size_bytes AS size, duration_s AS duration, file_name AS file, error
  FROM (SELECT DISTINCT ON (kind) * FROM backups ORDER BY kind, finished_at DESC) AS last
 ORDER BY kind""",
            w=24,
            h=5,
            description="The newest backup (nightly pg_dump) and restore test (weekly: the newest "
            "dump restored into a scratch database and compared table by table). Red: failed, or "
            "older than 26 h (backup) / 8 days (restore test), as python -m scripts.check.",
            overrides=[
                _override("age", [{"id": "unit", "value": "s"}]),
                _red_cells("age / limit", 1.0),
                _override("size", [{"id": "unit", "value": "bytes"}]),
                _override("duration", [{"id": "unit", "value": "s"}]),
                _override(
                    "result",
                    [
                        {
                            "id": "mappings",
                            "value": [
                                {
                                    "type": "value",
                                    "options": {
                                        "ok": {"color": "green", "index": 0},
                                        "FAILED": {"color": "red", "index": 1},
                                    },
                                }
                            ],
                        },
                        {"id": "custom.cellOptions", "value": {"type": "color-background"}},
                    ],
                ),
            ],
        ),
        panel(
            "timeseries",
            "Rows per minute",
            _rows_per_minute(),
            fmt="time_series",
            w=24,
            h=9,
            interval="1m",
            description="Rows stored per minute per table and currency (quotes and trades from "
            "their 1-minute summaries up to 2 days, hourly beyond).",
        ),
        panel(
            "bargauge",
            "Messages per second",
            """SELECT collector_name AS collector,
       messages_total / nullif(extract(epoch FROM updated_at - started_at), 0) AS "messages/s"
  FROM collector_status
 ORDER BY 1""",
            w=8,
            description="Exchange messages per second per collector, averaged since its start.",
            options={"reduceOptions": {"values": True, "calcs": [], "fields": ""}},
        ),
        panel(
            "bargauge",
            "Reconnects",
            """SELECT collector_name AS collector, reconnects
  FROM collector_status
 ORDER BY 1""",
            w=8,
            description="Reconnects of each collector since its start.",
            options={"reduceOptions": {"values": True, "calcs": [], "fields": ""}},
        ),
        panel(
            "bargauge",
            "Spool",
            """SELECT collector_name AS collector, spool_bytes AS spool
  FROM collector_status
 ORDER BY 1""",
            w=8,
            unit="bytes",
            description="Bytes waiting in each collector's disk spool for the database: above "
            "zero while the database is away.",
            options={"reduceOptions": {"values": True, "calcs": [], "fields": ""}},
        ),
        panel(
            "stat",
            "Gaps",
            """SELECT count(*) FILTER (WHERE NOT coalesce(repaired, false)) AS "open",
       count(*) FILTER (WHERE repaired) AS repaired
  FROM data_gaps
 WHERE gap_start <= $__timeTo() AND coalesce(gap_end, 'infinity') >= $__timeFrom()""",
            w=6,
            description="Gaps overlapping the range: open (not repaired) and repaired.",
            defaults={"thresholds": red_above(1)},
            overrides=[
                _override(
                    "repaired", [{"id": "color", "value": {"mode": "fixed", "fixedColor": "green"}}]
                )
            ],
        ),
        panel(
            "table",
            "Recent gaps",
            """SELECT gap_start, gap_end, table_name AS "table", currency, scope, reason,
       repaired, detected_at
  FROM data_gaps
 WHERE gap_start <= $__timeTo() AND coalesce(gap_end, 'infinity') >= $__timeFrom()
 ORDER BY gap_start DESC
 LIMIT 200""",
            w=18,
            description="What was not recorded, or was repaired, in the range.",
        ),
        panel(
            "timeseries",
            "Rejected messages",
            """SELECT $__timeGroupAlias(received_at, $__interval),
       coalesce(collector, '?') || ': ' || coalesce(split_part(reason, ':', 1), '?') AS metric,
       count(*) AS value
  FROM rejected_messages
 WHERE $__timeFilter(received_at)
 GROUP BY 1, 2
 ORDER BY 1""",
            fmt="time_series",
            w=12,
            interval="1m",
            description="Bad input kept in rejected_messages, per collector and reason.",
            defaults={"custom": {"drawStyle": "bars"}},
        ),
        panel(
            "table",
            "Database size per table",
            """SELECT table_name AS "table", total_bytes AS size,
       before_compression_bytes AS "before compression",
       after_compression_bytes AS "after compression",
       before_compression_bytes::float8 / nullif(after_compression_bytes, 0)
           AS "compression ratio"
  FROM chaintape_table_sizes()
 ORDER BY total_bytes DESC""",
            w=12,
            description="Size on disk of every hypertable and continuous aggregate, and the "
            "compression ratio of its compressed chunks (full TimescaleDB edition only).",
            overrides=[
                _override("size", [{"id": "unit", "value": "bytes"}]),
                _override("before compression", [{"id": "unit", "value": "bytes"}]),
                _override("after compression", [{"id": "unit", "value": "bytes"}]),
            ],
        ),
    ]


def build() -> Json:
    return dashboard(
        UID,
        "chaintape: Fleet health",
        "Is every table fresh, is every collector healthy, what was lost, how big is it.",
        panels(),
        [],
        time_from="now-6h",
    )
