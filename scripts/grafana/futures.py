"""The Perpetuals and futures dashboard: candles, funding, basis to the index, volume."""

from __future__ import annotations

from scripts.grafana.model import Json, dashboard, panel, query_variable

UID = "chaintape-futures"

# One instrument's 1-minute bars, perpetual or dated future.
BARS = """(SELECT "timestamp", open, high, low, close, volume FROM perpetuals_ohlcv
          WHERE instrument_name = '$instrument' AND resolution = '1'
            AND $__timeFilter("timestamp")
         UNION ALL
         SELECT "timestamp", open, high, low, close, volume FROM futures_ohlcv
          WHERE instrument_name = '$instrument' AND resolution = '1'
            AND $__timeFilter("timestamp")) b"""


def variables() -> list[Json]:
    return [
        query_variable(
            "currency",
            "Currency",
            "SELECT DISTINCT currency FROM instruments WHERE kind = 'future' ORDER BY 1",
        ),
        query_variable(
            "instrument",
            "Perpetual or future",
            """SELECT instrument_name
  FROM instruments
 WHERE currency = '$currency' AND kind = 'future'
   AND coalesce(expiration_timestamp, 'infinity') > $__timeFrom()
 ORDER BY settlement_period = 'perpetual' DESC, expiration_timestamp, instrument_name""",
        ),
    ]


def panels() -> list[Json]:
    return [
        panel(
            "candlestick",
            "OHLCV: $instrument",
            f"""SELECT $__timeGroupAlias("timestamp", $__interval),
       first(open, "timestamp") AS open, max(high) AS high, min(low) AS low,
       last(close, "timestamp") AS close, sum(volume) AS volume
  FROM {BARS}
 GROUP BY 1
 ORDER BY 1""",
            fmt="time_series",
            w=24,
            h=10,
            interval="1m",
            description="Candles of the chosen perpetual or future from its 1-minute bars, "
            "merged to the interval.",
            options={"mode": "candles+volume", "includeAllFields": False},
        ),
        panel(
            "timeseries",
            "Funding rate, annualised",
            """SELECT "timestamp" AS time, instrument_name AS metric,
       interest_8h * 3 * 365 * 100 AS value
  FROM funding_rates
 WHERE currency = '$currency' AND $__timeFilter("timestamp")
 ORDER BY 1""",
            fmt="time_series",
            w=12,
            unit="percent",
            description="Each perpetual's 8-hour funding rate, times 3 x 365 (percent a year).",
        ),
        panel(
            "timeseries",
            "Futures basis to the index, annualised",
            """WITH idx AS (
    SELECT $__timeGroup("timestamp", $__interval) AS t, avg(value) AS index_price
      FROM index_prices
     WHERE currency = '$currency' AND kind = 'price' AND $__timeFilter("timestamp")
     GROUP BY 1
), fut AS (
    SELECT $__timeGroup(f."timestamp", $__interval) AS t, f.instrument_name,
           last(f.close, f."timestamp") AS close
      FROM futures_ohlcv f
     WHERE f.currency = '$currency' AND f.resolution = '1' AND $__timeFilter(f."timestamp")
     GROUP BY 1, 2
)
SELECT fut.t AS time, fut.instrument_name AS metric,
       (fut.close / idx.index_price - 1) * 365 * 86400
           / extract(epoch FROM i.expiration_timestamp - fut.t) * 100 AS value
  FROM fut
  JOIN idx ON idx.t = fut.t
  JOIN instruments i ON i.instrument_name = fut.instrument_name
 WHERE i.expiration_timestamp > fut.t + interval '1 day'
 ORDER BY 1""",
            fmt="time_series",
            w=12,
            interval="1m",
            unit="percent",
            description="Per dated future: (future / index - 1) scaled to a year by the time "
            "left to expiry, percent; futures in their last day are left out.",
        ),
        panel(
            "timeseries",
            "Volume",
            """SELECT $__timeGroupAlias("timestamp", $__interval), instrument_name AS metric,
       sum(volume) AS value
  FROM (SELECT "timestamp", instrument_name, volume FROM perpetuals_ohlcv
         WHERE currency = '$currency' AND resolution = '1' AND $__timeFilter("timestamp")
        UNION ALL
        SELECT "timestamp", instrument_name, volume FROM futures_ohlcv
         WHERE currency = '$currency' AND resolution = '1' AND $__timeFilter("timestamp")) v
 GROUP BY 1, 2
 ORDER BY 1""",
            fmt="time_series",
            w=24,
            interval="1m",
            description="Traded volume per perpetual and future per interval (Deribit's bar "
            "volume: the instrument's own units).",
            options={"legend": {"displayMode": "table", "placement": "right"}},
            defaults={
                "custom": {"drawStyle": "bars", "fillOpacity": 60, "stacking": {"mode": "normal"}}
            },
        ),
    ]


def build() -> Json:
    return dashboard(
        UID,
        "chaintape: Perpetuals and futures",
        "Candles, funding, annualised basis to the index and volume.",
        panels(),
        variables(),
        time_from="now-24h",
    )
