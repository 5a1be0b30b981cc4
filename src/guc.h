/*-------------------------------------------------------------------------
 *
 * guc.h
 *	  The configuration parameters (GUCs) of medallion.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/guc.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef MEDALLION_GUC_H
#define MEDALLION_GUC_H

/* S3 transport */
extern int	medallion_s3_connect_timeout_ms;
extern int	medallion_s3_low_speed_limit;	/* bytes per second */
extern int	medallion_s3_low_speed_time;	/* seconds */
extern int	medallion_s3_max_attempts;
extern int	medallion_s3_retry_base_ms;
extern int	medallion_s3_retry_max_ms;
extern char *medallion_allowed_endpoints;

/* event log and change feeds */
extern int	medallion_event_log_retention_min;
extern int	medallion_event_log_max_rows;
extern int	medallion_change_feed_max_rows;
extern int	medallion_change_log_max_rows;

/* background workers */
extern bool medallion_enable_workers;
extern int	medallion_max_workers;
extern int	medallion_launcher_naptime_ms;
extern int	medallion_max_workers_per_role;
extern int	medallion_update_worker_linger_s;

/* S3 transport, continued */
extern int	medallion_s3_first_byte_timeout_ms;

/* decompression bombs: the cap on a bronze flow's max_decompressed_bytes */
extern int	medallion_decompressed_bytes_cap_kb;

extern void GucDefineAll(void);

#endif							/* MEDALLION_GUC_H */
