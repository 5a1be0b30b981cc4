/*
 * Credentials and pipelines.
 */

CREATE FUNCTION medallion.create_secret(secret_name text, access_key_id text,
										secret_access_key text,
										session_token text DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'medallion_create_secret'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION medallion.create_secret(text, text, text, text) IS
'Store S3 credentials under a name; usable only by the creating role and superusers';

CREATE FUNCTION medallion.drop_secret(secret_name text)
RETURNS void
AS 'MODULE_PATHNAME', 'medallion_drop_secret'
LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION medallion.drop_secret(text) IS 'Remove stored S3 credentials';

CREATE FUNCTION medallion.create_pipeline(pipeline_name text,
										  mode text DEFAULT 'triggered',
										  trigger_interval interval DEFAULT '1 second',
										  max_step_duration interval DEFAULT '1 hour')
RETURNS void
AS 'MODULE_PATHNAME', 'medallion_create_pipeline'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION medallion.create_pipeline(text, text, interval, interval) IS
'Create a pipeline owned by the current role: triggered (run_pipeline) or continuous (background workers)';

CREATE FUNCTION medallion.drop_pipeline(pipeline_name text,
										drop_tables boolean DEFAULT false)
RETURNS void
AS 'MODULE_PATHNAME', 'medallion_drop_pipeline'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION medallion.drop_pipeline(text, boolean) IS
'Drop a pipeline, its flows and ledger; with drop_tables, its tables too';

CREATE FUNCTION medallion.run_pipeline(pipeline_name text,
									   full_refresh boolean DEFAULT false,
									   refresh_tables text[] DEFAULT NULL)
RETURNS TABLE (flow_name text, flow_type text, rows_read bigint,
			   rows_written bigint, rows_dropped bigint, duration interval)
AS 'MODULE_PATHNAME', 'medallion_run_pipeline'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION medallion.run_pipeline(text, boolean, text[]) IS
'Run one update of a pipeline now: every flow once, upstream first; refresh_tables fully refreshes the flows named and those downstream of them';

CREATE FUNCTION medallion.drop_flow(flow_name text,
									drop_table boolean DEFAULT false)
RETURNS void
AS 'MODULE_PATHNAME', 'medallion_drop_flow'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION medallion.drop_flow(text, boolean) IS
'Remove a flow from its pipeline with its watermark, expectations, ledger and internal state; with drop_table, its target table too';

CREATE FUNCTION medallion.start_pipeline(pipeline_name text)
RETURNS void
AS 'MODULE_PATHNAME', 'medallion_start_pipeline'
LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION medallion.start_pipeline(text) IS
'Let the background workers run a continuous pipeline (also clears a failed state)';

CREATE FUNCTION medallion.stop_pipeline(pipeline_name text)
RETURNS void
AS 'MODULE_PATHNAME', 'medallion_stop_pipeline'
LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION medallion.stop_pipeline(text) IS
'Stop running a continuous pipeline until start_pipeline';

CREATE FUNCTION medallion.alter_pipeline(pipeline_name text,
										 mode text DEFAULT NULL,
										 trigger_interval interval DEFAULT NULL,
										 max_step_duration interval DEFAULT NULL,
										 owner name DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'medallion_alter_pipeline'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION medallion.alter_pipeline(text, text, interval, interval, name) IS
'Change the mode, trigger_interval, max_step_duration or owner of a pipeline (NULL: unchanged); a new owner takes the pipeline''s tables and secrets along';
