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
