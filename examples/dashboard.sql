-- What the demo (scripts/demo.sh) shows after each batch, in one row: every
-- bronze row of the example pipeline accounted for, and the gold tables'
-- sizes.
--
--   bronze = silver + deduplicated + quarantined + rescued + not_yet_in_silver
--
-- deduplicated: rows the silver flow did not write because their event_id
-- was seen before (the dedup_dropped of its flow_progress events);
-- quarantined: rows a drop expectation sent to the quarantine table;
-- rescued: lines that were not JSON (data NULL, the text in _rescued_data),
-- which the silver query skips; not_yet_in_silver: rows beyond the silver
-- flow's watermark.
WITH watermark AS (
    SELECT watermark FROM medallion.flows
     WHERE pipeline_name = 'orders' AND flow_name = 'silver.order_events'
)
SELECT (SELECT count(*) FROM bronze.order_events) AS bronze,
       (SELECT count(*) FROM silver.order_events) AS silver,
       (SELECT coalesce(sum((details->>'dedup_dropped')::bigint), 0)
          FROM medallion.event_log
         WHERE pipeline_name = 'orders' AND flow_name = 'silver.order_events'
           AND event_type = 'flow_progress') AS deduplicated,
       (SELECT count(*) FROM silver.order_events_quarantine) AS quarantined,
       (SELECT count(*) FROM bronze.order_events, watermark
         WHERE data IS NULL AND _row_id <= watermark) AS rescued,
       (SELECT count(*) FROM bronze.order_events, watermark
         WHERE _row_id > watermark) AS not_yet_in_silver,
       (SELECT count(*) FROM gold.order_history) AS order_versions,
       (SELECT count(*) FROM gold.order_history_current) AS current_orders,
       (SELECT count(*) FROM gold.daily_sales) AS days,
       (SELECT state FROM medallion.pipelines WHERE pipeline_name = 'orders') AS state;
