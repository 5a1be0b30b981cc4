/*
 * Gold materialized views (implemented in src/matview_*.c): a table kept
 * equal to a query over tables of the pipeline and plain tables, by signed
 * deltas where the query allows it, else recomputed at each update.
 */
CREATE FUNCTION medallion.create_materialized_view(pipeline_name text,
												   target_table text,
												   query text,
												   refresh_policy text DEFAULT 'auto',
												   replace boolean DEFAULT false)
RETURNS void
AS 'MODULE_PATHNAME', 'medallion_create_materialized_view'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION medallion.create_materialized_view(text, text, text, text, boolean) IS
'Create a materialized view flow: target_table equals query (a SELECT over tables of the pipeline and plain tables) after every update. refresh_policy ''auto'' maintains it by deltas where the query allows it and recomputes it in full otherwise (the reason is in medallion.flows.definition: maintenance, maintenance_reason); ''incremental'' also writes a warning event at each fallback; ''incremental_strict'' refuses a query that cannot be maintained by deltas; ''full'' always recomputes. With replace, an existing view takes the new query and is recomputed at the next update.';
