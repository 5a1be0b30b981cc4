/*
 * Bronze flows: objects from S3, ingested exactly once.
 */

CREATE FUNCTION medallion.create_bronze(pipeline_name text, target_table text,
										source_url text,
										secret_name text DEFAULT NULL,
										region text DEFAULT 'us-east-1',
										endpoint text DEFAULT NULL,
										format text DEFAULT 'json',
										options jsonb DEFAULT '{}',
										flow_name text DEFAULT NULL,
										replace boolean DEFAULT false)
RETURNS void
AS 'MODULE_PATHNAME', 'medallion_create_bronze'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION medallion.create_bronze(text, text, text, text, text, text, text, jsonb, text, boolean) IS
'Create a bronze table fed with the records of the objects under an s3:// URL';

CREATE FUNCTION medallion.skip_object(pipeline_name text, path text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'medallion_skip_object'
LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION medallion.skip_object(text, text) IS
'Mark an object (s3://bucket/key) as skipped so that it is never ingested; returns the ledger rows changed';

CREATE FUNCTION medallion.retry_object(pipeline_name text, path text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'medallion_retry_object'
LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION medallion.retry_object(text, text) IS
'Forget a failed or skipped object so that the next update ingests it again; returns the ledger rows removed';
