-- What the demo shows after each batch: the pipeline, rows per layer,
-- expectations, and the gold tables.
\pset footer off
SELECT pipeline_name, state, last_update_end::time(0) AS last_update,
       last_update_duration, backlog_objects, last_error
  FROM medallion.pipelines;

SELECT layer, rows FROM (
    SELECT 1, 'bronze (rescued: ' || count(_rescued_data) || ')', count(*) FROM bronze.order_events
    UNION ALL SELECT 2, 'silver', count(*) FROM silver.order_events
    UNION ALL SELECT 3, 'silver quarantine', count(*) FROM silver.order_events_quarantine
    UNION ALL SELECT 4, 'gold order versions', count(*) FROM gold.order_history
    UNION ALL SELECT 5, 'gold current orders', count(*) FROM gold.order_history_current
) AS layers(n, layer, rows) ORDER BY n;

SELECT expectation_name, on_violation, passed_records, failed_records
  FROM medallion.expectation_metrics ORDER BY expectation_name;

SELECT order_date, round(revenue, 2) AS revenue, quantity, orders
  FROM gold.daily_sales ORDER BY order_date DESC LIMIT 5;

SELECT order_date, category, round(revenue, 2) AS revenue, orders
  FROM gold.daily_sales_by_category ORDER BY order_date DESC, category LIMIT 6;
