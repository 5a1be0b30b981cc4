/*
 * medallion install script.
 *
 * Assembled by the Makefile from the files of sql/parts; this first part creates
 * the configuration tables, the ledger and the event log, and the public
 * views over them.  Internal statements are schema-qualified so that no
 * search_path can redirect them.
 */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION medallion" to load this file. \quit

GRANT USAGE ON SCHEMA medallion TO PUBLIC;

/*
 * Internal state tables of flows (an aggregate's groups, a change feed, a
 * capture log) live in this schema, not beside the targets in the user's
 * schemas, so that GRANT SELECT ON ALL TABLES IN SCHEMA gold grants only
 * what analysts should see.  Each state table is owned by its pipeline's
 * owner; nobody may create objects here except through medallion.
 */
CREATE SCHEMA medallion_state;
REVOKE ALL ON SCHEMA medallion_state FROM PUBLIC;
GRANT USAGE ON SCHEMA medallion_state TO PUBLIC;

/*
 * Pipelines.  The owner is the role that created the pipeline; every flow
 * of it runs with that role's privileges and the search_path in force at
 * creation (search_path below).
 */
CREATE TABLE medallion.pipeline (
	pipeline_id serial PRIMARY KEY,
	pipeline_name text NOT NULL UNIQUE,
	owner regrole NOT NULL,
	mode text NOT NULL CHECK (mode IN ('triggered', 'continuous')),
	trigger_interval interval NOT NULL,
	search_path text NOT NULL,
	state text NOT NULL DEFAULT 'idle'
		CHECK (state IN ('idle', 'running', 'stopped', 'failed')),
	last_update_id bigint,
	last_update_start timestamptz,
	last_update_end timestamptz,
	last_error text,
	consecutive_failures integer NOT NULL DEFAULT 0,
	next_attempt_at timestamptz,
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	-- longest run of one flow step without a commit (0.2.0)
	max_step_duration interval NOT NULL DEFAULT '1 hour'
);

/*
 * Flows.  A flow is named after its target table; an update runs the flows
 * of a pipeline in dependency order (a flow after the flows whose targets
 * it reads), whatever their creation order (src/flow_order.c).
 */
CREATE TABLE medallion.flow (
	flow_id serial PRIMARY KEY,
	pipeline_id integer NOT NULL
		REFERENCES medallion.pipeline ON DELETE CASCADE,
	flow_name text NOT NULL UNIQUE,
	flow_type text NOT NULL
		CHECK (flow_type IN ('bronze', 'silver', 'auto_cdc', 'aggregate', 'matview',
							 'materialized_view', 'auto_cdc_snapshot', 'append')),
	target_table regclass NOT NULL,
	source_table regclass,
	source text,
	definition jsonb NOT NULL DEFAULT '{}',
	watermark bigint NOT NULL DEFAULT 0,
	flow_state jsonb NOT NULL DEFAULT '{}',
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
CREATE INDEX ON medallion.flow (pipeline_id);

/* Silver expectations (see add_expectation). */
CREATE TABLE medallion.expectation (
	flow_id integer NOT NULL REFERENCES medallion.flow ON DELETE CASCADE,
	expectation_name text NOT NULL,
	condition text NOT NULL,
	on_violation text NOT NULL CHECK (on_violation IN ('warn', 'drop', 'fail')),
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	PRIMARY KEY (flow_id, expectation_name)
);

/*
 * The bronze ledger: one row per object version ingested (or recorded as
 * failed or skipped).  An object's row here commits in the same transaction
 * as its rows in the bronze table.
 */
CREATE TABLE medallion.ingested_file (
	flow_id integer NOT NULL REFERENCES medallion.flow ON DELETE CASCADE,
	path text NOT NULL,
	etag text NOT NULL,
	size bigint NOT NULL,
	last_modified timestamptz,
	row_count bigint NOT NULL DEFAULT 0,
	rescued_count bigint NOT NULL DEFAULT 0,
	ingested_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	status text NOT NULL DEFAULT 'ingested'
		CHECK (status IN ('ingested', 'failed', 'skipped')),
	error text,
	PRIMARY KEY (flow_id, path, etag)
);

/* Credentials for S3.  Never readable by ordinary roles. */
CREATE TABLE medallion.secret (
	secret_name text PRIMARY KEY,
	owner regrole NOT NULL,
	access_key_id text NOT NULL,
	secret_access_key text NOT NULL,
	session_token text,
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
REVOKE ALL ON medallion.secret FROM PUBLIC;

/* The event log of every update. */
CREATE TABLE medallion.event (
	id bigserial PRIMARY KEY,
	ts timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
	pipeline_id integer,
	pipeline_name text,
	owner regrole,
	update_id bigint,
	flow_name text,
	event_type text NOT NULL,
	level text NOT NULL,
	message text,
	details jsonb
);
CREATE INDEX ON medallion.event (pipeline_name, id);
CREATE INDEX ON medallion.event (pipeline_id, ts);
REVOKE ALL ON medallion.event FROM PUBLIC;

CREATE SEQUENCE medallion.update_id_seq;

/*
 * Definitions and the ledger are dumped with the database, so that a
 * restored database resumes where it was.  Secrets are deliberately not
 * dumped: re-create them after a restore.  The event log is not dumped.
 */
SELECT pg_catalog.pg_extension_config_dump('medallion.pipeline', '');
SELECT pg_catalog.pg_extension_config_dump('medallion.pipeline_pipeline_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('medallion.flow', '');
SELECT pg_catalog.pg_extension_config_dump('medallion.flow_flow_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('medallion.expectation', '');
SELECT pg_catalog.pg_extension_config_dump('medallion.ingested_file', '');

/*
 * The tables themselves are not readable by ordinary roles: errors and
 * definitions can hold other roles' data.  Each role reads its own rows
 * through the views below.
 */
REVOKE ALL ON medallion.pipeline, medallion.flow, medallion.expectation,
	medallion.ingested_file FROM PUBLIC;

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

/* Public views: each role sees the pipelines of the roles it belongs to. */
CREATE VIEW medallion.pipelines AS
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

CREATE VIEW medallion.flows AS
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

CREATE VIEW medallion.ingested_files AS
SELECT p.pipeline_name,
	   f.flow_name,
	   i.path,
	   i.etag,
	   i.size,
	   i.last_modified,
	   i.row_count,
	   i.rescued_count,
	   i.ingested_at,
	   i.status,
	   i.error
  FROM medallion.ingested_file i
  JOIN medallion.flow f USING (flow_id)
  JOIN medallion.pipeline p USING (pipeline_id)
 WHERE pg_catalog.pg_has_role(p.owner, 'USAGE');

CREATE VIEW medallion.event_log AS
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

CREATE VIEW medallion.secrets AS
SELECT s.secret_name,
	   s.owner,
	   s.session_token IS NOT NULL AS has_session_token,
	   s.created_at
  FROM medallion.secret s
 WHERE pg_catalog.pg_has_role(s.owner, 'USAGE');

GRANT SELECT ON medallion.pipelines, medallion.flows, medallion.ingested_files,
	medallion.event_log, medallion.secrets TO PUBLIC;

COMMENT ON VIEW medallion.pipelines IS 'Pipelines visible to the current role, with their state, last update, backlog, lag and rows per layer (estimated from the statistics)';

/*
 * One text report of a pipeline's health, for a DBA at a psql prompt: the
 * state, the last update and the last one that did work, totals, errors,
 * backlog, and each flow with the exact row count of its table (counted as
 * the owner by flow_row_count; the statistics' estimate doubles after a
 * full refresh).  A triggered pipeline has no interval to show.
 */
CREATE FUNCTION medallion.pipeline_report(pipeline_name text)
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
COMMENT ON VIEW medallion.flows IS 'Flows of the pipelines visible to the current role';
COMMENT ON VIEW medallion.ingested_files IS 'Bronze ledger: every S3 object version ingested, failed or skipped';
COMMENT ON VIEW medallion.event_log IS 'Events of every pipeline update: start, per-flow progress, end, errors, retries';
COMMENT ON VIEW medallion.secrets IS 'Names of the S3 secrets visible to the current role (never their key material)';
