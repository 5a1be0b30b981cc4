-- The agribusiness order pipeline: S3 → bronze → silver → gold, in SQL only.
-- The README's tutorial explains it step by step (and gives the same SQL with
-- the values written out).
--
--   psql -v bucket=landing -v prefix=orders/ -v secret=landing \
--        -v endpoint=http://127.0.0.1:9000 -f examples/orders_pipeline.sql
--
-- The order events (bench/generate_orders.py) land under prefix, the
-- customer events (generate_orders.py --customers-out) under customer_prefix.
--
-- Variables (psql -v name=value), each with a default:
--   bucket    the S3 bucket the order files land in              (landing)
--   prefix    the key prefix under it, ending in /               (orders/)
--   customer_prefix
--             the key prefix of the customer events               (customers/)
--   secret    the name of the medallion secret holding the keys  (landing)
--   endpoint  an S3-compatible server, e.g. http://127.0.0.1:9000; empty for
--             AWS S3 itself (then set region)                    (empty)
--   region    the bucket's region                                (us-east-1)
--   mode      continuous, or triggered: runs only when run_pipeline is called
--   access_key_id, secret_access_key
--             when both are given, the secret is created with them; else the
--             secret must exist (medallion.create_secret)
\if :{?bucket}
\else
\set bucket landing
\endif
\if :{?prefix}
\else
\set prefix orders/
\endif
\if :{?customer_prefix}
\else
\set customer_prefix customers/
\endif
\if :{?secret}
\else
\set secret landing
\endif
\if :{?endpoint}
\else
\set endpoint ''
\endif
\if :{?region}
\else
\set region us-east-1
\endif
\if :{?mode}
\else
\set mode continuous
\endif
CREATE EXTENSION IF NOT EXISTS medallion;
CREATE SCHEMA IF NOT EXISTS bronze;
CREATE SCHEMA IF NOT EXISTS silver;
CREATE SCHEMA IF NOT EXISTS gold;

-- 1. Credentials, usable only by this role.
\if :{?access_key_id}
SELECT medallion.create_secret(:'secret', :'access_key_id', :'secret_access_key');
\endif

-- 2. A continuous pipeline: a background worker runs an update every 500 ms,
--    and at once again while a backlog remains.
SELECT medallion.create_pipeline('orders', mode => :'mode',
                                 trigger_interval => '500 ms');

-- 3. Bronze (Auto Loader): every new *.json object under s3://bucket/prefix,
--    exactly once, as jsonb with the file's metadata; malformed lines are
--    rescued into _rescued_data.
SELECT medallion.create_bronze('orders', 'bronze.order_events',
                               format('s3://%s/%s', :'bucket', :'prefix'),
                               secret_name => :'secret', region => :'region',
                               endpoint => NULLIF(:'endpoint', ''),
                               options => '{"path_glob": "*.json", "max_files_per_batch": 100}');

-- 4. Silver: typed columns (try_cast gives NULL instead of an error), one row
--    per event_id, and expectations; dropped rows are kept in
--    silver.order_events_quarantine. The discount field appears in later
--    files: older records simply have none (0).
SELECT medallion.create_silver('orders', 'silver.order_events', $$
    SELECT data->>'event_id'                                        AS event_id,
           medallion.try_cast(data->>'order_id', NULL::bigint)      AS order_id,
           medallion.try_cast(data->>'customer_id', NULL::integer)  AS customer_id,
           data->>'product'                                         AS product,
           data->>'category'                                        AS category,
           medallion.try_cast(data->>'quantity', NULL::integer)     AS quantity,
           medallion.try_cast(data->>'unit_price', NULL::numeric)   AS unit_price,
           COALESCE(medallion.try_cast(data->>'discount', NULL::numeric), 0) AS discount,
           data->>'status'                                          AS status,
           data->>'operation'                                       AS operation,
           medallion.try_cast(data->>'event_ts', NULL::timestamptz) AS event_ts,
           medallion.try_cast(data->>'sequence', NULL::bigint)      AS sequence
      FROM bronze.order_events
     WHERE data IS NOT NULL
$$, dedup_keys => ARRAY['event_id'], quarantine => true);

-- drop: a row violating these is not written (NULL passes a condition, as in
-- a CHECK constraint, hence the explicit IS NOT NULL)
SELECT medallion.add_expectation('silver.order_events', 'valid_quantity',
                                 'quantity IS NOT NULL AND quantity > 0', 'drop');
SELECT medallion.add_expectation('silver.order_events', 'has_order_id',
                                 'order_id IS NOT NULL', 'drop');
SELECT medallion.add_expectation('silver.order_events', 'has_event_ts',
                                 'event_ts IS NOT NULL', 'drop');
-- warn: kept, but counted
SELECT medallion.add_expectation('silver.order_events', 'known_category',
                                 $$category IN ('seeds', 'fertilizer', 'crop-protection',
                                                'animal-feed', 'irrigation')$$, 'warn');
SELECT medallion.add_expectation('silver.order_events', 'plausible_discount',
                                 'discount BETWEEN 0 AND 0.5', 'warn');
-- fail: stops the flow's update (nothing of the batch is written)
SELECT medallion.add_expectation('silver.order_events', 'has_sequence',
                                 'sequence IS NOT NULL', 'fail');

-- 5. Gold (AUTO CDC INTO ... STORED AS SCD TYPE 2): the history of every
--    order, whatever order its events arrive in; a cancellation is a delete.
SELECT medallion.create_auto_cdc_flow('orders', 'gold.order_history', 'silver.order_events',
    keys => ARRAY['order_id'],
    sequence_by => 'sequence',
    stored_as_scd_type => 2,
    apply_as_deletes => $$operation = 'DELETE'$$,
    except_column_list => ARRAY['event_id', 'operation', 'sequence'],
    track_history_column_list => ARRAY['status', 'quantity', 'unit_price', 'discount']);

-- 6. Gold aggregates (materialized views, refreshed incrementally): daily
--    revenue, quantity and distinct orders over the current versions.
SELECT medallion.create_aggregate('orders', 'gold.daily_sales', 'gold.order_history',
    group_by => ARRAY[$$(event_ts AT TIME ZONE 'UTC')::date AS order_date$$],
    aggregates => ARRAY['sum(quantity * unit_price * (1 - discount)) AS revenue',
                        'sum(quantity) AS quantity',
                        'count(DISTINCT order_id) AS orders'],
    filter => '__end_at IS NULL');
SELECT medallion.create_aggregate('orders', 'gold.daily_sales_by_category', 'gold.order_history',
    group_by => ARRAY[$$(event_ts AT TIME ZONE 'UTC')::date AS order_date$$, 'category'],
    aggregates => ARRAY['sum(quantity * unit_price * (1 - discount)) AS revenue',
                        'sum(quantity) AS quantity',
                        'count(DISTINCT order_id) AS orders'],
    filter => '__end_at IS NULL');

-- 7. A second source: customer events (creations, region moves, renames)
--    under their own prefix, typed and checked in silver, and kept in gold
--    as one current row per customer (AUTO CDC, SCD type 1).
SELECT medallion.create_bronze('orders', 'bronze.customer_events',
                               format('s3://%s/%s', :'bucket', :'customer_prefix'),
                               secret_name => :'secret', region => :'region',
                               endpoint => NULLIF(:'endpoint', ''),
                               options => '{"path_glob": "*.json", "max_files_per_batch": 100}');
SELECT medallion.create_silver('orders', 'silver.customers', $$
    SELECT data->>'event_id'                                        AS event_id,
           medallion.try_cast(data->>'customer_id', NULL::integer)  AS customer_id,
           data->>'name'                                            AS name,
           data->>'region'                                          AS region,
           data->>'segment'                                         AS segment,
           data->>'operation'                                       AS operation,
           medallion.try_cast(data->>'event_ts', NULL::timestamptz) AS event_ts,
           medallion.try_cast(data->>'sequence', NULL::bigint)      AS sequence
      FROM bronze.customer_events
     WHERE data IS NOT NULL
$$, dedup_keys => ARRAY['event_id'], quarantine => true);
SELECT medallion.add_expectation('silver.customers', 'has_customer_id',
                                 'customer_id IS NOT NULL', 'drop');
SELECT medallion.add_expectation('silver.customers', 'known_region',
                                 $$region IN ('midwest', 'plains', 'south', 'west', 'northeast')$$,
                                 'warn');
SELECT medallion.add_expectation('silver.customers', 'customer_has_sequence',
                                 'sequence IS NOT NULL', 'fail');
SELECT medallion.create_auto_cdc_flow('orders', 'gold.customers', 'silver.customers',
    keys => ARRAY['customer_id'],
    sequence_by => 'sequence',
    stored_as_scd_type => 1,
    apply_as_deletes => $$operation = 'DELETE'$$,
    except_column_list => ARRAY['event_id', 'operation', 'sequence']);

-- 8. A gold materialized view over a join: revenue, orders and distinct
--    customers per region of the customer, over the current orders. An
--    inner join of pipeline tables with GROUP BY and sum/count/count(DISTINCT)
--    is maintained by deltas: an update applies what the two AUTO CDC flows'
--    change feeds say changed (a customer moving region moves its revenue).
SELECT medallion.create_materialized_view('orders', 'gold.revenue_by_region', $$
    SELECT c.region,
           sum(o.quantity * o.unit_price * (1 - o.discount)) AS revenue,
           count(*)                                          AS orders,
           count(DISTINCT o.customer_id)                     AS customers
      FROM gold.order_history o
      JOIN gold.customers c ON c.customer_id = o.customer_id
     WHERE o.__end_at IS NULL
     GROUP BY c.region
$$);

-- 9. A view medallion cannot maintain by deltas: a window function ranks the
--    customers within their region. It is recomputed in full at each update
--    that changed its inputs, and says why (medallion.flows.definition
--    ->> 'maintenance_reason', pipeline_report()).
SELECT medallion.create_materialized_view('orders', 'gold.customer_rank', $$
    SELECT c.region, c.customer_id, c.name,
           sum(o.quantity * o.unit_price * (1 - o.discount)) AS revenue,
           rank() OVER (PARTITION BY c.region
                        ORDER BY sum(o.quantity * o.unit_price * (1 - o.discount)) DESC)
                                                             AS rank_in_region
      FROM gold.order_history o
      JOIN gold.customers c ON c.customer_id = o.customer_id
     WHERE o.__end_at IS NULL
     GROUP BY c.region, c.customer_id, c.name
$$);
