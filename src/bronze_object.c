/*-------------------------------------------------------------------------
 *
 * bronze_object.c
 *	  Ingesting one S3 object into a bronze table, exactly once.
 *
 * The object is first downloaded, with no transaction open, into an
 * anonymous spool file; then one short transaction reads the spool file,
 * inserts its records in batches whose memory is reset, and inserts the
 * object's row in the ledger (medallion.ingested_file).  An object that
 * cannot be read (corrupt gzip, binary content, a decompression bomb) is
 * recorded in the ledger as failed, with an error event, so that the
 * objects after it are still ingested.
 *
 * Used by the flow (bronze.c) for a sequential batch and by the parallel
 * ingestion (bronze_parallel.c) in every process; it calls neither.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/bronze_object.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <unistd.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/file_perm.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/fd.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "bronze_internal.h"
#include "bulk_insert.h"
#include "catalog.h"
#include "record_reader.h"
#include "s3_client.h"
#include "spi_util.h"

/* columns of a bronze table, in order */
#define BRONZE_COLUMN_COUNT 8

/* records inserted between two resets of the record memory */
#define RECORDS_PER_BATCH 1000

/* BronzeFileName: see bronze_internal.h. */
const char *
BronzeFileName(const char *key)
{
	const char *slash = strrchr(key, '/');

	return slash ? slash + 1 : key;
}

/* close a spool file when its memory context goes away, even on error */
static void
close_spool_file(void *arg)
{
	int		   *fd = arg;

	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/*
 * An anonymous file under the data directory's temporary directory: it is
 * unlinked at once, so nothing is left behind even after a crash.
 */
static int
open_spool_file(void)
{
	char		path[MAXPGPATH];
	int		   *fd = palloc(sizeof(int));
	MemoryContextCallback *callback = palloc(sizeof(MemoryContextCallback));

	(void) MakePGDirectory("base/" PG_TEMP_FILES_DIR);
	snprintf(path, sizeof(path), "base/%s/%smedallion.%d.XXXXXX",
			 PG_TEMP_FILES_DIR, PG_TEMP_FILE_PREFIX, MyProcPid);
	*fd = mkstemp(path);
	if (*fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create temporary file \"%s\": %m", path)));
	unlink(path);
	callback->func = close_spool_file;
	callback->arg = fd;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, callback);
	return *fd;
}

/*
 * Insert the records of the downloaded object and its ledger row, in the
 * current transaction.  Returns the counts through the arguments.
 */
static void
ingest_spooled_object(FlowContext *context, FlowDesc *flow,
					  BronzeDefinition *definition, Candidate *candidate,
					  int fd, MemoryContext object_context,
					  int64 *row_count, int64 *rescued_count)
{
	BulkInserter *inserter;
	RecordReader *reader;
	MemoryContext batch_context;
	MemoryContext old_context;
	OwnerContext owner;
	Datum		values[BRONZE_COLUMN_COUNT];
	bool		nulls[BRONZE_COLUMN_COUNT];
	Record		record;
	int			in_batch = 0;
	Oid			types[8] = {INT4OID, TEXTOID, TEXTOID, INT8OID, TIMESTAMPTZOID,
	INT8OID, INT8OID, TEXTOID};
	Datum		ledger_values[8];
	char		ledger_nulls[8] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};

	*row_count = 0;
	*rescued_count = 0;

	FlowEnterOwnerContext(context->pipeline, &owner);
	old_context = MemoryContextSwitchTo(object_context);
	inserter = BulkInsertBegin(flow->target_relid, true);
	if (RelationGetDescr(BulkInsertRelation(inserter))->natts != BRONZE_COLUMN_COUNT)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("bronze table \"%s\" does not have the columns of a bronze table",
						flow->flow_name),
				 errhint("Do not alter bronze tables; recreate the flow instead.")));
	reader = RecordReaderOpen(fd, definition->format, candidate->path,
							  definition->options.max_record_bytes,
							  Min(definition->options.max_decompressed_bytes,
								  BronzeDecompressedBytesCap()),
							  definition->options.max_expansion_ratio);
	batch_context = AllocSetContextCreate(object_context, "medallion records",
										  ALLOCSET_DEFAULT_SIZES);

	memset(nulls, 0, sizeof(nulls));
	values[0] = Int64GetDatum(0);
	values[3] = CStringGetTextDatum(candidate->path);
	values[4] = CStringGetTextDatum(BronzeFileName(candidate->object.key));
	values[5] = Int64GetDatum(candidate->object.size);
	values[6] = TimestampTzGetDatum(candidate->object.last_modified);
	nulls[6] = candidate->object.last_modified == 0;
	values[7] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());

	MemoryContextSwitchTo(batch_context);
	while (RecordReaderNext(reader, &record))
	{
		if (record.data != NULL)
		{
			values[1] = JsonbPGetDatum(record.data);
			nulls[1] = false;
			nulls[2] = true;
		}
		else
		{
			nulls[1] = true;
			values[2] = CStringGetTextDatum(record.rescued);
			nulls[2] = false;
			(*rescued_count)++;
		}
		BulkInsertRow(inserter, values, nulls);
		(*row_count)++;
		if (++in_batch >= RECORDS_PER_BATCH)
		{
			CHECK_FOR_INTERRUPTS();
			MemoryContextReset(batch_context);
			in_batch = 0;
		}
	}
	MemoryContextSwitchTo(object_context);
	RecordReaderClose(reader);
	BulkInsertEnd(inserter);
	MemoryContextDelete(batch_context);
	MemoryContextSwitchTo(old_context);
	FlowLeaveOwnerContext(&owner);

	ledger_values[0] = Int32GetDatum(flow->flow_id);
	ledger_values[1] = CStringGetTextDatum(candidate->path);
	ledger_values[2] = CStringGetTextDatum(candidate->object.etag);
	ledger_values[3] = Int64GetDatum(candidate->object.size);
	ledger_values[4] = TimestampTzGetDatum(candidate->object.last_modified);
	if (candidate->object.last_modified == 0)
		ledger_nulls[4] = 'n';
	ledger_values[5] = Int64GetDatum(*row_count);
	ledger_values[6] = Int64GetDatum(*rescued_count);
	ledger_nulls[7] = 'n';
	SPI_connect();
	SpiExecuteAsExtensionOwner("INSERT INTO medallion.ingested_file"
							   " (flow_id, path, etag, size, last_modified,"
							   " row_count, rescued_count, error)"
							   " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
							   8, types, ledger_values, ledger_nulls,
							   SPI_OK_INSERT);
	SPI_finish();
}

/*
 * Record an object that could not be read as failed, so that it does not
 * block the objects after it, with an error event.
 */
static void
record_failed_object(FlowContext *context, FlowDesc *flow,
					 Candidate *candidate, const char *status,
					 ErrorData *error)
{
	Oid			types[6] = {INT4OID, TEXTOID, TEXTOID, INT8OID, TIMESTAMPTZOID,
	TEXTOID};
	Datum		values[6];
	char		nulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};
	StringInfoData details;

	values[0] = Int32GetDatum(flow->flow_id);
	values[1] = CStringGetTextDatum(candidate->path);
	values[2] = CStringGetTextDatum(candidate->object.etag);
	values[3] = Int64GetDatum(candidate->object.size);
	values[4] = TimestampTzGetDatum(candidate->object.last_modified);
	if (candidate->object.last_modified == 0)
		nulls[4] = 'n';
	values[5] = CStringGetTextDatum(error->detail ?
									psprintf("%s: %s", error->message, error->detail) :
									error->message);

	initStringInfo(&details);
	appendStringInfoString(&details, "{\"path\": ");
	escape_json(&details, candidate->path);
	appendStringInfo(&details, ", \"sqlstate\": \"%s\"",
					 unpack_sql_state(error->sqlerrcode));
	if (error->detail)
	{
		appendStringInfoString(&details, ", \"detail\": ");
		escape_json(&details, error->detail);
	}
	appendStringInfoChar(&details, '}');

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	SPI_connect();
	SpiExecuteAsExtensionOwner("INSERT INTO medallion.ingested_file"
							   " (flow_id, path, etag, size, last_modified, status, error)"
							   " VALUES ($1, $2, $3, $4, $5, 'failed', $6)"
							   " ON CONFLICT (flow_id, path, etag) DO UPDATE"
							   " SET status = 'failed', error = EXCLUDED.error",
							   6, types, values, nulls, SPI_OK_INSERT);
	SPI_finish();
	EventLogWrite(context->pipeline, context->update_id, flow->flow_name,
				  "error", "WARNING",
				  psprintf("object %s recorded as %s: %s", candidate->path,
						   status, error->message),
				  details.data);
	PopActiveSnapshot();
	CommitTransactionCommand();
}

/*
 * Errors of an object's content, as opposed to errors of the flow.  A
 * limit exceeded while reading an object (a decompression bomb) is the
 * object's: retrying it would only exceed the limit again.
 */
static bool
error_is_about_object(ErrorData *error)
{
	return error->sqlerrcode == ERRCODE_DATA_CORRUPTED ||
		error->sqlerrcode == ERRCODE_PROGRAM_LIMIT_EXCEEDED ||
		ERRCODE_TO_CATEGORY(error->sqlerrcode) == ERRCODE_DATA_EXCEPTION;
}

/* BronzeRetryToEventLog: see bronze_internal.h. */
void
BronzeRetryToEventLog(const char *operation, int attempt, long delay_ms,
				   const char *reason, void *arg)
{
	BronzeRetryLog *log = arg;
	MemoryContext old_context = MemoryContextSwitchTo(log->context);

	*log->retries = lappend(*log->retries,
							psprintf("%s: attempt %d failed (%s); retrying in %ld ms",
									 operation, attempt, reason, delay_ms));
	MemoryContextSwitchTo(old_context);
	ereport(LOG,
			(errmsg("retrying S3 request: %s, attempt %d failed (%s); next attempt in %ld ms",
					operation, attempt, reason, delay_ms)));
}

/*
 * BronzeIngestCandidate: see bronze_internal.h.  The object is downloaded
 * with no transaction open; only then does a short transaction insert its
 * records and its ledger row.
 */
void
BronzeIngestCandidate(FlowContext *context, FlowDesc *flow,
					  BronzeDefinition *definition, S3Location *location,
					  S3Credentials *credentials, Candidate *candidate,
					  MemoryContext object_context, BronzeObjectStats *stats,
					  List **retries)
{
	MemoryContext caller_context = CurrentMemoryContext;
	int			fd;
	int64		row_count = 0;
	int64		rescued_count = 0;
	volatile bool downloaded = false;
	BronzeRetryLog retry_log;

	MemoryContextSwitchTo(object_context);
	fd = open_spool_file();
	pgstat_report_activity(STATE_RUNNING,
						   psprintf("medallion: downloading %s",
									candidate->path));
	retry_log.retries = retries;
	retry_log.context = caller_context;
	S3SetRetryCallback(BronzeRetryToEventLog, &retry_log);
	PG_TRY();
	{
		(void) S3GetObjectToFile(location, credentials,
								 candidate->object.key,
								 candidate->object.etag, fd);
		downloaded = true;
	}
	PG_CATCH();
	{
		ErrorData  *error;

		MemoryContextSwitchTo(caller_context);
		error = CopyErrorData();
		if (error->sqlerrcode != ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE)
		{
			S3SetRetryCallback(NULL, NULL);
			PG_RE_THROW();
		}
		/* replaced since it was listed: the next listing sees it */
		FlushErrorState();
		*retries = lappend(*retries,
						   psprintf("%s changed after it was listed; it will be ingested by the next update",
									candidate->path));
		stats->backlog = true;
	}
	PG_END_TRY();
	S3SetRetryCallback(NULL, NULL);

	if (downloaded)
	{
		pgstat_report_activity(STATE_RUNNING,
							   psprintf("medallion: ingesting %s",
										candidate->path));
		PG_TRY();
		{
			SetCurrentStatementStartTimestamp();
			StartTransactionCommand();
			PushActiveSnapshot(GetTransactionSnapshot());
			ingest_spooled_object(context, flow, definition, candidate,
								  fd, object_context, &row_count,
								  &rescued_count);
			PopActiveSnapshot();
			CommitTransactionCommand();
			stats->objects_ingested++;
			stats->rows += row_count;
			stats->changed = true;
		}
		PG_CATCH();
		{
			ErrorData  *error;

			MemoryContextSwitchTo(caller_context);
			error = CopyErrorData();
			if (!error_is_about_object(error))
				PG_RE_THROW();
			FlushErrorState();
			AbortCurrentTransaction();
			record_failed_object(context, flow, candidate, "failed", error);
			stats->objects_failed++;
			stats->changed = true;
		}
		PG_END_TRY();
	}
	MemoryContextSwitchTo(caller_context);
}
