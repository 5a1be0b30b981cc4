/*-------------------------------------------------------------------------
 *
 * guc.c
 *	  Definitions of every medallion configuration parameter.
 *
 * Only process-level knobs are GUCs; pipelines and flows are configured
 * through SQL functions and stored in tables.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/guc.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "miscadmin.h"
#include "utils/guc.h"

#include "guc.h"

int			medallion_s3_connect_timeout_ms = 10000;
int			medallion_s3_low_speed_limit = 1;
int			medallion_s3_low_speed_time = 30;
int			medallion_s3_max_attempts = 4;
int			medallion_s3_retry_base_ms = 200;
int			medallion_s3_retry_max_ms = 5000;
char	   *medallion_allowed_endpoints = NULL;
int			medallion_event_log_retention_min = 7 * 24 * 60;
int			medallion_event_log_max_rows = 100000;
int			medallion_change_feed_max_rows = 10000000;
int			medallion_change_log_max_rows = 10000000;

bool		medallion_enable_workers = true;
int			medallion_max_workers = 4;
int			medallion_launcher_naptime_ms = 1000;
int			medallion_max_workers_per_role = 0;
int			medallion_update_worker_linger_s = 60;
int			medallion_s3_first_byte_timeout_ms = 5000;
int			medallion_decompressed_bytes_cap_kb = 16 * 1024 * 1024;

/* S3 transport, endpoints, and what one object may inflate to. */
static void
guc_define_s3(void)
{
	DefineCustomIntVariable("medallion.s3_connect_timeout",
							"Time allowed to connect to S3.",
							NULL,
							&medallion_s3_connect_timeout_ms,
							10000, 100, 600000,
							PGC_SUSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("medallion.s3_low_speed_limit",
							"Transfer speed, in bytes per second, below which an S3 transfer counts as stalled.",
							NULL,
							&medallion_s3_low_speed_limit,
							1, 1, INT_MAX,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("medallion.s3_low_speed_time",
							"Time a transfer may stay below medallion.s3_low_speed_limit before it is aborted and retried.",
							NULL,
							&medallion_s3_low_speed_time,
							30, 1, 3600,
							PGC_SUSET,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("medallion.s3_max_attempts",
							"Attempts per S3 request before a transient error is reported.",
							NULL,
							&medallion_s3_max_attempts,
							4, 1, 100,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("medallion.s3_retry_base_delay",
							"Base delay of the exponential backoff between S3 retries.",
							NULL,
							&medallion_s3_retry_base_ms,
							200, 1, 60000,
							PGC_SUSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("medallion.s3_retry_max_delay",
							"Longest delay between two S3 retries.",
							NULL,
							&medallion_s3_retry_max_ms,
							5000, 1, 600000,
							PGC_SUSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomStringVariable("medallion.allowed_endpoints",
							   "Comma-separated list of S3 endpoints (scheme://host[:port]) that non-superusers may use.",
							   "Empty means AWS S3 only. Superusers may use any endpoint.",
							   &medallion_allowed_endpoints,
							   "",
							   PGC_SUSET,
							   GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("medallion.s3_first_byte_timeout",
							"Time an S3 request may wait for the first byte of the answer before it is retried on a new connection.",
							"Counted from when the request is sent; a transfer that has started answering is never cut by it. 0 disables it.",
							&medallion_s3_first_byte_timeout_ms,
							5000, 0, 3600000,
							PGC_SUSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("medallion.decompressed_bytes_cap",
							"Largest max_decompressed_bytes a bronze flow may have.",
							"A gzip object inflating beyond this is recorded as failed, whatever its flow's option.",
							&medallion_decompressed_bytes_cap_kb,
							16 * 1024 * 1024, 1024, INT_MAX,
							PGC_SUSET,
							GUC_UNIT_KB,
							NULL, NULL, NULL);
}

/* What a role can make medallion keep: events, change feeds, change logs. */
static void
guc_define_limits(void)
{
	DefineCustomIntVariable("medallion.event_log_retention",
							"How long events stay in medallion.event_log; 0 keeps them forever.",
							"Each update that writes events deletes its pipeline's events older than this.",
							&medallion_event_log_retention_min,
							7 * 24 * 60, 0, INT_MAX,
							PGC_SUSET,
							GUC_UNIT_MIN,
							NULL, NULL, NULL);

	DefineCustomIntVariable("medallion.event_log_max_rows",
							"Most events kept per pipeline in medallion.event_log; 0 keeps every event within the retention.",
							"Older events of a pipeline beyond this number are deleted, so that no role can fill the disk with events.",
							&medallion_event_log_max_rows,
							100000, 0, INT_MAX,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("medallion.change_feed_max_rows",
							"Most rows a change feed keeps for aggregates that have not read them; 0 means no limit.",
							"Past it the feed is emptied and its lagging readers recompute from the AUTO CDC target.",
							&medallion_change_feed_max_rows,
							10000000, 0, INT_MAX,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("medallion.change_log_max_rows",
							"Most changes a captured table's change log keeps for views that have not read them; 0 means no limit.",
							"Past it a writer of the table empties the log and the lagging views recompute from the table.",
							&medallion_change_log_max_rows,
							10000000, 0, INT_MAX,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);
}

/* Background workers. */
static void
guc_define_workers(void)
{
	DefineCustomBoolVariable("medallion.enable_workers",
							 "Run continuous pipelines in background workers.",
							 NULL,
							 &medallion_enable_workers,
							 true,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("medallion.max_workers",
							"Largest number of pipeline workers running at once, over all databases.",
							NULL,
							&medallion_max_workers,
							4, 1, 64,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("medallion.launcher_naptime",
							"How often the launcher looks for new databases and pipelines.",
							NULL,
							&medallion_launcher_naptime_ms,
							1000, 100, 60000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("medallion.max_workers_per_role",
							"Largest number of pipeline workers one role's pipelines hold at once; 0 means medallion.max_workers.",
							"Workers are shared anyway: after each update a worker gives its slot up while other pipelines wait.",
							&medallion_max_workers_per_role,
							0, 0, 64,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("medallion.update_worker_linger",
							"How long a run_pipeline worker waits, after its update, for the next run of the same pipeline; 0 means it exits at once.",
							"A waiting worker keeps its caches and statements warm; it needs shared_preload_libraries, and at most a quarter of max_worker_processes wait at once.",
							&medallion_update_worker_linger_s,
							60, 0, 3600,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);
}

/*
 * GucDefineAll registers the parameters, by family, and reserves the
 * "medallion." prefix (a misspelt medallion.* setting is an error).
 */
void
GucDefineAll(void)
{
	guc_define_s3();
	guc_define_limits();
	guc_define_workers();
	MarkGUCPrefixReserved("medallion");
}
