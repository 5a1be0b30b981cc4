
/*
 * DROP EXTENSION medallion without CASCADE is refused while pipelines exist
 * (it would forget every role's pipelines, ledgers and secrets at once).
 */
CREATE FUNCTION medallion.guard_drop_extension()
RETURNS event_trigger
AS 'MODULE_PATHNAME', 'medallion_guard_drop_extension'
LANGUAGE C;
COMMENT ON FUNCTION medallion.guard_drop_extension() IS
'Event trigger: refuses DROP EXTENSION medallion without CASCADE while pipelines exist';

CREATE EVENT TRIGGER medallion_drop_guard ON ddl_command_start
	WHEN TAG IN ('DROP EXTENSION')
	EXECUTE FUNCTION medallion.guard_drop_extension();
