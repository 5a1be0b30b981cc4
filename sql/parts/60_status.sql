/*
 * Status that tells the truth: exact row counts for pipeline_report, and
 * the workers of the pipelines a role may see, with their state and query
 * (pg_stat_activity hides those from the owner when the worker cannot run
 * as the owner, a NOLOGIN role).
 */
CREATE FUNCTION medallion.flow_row_count(pipeline_name text, target_table regclass)
RETURNS bigint
AS 'MODULE_PATHNAME', 'medallion_flow_row_count'
LANGUAGE C STABLE STRICT;
COMMENT ON FUNCTION medallion.flow_row_count(text, regclass) IS
'Exact row count of a flow''s target, counted as the pipeline owner; NULL for non-members of the owner';

CREATE FUNCTION medallion.pipeline_worker_activity(
	OUT pipeline_name text, OUT pid integer, OUT worker_type text,
	OUT session_role regrole, OUT backend_start timestamptz, OUT state text,
	OUT wait_event text, OUT query_start timestamptz, OUT query text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'medallion_pipeline_worker_activity'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION medallion.pipeline_worker_activity() IS
'The update and pipeline workers of the pipelines visible to the current role, as pg_stat_activity shows them';

CREATE VIEW medallion.pipeline_workers AS
SELECT w.pipeline_name, w.pid, w.worker_type, w.session_role, w.backend_start,
	   w.state, w.wait_event, w.query_start, w.query
  FROM medallion.pipeline_worker_activity() w;
GRANT SELECT ON medallion.pipeline_workers TO PUBLIC;
COMMENT ON VIEW medallion.pipeline_workers IS
'Background workers of the pipelines visible to the current role: pid, state and current query; stop one with stop_pipeline';
