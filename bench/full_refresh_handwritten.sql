-- The rebuild of the example pipeline a DBA would write by hand: the
-- baseline of bench/full_refresh_bench.sh, which replaces :'feed' by the
-- directory of the objects and checks the result equal to medallion's gold.
DROP SCHEMA IF EXISTS hand CASCADE;
CREATE SCHEMA hand;

-- bronze: every line of every object, as jsonb, with the object's name
CREATE TABLE hand.order_events_bronze (
    _row_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    _file_name text NOT NULL,
    data jsonb);
COPY hand.order_events_bronze (_file_name, data)
    FROM PROGRAM $$cd :'feed' && awk '{ printf "%s\002%s\n", FILENAME, $0 }' $(ls | sort)$$
    WITH (FORMAT csv, DELIMITER E'\002', QUOTE E'\001');

-- silver: the casts, the drop expectations (violations kept aside, as
-- medallion's quarantine does), one row per event_id (the first wins)
CREATE TABLE hand.order_events_typed AS
SELECT _row_id,
       data->>'event_id'                     AS event_id,
       (data->>'order_id')::bigint           AS order_id,
       (data->>'customer_id')::integer       AS customer_id,
       data->>'product'                      AS product,
       data->>'category'                     AS category,
       (data->>'quantity')::integer          AS quantity,
       (data->>'unit_price')::numeric        AS unit_price,
       COALESCE((data->>'discount')::numeric, 0) AS discount,
       data->>'status'                       AS status,
       data->>'operation'                    AS operation,
       (data->>'event_ts')::timestamptz      AS event_ts,
       (data->>'sequence')::bigint           AS sequence
  FROM hand.order_events_bronze
 WHERE data IS NOT NULL;
CREATE TABLE hand.order_events_quarantine AS
SELECT * FROM hand.order_events_typed
 WHERE NOT (quantity IS NOT NULL AND quantity > 0 AND order_id IS NOT NULL
            AND event_ts IS NOT NULL);
CREATE TABLE hand.order_events AS
SELECT DISTINCT ON (event_id) *
  FROM hand.order_events_typed
 WHERE quantity IS NOT NULL AND quantity > 0 AND order_id IS NOT NULL
   AND event_ts IS NOT NULL
 ORDER BY event_id, _row_id;

-- gold, SCD type 2: a version starts at an upsert whose tracked columns
-- differ from the previous event's, or that follows a delete or nothing;
-- a delete closes the version before it; a version carries the values of
-- its latest event and ends where the next version or delete starts
CREATE TYPE hand.version_values AS (
    customer_id integer, product text, category text, quantity integer,
    unit_price numeric, discount numeric, status text, event_ts timestamptz);
CREATE TABLE hand.order_history AS
WITH marked AS (
    SELECT *,
           operation IS NOT DISTINCT FROM 'DELETE' AS is_delete,
           operation IS NOT DISTINCT FROM 'DELETE'
           OR lag(operation IS NOT DISTINCT FROM 'DELETE') OVER w IS DISTINCT FROM false
           OR (status, quantity, unit_price, discount) IS DISTINCT FROM
              (lag(status) OVER w, lag(quantity) OVER w, lag(unit_price) OVER w,
               lag(discount) OVER w) AS starts
      FROM hand.order_events
    WINDOW w AS (PARTITION BY order_id ORDER BY sequence, _row_id)
), grouped AS (
    SELECT *, count(*) FILTER (WHERE starts)
                  OVER (PARTITION BY order_id ORDER BY sequence, _row_id) AS version
      FROM marked
), versions AS (
    SELECT order_id, bool_or(is_delete) AS is_delete, min(sequence) AS start_at,
           (array_agg(ROW(customer_id, product, category, quantity, unit_price, discount,
                          status, event_ts)::hand.version_values
                      ORDER BY sequence DESC, _row_id DESC))[1] AS v
      FROM grouped
     GROUP BY order_id, version
), bounded AS (
    SELECT *, lead(start_at) OVER (PARTITION BY order_id ORDER BY start_at) AS end_at
      FROM versions
)
SELECT order_id, (v).customer_id, (v).product, (v).category, (v).quantity,
       (v).unit_price, (v).discount, (v).status, (v).event_ts,
       start_at AS __start_at, end_at AS __end_at
  FROM bounded
 WHERE NOT is_delete;

-- gold aggregates over the current versions
CREATE TABLE hand.daily_sales AS
SELECT (event_ts AT TIME ZONE 'UTC')::date AS order_date,
       sum(quantity * unit_price * (1 - discount)) AS revenue,
       sum(quantity) AS quantity,
       count(DISTINCT order_id) AS orders
  FROM hand.order_history
 WHERE __end_at IS NULL
 GROUP BY 1;
CREATE TABLE hand.daily_sales_by_category AS
SELECT (event_ts AT TIME ZONE 'UTC')::date AS order_date, category,
       sum(quantity * unit_price * (1 - discount)) AS revenue,
       sum(quantity) AS quantity,
       count(DISTINCT order_id) AS orders
  FROM hand.order_history
 WHERE __end_at IS NULL
 GROUP BY 1, 2;
