/*
 * Gold: AUTO CDC FROM SNAPSHOT flows, whose changes come from diffing
 * consecutive snapshots of a source.
 */

CREATE FUNCTION medallion.create_auto_cdc_from_snapshot_flow(pipeline_name text,
															 target_table text,
															 source_table text,
															 keys text[],
															 stored_as_scd_type int DEFAULT 1,
															 snapshot_version text DEFAULT NULL,
															 column_list text[] DEFAULT NULL,
															 except_column_list text[] DEFAULT NULL,
															 track_history_column_list text[] DEFAULT NULL,
															 track_history_except_column_list text[] DEFAULT NULL,
															 replace boolean DEFAULT false)
RETURNS void
AS 'MODULE_PATHNAME', 'medallion_create_auto_cdc_from_snapshot_flow'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION medallion.create_auto_cdc_from_snapshot_flow(text, text, text, text[], int,
																 text, text[], text[], text[],
																 text[], boolean) IS
'Create an AUTO CDC FROM SNAPSHOT flow: keep a new SCD type 1 or 2 table by diffing consecutive snapshots of source_table on keys: the whole source at each update, or the snapshots snapshot_version splits it into, in ascending version order';
