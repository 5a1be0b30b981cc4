/*-------------------------------------------------------------------------
 *
 * bronze_internal.h
 *	  What the files of the bronze family share: a bronze flow's
 *	  definition (bronze_definition.c), the objects chosen for an update,
 *	  ingesting one of them (bronze_object.c) and a batch of them in
 *	  parallel (bronze_parallel.c).  Not for other modules.
 *
 * The includes go one way: bronze.c (the flow) uses the three others,
 * bronze_parallel.c uses bronze_object.c and bronze_definition.c, and
 * bronze_object.c uses bronze_definition.c.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/bronze_internal.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef MEDALLION_BRONZE_INTERNAL_H
#define MEDALLION_BRONZE_INTERNAL_H

#include "postgres.h"

#include "flow.h"
#include "record_reader.h"
#include "s3_client.h"

/* The options of create_bronze, with their defaults. */
typedef struct BronzeOptions
{
	char	   *path_glob;
	int64		max_files_per_batch;
	int64		max_bytes_per_batch;	/* 0: no limit */
	bool		include_existing_files;
	bool		has_modified_after;
	TimestampTz modified_after;
	bool		allow_overwrites;
	int			max_parallel_objects;
	bool		incremental_listing;
	int64		full_listing_interval_ms;
	int64		max_record_bytes;
	int64		max_decompressed_bytes; /* of one gzip object */
	int			max_expansion_ratio;	/* of one gzip object */
	int64		max_batches_per_update; /* 0: no limit */
} BronzeOptions;

/* A flow's definition, as stored in medallion.flow.definition. */
typedef struct BronzeDefinition
{
	char	   *bucket;
	char	   *prefix;
	char	   *secret_name;
	char	   *region;
	char	   *endpoint;
	RecordFormat format;
	BronzeOptions options;
} BronzeDefinition;

/* An object chosen for ingestion. */
typedef struct Candidate
{
	S3Object	object;
	char	   *path;			/* s3://bucket/key */
} Candidate;

/* What ingesting a set of objects did. */
typedef struct BronzeObjectStats
{
	int64		rows;
	int			objects_ingested;
	int			objects_failed;
	bool		changed;
	bool		backlog;		/* an object changed after listing */
} BronzeObjectStats;

/* bronze_definition.c */

/* Read a bronze flow's stored definition. */
extern void BronzeLoadDefinition(FlowDesc *flow, BronzeDefinition *definition);

/*
 * The server-wide cap on max_decompressed_bytes, in bytes: checked when a
 * flow is created, and applied at ingestion, so that lowering it also
 * limits the flows created before.
 */
extern int64 BronzeDecompressedBytesCap(void);

/* bronze_object.c */

/*
 * Where BronzeRetryToEventLog collects retries.  The S3 client calls it in
 * whatever memory context is current: a listing page's context (deleted
 * when the listing ends) or the object context (reset after each object).
 * So the list is extended in the given context, one that outlives the
 * flow's objects: the caller writes the retries as events at the end.
 */
typedef struct BronzeRetryLog
{
	List	  **retries;
	MemoryContext context;
} BronzeRetryLog;

/* An S3RetryCallback; arg is a BronzeRetryLog. */
extern void BronzeRetryToEventLog(const char *operation, int attempt,
								  long delay_ms, const char *reason,
								  void *arg);

/* The file name of an object key: what follows its last slash. */
extern const char *BronzeFileName(const char *key);

/*
 * Download one object and ingest it in its own transaction, together with
 * its ledger row; an object that cannot be read is recorded as failed.
 * Must be called outside a transaction; object_context is reset by the
 * caller afterwards.  Errors that concern the flow, not the object, are
 * raised.  S3 retries are appended to *retries.
 */
extern void BronzeIngestCandidate(FlowContext *context, FlowDesc *flow,
								  BronzeDefinition *definition,
								  S3Location *location,
								  S3Credentials *credentials,
								  Candidate *candidate,
								  MemoryContext object_context,
								  BronzeObjectStats *stats, List **retries);

/* bronze_parallel.c */

/*
 * Ingest the objects of batch with up to max_parallel_objects processes
 * (this one and dynamic background workers), each taking the next object
 * not yet taken.  Exactly once still holds: each object commits with its
 * ledger row, and no object is given to two processes.
 */
extern void BronzeIngestInParallel(FlowContext *context, FlowDesc *flow,
								   BronzeDefinition *definition,
								   S3Location *location,
								   S3Credentials *credentials, List *batch,
								   BronzeObjectStats *stats, List **retries);

#endif							/* MEDALLION_BRONZE_INTERNAL_H */
