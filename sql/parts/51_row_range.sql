/*
 * The range of a delta (implemented in src/row_range.c): the condition the
 * updates use to read the rows a source gained since they last read it,
 * with a planner support function that estimates the range at its size
 * (the newest rows lie past the statistics of the last ANALYZE) and reads
 * it by an index range scan.
 */
CREATE FUNCTION medallion.row_id_in_range_support(internal)
RETURNS internal
AS 'MODULE_PATHNAME', 'medallion_row_id_in_range_support'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION medallion.row_id_in_range(row_id bigint, after bigint, up_to bigint)
RETURNS boolean
AS 'MODULE_PATHNAME', 'medallion_row_id_in_range'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
SUPPORT medallion.row_id_in_range_support;
COMMENT ON FUNCTION medallion.row_id_in_range(bigint, bigint, bigint) IS
'True when after < row_id <= up_to. Used by the updates to read a delta (the rows numbered after the position they last read); the planner estimates the range at up_to - after rows and reads it by an index on row_id.';
