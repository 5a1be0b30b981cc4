/*
 * medallion 0.1.0 install script, frozen as released.
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
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);

/*
 * Flows.  A flow is named after its target table; flows of a pipeline run
 * in flow_id order, which is a topological order because a flow's source
 * must exist when the flow is created.
 */
CREATE TABLE medallion.flow (
	flow_id serial PRIMARY KEY,
	pipeline_id integer NOT NULL
		REFERENCES medallion.pipeline ON DELETE CASCADE,
	flow_name text NOT NULL UNIQUE,
	flow_type text NOT NULL
		CHECK (flow_type IN ('bronze', 'silver', 'auto_cdc', 'aggregate', 'matview')),
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

/* Public views: each role sees the pipelines of the roles it belongs to. */
CREATE VIEW medallion.pipelines AS
SELECT p.pipeline_name,
	   p.owner,
	   p.mode,
	   p.trigger_interval,
	   -- a triggered update whose worker was stopped (a cancelled
	   -- run_pipeline) holds no update lock any more: it is not running
	   CASE WHEN p.mode OPERATOR(pg_catalog.=) 'triggered'
				 AND p.state OPERATOR(pg_catalog.=) 'running'
				 AND NOT EXISTS (
					SELECT FROM pg_catalog.pg_locks l
					 WHERE l.locktype OPERATOR(pg_catalog.=) 'advisory'
					   AND l.database OPERATOR(pg_catalog.=)
						   (SELECT d.oid FROM pg_catalog.pg_database d
							 WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database())
					   AND l.classid OPERATOR(pg_catalog.=) 1296385100::pg_catalog.oid
					   AND l.objid OPERATOR(pg_catalog.=) p.pipeline_id::pg_catalog.oid
					   AND l.objsubid OPERATOR(pg_catalog.=) 3
					   AND l.granted)
			THEN 'idle' ELSE p.state END AS state,
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
	   p.created_at
  FROM medallion.pipeline p
  LEFT JOIN LATERAL (
	SELECT pg_catalog.count(*) AS flow_count,
		   pg_catalog.sum(COALESCE((fl.flow_state->>'backlog_objects')::bigint, 0))::bigint
		   AS backlog_objects,
		   pg_catalog.sum(COALESCE((fl.flow_state->>'backlog_bytes')::bigint, 0))::bigint
		   AS backlog_bytes,
		   pg_catalog.min((fl.flow_state->>'backlog_oldest')::timestamptz)
		   FILTER (WHERE (fl.flow_state->>'backlog_objects')::bigint > 0) AS backlog_oldest,
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

CREATE VIEW medallion.flows AS
SELECT p.pipeline_name,
	   f.flow_name,
	   f.flow_type,
	   f.source,
	   f.target_table,
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
	   e.pipeline_name,
	   e.flow_name,
	   e.event_type,
	   e.level,
	   e.message,
	   e.details,
	   e.update_id
  FROM medallion.event e
 WHERE e.owner IS NULL AND pg_catalog.pg_has_role('pg_read_all_stats', 'USAGE')
	OR e.owner IS NOT NULL AND pg_catalog.pg_has_role(e.owner, 'USAGE');

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
 * One text report of a pipeline's health, for a DBA at a psql prompt.
 */
CREATE FUNCTION medallion.pipeline_report(pipeline_name text)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
-- search_path is pinned, so plain operators are safe here
AS $report$
SELECT pg_catalog.concat_ws(E'\n',
	pg_catalog.format('pipeline %s (%s, every %s, owner %s): %s',
		p.pipeline_name, p.mode, p.trigger_interval, p.owner, pg_catalog.upper(p.state)),
	pg_catalog.format('last update: %s, took %s%s',
		COALESCE(p.last_update_end::text, 'never'),
		COALESCE(p.last_update_duration::text, '-'),
		CASE WHEN p.consecutive_failures > 0
			 THEN pg_catalog.format(', %s failure(s) in a row', p.consecutive_failures) END),
	CASE WHEN p.last_error IS NOT NULL THEN 'last error: ' || p.last_error END,
	pg_catalog.format('backlog: %s object(s), %s, lag %s',
		COALESCE(p.backlog_objects, 0),
		pg_catalog.pg_size_pretty(COALESCE(p.backlog_bytes, 0)),
		COALESCE(p.lag::text, 'none')),
	(SELECT pg_catalog.string_agg(pg_catalog.format('  %-8s %-40s watermark %s, about %s rows, last %s: %s rows written, %s dropped%s',
				f.flow_type, f.flow_name, f.watermark,
				pg_catalog.pg_stat_get_live_tuples(f.target_table),
				COALESCE(e.ts::text, 'never'),
				COALESCE(e.details->>'rows_written', '0'),
				COALESCE(e.details->>'rows_dropped', '0'),
				CASE f.definition->>'maintenance'
					 WHEN 'delta' THEN ', maintained by deltas'
					 WHEN 'recompute' THEN ', touched groups recomputed'
				END),
			E'\n' ORDER BY f.created_at)
	   FROM medallion.flows f
	   LEFT JOIN LATERAL (SELECT ev.ts, ev.details FROM medallion.event_log ev
						   WHERE ev.pipeline_name = f.pipeline_name
							 AND ev.flow_name = f.flow_name
							 AND ev.event_type = 'flow_progress'
						   ORDER BY ev.id DESC LIMIT 1) e ON true
	  WHERE f.pipeline_name = p.pipeline_name),
	(SELECT pg_catalog.format('errors in the last hour: %s', pg_catalog.count(*))
	   FROM medallion.event_log ev
	  WHERE ev.pipeline_name = p.pipeline_name
		AND ev.event_type = 'error'
		AND ev.ts > pg_catalog.now() - interval '1 hour'))
  FROM medallion.pipelines p
 WHERE p.pipeline_name = $1
$report$;
COMMENT ON FUNCTION medallion.pipeline_report(text) IS 'A text summary of a pipeline''s health: state, last update, errors, backlog and lag, and each flow''s progress';
COMMENT ON VIEW medallion.flows IS 'Flows of the pipelines visible to the current role';
COMMENT ON VIEW medallion.ingested_files IS 'Bronze ledger: every S3 object version ingested, failed or skipped';
COMMENT ON VIEW medallion.event_log IS 'Events of every pipeline update: start, per-flow progress, end, errors, retries';
COMMENT ON VIEW medallion.secrets IS 'Names of the S3 secrets visible to the current role (never their key material)';
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
										  trigger_interval interval DEFAULT '1 second')
RETURNS void
AS 'MODULE_PATHNAME', 'medallion_create_pipeline'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION medallion.create_pipeline(text, text, interval) IS
'Create a pipeline owned by the current role: triggered (run_pipeline) or continuous (background workers)';

CREATE FUNCTION medallion.drop_pipeline(pipeline_name text,
										drop_tables boolean DEFAULT false)
RETURNS void
AS 'MODULE_PATHNAME', 'medallion_drop_pipeline'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION medallion.drop_pipeline(text, boolean) IS
'Drop a pipeline, its flows and ledger; with drop_tables, its tables too';

CREATE FUNCTION medallion.run_pipeline(pipeline_name text,
									   full_refresh boolean DEFAULT false)
RETURNS TABLE (flow_name text, flow_type text, rows_read bigint,
			   rows_written bigint, rows_dropped bigint, duration interval)
AS 'MODULE_PATHNAME', 'medallion_run_pipeline'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION medallion.run_pipeline(text, boolean) IS
'Run one update of a pipeline now: every flow once, upstream first';

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
/*
 * Bronze flows: objects from S3, ingested exactly once.
 */

CREATE FUNCTION medallion.create_bronze(pipeline_name text, target_table text,
										source_url text,
										secret_name text DEFAULT NULL,
										region text DEFAULT 'us-east-1',
										endpoint text DEFAULT NULL,
										format text DEFAULT 'json',
										options jsonb DEFAULT '{}')
RETURNS void
AS 'MODULE_PATHNAME', 'medallion_create_bronze'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION medallion.create_bronze(text, text, text, text, text, text, text, jsonb) IS
'Create a bronze table fed with the records of the objects under an s3:// URL';

CREATE FUNCTION medallion.skip_object(pipeline_name text, path text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'medallion_skip_object'
LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION medallion.skip_object(text, text) IS
'Mark an object (s3://bucket/key) as skipped so that it is never ingested; returns the ledger rows changed';

CREATE FUNCTION medallion.retry_object(pipeline_name text, path text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'medallion_retry_object'
LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION medallion.retry_object(text, text) IS
'Forget a failed or skipped object so that the next update ingests it again; returns the ledger rows removed';
-- medallion.try_cast: text to any type, NULL instead of an error on bad input
-- (implemented in src/try_cast.c).
--
-- Not STRICT: target_type is normally a typed NULL such as NULL::int, and a
-- NULL value must give NULL.  STABLE, not IMMUTABLE: like a cast, the result
-- for date/time types depends on TimeZone and DateStyle, and 'now' or
-- 'today' read the transaction start time.
CREATE FUNCTION medallion.try_cast(value text, target_type anyelement)
RETURNS anyelement
AS 'MODULE_PATHNAME', 'medallion_try_cast'
LANGUAGE C STABLE PARALLEL SAFE;

COMMENT ON FUNCTION medallion.try_cast(text, anyelement) IS
'Converts value to the type of target_type (e.g. try_cast(data->>''qty'', NULL::int)) exactly as value::type would, but returns NULL instead of raising an error when value is not a valid input for the type (data exceptions and domain constraint violations); other errors are raised. NULL value gives NULL.';
/*
 * Silver flows and expectations (implemented in src/silver.c and
 * src/expectations.c).
 */

CREATE FUNCTION medallion.create_silver(pipeline_name text, target_table text,
										query text,
										dedup_keys text[] DEFAULT NULL,
										quarantine boolean DEFAULT false)
RETURNS void
AS 'MODULE_PATHNAME', 'medallion_create_silver'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION medallion.create_silver(text, text, text, text[], boolean) IS
'Create a silver flow: target_table gets a leading _row_id and the columns of query, a SELECT that reads one table of the pipeline and is fed only its new rows at each update. Rows whose dedup_keys equal those of a row already written (or earlier in the same update) are not written; rows with a NULL key are never duplicates. With quarantine, rows dropped by expectations go to <target_table>_quarantine.';

CREATE FUNCTION medallion.add_expectation(target_table text,
										  expectation_name text,
										  condition text,
										  on_violation text DEFAULT 'warn')
RETURNS void
AS 'MODULE_PATHNAME', 'medallion_add_expectation'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION medallion.add_expectation(text, text, text, text) IS
'Add a named expectation to a silver flow, from its next update on: a boolean condition over the target''s columns with CHECK semantics (only false violates; NULL passes). on_violation: warn (keep and count), drop (do not write, count, quarantine) or fail (abort the flow''s update; nothing of the batch is written).';

CREATE FUNCTION medallion.drop_expectation(target_table text,
										   expectation_name text)
RETURNS void
AS 'MODULE_PATHNAME', 'medallion_drop_expectation'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION medallion.drop_expectation(text, text) IS
'Remove an expectation from a silver flow, from its next update on';

/*
 * Totals of every expectation over all updates, from the flow_progress
 * events of the flow (matched by pipeline id, so a pipeline dropped and
 * created again under the same name starts from zero).  An expectation that
 * has not run yet shows zeros.  Metrics are matched by expectation name: an
 * expectation dropped and added again under the same name continues its
 * totals.
 */
CREATE VIEW medallion.expectation_metrics AS
SELECT p.pipeline_name,
	   f.flow_name,
	   x.expectation_name,
	   x.on_violation,
	   COALESCE(m.passed_records, 0)::bigint AS passed_records,
	   COALESCE(m.failed_records, 0)::bigint AS failed_records
  FROM medallion.expectation x
  JOIN medallion.flow f USING (flow_id)
  JOIN medallion.pipeline p USING (pipeline_id)
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

GRANT SELECT ON medallion.expectation_metrics TO PUBLIC;
COMMENT ON VIEW medallion.expectation_metrics IS
'Passed and failed records of every silver expectation, summed over all updates (zeros before the first run)';
/*
 * Gold: AUTO CDC flows into SCD type 1 or type 2 targets.
 */

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
											   ignore_null_updates boolean DEFAULT false)
RETURNS void
AS 'MODULE_PATHNAME', 'medallion_create_auto_cdc_flow'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION medallion.create_auto_cdc_flow(text, text, text, text[], text, int,
												   text, text, text[], text[], text[],
												   text[], boolean) IS
'Create an AUTO CDC flow: apply the change events of source_table to a new SCD type 1 or 2 table, in sequence_by order whatever their arrival order';

CREATE FUNCTION medallion.auto_cdc_apply(target_table regclass)
RETURNS bigint
AS 'MODULE_PATHNAME', 'medallion_auto_cdc_apply'
LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION medallion.auto_cdc_apply(regclass) IS
'Apply the source rows an AUTO CDC flow has not applied yet; returns the number of change events applied';
/*
 * Gold aggregates, maintained incrementally, and materialized views attached
 * to a pipeline (implemented in src/aggregates.c).
 */

CREATE FUNCTION medallion.create_aggregate(pipeline_name text,
										   target_table text,
										   source_table text,
										   group_by text[],
										   aggregates text[],
										   filter text DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'medallion_create_aggregate'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION medallion.create_aggregate(text, text, text, text[], text[], text) IS
'Create an aggregate flow: target_table is kept equal, after every update, to SELECT <group_by>, <aggregates> FROM source_table WHERE <filter> GROUP BY <group_by>, recomputing only the groups whose input rows changed. Each item is one expression, optionally with AS name; group_by and filter must be immutable. source_table is a table of the pipeline or a table with a _row_id identity column.';

CREATE FUNCTION medallion.add_materialized_view(pipeline_name text,
												matview regclass)
RETURNS void
AS 'MODULE_PATHNAME', 'medallion_add_materialized_view'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION medallion.add_materialized_view(text, regclass) IS
'Attach a materialized view to a pipeline: each update refreshes it (CONCURRENTLY when it is populated and has a unique index on plain columns) when a pipeline table it reads, directly or through views, changed in that update. Add it after the flows it reads: flows run in creation order.';

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
