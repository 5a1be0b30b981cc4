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
