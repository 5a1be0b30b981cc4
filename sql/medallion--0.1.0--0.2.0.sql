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
