-- What the demo shows after each batch.
\pset footer off
SELECT pipeline_name, state, last_update_end::time(0) AS last_update,
       last_update_duration, last_error
  FROM medallion.pipelines;

SELECT 'bronze' AS layer, count(*) AS rows, count(_rescued_data) AS rescued
  FROM bronze.order_events;

SELECT data->>'category' AS category, count(*) AS events,
       count(DISTINCT data->>'order_id') AS orders
  FROM bronze.order_events GROUP BY 1 ORDER BY 1;
