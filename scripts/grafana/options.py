"""The Options dashboard: what a trader looks at for one currency's option chain."""

from __future__ import annotations

from scripts.grafana.model import Json, dashboard, panel, query_variable
from scripts.grafana.sql import INDEX_AT_END, expiry_of, latest_quote, long_range, short_range

UID = "chaintape-options"

LIVE_OPTIONS = f"""i.currency = '$currency' AND i.kind = 'option'
   AND {expiry_of()} IN ($expiry)"""


def variables() -> list[Json]:
    return [
        query_variable(
            "currency",
            "Currency",
            "SELECT DISTINCT currency FROM instruments WHERE kind = 'option' ORDER BY 1",
        ),
        query_variable(
            "expiry",
            "Expiry (UTC)",  # those live at the end of the range
            f"""SELECT DISTINCT {expiry_of("instruments")}
  FROM instruments
 WHERE currency = '$currency' AND kind = 'option'
   AND expiration_timestamp > $__timeTo()
   AND coalesce(creation_timestamp, '-infinity') <= $__timeTo()
 ORDER BY 1""",
            multi=True,
        ),
        query_variable(
            "instrument",
            "Instrument",
            f"""SELECT i.instrument_name
  FROM instruments i
 WHERE {LIVE_OPTIONS}
 ORDER BY i.expiration_timestamp, i.strike, i.option_type""",
        ),
    ]


def panels() -> list[Json]:
    iv = {"unit": "percent"}
    return [
        panel(
            "xychart",
            "IV smile $expiry",
            f"""SELECT i.strike, q.mark_iv AS "mark IV", q.bid_iv AS "bid IV", q.ask_iv AS "ask IV"
  FROM instruments i
  CROSS JOIN {latest_quote("q.mark_iv, q.bid_iv, q.ask_iv")}
 WHERE {LIVE_OPTIONS}
   -- out-of-the-money side: puts below the index, calls at and above it
   AND (i.option_type = 'call') = (i.strike >= {INDEX_AT_END})
 ORDER BY i.strike""",
            w=8,
            description="Newest mark, bid and ask IV by strike (out-of-the-money options) at the "
            "end of the range, one chart per selected expiry. Bid/ask IV may be empty.",
            repeat="expiry",
            defaults=iv,
            options={"seriesMapping": "auto", "mapping": "auto"},
        ),
        panel(
            "xychart",
            "ATM IV term structure",
            f"""WITH latest AS (
    SELECT i.strike, i.expiration_timestamp, q.mark_iv
      FROM instruments i
      CROSS JOIN {latest_quote("q.mark_iv")}
     WHERE i.currency = '$currency' AND i.kind = 'option'
       AND i.expiration_timestamp > $__timeTo()
       AND coalesce(i.creation_timestamp, '-infinity') <= $__timeTo()
)
SELECT DISTINCT ON (expiration_timestamp)
       extract(epoch FROM expiration_timestamp - $__timeTo()::timestamptz) / 86400
           AS "days to expiry",
       mark_iv AS "ATM IV"
  FROM latest
 ORDER BY expiration_timestamp, abs(strike - {INDEX_AT_END})""",
            w=8,
            description="Mark IV of the strike nearest the price index, per live expiry, by days "
            "to expiry at the end of the range.",
            defaults=iv,
            options={"seriesMapping": "auto", "mapping": "auto"},
        ),
        panel(
            "timeseries",
            "25-delta risk reversal (call IV - put IV)",
            f"""SELECT time, expiry AS metric, rr AS value FROM (
    SELECT $__timeGroup(g."timestamp", $__interval) AS time, {expiry_of()} AS expiry,
           (array_agg(g.mark_iv ORDER BY abs(g.delta - 0.25))
                FILTER (WHERE i.option_type = 'call'))[1]
         - (array_agg(g.mark_iv ORDER BY abs(g.delta + 0.25))
                FILTER (WHERE i.option_type = 'put'))[1] AS rr
      FROM options_greeks g
      JOIN instruments i ON i.instrument_name = g.instrument_name
     WHERE g.currency = '$currency' AND $__timeFilter(g."timestamp") AND {LIVE_OPTIONS}
     GROUP BY 1, 2
) s
 WHERE rr IS NOT NULL
 ORDER BY 1""",
            fmt="time_series",
            w=8,
            interval="1h",
            description="Per expiry: mark IV of the call whose delta is nearest 0.25 minus that "
            "of the put nearest -0.25, from the greeks poll (hourly by default).",
            defaults=iv,
        ),
        panel(
            "timeseries",
            "DVOL",
            """SELECT $__timeGroupAlias("timestamp", $__interval), avg(value) AS "DVOL"
  FROM index_prices
 WHERE currency = '$currency' AND kind = 'dvol' AND $__timeFilter("timestamp")
 GROUP BY 1
 ORDER BY 1""",
            fmt="time_series",
            w=8,
            interval="1m",
            description="Deribit's volatility index for the currency.",
        ),
        panel(
            "timeseries",
            "Quotes and spread: $instrument",
            """SELECT $__timeGroupAlias(bucket, $__interval),
       last(best_bid_price, bucket) AS bid,
       last(best_ask_price, bucket) AS ask,
       last(mark_price, bucket) AS mark,
       avg(avg_spread) AS "mean spread"
  FROM option_quotes_1m
 WHERE currency = '$currency' AND instrument_name = '$instrument' AND $__timeFilter(bucket)
 GROUP BY 1
 ORDER BY 1""",
            fmt="time_series",
            w=8,
            interval="1m",
            description="Best bid, best ask and mark price (in the settlement currency) and the "
            "mean bid-ask spread of the chosen option, per interval.",
        ),
        panel(
            "timeseries",
            "IV: $instrument",
            """SELECT $__timeGroupAlias(bucket, $__interval),
       last(mark_iv, bucket) AS "mark IV",
       last(bid_iv, bucket) AS "bid IV",
       last(ask_iv, bucket) AS "ask IV"
  FROM option_quotes_1m
 WHERE currency = '$currency' AND instrument_name = '$instrument' AND $__timeFilter(bucket)
 GROUP BY 1
 ORDER BY 1""",
            fmt="time_series",
            w=8,
            interval="1m",
            description="Mark, bid and ask IV of the chosen option (bid/ask IV may be empty).",
            defaults=iv,
        ),
        panel(
            "table",
            "Trade tape",
            """SELECT t."timestamp" AS time, t.instrument_name AS instrument, t.direction,
       t.price, t.amount, t.iv AS "IV", t.index_price AS "index",
       t.block_trade_id IS NOT NULL AS block, t.liquidation
  FROM option_trades t
 WHERE t.currency = '$currency' AND $__timeFilter(t."timestamp")
 ORDER BY t."timestamp" DESC
 LIMIT 500""",
            w=16,
            h=10,
            description="The newest 500 option trades in the range, with the trade's IV and "
            "whether it was part of a block trade.",
        ),
        panel(
            "barchart",
            "Open interest by strike",
            f"""SELECT i.strike::text AS strike,
       sum(g.open_interest) FILTER (WHERE i.option_type = 'call') AS calls,
       sum(g.open_interest) FILTER (WHERE i.option_type = 'put') AS puts
  FROM instruments i
  CROSS JOIN LATERAL (
    SELECT g.open_interest
      FROM options_greeks g
     WHERE g.instrument_name = i.instrument_name
       AND g."timestamp" BETWEEN $__timeFrom() AND $__timeTo()
     ORDER BY g."timestamp" DESC
     LIMIT 1) g
 WHERE {LIVE_OPTIONS}
 GROUP BY i.strike
 ORDER BY i.strike""",
            w=8,
            h=10,
            description="Newest open interest (contracts) per strike of the selected expiries, "
            "calls and puts side by side.",
            options={"xField": "strike", "stacking": "none"},
        ),
        panel(
            "timeseries",
            "Put/call volume ratio",
            f"""SELECT $__timeGroupAlias(bucket, $__interval),
       sum(volume) FILTER (WHERE instrument_name LIKE '%-P')
           / nullif(sum(volume) FILTER (WHERE instrument_name LIKE '%-C'), 0) AS "put/call"
  FROM option_trades_1m
 WHERE currency = '$currency' AND $__timeFilter(bucket) AND {short_range()}
 GROUP BY 1
UNION ALL
SELECT $__timeGroupAlias(bucket, $__interval),
       sum(volume) FILTER (WHERE instrument_name LIKE '%-P')
           / nullif(sum(volume) FILTER (WHERE instrument_name LIKE '%-C'), 0)
  FROM option_trades_1h
 WHERE currency = '$currency' AND $__timeFilter(bucket) AND {long_range()}
 GROUP BY 1
 ORDER BY 1""",
            fmt="time_series",
            w=12,
            interval="1m",
            description="Traded put volume over call volume per interval (1-minute summaries up "
            "to 2 days, hourly beyond).",
        ),
        panel(
            "timeseries",
            "Greeks: $instrument",
            """SELECT "timestamp" AS time, delta, gamma, vega, theta, mark_iv AS "mark IV"
  FROM options_greeks
 WHERE currency = '$currency' AND instrument_name = '$instrument'
   AND $__timeFilter("timestamp")
 ORDER BY 1""",
            fmt="time_series",
            w=12,
            description="Delta, gamma, vega, theta and mark IV of the chosen option from the "
            "greeks poll.",
        ),
    ]


def build() -> Json:
    return dashboard(
        UID,
        "chaintape: Options",
        "IV smile, term structure, skew, DVOL, quotes, trades, open interest and greeks.",
        panels(),
        variables(),
    )
