/*
 * medallion update script from 0.1.0 to 0.2.0.
 *
 * Every change that 0.2.0 makes to the install script (sql/parts/) is made
 * here too, in the same order, so that ALTER EXTENSION medallion UPDATE gives
 * the same objects as CREATE EXTENSION medallion VERSION '0.2.0'; the test
 * test/t/120_upgrade.pl compares the two.  Pipelines, ledgers, watermarks and
 * events are kept.
 */
\echo Use "ALTER EXTENSION medallion UPDATE TO '0.2.0'" to load this file. \quit

/*
 * Fair workers: the state waiting of a continuous pipeline that waits for a
 * worker slot, derived from shared memory.
 */
/*
 * The continuous pipelines of the current database that wait for a worker
 * slot (medallion.max_workers), read from shared memory: the pipelines view
 * shows them as waiting, a state that no crash or promotion can leave
 * behind.
 */
CREATE FUNCTION medallion.waiting_pipeline_ids()
RETURNS SETOF integer
AS 'MODULE_PATHNAME', 'medallion_waiting_pipeline_ids'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION medallion.waiting_pipeline_ids() IS
'Ids of the continuous pipelines of this database waiting for a worker slot';

/*
 * The state medallion.pipelines and medallion.table_freshness show: the
 * stored state, except that a triggered update whose worker was stopped (a
 * cancelled run_pipeline) holds no update lock any more and so is not
 * running, and that a continuous pipeline that is due but finds every
 * worker slot taken is waiting.
 */
CREATE FUNCTION medallion.pipeline_shown_state(pipeline_id integer,
											   mode text, state text)
RETURNS text
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $shown$
SELECT CASE WHEN $2 OPERATOR(pg_catalog.=) 'triggered'
				 AND $3 OPERATOR(pg_catalog.=) 'running'
				 AND NOT EXISTS (
					SELECT FROM pg_catalog.pg_locks l
					 WHERE l.locktype OPERATOR(pg_catalog.=) 'advisory'
					   AND l.database OPERATOR(pg_catalog.=)
						   (SELECT d.oid FROM pg_catalog.pg_database d
							 WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database())
					   AND l.classid OPERATOR(pg_catalog.=) 1296385100::pg_catalog.oid
					   AND l.objid OPERATOR(pg_catalog.=) $1::pg_catalog.oid
					   AND l.objsubid OPERATOR(pg_catalog.=) 3
					   AND l.granted)
			THEN 'idle'
			WHEN $2 OPERATOR(pg_catalog.=) 'continuous'
				 AND $3 OPERATOR(pg_catalog.=) 'running'
				 AND $1 IN (SELECT w.id FROM medallion.waiting_pipeline_ids() w(id))
			THEN 'waiting' ELSE $3 END
$shown$;
COMMENT ON FUNCTION medallion.pipeline_shown_state(integer, text, text) IS
'The state a pipeline shows: its stored state, idle for a triggered update that no longer runs, waiting for a continuous pipeline without a worker slot';

/*
 * Runaway updates: a per-pipeline limit on one flow step
 * (max_step_duration: create_pipeline's new argument, alter_pipeline, the
 * last column of medallion.pipelines).
 */
ALTER TABLE medallion.pipeline
	ADD COLUMN max_step_duration interval NOT NULL DEFAULT '1 hour';

DROP FUNCTION medallion.create_pipeline(text, text, interval);
CREATE FUNCTION medallion.create_pipeline(pipeline_name text,
										  mode text DEFAULT 'triggered',
										  trigger_interval interval DEFAULT '1 second',
										  max_step_duration interval DEFAULT '1 hour')
RETURNS void
AS 'MODULE_PATHNAME', 'medallion_create_pipeline'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION medallion.create_pipeline(text, text, interval, interval) IS
'Create a pipeline owned by the current role: triggered (run_pipeline) or continuous (background workers)';

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

/*
 * A triggered update processes all available data: the progress of a
 * multi-batch update (objects done of the total of its listing) in
 * medallion.pipelines.
 */
CREATE OR REPLACE VIEW medallion.pipelines AS
SELECT p.pipeline_name,
	   p.owner,
	   p.mode,
	   p.trigger_interval,
	   medallion.pipeline_shown_state(p.pipeline_id, p.mode, p.state) AS state,
	   p.last_update_start,
	   p.last_update_end,
	   p.last_error,
	   p.last_update_id,
	   p.last_update_end - p.last_update_start AS last_update_duration,
	   p.consecutive_failures,
	   p.next_attempt_at,
	   f.flow_count,
	   f.backlog_objects,
	   f.backlog_bytes,
	   pg_catalog.now() - f.backlog_oldest AS lag,
	   f.layer_rows,
	   p.created_at,
	   p.max_step_duration,
	   -- progress of the running (or the last multi-batch) update: objects
	   -- of its listing ingested, of the total
	   f.update_objects_done,
	   f.update_objects_total
  FROM medallion.pipeline p
  LEFT JOIN LATERAL (
	SELECT pg_catalog.count(*) AS flow_count,
		   pg_catalog.sum(COALESCE((fl.flow_state->>'backlog_objects')::bigint, 0))::bigint
		   AS backlog_objects,
		   pg_catalog.sum(COALESCE((fl.flow_state->>'backlog_bytes')::bigint, 0))::bigint
		   AS backlog_bytes,
		   pg_catalog.min((fl.flow_state->>'backlog_oldest')::timestamptz)
		   FILTER (WHERE (fl.flow_state->>'backlog_objects')::bigint > 0) AS backlog_oldest,
		   pg_catalog.sum((fl.flow_state->>'update_objects_done')::bigint)::bigint
		   AS update_objects_done,
		   pg_catalog.sum((fl.flow_state->>'update_objects_total')::bigint)::bigint
		   AS update_objects_total,
		   (SELECT pg_catalog.jsonb_object_agg(l.flow_type, l.live_rows)
			  FROM (SELECT fl2.flow_type,
						   pg_catalog.sum(pg_catalog.pg_stat_get_live_tuples(fl2.target_table))
						   AS live_rows
					  FROM medallion.flow fl2
					 WHERE fl2.pipeline_id OPERATOR(pg_catalog.=) p.pipeline_id
					 GROUP BY fl2.flow_type) l) AS layer_rows
	  FROM medallion.flow fl
	 WHERE fl.pipeline_id OPERATOR(pg_catalog.=) p.pipeline_id) f ON true
 WHERE pg_catalog.pg_has_role(p.owner, 'USAGE');

/* Backup and restore: restored pipelines come back stopped. */
CREATE FUNCTION medallion.pipeline_restored()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $restored$
BEGIN
	IF NEW.created_at IS DISTINCT FROM pg_catalog.now() AND NEW.state = 'running' THEN
		NEW.state := CASE NEW.mode WHEN 'continuous' THEN 'stopped' ELSE 'idle' END;
	END IF;
	RETURN NEW;
END
$restored$;

CREATE TRIGGER pipeline_restored BEFORE INSERT ON medallion.pipeline
	FOR EACH ROW EXECUTE FUNCTION medallion.pipeline_restored();
ALTER TABLE medallion.pipeline ENABLE ALWAYS TRIGGER pipeline_restored;

/* Dropping: DROP EXTENSION medallion without CASCADE is refused while pipelines exist. */
CREATE FUNCTION medallion.guard_drop_extension()
RETURNS event_trigger
AS 'MODULE_PATHNAME', 'medallion_guard_drop_extension'
LANGUAGE C;
COMMENT ON FUNCTION medallion.guard_drop_extension() IS
'Event trigger: refuses DROP EXTENSION medallion without CASCADE while pipelines exist';

CREATE EVENT TRIGGER medallion_drop_guard ON ddl_command_start
	WHEN TAG IN ('DROP EXTENSION')
	EXECUTE FUNCTION medallion.guard_drop_extension();

/*
 * Changing a pipeline: drop_flow, run_pipeline's refresh_tables, and
 * medallion.flows showing a target dropped by hand as NULL.
 */
DROP FUNCTION medallion.run_pipeline(text, boolean);
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

CREATE OR REPLACE VIEW medallion.flows AS
SELECT p.pipeline_name,
	   f.flow_name,
	   f.flow_type,
	   f.source,
	   -- NULL once the target was dropped by hand (drop_flow removes the flow)
	   (SELECT c.oid::pg_catalog.regclass FROM pg_catalog.pg_class c
		 WHERE c.oid OPERATOR(pg_catalog.=) f.target_table) AS target_table,
	   f.definition,
	   f.watermark,
	   f.flow_state,
	   f.created_at
  FROM medallion.flow f
  JOIN medallion.pipeline p USING (pipeline_id)
 WHERE pg_catalog.pg_has_role(p.owner, 'USAGE');
COMMENT ON FUNCTION medallion.add_materialized_view(text, regclass) IS
'Attach a materialized view to a pipeline: each update refreshes it (CONCURRENTLY when it is populated and has a unique index on plain columns) when a pipeline table it reads, directly or through views, changed in that update. Flows run in dependency order, so it is refreshed after the flows it reads.';
/* Watching pipelines: pipeline_graph() and the table_freshness view. */

/*
 * When a flow last changed its target: the end of the last update in which
 * it did (the pipeline's last_update_end of that update, written by the
 * update).  Kept in the catalog rather than derived from the event log,
 * which is trimmed: a table that changes once a month still shows when.
 */
ALTER TABLE medallion.flow ADD COLUMN last_changed timestamptz;

CREATE FUNCTION medallion.pipeline_graph(pipeline_name text,
										 format text DEFAULT 'mermaid')
RETURNS text
AS 'MODULE_PATHNAME', 'medallion_pipeline_graph'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION medallion.pipeline_graph(text, text) IS
'A picture of a pipeline as Mermaid (format ''mermaid'') or Graphviz DOT (''dot'') text: its S3 sources and tables, its flows as edges, and for each table its exact row count (when the caller may read it), its lag and its failing expectations. For the pipeline''s owner.';

/*
 * The freshness of every pipeline table the current role may read, and
 * nothing of the others: a BI role granted SELECT on a gold table sees when
 * that table last changed, without any right on medallion's catalog.  The
 * view reads the catalog with its owner's rights, so its rows are filtered
 * by the reader's privilege; security_barrier keeps the reader's own
 * conditions (which could leak what they see) from running before that
 * filter.  pipeline_state is the state that medallion.pipelines shows.
 */
CREATE VIEW medallion.table_freshness WITH (security_barrier) AS
SELECT pg_catalog.format('%I.%I', n.nspname, c.relname) AS table_name,
	   p.pipeline_name,
	   f.flow_name,
	   f.flow_type,
	   f.last_changed,
	   pg_catalog.now() OPERATOR(pg_catalog.-) f.last_changed AS lag,
	   medallion.pipeline_shown_state(p.pipeline_id, p.mode, p.state) AS pipeline_state
  FROM medallion.flow f
  JOIN medallion.pipeline p USING (pipeline_id)
  JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) f.target_table::pg_catalog.oid
  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
 WHERE pg_catalog.has_table_privilege(CURRENT_USER, f.target_table::pg_catalog.oid, 'SELECT');

GRANT SELECT ON medallion.table_freshness TO PUBLIC;
COMMENT ON VIEW medallion.table_freshness IS
'For every pipeline table the current role may SELECT from: its flow, when that flow last changed it (the end of that update), the lag since, and the pipeline''s state';

/*
 * Status that tells the truth (issue 15): events matched to their pipeline
 * by id (a dropped pipeline's events show as dropped_pipeline_name, and
 * follow a pipeline handed to another owner), pipeline_report (defined once,
 * in its final form, further down), the workers of a role's
 * pipelines (pipeline_workers), and alter_pipeline's owner argument (in the
 * alter_pipeline block above).
 */
CREATE OR REPLACE VIEW medallion.event_log AS
SELECT e.id,
	   e.ts,
	   -- matched by id: the events of a dropped pipeline never show under a
	   -- new pipeline of the same name, but as dropped_pipeline_name
	   CASE WHEN e.pipeline_id IS NULL OR p.pipeline_id IS NOT NULL
			THEN e.pipeline_name END AS pipeline_name,
	   e.flow_name,
	   e.event_type,
	   e.level,
	   e.message,
	   e.details,
	   e.update_id,
	   CASE WHEN e.pipeline_id IS NOT NULL AND p.pipeline_id IS NULL
			THEN e.pipeline_name END AS dropped_pipeline_name
  FROM medallion.event e
  -- a pipeline handed to another owner takes its events along
  LEFT JOIN medallion.pipeline p
	ON p.pipeline_id OPERATOR(pg_catalog.=) e.pipeline_id
 WHERE COALESCE(p.owner, e.owner) IS NULL
	   AND pg_catalog.pg_has_role('pg_read_all_stats', 'USAGE')
	OR COALESCE(p.owner, e.owner) IS NOT NULL
	   AND pg_catalog.pg_has_role(COALESCE(p.owner, e.owner), 'USAGE');


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

/*
 * Flow types of 0.2.0 (materialized views, snapshot CDC, append flows) and
 * the schema of flows' internal state tables.
 */
ALTER TABLE medallion.flow DROP CONSTRAINT flow_flow_type_check;
ALTER TABLE medallion.flow ADD CONSTRAINT flow_flow_type_check
		CHECK (flow_type IN ('bronze', 'silver', 'auto_cdc', 'aggregate', 'matview',
							 'materialized_view', 'auto_cdc_snapshot', 'append'));

CREATE SCHEMA medallion_state;
REVOKE ALL ON SCHEMA medallion_state FROM PUBLIC;
GRANT USAGE ON SCHEMA medallion_state TO PUBLIC;

/*
 * Changing a pipeline: every create_* flow function gains replace (and
 * create_bronze a flow_name, for several flows into one target).
 */

DROP FUNCTION medallion.create_bronze(text, text, text, text, text, text, text, jsonb);
CREATE FUNCTION medallion.create_bronze(pipeline_name text, target_table text,
										source_url text,
										secret_name text DEFAULT NULL,
										region text DEFAULT 'us-east-1',
										endpoint text DEFAULT NULL,
										format text DEFAULT 'json',
										options jsonb DEFAULT '{}',
										flow_name text DEFAULT NULL,
										replace boolean DEFAULT false)
RETURNS void
AS 'MODULE_PATHNAME', 'medallion_create_bronze'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION medallion.create_bronze(text, text, text, text, text, text, text, jsonb, text, boolean) IS
'Create a bronze table fed with the records of the objects under an s3:// URL';

DROP FUNCTION medallion.create_silver(text, text, text, text[], boolean);
CREATE FUNCTION medallion.create_silver(pipeline_name text, target_table text,
										query text,
										dedup_keys text[] DEFAULT NULL,
										quarantine boolean DEFAULT false,
										replace boolean DEFAULT false)
RETURNS void
AS 'MODULE_PATHNAME', 'medallion_create_silver'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION medallion.create_silver(text, text, text, text[], boolean, boolean) IS
'Create a silver flow: target_table gets a leading _row_id and the columns of query, a SELECT that reads one table of the pipeline and is fed only its new rows at each update. Rows whose dedup_keys equal those of a row already written (or earlier in the same update) are not written; rows with a NULL key are never duplicates. With quarantine, rows dropped by expectations go to <target_table>_quarantine.';

DROP FUNCTION medallion.create_auto_cdc_flow(text, text, text, text[], text, int, text, text, text[], text[], text[], text[], boolean);
CREATE FUNCTION medallion.create_auto_cdc_flow(pipeline_name text,
											   target_table text,
											   source_table text,
											   keys text[],
											   sequence_by text,
											   stored_as_scd_type int DEFAULT 2,
											   apply_as_deletes text DEFAULT NULL,
											   apply_as_truncates text DEFAULT NULL,
											   column_list text[] DEFAULT NULL,
											   except_column_list text[] DEFAULT NULL,
											   track_history_column_list text[] DEFAULT NULL,
											   track_history_except_column_list text[] DEFAULT NULL,
											   ignore_null_updates boolean DEFAULT false,
											   replace boolean DEFAULT false)
RETURNS void
AS 'MODULE_PATHNAME', 'medallion_create_auto_cdc_flow'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION medallion.create_auto_cdc_flow(text, text, text, text[], text, int,
												   text, text, text[], text[], text[],
												   text[], boolean, boolean) IS
'Create an AUTO CDC flow: apply the change events of source_table to a new SCD type 1 or 2 table, in sequence_by order whatever their arrival order';

DROP FUNCTION medallion.create_aggregate(text, text, text, text[], text[], text);
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

-- AUTO CDC FROM SNAPSHOT (issue 18)
/*
 * Gold: AUTO CDC FROM SNAPSHOT flows, whose changes come from diffing
 * consecutive snapshots of a source.
 */

CREATE FUNCTION medallion.create_auto_cdc_from_snapshot_flow(pipeline_name text,
															 target_table text,
															 source_table text,
															 keys text[],
															 stored_as_scd_type int DEFAULT 1,
															 snapshot_version text DEFAULT NULL,
															 column_list text[] DEFAULT NULL,
															 except_column_list text[] DEFAULT NULL,
															 track_history_column_list text[] DEFAULT NULL,
															 track_history_except_column_list text[] DEFAULT NULL,
															 replace boolean DEFAULT false)
RETURNS void
AS 'MODULE_PATHNAME', 'medallion_create_auto_cdc_from_snapshot_flow'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION medallion.create_auto_cdc_from_snapshot_flow(text, text, text, text[], int,
																 text, text[], text[], text[],
																 text[], boolean) IS
'Create an AUTO CDC FROM SNAPSHOT flow: keep a new SCD type 1 or 2 table by diffing consecutive snapshots of source_table on keys: the whole source at each update, or the snapshots snapshot_version splits it into, in ascending version order';
/*
 * replace => true on the create_* flow functions: a replaced flow, and the
 * flows downstream of it, wait for their recompute at the next update
 * (refresh_pending, cleared by that update's full refresh of them).
 */
ALTER TABLE medallion.flow ADD COLUMN refresh_pending boolean NOT NULL DEFAULT false;
CREATE OR REPLACE VIEW medallion.flows AS
SELECT p.pipeline_name,
	   f.flow_name,
	   f.flow_type,
	   f.source,
	   -- NULL once the target was dropped by hand (drop_flow removes the flow)
	   (SELECT c.oid::pg_catalog.regclass FROM pg_catalog.pg_class c
		 WHERE c.oid OPERATOR(pg_catalog.=) f.target_table) AS target_table,
	   f.definition,
	   f.watermark,
	   f.flow_state,
	   f.created_at,
	   -- replaced: the next update recomputes it from its source
	   f.refresh_pending
  FROM medallion.flow f
  JOIN medallion.pipeline p USING (pipeline_id)
 WHERE pg_catalog.pg_has_role(p.owner, 'USAGE');
/*
 * Append flows (issue 18): several bronze sources into one table
 * (create_bronze's flow_name), add_append_flow, and observability that
 * names each flow of a shared target: expectation metrics per flow,
 * layer rows and table freshness counting a shared table once,
 * pipeline_report saying which table a named flow feeds.
 */
CREATE FUNCTION medallion.add_append_flow(pipeline_name text, flow_name text,
										  target_table text, query text,
										  once boolean DEFAULT false,
										  replace boolean DEFAULT false)
RETURNS void
AS 'MODULE_PATHNAME', 'medallion_add_append_flow'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION medallion.add_append_flow(text, text, text, text, boolean, boolean) IS
'Add an append flow: query, a SELECT that reads one table of the pipeline and is fed only its new rows at each update, is appended to target_table, an existing bronze or silver table of the pipeline, its columns matched by name (target columns it lacks get their default or NULL); a silver target''s expectations and dedup keys apply. once => true: a backfill that runs in one update only, again after a full refresh or a run_pipeline refresh_tables naming the flow.';

CREATE OR REPLACE VIEW medallion.expectation_metrics AS
SELECT p.pipeline_name,
	   f.flow_name,
	   x.expectation_name,
	   x.on_violation,
	   COALESCE(m.passed_records, 0)::bigint AS passed_records,
	   COALESCE(m.failed_records, 0)::bigint AS failed_records
  FROM medallion.expectation x
  JOIN medallion.flow xf USING (flow_id)
  JOIN medallion.flow f
	ON f.target_table::pg_catalog.oid OPERATOR(pg_catalog.=) xf.target_table::pg_catalog.oid
   AND f.pipeline_id OPERATOR(pg_catalog.=) xf.pipeline_id
   AND (f.flow_id OPERATOR(pg_catalog.=) xf.flow_id
		OR f.flow_type OPERATOR(pg_catalog.=) 'append')
  JOIN medallion.pipeline p ON p.pipeline_id OPERATOR(pg_catalog.=) f.pipeline_id
  LEFT JOIN LATERAL (
		SELECT pg_catalog.sum(r.passed_records) AS passed_records,
			   pg_catalog.sum(r.failed_records) AS failed_records
		  FROM medallion.event e,
			   pg_catalog.jsonb_to_recordset(
				   CASE WHEN pg_catalog.jsonb_typeof(e.details OPERATOR(pg_catalog.->) 'expectations')
							 OPERATOR(pg_catalog.=) 'array'
						THEN e.details OPERATOR(pg_catalog.->) 'expectations'
				   END) AS r(name text, passed_records bigint, failed_records bigint)
		 WHERE e.pipeline_name OPERATOR(pg_catalog.=) p.pipeline_name	-- indexed
		   AND e.pipeline_id OPERATOR(pg_catalog.=) p.pipeline_id
		   AND e.flow_name OPERATOR(pg_catalog.=) f.flow_name
		   AND e.event_type OPERATOR(pg_catalog.=) 'flow_progress'
		   AND e.ts OPERATOR(pg_catalog.>=) f.created_at
		   AND r.name OPERATOR(pg_catalog.=) x.expectation_name
	   ) m ON true
 WHERE pg_catalog.pg_has_role(p.owner, 'USAGE');

CREATE OR REPLACE VIEW medallion.pipelines AS
SELECT p.pipeline_name,
	   p.owner,
	   p.mode,
	   p.trigger_interval,
	   medallion.pipeline_shown_state(p.pipeline_id, p.mode, p.state) AS state,
	   p.last_update_start,
	   p.last_update_end,
	   p.last_error,
	   p.last_update_id,
	   p.last_update_end - p.last_update_start AS last_update_duration,
	   p.consecutive_failures,
	   p.next_attempt_at,
	   f.flow_count,
	   f.backlog_objects,
	   f.backlog_bytes,
	   pg_catalog.now() - f.backlog_oldest AS lag,
	   f.layer_rows,
	   p.created_at,
	   p.max_step_duration,
	   -- progress of the running (or the last multi-batch) update: objects
	   -- of its listing ingested, of the total
	   f.update_objects_done,
	   f.update_objects_total
  FROM medallion.pipeline p
  LEFT JOIN LATERAL (
	SELECT pg_catalog.count(*) AS flow_count,
		   pg_catalog.sum(COALESCE((fl.flow_state->>'backlog_objects')::bigint, 0))::bigint
		   AS backlog_objects,
		   pg_catalog.sum(COALESCE((fl.flow_state->>'backlog_bytes')::bigint, 0))::bigint
		   AS backlog_bytes,
		   pg_catalog.min((fl.flow_state->>'backlog_oldest')::timestamptz)
		   FILTER (WHERE (fl.flow_state->>'backlog_objects')::bigint > 0) AS backlog_oldest,
		   pg_catalog.sum((fl.flow_state->>'update_objects_done')::bigint)::bigint
		   AS update_objects_done,
		   pg_catalog.sum((fl.flow_state->>'update_objects_total')::bigint)::bigint
		   AS update_objects_total,
		   (SELECT pg_catalog.jsonb_object_agg(l.flow_type, l.live_rows)
			  FROM (SELECT fl2.flow_type,
						   pg_catalog.sum(pg_catalog.pg_stat_get_live_tuples(fl2.target_table))
						   AS live_rows
					  FROM medallion.flow fl2
					 WHERE fl2.pipeline_id OPERATOR(pg_catalog.=) p.pipeline_id
					   -- a table fed by several flows counts once, for its
					   -- defining flow (the oldest that is not an append flow)
					   AND fl2.flow_id OPERATOR(pg_catalog.=)
						   (SELECT d.flow_id FROM medallion.flow d
							 WHERE d.target_table::pg_catalog.oid
								   OPERATOR(pg_catalog.=) fl2.target_table::pg_catalog.oid
							 ORDER BY d.flow_type OPERATOR(pg_catalog.=) 'append', d.flow_id
							 LIMIT 1)
					 GROUP BY fl2.flow_type) l) AS layer_rows
	  FROM medallion.flow fl
	 WHERE fl.pipeline_id OPERATOR(pg_catalog.=) p.pipeline_id) f ON true
 WHERE pg_catalog.pg_has_role(p.owner, 'USAGE');

CREATE OR REPLACE VIEW medallion.table_freshness WITH (security_barrier) AS
SELECT pg_catalog.format('%I.%I', n.nspname, c.relname) AS table_name,
	   p.pipeline_name,
	   f.flow_name,
	   f.flow_type,
	   f.last_changed,
	   pg_catalog.now() OPERATOR(pg_catalog.-) f.last_changed AS lag,
	   medallion.pipeline_shown_state(p.pipeline_id, p.mode, p.state) AS pipeline_state
  FROM medallion.flow f
  JOIN medallion.pipeline p USING (pipeline_id)
  JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) f.target_table::pg_catalog.oid
  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
 WHERE pg_catalog.has_table_privilege(CURRENT_USER, f.target_table::pg_catalog.oid, 'SELECT')
   -- a table fed by several flows shows once, with its defining flow
   AND f.flow_id OPERATOR(pg_catalog.=)
	   (SELECT d.flow_id FROM medallion.flow d
		 WHERE d.target_table::pg_catalog.oid OPERATOR(pg_catalog.=) f.target_table::pg_catalog.oid
		 ORDER BY d.flow_type OPERATOR(pg_catalog.=) 'append', d.flow_id
		 LIMIT 1);
-- The range of a delta, estimated at its size by the planner (row_range.c).
/*
 * The range of a delta (implemented in src/row_range.c): the condition the
 * updates use to read the rows a source gained since they last read it,
 * with a planner support function that estimates the range at its size
 * (the newest rows lie past the statistics of the last ANALYZE) and reads
 * it by an index range scan.
 */
CREATE FUNCTION medallion.row_id_in_range_support(internal)
RETURNS internal
AS 'MODULE_PATHNAME', 'medallion_row_id_in_range_support'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION medallion.row_id_in_range(row_id bigint, after bigint, up_to bigint)
RETURNS boolean
AS 'MODULE_PATHNAME', 'medallion_row_id_in_range'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
SUPPORT medallion.row_id_in_range_support;
COMMENT ON FUNCTION medallion.row_id_in_range(bigint, bigint, bigint) IS
'True when after < row_id <= up_to. Used by the updates to read a delta (the rows numbered after the position they last read); the planner estimates the range at up_to - after rows and reads it by an index on row_id.';

-- Gold materialized views (create_materialized_view, issue 17): the function,
-- and pipeline_report showing how each view is maintained.
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

CREATE OR REPLACE FUNCTION medallion.pipeline_report(pipeline_name text)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
-- search_path is pinned, so plain operators are safe here
AS $report$
DECLARE
	p record;
	f record;
	e record;
	lines text[] := '{}';
	row_count text;
	flow_ts timestamptz;
	flow_details jsonb;
BEGIN
	SELECT * INTO p FROM medallion.pipelines v WHERE v.pipeline_name = $1;
	IF NOT FOUND THEN
		RETURN NULL;
	END IF;
	lines := lines || CASE p.mode
		WHEN 'continuous' THEN format('pipeline %s (continuous, every %s, owner %s): %s',
			p.pipeline_name, p.trigger_interval, p.owner, upper(p.state))
		ELSE format('pipeline %s (triggered, owner %s): %s',
			p.pipeline_name, p.owner, upper(p.state)) END;
	lines := lines || format('last update: %s, took %s%s',
		COALESCE(p.last_update_end::text, 'never'),
		COALESCE(p.last_update_duration::text, '-'),
		CASE WHEN p.consecutive_failures > 0
			 THEN format(', %s failure(s) in a row', p.consecutive_failures) END);

	SELECT ev.ts, ev.update_id, ev.details INTO e
	  FROM medallion.event_log ev
	 WHERE ev.pipeline_name = p.pipeline_name
	   AND ev.event_type = 'update_end'
	   AND COALESCE((ev.details->>'rows_written')::bigint, 0) > 0
	 ORDER BY ev.id DESC LIMIT 1;
	IF FOUND THEN
		lines := lines || format('last update that did work: %s (update %s), took %s, %s rows written to %s',
			e.ts, e.update_id,
			make_interval(secs => round((e.details->>'duration_ms')::numeric / 1000, 3)::double precision),
			e.details->>'rows_written',
			(SELECT string_agg(t.name, ', ')
			   FROM jsonb_array_elements_text(e.details->'changed_tables') t(name)));
	ELSE
		lines := lines || 'last update that did work: none yet'::text;
	END IF;
	SELECT count(*) FILTER (WHERE NOT COALESCE((ev.details->>'failed')::boolean, false)) AS completed,
		   count(*) FILTER (WHERE (ev.details->>'failed')::boolean) AS failed,
		   COALESCE(sum((ev.details->>'rows_written')::bigint), 0) AS rows_written,
		   min(ev.ts) AS since
	  INTO e
	  FROM medallion.event_log ev
	 WHERE ev.pipeline_name = p.pipeline_name AND ev.event_type = 'update_end';
	lines := lines || format('totals%s: %s update(s) completed, %s failed, %s rows written; bronze ledger: %s object(s), %s rows ingested',
		CASE WHEN e.since IS NOT NULL THEN format(' since %s', e.since) END,
		e.completed, e.failed, e.rows_written,
		(SELECT count(*) FROM medallion.ingested_files i
		  WHERE i.pipeline_name = p.pipeline_name AND i.status = 'ingested'),
		(SELECT COALESCE(sum(i.row_count), 0) FROM medallion.ingested_files i
		  WHERE i.pipeline_name = p.pipeline_name AND i.status = 'ingested'));
	IF p.last_error IS NOT NULL THEN
		lines := lines || ('last error: ' || p.last_error);
	END IF;
	lines := lines || format('backlog: %s object(s), %s, lag %s',
		COALESCE(p.backlog_objects, 0),
		pg_size_pretty(COALESCE(p.backlog_bytes, 0)),
		COALESCE(p.lag::text, 'none'));

	FOR f IN
		SELECT fl.flow_type, fl.flow_name, fl.target_table, fl.definition
		  FROM medallion.flows fl
		 WHERE fl.pipeline_name = p.pipeline_name
		 ORDER BY fl.created_at
	LOOP
		BEGIN
			row_count := COALESCE(medallion.flow_row_count(p.pipeline_name, f.target_table)::text,
								  'no table');
		EXCEPTION WHEN insufficient_privilege THEN
			row_count := 'unreadable';
		END;
		SELECT ev.ts, ev.details INTO flow_ts, flow_details
		  FROM medallion.event_log ev
		 WHERE ev.pipeline_name = p.pipeline_name
		   AND ev.flow_name = f.flow_name
		   AND ev.event_type = 'flow_progress'
		 ORDER BY ev.id DESC LIMIT 1;
		-- a flow named otherwise than its table says which table it feeds
		lines := lines || format('  %-8s %-40s %s rows, last run %s: %s rows written, %s dropped%s',
			f.flow_type,
			f.flow_name || CASE WHEN f.flow_name <> f.target_table::text
								THEN ' -> ' || f.target_table::text ELSE '' END,
			row_count,
			COALESCE(flow_ts::text, 'never'),
			COALESCE(flow_details->>'rows_written', '0'),
			COALESCE(flow_details->>'rows_dropped', '0'),
			CASE f.definition->>'maintenance'
				 WHEN 'delta' THEN ', maintained by deltas'
				 WHEN 'recompute' THEN ', touched groups recomputed'
				 WHEN 'incremental' THEN ', maintained by deltas'
				 WHEN 'full' THEN ', recomputed in full: ' || (f.definition->>'maintenance_reason')
			END);
	END LOOP;
	lines := lines || (SELECT format('errors in the last hour: %s', count(*))
						 FROM medallion.event_log ev
						WHERE ev.pipeline_name = p.pipeline_name
						  AND ev.event_type = 'error'
						  AND ev.ts > now() - interval '1 hour');
	RETURN array_to_string(lines, E'\n');
END
$report$;
COMMENT ON FUNCTION medallion.pipeline_report(text) IS 'A text summary of a pipeline''s health: state, last update and last update that did work, totals, errors, backlog and lag, and each flow''s exact row count and progress';
-- Change capture of plain tables (issue 17: capture of the plain tables a
-- materialized view reads); the same as sql/parts/55_capture.sql.
/*
 * Change capture of plain tables (src/capture.c, src/capture_trigger.c).
 * A flow that reads a plain table of the database (a lookup table edited
 * by hand) learns what changed in it from a change log that statement-level
 * triggers on the table fill: one log per captured table, in schema
 * medallion_state, owned by the pipeline owner who started the capture,
 * shared by every flow that reads the table.  A log depends on its table:
 * dropping the table drops the log (the flows that read it then fail with
 * a clear error).  Both catalog tables are dumped; a dump also carries the
 * logs (ordinary tables of medallion_state) and the triggers, so a restored
 * database goes on capturing where it stood.
 */
CREATE TABLE medallion.captured_table (
	relid regclass PRIMARY KEY,
	-- the table's name when capture began, for messages once it is dropped
	table_name text NOT NULL,
	log_table regclass NOT NULL,
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);

/*
 * How far each flow has read a captured table's log: every change with
 * __change_id <= position.  A row goes with its flow; the last row of a
 * table going drops the table's triggers and log (capture_consumer_gone).
 */
CREATE TABLE medallion.capture_consumer (
	relid regclass NOT NULL
		REFERENCES medallion.captured_table ON DELETE CASCADE,
	flow_id integer NOT NULL REFERENCES medallion.flow ON DELETE CASCADE,
	position bigint NOT NULL,
	PRIMARY KEY (relid, flow_id)
);
CREATE INDEX ON medallion.capture_consumer (flow_id);
REVOKE ALL ON medallion.captured_table, medallion.capture_consumer FROM PUBLIC;

SELECT pg_catalog.pg_extension_config_dump('medallion.captured_table', '');
SELECT pg_catalog.pg_extension_config_dump('medallion.capture_consumer', '');

/*
 * The trigger function of captured tables.  It writes a statement's
 * transition tables into the table's log as the log's owner, whatever the
 * writer; nobody but medallion creates triggers with it (CREATE TRIGGER
 * checks EXECUTE, firing does not).
 */
CREATE FUNCTION medallion.capture_changes()
RETURNS trigger
AS 'MODULE_PATHNAME', 'medallion_capture_changes'
LANGUAGE C;
REVOKE EXECUTE ON FUNCTION medallion.capture_changes() FROM PUBLIC;
COMMENT ON FUNCTION medallion.capture_changes() IS
'Trigger of tables whose changes medallion captures: appends the rows a statement added (+1) and removed (-1) to the table''s change log';

CREATE FUNCTION medallion.capture_consumer_gone()
RETURNS trigger
AS 'MODULE_PATHNAME', 'medallion_capture_consumer_gone'
LANGUAGE C;
REVOKE EXECUTE ON FUNCTION medallion.capture_consumer_gone() FROM PUBLIC;
CREATE TRIGGER capture_consumer_gone AFTER DELETE ON medallion.capture_consumer
	FOR EACH ROW EXECUTE FUNCTION medallion.capture_consumer_gone();

/*
 * Log rows not yet read by the slowest flow reading a captured table, for
 * a role that owns the table or its log (NULL for anyone else).
 */
CREATE FUNCTION medallion.capture_pending(relid regclass)
RETURNS bigint
AS 'MODULE_PATHNAME', 'medallion_capture_pending'
LANGUAGE C STABLE STRICT;
COMMENT ON FUNCTION medallion.capture_pending(regclass) IS
'Number of captured changes of a table not yet read by every flow that reads it (for the owner of the table or of its change log)';

/*
 * Every captured table the current role owns, or whose log it owns: the
 * flows reading it, the changes not read yet, and the log's size.
 */
CREATE VIEW medallion.captured_tables WITH (security_barrier) AS
SELECT c.relid AS table_name,
	   c.log_table,
	   (SELECT pg_catalog.array_agg(f.flow_name ORDER BY f.flow_name)
		  FROM medallion.capture_consumer k
		  JOIN medallion.flow f USING (flow_id)
		 WHERE k.relid OPERATOR(pg_catalog.=) c.relid) AS consumers,
	   medallion.capture_pending(c.relid) AS pending_changes,
	   pg_catalog.pg_total_relation_size(c.log_table) AS log_bytes,
	   c.created_at
  FROM medallion.captured_table c
 WHERE EXISTS (SELECT FROM pg_catalog.pg_class r
				WHERE r.oid OPERATOR(pg_catalog.=) ANY (ARRAY[c.relid::pg_catalog.oid, c.log_table::pg_catalog.oid])
				  AND pg_catalog.pg_has_role(r.relowner, 'USAGE'));

GRANT SELECT ON medallion.captured_tables TO PUBLIC;
COMMENT ON VIEW medallion.captured_tables IS
'For every plain table whose changes medallion captures and that the current role owns (or whose change log it owns): the flows reading it, the changes they have not all read yet, and the size of the log';

/*
 * Internal, for tests only (EXECUTE revoked from PUBLIC): the C API of
 * src/capture.h, which flows call, as SQL functions.  The owner of a
 * capture is the owner of the flow's pipeline.
 */
CREATE FUNCTION medallion._capture_available(relid regclass, owner regrole)
RETURNS text
AS 'MODULE_PATHNAME', 'medallion_capture_available'
LANGUAGE C VOLATILE;
CREATE FUNCTION medallion._capture_ensure(relid regclass, flow_id integer)
RETURNS void
AS 'MODULE_PATHNAME', 'medallion_capture_ensure'
LANGUAGE C VOLATILE;
CREATE FUNCTION medallion._capture_begin(relid regclass, flow_id integer,
										 OUT log_table text, OUT from_id bigint,
										 OUT to_id bigint)
AS 'MODULE_PATHNAME', 'medallion_capture_begin'
LANGUAGE C VOLATILE;
CREATE FUNCTION medallion._capture_end(relid regclass, flow_id integer,
									   to_id bigint)
RETURNS void
AS 'MODULE_PATHNAME', 'medallion_capture_end'
LANGUAGE C VOLATILE;
CREATE FUNCTION medallion._capture_release(relid regclass, flow_id integer)
RETURNS void
AS 'MODULE_PATHNAME', 'medallion_capture_release'
LANGUAGE C VOLATILE;
REVOKE EXECUTE ON FUNCTION medallion._capture_available(regclass, regrole),
	medallion._capture_ensure(regclass, integer),
	medallion._capture_begin(regclass, integer),
	medallion._capture_end(regclass, integer, bigint),
	medallion._capture_release(regclass, integer) FROM PUBLIC;
/*
 * Internal state tables in medallion_state (issue 15, a gold schema BI tools
 * can browse).  The state tables of existing pipelines (an aggregate's
 * __groups, __values_<n> and __changes tables, an auto CDC target's
 * __change_feed) move from beside their targets into medallion_state, named
 * <schema>__<table> after their old schema and name, with their indexes and
 * sequences (renamed the same way, so that equal names of two schemas
 * cannot collide there).  A name over 63 bytes is shortened and made unique
 * rather than truncated by PostgreSQL: every lookup goes through the name
 * the definition records.  The definitions that name a moved table follow
 * (an aggregate's state tables and the change feed it reads, an auto CDC
 * flow's feed), and each records its flow's own state tables in
 * state_tables, as flows created by 0.2.0 do.  No object is created here:
 * the moved tables stay the pipeline owners' own, outside the extension.
 */
DO $move_state_tables$
DECLARE
	old_name text;
	rel regclass;
	nsp text;
	nsp_oid oid;
	part record;
	new_name text;
	moved jsonb := '{}';
	f record;
	d jsonb;
	own jsonb;
	k text;
	values_tables jsonb;
	n int;
BEGIN
	FOR old_name IN
		SELECT DISTINCT t.name
		  FROM medallion.flow fl,
			   LATERAL (SELECT fl.definition ->> 'state_table'
						 WHERE fl.flow_type = 'aggregate'
						UNION ALL
						SELECT fl.definition ->> 'groups_table'
						 WHERE fl.flow_type = 'aggregate'
						UNION ALL
						SELECT v
						  FROM pg_catalog.jsonb_array_elements_text(
								   CASE WHEN fl.flow_type = 'aggregate'
											 AND pg_catalog.jsonb_typeof(fl.definition -> 'values_tables') = 'array'
										THEN fl.definition -> 'values_tables'
										ELSE '[]'::jsonb END) AS e(v)
						UNION ALL
						SELECT fl.definition ->> 'change_feed'
						 WHERE fl.flow_type = 'auto_cdc') AS t(name)
		 WHERE t.name IS NOT NULL AND t.name <> ''
	LOOP
		rel := pg_catalog.to_regclass(old_name);
		CONTINUE WHEN rel IS NULL;
		SELECT n2.nspname, n2.oid INTO nsp, nsp_oid
		  FROM pg_catalog.pg_class c
		  JOIN pg_catalog.pg_namespace n2 ON n2.oid = c.relnamespace
		 WHERE c.oid = rel AND c.relkind = 'r';
		CONTINUE WHEN nsp IS NULL OR nsp = 'medallion_state';

		-- the table, its indexes and its sequences: each <schema>__<name>,
		-- unique in its schema and in medallion_state
		FOR part IN
			SELECT c.oid, c.relkind, c.relname
			  FROM pg_catalog.pg_class c
			 WHERE c.oid = rel
				OR c.oid IN (SELECT i.indexrelid FROM pg_catalog.pg_index i
							  WHERE i.indrelid = rel)
				OR c.oid IN (SELECT dep.objid FROM pg_catalog.pg_depend dep
							  WHERE dep.classid = 'pg_catalog.pg_class'::regclass
								AND dep.refclassid = 'pg_catalog.pg_class'::regclass
								AND dep.refobjid = rel
								AND dep.deptype IN ('a', 'i'))
				   AND c.relkind = 'S'
			 ORDER BY c.oid = rel DESC, c.relname
		LOOP
			new_name := pg_catalog.left(nsp || '__' || part.relname, 63);
			n := 0;
			WHILE EXISTS (SELECT FROM pg_catalog.pg_class c
						   WHERE c.relname = new_name
							 AND c.relnamespace IN ('medallion_state'::regnamespace::oid,
													nsp_oid)) LOOP
				n := n + 1;
				new_name := pg_catalog.left(nsp || '__' || part.relname,
											63 - pg_catalog.length('_' || n)) || '_' || n;
			END LOOP;
			EXECUTE pg_catalog.format('ALTER %s %I.%I RENAME TO %I',
									  CASE part.relkind WHEN 'i' THEN 'INDEX'
										   WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END,
									  nsp, part.relname, new_name);
			IF part.oid = rel THEN
				moved := moved || pg_catalog.jsonb_build_object(
					old_name, pg_catalog.format('%I.%I', 'medallion_state', new_name));
			END IF;
		END LOOP;
		EXECUTE pg_catalog.format('ALTER TABLE %s SET SCHEMA medallion_state', rel);
	END LOOP;

	FOR f IN
		SELECT fl.flow_id, fl.flow_type, fl.definition FROM medallion.flow fl
		 WHERE fl.flow_type IN ('aggregate', 'auto_cdc')
	LOOP
		d := f.definition;
		own := '[]';
		FOREACH k IN ARRAY ARRAY['state_table', 'groups_table', 'change_feed'] LOOP
			IF moved ? (d ->> k) THEN
				d := d || pg_catalog.jsonb_build_object(k, moved -> (d ->> k));
			END IF;
			-- an aggregate's change_feed is its source's, not its own
			IF d ->> k IS NOT NULL
			   AND (k <> 'change_feed') = (f.flow_type = 'aggregate') THEN
				own := own || pg_catalog.jsonb_build_array(d -> k);
			END IF;
		END LOOP;
		IF f.flow_type = 'aggregate'
		   AND pg_catalog.jsonb_typeof(d -> 'values_tables') = 'array' THEN
			SELECT pg_catalog.jsonb_agg(COALESCE(moved ->> e.v, e.v) ORDER BY e.o)
			  INTO values_tables
			  FROM pg_catalog.jsonb_array_elements_text(d -> 'values_tables')
				   WITH ORDINALITY AS e(v, o);
			d := d || pg_catalog.jsonb_build_object('values_tables',
													COALESCE(values_tables, '[]'::jsonb));
			own := own || COALESCE((SELECT pg_catalog.jsonb_agg(v)
									  FROM pg_catalog.jsonb_array_elements_text(values_tables) AS v
									 WHERE v <> ''), '[]'::jsonb);
		END IF;
		IF f.flow_type = 'aggregate' OR own <> '[]' THEN
			d := d || pg_catalog.jsonb_build_object('state_tables', own);
		END IF;
		UPDATE medallion.flow SET definition = d WHERE flow_id = f.flow_id;
	END LOOP;
END
$move_state_tables$;

/* appendreplace: add_append_flow's comment says what replace => true does. */
COMMENT ON FUNCTION medallion.add_append_flow(text, text, text, text, boolean, boolean) IS
'Add an append flow: query, a SELECT that reads one table of the pipeline and is fed only its new rows at each update, is appended to target_table, an existing bronze or silver table of the pipeline, its columns matched by name (target columns it lacks get their default or NULL); a silver target''s expectations and dedup keys apply. once => true: a backfill that runs in one update only, again after a full refresh or a run_pipeline refresh_tables naming the flow. replace => true replaces the append flow of that name (same target); the next update recomputes the target with every flow into it.';
