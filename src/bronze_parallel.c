/*-------------------------------------------------------------------------
 *
 * bronze_parallel.c
 *	  Ingesting the objects of one bronze batch with several processes
 *	  (the bronze option max_parallel_objects).
 *
 * The process running the update puts the batch's objects in a dynamic
 * shared memory segment and starts max_parallel_objects - 1 dynamic
 * background workers ("medallion object worker").  Every process, itself
 * included, repeatedly takes the next object nobody has taken (an atomic
 * counter) and ingests it exactly as a sequential update does: download
 * with no transaction open, then one transaction for the records and the
 * ledger row.  So exactly once holds as before.  A worker that meets an
 * error of the flow (not of an object) records it and makes the others
 * stop taking objects; the update then raises it.  When no worker can be
 * started, this process ingests everything alone.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/bronze_parallel.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "port/atomics.h"
#include "postmaster/bgworker.h"
#include "storage/dsm.h"
#include "storage/ipc.h"
#include "tcop/tcopprot.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "bronze_internal.h"
#include "bronze_parallel.h"
#include "catalog.h"
#include "dynamic_worker.h"
#include "medallion.h"
#include "secret.h"

#define MAX_PARALLEL_OBJECTS 16
#define MAX_KEY_BYTES 1024
#define MAX_ETAG_BYTES 256

typedef struct SharedObject
{
	char		key[MAX_KEY_BYTES + 1];
	char		etag[MAX_ETAG_BYTES + 1];
	int64		size;
	TimestampTz last_modified;
} SharedObject;

typedef struct SharedWorkerResult
{
	bool		finished;
	bool		failed;
	int			sqlerrcode;
	char		message[1024];
	char		detail[1024];
	int64		rows;
	int			objects_ingested;
	int			objects_failed;
	bool		backlog;
} SharedWorkerResult;

typedef struct ParallelIngestShared
{
	Oid			database_id;
	int32		pipeline_id;
	int32		flow_id;
	int64		update_id;
	int			object_count;
	pg_atomic_uint32 next_object;
	pg_atomic_uint32 stop;		/* a process failed: take no more objects */
	SharedWorkerResult workers[MAX_PARALLEL_OBJECTS];
	SharedObject objects[FLEXIBLE_ARRAY_MEMBER];
} ParallelIngestShared;

/*
 * The candidate of the shared segment's object at index, copied into the
 * current memory context so that it outlives nothing but the object.
 */
static Candidate *
candidate_from_shared(ParallelIngestShared *shared, uint32 index,
					  const char *bucket)
{
	SharedObject *object = &shared->objects[index];
	Candidate  *candidate = palloc0(sizeof(Candidate));

	candidate->object.key = pstrdup(object->key);
	candidate->object.etag = pstrdup(object->etag);
	candidate->object.size = object->size;
	candidate->object.last_modified = object->last_modified;
	candidate->path = psprintf("s3://%s/%s", bucket, object->key);
	return candidate;
}

/*
 * Take objects until none is left (or another process failed); the loop
 * every process of the batch runs.
 */
static void
ingest_shared_objects(ParallelIngestShared *shared, FlowContext *context,
					  FlowDesc *flow, BronzeDefinition *definition,
					  S3Location *location, S3Credentials *credentials,
					  BronzeObjectStats *stats, List **retries)
{
	MemoryContext caller_context = CurrentMemoryContext;
	MemoryContext object_context;

	object_context = AllocSetContextCreate(caller_context, "medallion object",
										   ALLOCSET_DEFAULT_SIZES);
	for (;;)
	{
		uint32		index;
		Candidate  *candidate;

		CHECK_FOR_INTERRUPTS();
		if (pg_atomic_read_u32(&shared->stop) != 0)
			break;
		index = pg_atomic_fetch_add_u32(&shared->next_object, 1);
		if (index >= (uint32) shared->object_count)
			break;
		candidate = candidate_from_shared(shared, index, definition->bucket);
		BronzeIngestCandidate(context, flow, definition, location, credentials,
							  candidate, object_context, stats, retries);
		MemoryContextSwitchTo(caller_context);
		MemoryContextReset(object_context);
	}
	MemoryContextDelete(object_context);
}

void
MedallionObjectWorkerMain(Datum main_arg)
{
	dsm_segment *segment;
	ParallelIngestShared *shared;
	int			slot;
	SharedWorkerResult *result;
	FlowContext context;
	FlowDesc   *flow;
	BronzeDefinition definition;
	S3Location	location;
	S3Credentials *credentials;
	BronzeObjectStats stats;
	List	   *retries = NIL;

	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	memcpy(&slot, MyBgworkerEntry->bgw_extra, sizeof(int));
	segment = dsm_attach(DatumGetUInt32(main_arg));
	if (segment == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("could not map dynamic shared memory segment")));
	shared = dsm_segment_address(segment);
	result = &shared->workers[slot];
	DynamicWorkerConnect(shared->database_id, InvalidOid);
	pgstat_report_appname("medallion object worker");
	memset(&stats, 0, sizeof(stats));

	PG_TRY();
	{
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
		MemoryContextSwitchTo(TopMemoryContext);
		memset(&context, 0, sizeof(context));
		context.pipeline = CatalogGetPipelineById(shared->pipeline_id, false);
		context.update_id = shared->update_id;
		flow = CatalogGetFlowById(shared->flow_id, false);
		BronzeLoadDefinition(flow, &definition);
		location.endpoint = definition.endpoint;
		location.region = definition.region;
		location.bucket = definition.bucket;
		credentials = SecretLoad(definition.secret_name, context.pipeline->owner);
		PopActiveSnapshot();
		CommitTransactionCommand();
		MemoryContextSwitchTo(TopMemoryContext);

		ingest_shared_objects(shared, &context, flow, &definition, &location,
							  credentials, &stats, &retries);

		if (retries != NIL)
		{
			ListCell   *cell;

			SetCurrentStatementStartTimestamp();
			StartTransactionCommand();
			PushActiveSnapshot(GetTransactionSnapshot());
			foreach(cell, retries)
				EventLogWrite(context.pipeline, context.update_id,
							  flow->flow_name, "retry", "WARNING",
							  (const char *) lfirst(cell), NULL);
			PopActiveSnapshot();
			CommitTransactionCommand();
		}
	}
	PG_CATCH();
	{
		ErrorData  *error;

		MemoryContextSwitchTo(TopMemoryContext);
		error = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		pg_atomic_write_u32(&shared->stop, 1);
		result->failed = true;
		result->sqlerrcode = error->sqlerrcode;
		strlcpy(result->message, error->message ? error->message : "",
				sizeof(result->message));
		strlcpy(result->detail, error->detail ? error->detail : "",
				sizeof(result->detail));
	}
	PG_END_TRY();

	result->rows = stats.rows;
	result->objects_ingested = stats.objects_ingested;
	result->objects_failed = stats.objects_failed;
	result->backlog = stats.backlog;
	pg_write_barrier();
	result->finished = true;
	dsm_detach(segment);
	proc_exit(0);
}

/*
 * The shared memory segment of a parallel batch: what a worker needs to
 * find the flow, the batch's objects, the counter of objects taken and the
 * workers' result slots.
 */
static dsm_segment *
parallel_segment_create(FlowContext *context, FlowDesc *flow, List *batch)
{
	int			object_count = list_length(batch);
	dsm_segment *segment;
	ParallelIngestShared *shared;
	ListCell   *cell;

	segment = dsm_create(add_size(offsetof(ParallelIngestShared, objects),
								  mul_size(sizeof(SharedObject), object_count)),
						 0);
	shared = dsm_segment_address(segment);
	memset(shared, 0, offsetof(ParallelIngestShared, objects));
	shared->database_id = MyDatabaseId;
	shared->pipeline_id = context->pipeline->pipeline_id;
	shared->flow_id = flow->flow_id;
	shared->update_id = context->update_id;
	shared->object_count = object_count;
	pg_atomic_init_u32(&shared->next_object, 0);
	pg_atomic_init_u32(&shared->stop, 0);
	foreach(cell, batch)
	{
		Candidate  *candidate = lfirst(cell);
		SharedObject *object = &shared->objects[foreach_current_index(cell)];

		if (strlen(candidate->object.key) > MAX_KEY_BYTES ||
			strlen(candidate->object.etag) > MAX_ETAG_BYTES)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("object key \"%.64s...\" is too long", candidate->object.key),
					 errdetail("S3 keys are at most %d bytes.", MAX_KEY_BYTES)));
		strlcpy(object->key, candidate->object.key, sizeof(object->key));
		strlcpy(object->etag, candidate->object.etag, sizeof(object->etag));
		object->size = candidate->object.size;
		object->last_modified = candidate->object.last_modified;
	}
	return segment;
}

/*
 * Start one helper on the segment; slot (bgw_extra) tells it which error
 * slot of the segment is its own.  NULL when no worker could be started.
 */
static BackgroundWorkerHandle *
start_object_worker(dsm_segment *segment, int slot, const char *flow_name)
{
	return DynamicWorkerStart("MedallionObjectWorkerMain",
							  "medallion object worker",
							  psprintf("medallion object worker of %s", flow_name),
							  UInt32GetDatum(dsm_segment_handle(segment)),
							  &slot, sizeof(int));
}

/*
 * BronzeIngestInParallel: see bronze_internal.h.  An error here stops the
 * workers; an error a worker recorded is raised once all have ended.
 */
void
BronzeIngestInParallel(FlowContext *context, FlowDesc *flow,
					   BronzeDefinition *definition, S3Location *location,
					   S3Credentials *credentials, List *batch,
					   BronzeObjectStats *stats, List **retries)
{
	volatile int object_count = list_length(batch);
	volatile int worker_count = Min(definition->options.max_parallel_objects,
									MAX_PARALLEL_OBJECTS) - 1;
	dsm_segment *segment;
	ParallelIngestShared *shared;
	BackgroundWorkerHandle *handles[MAX_PARALLEL_OBJECTS];
	int			worker;

	worker_count = Min(worker_count, object_count - 1);
	segment = parallel_segment_create(context, flow, batch);
	shared = dsm_segment_address(segment);

	for (worker = 0; worker < worker_count; worker++)
		handles[worker] = start_object_worker(segment, worker, flow->flow_name);

	PG_TRY();
	{
		ingest_shared_objects(shared, context, flow, definition, location,
							  credentials, stats, retries);
	}
	PG_CATCH();
	{
		pg_atomic_write_u32(&shared->stop, 1);
		for (worker = 0; worker < worker_count; worker++)
			if (handles[worker] != NULL)
				TerminateBackgroundWorker(handles[worker]);
		PG_RE_THROW();
	}
	PG_END_TRY();

	for (worker = 0; worker < worker_count; worker++)
	{
		SharedWorkerResult *result = &shared->workers[worker];

		if (handles[worker] == NULL)
			continue;
		(void) WaitForBackgroundWorkerShutdown(handles[worker]);
		pg_read_barrier();
		stats->rows += result->rows;
		stats->objects_ingested += result->objects_ingested;
		stats->objects_failed += result->objects_failed;
		if (result->objects_ingested > 0 || result->objects_failed > 0)
			stats->changed = true;
		if (result->backlog)
			stats->backlog = true;
	}

	/* an object nobody took (a worker failed or never started) waits */
	if (pg_atomic_read_u32(&shared->next_object) < (uint32) object_count)
		stats->backlog = true;

	for (worker = 0; worker < worker_count; worker++)
	{
		SharedWorkerResult *result = &shared->workers[worker];

		if (handles[worker] != NULL && result->failed)
		{
			int			sqlerrcode = result->sqlerrcode;
			char	   *message = pstrdup(result->message);
			char	   *detail = pstrdup(result->detail);

			dsm_detach(segment);
			ereport(ERROR,
					(errcode(sqlerrcode),
					 errmsg("%s", message),
					 detail[0] ? errdetail("%s", detail) : 0,
					 errcontext("object worker of flow \"%s\"", flow->flow_name)));
		}
	}
	dsm_detach(segment);
}
