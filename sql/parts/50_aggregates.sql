/*
 * Gold aggregates, maintained incrementally, and materialized views attached
 * to a pipeline (implemented in src/aggregates.c).
 */

CREATE FUNCTION medallion.create_aggregate(pipeline_name text,
										   target_table text,
										   source_table text,
										   group_by text[],
										   aggregates text[],
										   filter text DEFAULT NULL,
										   replace boolean DEFAULT false)
RETURNS void
AS 'MODULE_PATHNAME', 'medallion_create_aggregate'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION medallion.create_aggregate(text, text, text, text[], text[], text, boolean) IS
'Create an aggregate flow: target_table is kept equal, after every update, to SELECT <group_by>, <aggregates> FROM source_table WHERE <filter> GROUP BY <group_by>, recomputing only the groups whose input rows changed. Each item is one expression, optionally with AS name; group_by and filter must be immutable. source_table is a table of the pipeline or a table with a _row_id identity column.';

CREATE FUNCTION medallion.add_materialized_view(pipeline_name text,
												matview regclass)
RETURNS void
AS 'MODULE_PATHNAME', 'medallion_add_materialized_view'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION medallion.add_materialized_view(text, regclass) IS
'Attach a materialized view to a pipeline: each update refreshes it (CONCURRENTLY when it is populated and has a unique index on plain columns) when a pipeline table it reads, directly or through views, changed in that update. Flows run in dependency order, so it is refreshed after the flows it reads.';

/*
 * The capture trigger that an aggregate flow reading another aggregate's
 * table puts on that table (statement level, with transition tables).
 */
CREATE FUNCTION medallion.aggregate_capture()
RETURNS trigger
AS 'MODULE_PATHNAME', 'medallion_aggregate_capture'
LANGUAGE C;
COMMENT ON FUNCTION medallion.aggregate_capture() IS
'Trigger of aggregate flows (internal): records the groups touched by changes to the table an aggregate flow reads';
