/*
 * Restores.  A pipeline row that create_pipeline did not write (it writes
 * created_at = now()) comes from a dump being restored: a running pipeline
 * comes back stopped (continuous) or idle (triggered), so that no worker
 * ingests into a database whose restore has not finished, nor before the
 * owner has created the secrets again (secrets are not dumped); the owner
 * runs start_pipeline.  ENABLE ALWAYS: also under
 * session_replication_role = replica.
 */
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
