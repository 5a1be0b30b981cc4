/*
 * Silver flows and expectations (implemented in src/silver.c and
 * src/expectations.c).
 */

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
 * events of each flow that writes the expectation's target (the silver flow
 * and the append flows into its table, one row each), matched by pipeline
 * id, so a pipeline dropped and created again under the same name starts
 * from zero.  An expectation that has not run yet shows zeros.  Metrics
 * are matched by expectation name: an expectation dropped and added again
 * under the same name continues its totals.
 */
CREATE VIEW medallion.expectation_metrics AS
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

GRANT SELECT ON medallion.expectation_metrics TO PUBLIC;
COMMENT ON VIEW medallion.expectation_metrics IS
'Passed and failed records of every silver expectation, summed over all updates (zeros before the first run)';
