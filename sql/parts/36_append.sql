/*
 * Append flows: several flows writing one target (implemented in
 * src/append_flow.c; several bronze sources into one table are
 * create_bronze's flow_name, src/bronze_definition.c).
 */

CREATE FUNCTION medallion.add_append_flow(pipeline_name text, flow_name text,
										  target_table text, query text,
										  once boolean DEFAULT false,
										  replace boolean DEFAULT false)
RETURNS void
AS 'MODULE_PATHNAME', 'medallion_add_append_flow'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION medallion.add_append_flow(text, text, text, text, boolean, boolean) IS
'Add an append flow: query, a SELECT that reads one table of the pipeline and is fed only its new rows at each update, is appended to target_table, an existing bronze or silver table of the pipeline, its columns matched by name (target columns it lacks get their default or NULL); a silver target''s expectations and dedup keys apply. once => true: a backfill that runs in one update only, again after a full refresh or a run_pipeline refresh_tables naming the flow. replace => true replaces the append flow of that name (same target); the next update recomputes the target with every flow into it.';
