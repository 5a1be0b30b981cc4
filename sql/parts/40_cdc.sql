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
											   ignore_null_updates boolean DEFAULT false,
											   replace boolean DEFAULT false)
RETURNS void
AS 'MODULE_PATHNAME', 'medallion_create_auto_cdc_flow'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION medallion.create_auto_cdc_flow(text, text, text, text[], text, int,
												   text, text, text[], text[], text[],
												   text[], boolean, boolean) IS
'Create an AUTO CDC flow: apply the change events of source_table to a new SCD type 1 or 2 table, in sequence_by order whatever their arrival order';

CREATE FUNCTION medallion.auto_cdc_apply(target_table regclass)
RETURNS bigint
AS 'MODULE_PATHNAME', 'medallion_auto_cdc_apply'
LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION medallion.auto_cdc_apply(regclass) IS
'Apply the source rows an AUTO CDC flow has not applied yet; returns the number of change events applied';
