/*
 * Watching pipelines: a picture of a pipeline for its owner
 * (pipeline_graph, implemented in src/pipeline_graph.c), and how fresh each
 * table is, for any role that may read it (table_freshness).
 */

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
 WHERE pg_catalog.has_table_privilege(CURRENT_USER, f.target_table::pg_catalog.oid, 'SELECT')
   -- a table fed by several flows shows once, with its defining flow
   AND f.flow_id OPERATOR(pg_catalog.=)
	   (SELECT d.flow_id FROM medallion.flow d
		 WHERE d.target_table::pg_catalog.oid OPERATOR(pg_catalog.=) f.target_table::pg_catalog.oid
		 ORDER BY d.flow_type OPERATOR(pg_catalog.=) 'append', d.flow_id
		 LIMIT 1);

GRANT SELECT ON medallion.table_freshness TO PUBLIC;
COMMENT ON VIEW medallion.table_freshness IS
'For every pipeline table the current role may SELECT from: its flow, when that flow last changed it (the end of that update), the lag since, and the pipeline''s state';
