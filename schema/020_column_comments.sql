-- chaintape:idempotent
-- Units and meaning of every column, as COMMENT ON COLUMN: `psql \d+ btc_option_quotes` shows
-- them. schema/README.md has the same in a table ("Units").
--
-- Conventions (Deribit's, kept as sent; §5.3 of the protocol notes):
--   option prices      in the coin for the inverse books (BTC, ETH: 0.0365 = 0.0365 BTC) and
--                      in USDC for the linear ones (SOL_USDC & co.);
--   option amounts     in the base coin (BTC, ETH, SOL); a contract is instruments.contract_size
--                      of it; inverse perpetual/future amounts are USD;
--   IV                 percent (63.21 = 63.21 %), bid/ask IV against the expiry's forward;
--   funding            fractions (0.0001 = 0.01 %);
--   times              timestamptz: "timestamp" is the exchange's, received_at our receive time.
--
-- chaintape_comment_columns(cur) comments one currency's {cur}_option_* tables (called by
-- chaintape_add_currency, so new currencies get them too); without an argument, every table.
-- A comment that is already right is not written again (no catalog churn at each start).

CREATE OR REPLACE FUNCTION chaintape_column_comments()
RETURNS TABLE (table_kind text, column_name text, comment text)
LANGUAGE sql IMMUTABLE AS $$
VALUES
    -- {cur}_option_quotes: one row per change of an option's best bid/ask (quote.{option})
    ('{cur}_option_quotes', 'timestamp', 'exchange time of the best bid/ask change (UTC)'),
    ('{cur}_option_quotes', 'instrument_name', 'Deribit option name, e.g. BTC-27DEC24-100000-C, SOL_USDC-25SEP26-118-C'),
    ('{cur}_option_quotes', 'best_bid_price', 'best bid price per unit of base coin: in the coin for BTC/ETH options, in USDC for SOL and other linear options; NULL when there is no bid'),
    ('{cur}_option_quotes', 'best_bid_amount', 'size at the best bid, in the base coin (BTC, ETH, SOL); NULL when there is no bid'),
    ('{cur}_option_quotes', 'best_ask_price', 'best ask price: in the coin for BTC/ETH options, in USDC for SOL and other linear options; NULL when there is no ask'),
    ('{cur}_option_quotes', 'best_ask_amount', 'size at the best ask, in the base coin; NULL when there is no ask'),
    ('{cur}_option_quotes', 'bid_iv', 'Black-76 implied volatility of best_bid_price against underlying_price, percent; NULL with no bid, no fresh forward, or a bid at or below intrinsic value'),
    ('{cur}_option_quotes', 'ask_iv', 'Black-76 implied volatility of best_ask_price against underlying_price, percent; NULL with no ask or no fresh forward'),
    ('{cur}_option_quotes', 'mark_iv', 'Deribit mark IV of the option at the quote (latest markprice.options point), percent'),
    ('{cur}_option_quotes', 'mark_price', 'Deribit mark price at the quote: in the coin for BTC/ETH options, in USDC for linear ones'),
    ('{cur}_option_quotes', 'underlying_price', 'the expiry''s forward (Deribit underlying_price) in force at the quote, USD (USDC for linear options); NULL when none is fresher than QUOTE_FORWARD_MAX_AGE_S'),
    ('{cur}_option_quotes', 'received_at', 'when chaintape received the message (UTC)'),
    -- {cur}_option_trades
    ('{cur}_option_trades', 'timestamp', 'exchange time of the trade (UTC)'),
    ('{cur}_option_trades', 'instrument_name', 'Deribit option name'),
    ('{cur}_option_trades', 'trade_id', 'Deribit trade id, unique with "timestamp"'),
    ('{cur}_option_trades', 'trade_seq', 'per-instrument trade sequence number (checked for holes)'),
    ('{cur}_option_trades', 'price', 'trade price: in the coin for BTC/ETH options, in USDC for linear ones'),
    ('{cur}_option_trades', 'amount', 'trade size in the base coin (BTC, ETH, SOL)'),
    ('{cur}_option_trades', 'contracts', 'trade size in contracts (amount / instruments.contract_size)'),
    ('{cur}_option_trades', 'direction', 'taker side: buy or sell'),
    ('{cur}_option_trades', 'tick_direction', 'Deribit tick direction: 0 plus, 1 zero-plus, 2 minus, 3 zero-minus'),
    ('{cur}_option_trades', 'iv', 'implied volatility of the trade price, percent (Deribit''s)'),
    ('{cur}_option_trades', 'index_price', 'price index at the trade, USD (USDC for linear options)'),
    ('{cur}_option_trades', 'mark_price', 'mark price at the trade: in the coin for BTC/ETH options, in USDC for linear ones'),
    ('{cur}_option_trades', 'liquidation', 'liquidation flag as sent: M (maker), T (taker), MT (both); NULL if none'),
    ('{cur}_option_trades', 'block_trade_id', 'block trade id, NULL for ordinary trades'),
    ('{cur}_option_trades', 'block_trade_leg_count', 'number of legs of the block trade'),
    ('{cur}_option_trades', 'block_rfq_id', 'block RFQ id'),
    ('{cur}_option_trades', 'combo_id', 'combo instrument the trade was a leg of'),
    ('{cur}_option_trades', 'combo_trade_id', 'id of the combo trade this leg belongs to'),
    ('{cur}_option_trades', 'received_at', 'when chaintape received the trade (UTC)'),
    -- {cur}_option_orderbook_depth: REST get_order_book snapshots
    ('{cur}_option_orderbook_depth', 'timestamp', 'exchange time of the snapshot (UTC)'),
    ('{cur}_option_orderbook_depth', 'instrument_name', 'Deribit option name'),
    ('{cur}_option_orderbook_depth', 'change_id', 'Deribit book change id at the snapshot'),
    ('{cur}_option_orderbook_depth', 'bid_prices', 'bid prices, best first: in the coin for BTC/ETH options, in USDC for linear ones'),
    ('{cur}_option_orderbook_depth', 'bid_amounts', 'bid sizes in the base coin, aligned with bid_prices'),
    ('{cur}_option_orderbook_depth', 'ask_prices', 'ask prices, best first: in the coin for BTC/ETH options, in USDC for linear ones'),
    ('{cur}_option_orderbook_depth', 'ask_amounts', 'ask sizes in the base coin, aligned with ask_prices'),
    ('{cur}_option_orderbook_depth', 'mark_price', 'mark price: in the coin for BTC/ETH options, in USDC for linear ones'),
    ('{cur}_option_orderbook_depth', 'mark_iv', 'mark IV, percent'),
    ('{cur}_option_orderbook_depth', 'bid_iv', 'Deribit''s IV of the best bid, percent'),
    ('{cur}_option_orderbook_depth', 'ask_iv', 'Deribit''s IV of the best ask, percent'),
    ('{cur}_option_orderbook_depth', 'underlying_price', 'the expiry''s forward, USD (USDC for linear options)'),
    ('{cur}_option_orderbook_depth', 'open_interest', 'open interest in the base coin'),
    ('{cur}_option_orderbook_depth', 'received_at', 'when chaintape received the snapshot (UTC)'),
    -- options_ohlcv
    ('options_ohlcv', 'timestamp', 'bar start (UTC)'),
    ('options_ohlcv', 'instrument_name', 'Deribit option name'),
    ('options_ohlcv', 'currency', 'chaintape currency code: BTC, ETH, SOL'),
    ('options_ohlcv', 'resolution', 'bar length in Deribit''s notation: ''1'' = 1 minute'),
    ('options_ohlcv', 'open', 'first trade price of the bar: in the coin for BTC/ETH options, in USDC for linear ones'),
    ('options_ohlcv', 'high', 'highest trade price (same unit as open)'),
    ('options_ohlcv', 'low', 'lowest trade price (same unit as open)'),
    ('options_ohlcv', 'close', 'last trade price (same unit as open)'),
    ('options_ohlcv', 'volume', 'sum of trade amounts, in the base coin'),
    ('options_ohlcv', 'trade_count', 'number of trades in the bar'),
    ('options_ohlcv', 'mark_iv_close', 'mark IV at the bar close, percent'),
    ('options_ohlcv', 'mark_price_close', 'mark price at the bar close (same unit as open)'),
    ('options_ohlcv', 'trade_iv_vwap', 'amount-weighted IV of the bar''s trades, percent'),
    ('options_ohlcv', 'received_at', 'when chaintape computed the bar (UTC)'),
    -- perpetuals_ohlcv, futures_ohlcv: Deribit's candles
    ('perpetuals_ohlcv', 'timestamp', 'bar start (UTC)'),
    ('perpetuals_ohlcv', 'instrument_name', 'Deribit perpetual, e.g. BTC-PERPETUAL, SOL_USDC-PERPETUAL'),
    ('perpetuals_ohlcv', 'currency', 'chaintape currency code'),
    ('perpetuals_ohlcv', 'resolution', 'bar length in Deribit''s notation: ''1'' = 1 minute'),
    ('perpetuals_ohlcv', 'open', 'price in USD (USDC for linear perpetuals)'),
    ('perpetuals_ohlcv', 'high', 'price in USD (USDC for linear perpetuals)'),
    ('perpetuals_ohlcv', 'low', 'price in USD (USDC for linear perpetuals)'),
    ('perpetuals_ohlcv', 'close', 'price in USD (USDC for linear perpetuals)'),
    ('perpetuals_ohlcv', 'volume', 'traded amount in the base coin'),
    ('perpetuals_ohlcv', 'cost', 'traded value in the quote currency: USD (USDC for linear perpetuals)'),
    ('perpetuals_ohlcv', 'received_at', 'when chaintape read the bar (UTC)'),
    ('futures_ohlcv', 'timestamp', 'bar start (UTC)'),
    ('futures_ohlcv', 'instrument_name', 'Deribit dated future, e.g. BTC-27DEC24'),
    ('futures_ohlcv', 'currency', 'chaintape currency code'),
    ('futures_ohlcv', 'resolution', 'bar length in Deribit''s notation: ''1'' = 1 minute'),
    ('futures_ohlcv', 'open', 'price in USD (USDC for linear futures)'),
    ('futures_ohlcv', 'high', 'price in USD (USDC for linear futures)'),
    ('futures_ohlcv', 'low', 'price in USD (USDC for linear futures)'),
    ('futures_ohlcv', 'close', 'price in USD (USDC for linear futures)'),
    ('futures_ohlcv', 'volume', 'traded amount in the base coin'),
    ('futures_ohlcv', 'cost', 'traded value in the quote currency: USD (USDC for linear futures)'),
    ('futures_ohlcv', 'received_at', 'when chaintape read the bar (UTC)'),
    -- options_greeks: REST ticker per option
    ('options_greeks', 'timestamp', 'start of the poll interval (the hour, UTC) the ticker was read for: one row per option and hour'),
    ('options_greeks', 'instrument_name', 'Deribit option name'),
    ('options_greeks', 'currency', 'chaintape currency code'),
    ('options_greeks', 'delta', 'Deribit delta: change of the option value per 1 of underlying, in base coin (fraction, -1..1)'),
    ('options_greeks', 'gamma', 'Deribit gamma: change of delta per 1 USD (USDC) of underlying'),
    ('options_greeks', 'vega', 'Deribit vega: USD (USDC for linear options) per 1 vol point'),
    ('options_greeks', 'theta', 'Deribit theta: USD (USDC for linear options) per day'),
    ('options_greeks', 'rho', 'Deribit rho: USD (USDC for linear options) per 1 % of interest rate'),
    ('options_greeks', 'mark_iv', 'mark IV, percent'),
    ('options_greeks', 'bid_iv', 'Deribit''s IV of the best bid, percent'),
    ('options_greeks', 'ask_iv', 'Deribit''s IV of the best ask, percent'),
    ('options_greeks', 'mark_price', 'mark price: in the coin for BTC/ETH options, in USDC for linear ones'),
    ('options_greeks', 'underlying_price', 'the expiry''s forward, USD (USDC for linear options)'),
    ('options_greeks', 'underlying_index', 'what the option is priced on: a future name, SYN.<expiry> (synthetic) or index_price'),
    ('options_greeks', 'index_price', 'price index, USD (USDC for linear options)'),
    ('options_greeks', 'open_interest', 'open interest in the base coin'),
    ('options_greeks', 'interest_rate', 'interest rate Deribit uses in its IVs, as sent (0 in practice)'),
    ('options_greeks', 'best_bid_price', 'best bid: in the coin for BTC/ETH options, in USDC for linear ones'),
    ('options_greeks', 'best_ask_price', 'best ask: in the coin for BTC/ETH options, in USDC for linear ones'),
    ('options_greeks', 'received_at', 'when chaintape received the ticker (UTC)'),
    ('options_greeks', 'ticker_timestamp', 'exchange time of the ticker read for this hour (UTC)'),
    -- funding_rates
    ('funding_rates', 'timestamp', 'end of the funding hour (UTC)'),
    ('funding_rates', 'instrument_name', 'Deribit perpetual'),
    ('funding_rates', 'currency', 'chaintape currency code'),
    ('funding_rates', 'interest_8h', 'funding over the 8 hours ending at timestamp, a fraction (0.0001 = 0.01 %)'),
    ('funding_rates', 'interest_1h', 'funding paid for the hour ending at timestamp, a fraction'),
    ('funding_rates', 'index_price', 'price index at timestamp, USD (USDC for linear perpetuals)'),
    ('funding_rates', 'prev_index_price', 'price index an hour earlier, USD (USDC for linear perpetuals)'),
    ('funding_rates', 'received_at', 'when chaintape read the row (UTC)'),
    -- index_prices
    ('index_prices', 'timestamp', 'exchange time of the value (UTC); DVOL: minute start'),
    ('index_prices', 'index_name', 'Deribit index: btc_usd, sol_usdc, ...'),
    ('index_prices', 'currency', 'chaintape currency code'),
    ('index_prices', 'kind', 'price (a price index) or dvol (Deribit volatility index)'),
    ('index_prices', 'value', 'kind price: USD (USDC for *_usdc indices); kind dvol: annualized implied volatility, percent'),
    ('index_prices', 'received_at', 'when chaintape read the value (UTC)'),
    -- instruments
    ('instruments', 'instrument_name', 'Deribit instrument name'),
    ('instruments', 'currency', 'chaintape currency code: BTC, ETH, SOL'),
    ('instruments', 'kind', 'option, future, spot, future_combo, option_combo'),
    ('instruments', 'option_type', 'call or put (options only)'),
    ('instruments', 'strike', 'strike price, USD (USDC for linear options)'),
    ('instruments', 'expiration_timestamp', 'expiry (08:00 UTC for options and futures)'),
    ('instruments', 'creation_timestamp', 'when Deribit listed it (UTC)'),
    ('instruments', 'contract_size', 'base coin per contract (1 for BTC/ETH options, 10 for SOL)'),
    ('instruments', 'tick_size', 'minimum price step, in the price unit (coin for inverse options, USDC for linear)'),
    ('instruments', 'min_trade_amount', 'minimum order size, in the base coin (USD for inverse futures)'),
    ('instruments', 'settlement_currency', 'currency it settles in: BTC, ETH, USDC'),
    ('instruments', 'base_currency', 'Deribit base currency: BTC, ETH, SOL'),
    ('instruments', 'quote_currency', 'currency prices are quoted in: BTC/ETH (inverse options), USD, USDC'),
    ('instruments', 'counter_currency', 'Deribit counter currency: USD or USDC'),
    ('instruments', 'settlement_period', 'day, week, month, perpetual'),
    ('instruments', 'instrument_type', 'reversed (inverse) or linear'),
    ('instruments', 'price_index', 'Deribit price index: btc_usd, sol_usdc, ...'),
    ('instruments', 'instrument_id', 'Deribit numeric instrument id'),
    ('instruments', 'is_active', 'followed and not expired'),
    ('instruments', 'last_seen', 'last time chaintape saw it listed (UTC)'),
    -- data_gaps
    ('data_gaps', 'table_name', 'table the window is missing from (or was repaired in)'),
    ('data_gaps', 'currency', 'chaintape currency code; NULL for shared tables'),
    ('data_gaps', 'scope', 'what was missing: all, an instrument name, a socket or a channel'),
    ('data_gaps', 'gap_start', 'start of the window, market time (UTC)'),
    ('data_gaps', 'gap_end', 'end of the window, market time (UTC)'),
    ('data_gaps', 'reason', 'why: websocket down, collector was not running, spool full, ...'),
    ('data_gaps', 'repaired', 'true when the window was re-read (trades through REST)'),
    ('data_gaps', 'detected_at', 'when chaintape recorded the gap (UTC)'),
    ('data_gaps', 'id', 'row id'),
    -- rejected_messages
    ('rejected_messages', 'received_at', 'when the bad input was received (UTC)'),
    ('rejected_messages', 'collector', 'collector name'),
    ('rejected_messages', 'channel', 'channel or REST method it came from'),
    ('rejected_messages', 'reason', 'why it was refused'),
    ('rejected_messages', 'raw', 'the message as received, cut at 8 kB'),
    ('rejected_messages', 'id', 'row id'),
    -- collector_status
    ('collector_status', 'collector_name', 'collector name, e.g. ws-btc, rest, funding'),
    ('collector_status', 'currency', 'its currency code (NULL for multi-currency collectors)'),
    ('collector_status', 'version', 'chaintape version'),
    ('collector_status', 'hostname', 'host (container) it runs on'),
    ('collector_status', 'pid', 'process id'),
    ('collector_status', 'state', 'running, waiting (for the database at start) or stopped'),
    ('collector_status', 'started_at', 'process start (UTC)'),
    ('collector_status', 'last_flush_at', 'last write to the database (UTC)'),
    ('collector_status', 'last_message_at', 'last exchange message received (UTC)'),
    ('collector_status', 'connected', 'every websocket connected'),
    ('collector_status', 'messages_total', 'exchange messages received since start (count)'),
    ('collector_status', 'rows_by_table', 'rows written since start, per table (JSON counts)'),
    ('collector_status', 'rejected_total', 'messages refused since start (count)'),
    ('collector_status', 'reconnects', 'websocket reconnects since start (count)'),
    ('collector_status', 'gaps_total', 'data_gaps rows recorded since start (count)'),
    ('collector_status', 'spool_bytes', 'bytes waiting in the disk spool'),
    ('collector_status', 'details', 'collector-specific counters (JSON)'),
    ('collector_status', 'updated_at', 'when this row was written (UTC)'),
    -- spool_offsets
    ('spool_offsets', 'collector_name', 'collector whose spool this is'),
    ('spool_offsets', 'segment', 'spool segment file number'),
    ('spool_offsets', 'last_batch_seq', 'last batch of the segment written to the database'),
    ('spool_offsets', 'updated_at', 'when it was recorded (UTC)'),
    ('spool_offsets', 'rows_done', 'rows of the next batch already written (a batch replayed in parts around a refused row)'),
    -- writer_batches: exactly-once writes when a COMMIT's outcome is unknown (010)
    ('writer_batches', 'collector_name', 'collector whose writer transaction this was'),
    ('writer_batches', 'batch_id', 'id of the writer transaction, written inside it'),
    ('writer_batches', 'replayed', 'true when the batch was written by a spool replay (the original never committed)'),
    ('writer_batches', 'created_at', 'when the batch was written (UTC); pruned after a day'),
    -- backfill_progress: how far each backfill range got (041)
    ('backfill_progress', 'job', 'the backfill range''s name: its parts, start and end (python -m scripts.backfill)'),
    ('backfill_progress', 'currency', 'currency code of the range, e.g. BTC'),
    ('backfill_progress', 'what', 'the part: trades, ohlcv, funding or index'),
    ('backfill_progress', 'cursor', 'JSON: where the part goes on from (its rows before it are stored)'),
    ('backfill_progress', 'updated_at', 'when the cursor was saved (UTC)'),
    -- backups: one row per backup and restore test (040)
    ('backups', 'id', 'row id'),
    ('backups', 'kind', 'backup or restore_test'),
    ('backups', 'started_at', 'start of the run (UTC)'),
    ('backups', 'finished_at', 'end of the run (UTC)'),
    ('backups', 'duration_s', 'run time, seconds'),
    ('backups', 'success', 'true when the dump was written (backup) or agreed row for row (restore test)'),
    ('backups', 'file_name', 'the dump written or restored (a file in BACKUP_DIR)'),
    ('backups', 'size_bytes', 'size of the dump, bytes'),
    ('backups', 'database_bytes', 'pg_database_size at dump time, bytes'),
    ('backups', 'timescaledb_version', 'TimescaleDB version of the dumped database'),
    ('backups', 'error', 'one line saying why, when success is false'),
    ('backups', 'details', 'tables compared, files pruned, ... (JSON)'),
    -- settings, registry, migrations
    ('chaintape_settings', 'name', 'setting name: retention_days, schedule_policies'),
    ('chaintape_settings', 'value', 'setting value as text (retention_days: days, 0 = keep everything)'),
    ('chaintape_settings', 'updated_at', 'when it was last written (UTC)'),
    ('chaintape_currencies', 'currency', 'lower-case table prefix of a recorded currency: btc, sol'),
    ('chaintape_currencies', 'added_at', 'when its tables were created (UTC)'),
    ('schema_migrations', 'filename', 'schema file applied'),
    ('schema_migrations', 'checksum', 'SHA-256 of the file as applied'),
    ('schema_migrations', 'applied_at', 'when it was applied (UTC)')
$$;

CREATE OR REPLACE FUNCTION chaintape_comment_columns(cur text DEFAULT NULL) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    -- One query finds the columns whose comment is missing or different; only those are set.
    FOR r IN
        WITH wanted AS (
            SELECT CASE WHEN k.table_kind LIKE '{cur}%'
                        THEN c.currency || substr(k.table_kind, 6)
                        ELSE k.table_kind END AS tbl,
                   k.column_name, k.comment
              FROM chaintape_column_comments() k
              LEFT JOIN chaintape_currencies c
                ON k.table_kind LIKE '{cur}%' AND (cur IS NULL OR c.currency = lower(cur))
             WHERE (k.table_kind LIKE '{cur}%' AND c.currency IS NOT NULL)
                OR (k.table_kind NOT LIKE '{cur}%' AND cur IS NULL)
        )
        SELECT w.tbl, w.column_name, w.comment
          FROM wanted w
          JOIN pg_attribute a
            ON a.attrelid = to_regclass(quote_ident(w.tbl)) AND a.attname = w.column_name
           AND NOT a.attisdropped
         WHERE col_description(a.attrelid, a.attnum) IS DISTINCT FROM w.comment
    LOOP
        EXECUTE format('COMMENT ON COLUMN %I.%I IS %L', r.tbl, r.column_name, r.comment);
    END LOOP;
END
$$;

SELECT chaintape_comment_columns();
