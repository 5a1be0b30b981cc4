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
 * follow a pipeline handed to another owner), pipeline_report with exact
 * row counts and the last update that did work, the workers of a role's
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
 * One text report of a pipeline's health, for a DBA at a psql prompt: the
 * state, the last update and the last one that did work, totals, errors,
 * backlog, and each flow with the exact row count of its table (counted as
 * the owner by flow_row_count; the statistics' estimate doubles after a
 * full refresh).  A triggered pipeline has no interval to show.
 */
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
		lines := lines || format('  %-8s %-40s %s rows, last run %s: %s rows written, %s dropped%s',
			f.flow_type, f.flow_name, row_count,
			COALESCE(flow_ts::text, 'never'),
			COALESCE(flow_details->>'rows_written', '0'),
			COALESCE(flow_details->>'rows_dropped', '0'),
			CASE f.definition->>'maintenance'
				 WHEN 'delta' THEN ', maintained by deltas'
				 WHEN 'recompute' THEN ', touched groups recomputed'
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
		lines := lines || format('  %-8s %-40s %s rows, last run %s: %s rows written, %s dropped%s',
			f.flow_type, f.flow_name, row_count,
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
