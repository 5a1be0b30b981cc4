/*-------------------------------------------------------------------------
 *
 * update_worker.c
 *	  The dynamic background worker that runs one pipeline update for
 *	  run_pipeline, and the caller's side that starts it and waits.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/update_worker.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "port/atomics.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/dsm.h"
#include "storage/ipc.h"
#include "tcop/tcopprot.h"
#include "utils/memutils.h"

#include "dynamic_worker.h"
#include "guc.h"
#include "launcher.h"
#include "lingering_update.h"
#include "medallion.h"
#include "shmem.h"
#include "statement_cache.h"
#include "update.h"
#include "update_worker.h"

/* a failed start makes idle workers leave: try again for up to a second */
#define START_ATTEMPTS 10
#define START_RETRY_MS 100

/* a lingering worker does not tell the caller when it exits: look */
#define LIVENESS_CHECK_MS 1000

/* the shared memory of this update worker, for capture_exit_error */
static UpdateShared *my_shared = NULL;
static emit_log_hook_type previous_emit_log_hook = NULL;

static void
copy_text(char *destination, size_t size, const char *source)
{
	if (source == NULL)
		destination[0] = '\0';
	else
		strlcpy(destination, source, size);
}

/*
 * UpdateFlowReport that stores each flow's result in shared memory.  A
 * triggered update reports a flow once per batch: its row sums them.
 */
static void
report_to_shared(const FlowDesc *flow, const FlowResult *result,
				 int64 duration_us, void *arg)
{
	UpdateShared *shared = (UpdateShared *) arg;
	UpdateFlowRow *row = NULL;
	int			index;

	for (index = 0; index < shared->flow_count; index++)
		if (strcmp(shared->flows[index].flow_name, flow->flow_name) == 0)
			row = &shared->flows[index];
	if (row == NULL)
	{
		if (shared->flow_count >= MEDALLION_MAX_FLOWS_PER_PIPELINE)
			return;
		row = &shared->flows[shared->flow_count++];
		copy_text(row->flow_name, sizeof(row->flow_name), flow->flow_name);
		copy_text(row->flow_type, sizeof(row->flow_type), flow->flow_type);
	}
	row->rows_read += result->rows_read;
	row->rows_written += result->rows_written;
	row->rows_dropped += result->rows_dropped;
	row->duration_us += duration_us;
}

/*
 * An error that ends the worker (one raised outside the update's own
 * records, a failed connection, a termination) is kept in shared memory as
 * it is reported, so that run_pipeline's caller gets the real error rather
 * than the bare news that the worker exited.
 */
static void
capture_exit_error(ErrorData *edata)
{
	if (previous_emit_log_hook != NULL)
		(*previous_emit_log_hook) (edata);
	if (my_shared == NULL || edata->elevel < ERROR || my_shared->finished ||
		my_shared->exit_message[0] != '\0')
		return;
	my_shared->exit_sqlerrcode = edata->sqlerrcode;
	copy_text(my_shared->exit_message, sizeof(my_shared->exit_message),
			  edata->message);
	pg_write_barrier();
}

/* Attach to a request's segment for the rest of the session, or NULL. */
static UpdateShared *
attach_request(dsm_handle request, dsm_segment **segment)
{
	*segment = dsm_attach(request);
	if (*segment == NULL)
		return NULL;
	dsm_pin_mapping(*segment);
	return dsm_segment_address(*segment);
}

/* Run one request's update and report its result to the caller. */
static void
run_request(UpdateShared *shared)
{
	UpdateOutcome outcome;
	List	   *refresh_flow_ids = NIL;
	int			index;

	shared->accepted = true;
	my_shared = shared;
	EventLogTrimCountNext();
	pgstat_report_appname(psprintf("medallion update: %s",
								   shared->pipeline_name));
	for (index = 0; index < shared->refresh_count; index++)
		refresh_flow_ids = lappend_int(refresh_flow_ids,
									   shared->refresh_flow_ids[index]);
	UpdateRun(shared->key.pipeline_id, shared->full_refresh, refresh_flow_ids,
			  report_to_shared, shared, &outcome);

	if (outcome.stopped != UPDATE_STOP_NONE)
	{
		shared->failed = true;
		shared->sqlerrcode = ERRCODE_QUERY_CANCELED;
		snprintf(shared->message, sizeof(shared->message),
				 "update stopped by the pipeline's owner (%s)",
				 UpdateStopReasonName(outcome.stopped));
		copy_text(shared->hint, sizeof(shared->hint),
				  "What the update committed before it was stopped stays committed.");
	}
	else if (outcome.failed)
	{
		shared->failed = true;
		shared->sqlerrcode = outcome.error->sqlerrcode;
		copy_text(shared->message, sizeof(shared->message),
				  outcome.error->message);
		copy_text(shared->detail, sizeof(shared->detail),
				  outcome.error->detail);
		copy_text(shared->hint, sizeof(shared->hint), outcome.error->hint);
		copy_text(shared->context, sizeof(shared->context),
				  outcome.error->context);
		copy_text(shared->failed_flow, sizeof(shared->failed_flow),
				  outcome.failed_flow);
	}
	pg_write_barrier();
	shared->finished = true;
	my_shared = NULL;
	SetLatch(shared->caller_latch);
}

static uint32
settings_signature(void)
{
	uint32		signature;

	StartTransactionCommand();
	signature = LingeringUpdateSettingsSignature();
	CommitTransactionCommand();
	return signature;
}

/*
 * The worker runs the request it was started with, then, while it is
 * handed more (lingering_update.h), those of the same pipeline: each in a
 * memory context reset after it.
 */
void
MedallionUpdateWorkerMain(Datum main_arg)
{
	dsm_segment *segment;
	UpdateShared *shared;
	LingeringKey key;
	uint32		settings;
	MemoryContext request_context;

	pqsignal(SIGTERM, die);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();

	shared = attach_request(DatumGetUInt32(main_arg), &segment);
	if (shared == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("could not map dynamic shared memory segment")));
	my_shared = shared;
	previous_emit_log_hook = emit_log_hook;
	emit_log_hook = capture_exit_error;

	key = shared->key;
	DynamicWorkerConnect(key.database_id, key.worker_role);
	settings = settings_signature();

	/* a worker that may run the pipeline again keeps its statements */
	if (medallion_update_worker_linger_s > 0 && medallion_shared != NULL)
		StatementCacheEnable();
	request_context = AllocSetContextCreate(TopMemoryContext,
											"medallion update request",
											ALLOCSET_DEFAULT_SIZES);
	for (;;)
	{
		dsm_handle	request;

		MemoryContextSwitchTo(request_context);
		run_request(shared);
		dsm_detach(segment);
		pgstat_report_stat(true);
		MemoryContextSwitchTo(TopMemoryContext);
		MemoryContextReset(request_context);

		/* the next request; a caller that gave up has no segment left */
		do
		{
			if (!LingeringUpdateEnter(&key) ||
				LauncherDatabaseDropping(key.database_id))
				proc_exit(0);
			request = LingeringUpdateWait();
			if (request == DSM_HANDLE_INVALID)
				proc_exit(0);
			shared = attach_request(request, &segment);
		} while (shared == NULL);

		/* a new worker would start with the new settings */
		if (settings_signature() != settings)
		{
			shared->declined = true;
			pg_write_barrier();
			SetLatch(shared->caller_latch);
			dsm_detach(segment);
			proc_exit(0);
		}
	}
}

static BackgroundWorkerHandle *
start_update_worker(const PipelineDesc *pipeline, dsm_handle request)
{
	BackgroundWorkerHandle *handle = NULL;
	int			attempt;

	/* idle workers told to leave by a failed start free their slots soon */
	for (attempt = 0; attempt < START_ATTEMPTS; attempt++)
	{
		handle = DynamicWorkerStart("MedallionUpdateWorkerMain", "medallion update",
									psprintf("medallion update: %s",
											 pipeline->pipeline_name),
									UInt32GetDatum(request), NULL, 0);
		if (handle != NULL)
			return handle;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 START_RETRY_MS, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
			 errmsg("could not start a background worker to run the pipeline update"),
			 errhint("Raise max_worker_processes, or wait for other background workers to finish.")));
	return NULL;
}

/* Is the worker still there: a started one by its handle, a lingering one by PID? */
static bool
worker_alive(BackgroundWorkerHandle *handle, int pid)
{
	pid_t		started_pid;

	if (handle == NULL)
		return DynamicWorkerAlive(pid, MyDatabaseId, "medallion update");
	switch (GetBackgroundWorkerPid(handle, &started_pid))
	{
		case BGWH_STARTED:
		case BGWH_NOT_YET_STARTED:
			return true;
		case BGWH_STOPPED:
			return false;
		case BGWH_POSTMASTER_DIED:
			break;
	}
	ereport(ERROR,
			(errcode(ERRCODE_ADMIN_SHUTDOWN),
			 errmsg("postmaster exited during a pipeline update")));
	return false;
}

/*
 * Wait until the worker has finished the request, declined it, or exited.
 * Interruptible: a cancel terminates the worker, and what it committed
 * stays committed.  Returns whether the worker took the request.
 */
static bool
wait_for_worker(UpdateShared *shared, BackgroundWorkerHandle *handle, int pid)
{
	PG_TRY();
	{
		for (;;)
		{
			bool		alive = worker_alive(handle, pid);

			pg_read_barrier();
			if (shared->finished || shared->declined || !alive)
				break;
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 LIVENESS_CHECK_MS, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
		}
	}
	PG_CATCH();
	{
		if (handle != NULL)
			TerminateBackgroundWorker(handle);
		else if (DynamicWorkerAlive(pid, MyDatabaseId, "medallion update"))
			(void) kill(pid, SIGTERM);
		PG_RE_THROW();
	}
	PG_END_TRY();
	pg_read_barrier();
	return shared->accepted;
}

void
UpdateWorkerRunAndWait(const PipelineDesc *pipeline, bool full_refresh,
					   List *refresh_flow_ids, UpdateShared *result)
{
	dsm_segment *segment;
	UpdateShared *shared;
	dsm_handle	request;
	int			lingering_pid;
	ListCell   *cell;

	segment = dsm_create(sizeof(UpdateShared), 0);
	shared = dsm_segment_address(segment);
	memset(shared, 0, sizeof(UpdateShared));
	shared->key.database_id = MyDatabaseId;
	shared->key.extension_id = get_extension_oid(MEDALLION_EXTENSION_NAME, false);
	shared->key.pipeline_id = pipeline->pipeline_id;
	shared->full_refresh = full_refresh;
	foreach(cell, refresh_flow_ids)
	{
		if (shared->refresh_count < MEDALLION_MAX_FLOWS_PER_PIPELINE)
			shared->refresh_flow_ids[shared->refresh_count++] = lfirst_int(cell);
	}
	shared->key.worker_role = DynamicWorkerSessionRole(pipeline->owner);
	copy_text(shared->pipeline_name, sizeof(shared->pipeline_name),
			  pipeline->pipeline_name);
	shared->caller_latch = MyLatch;
	request = dsm_segment_handle(segment);

	/* a worker of this pipeline waiting from its last run, or a new one */
	lingering_pid = LingeringUpdateClaim(&shared->key, request);
	if (lingering_pid == 0 || !wait_for_worker(shared, NULL, lingering_pid))
	{
		shared->declined = false;
		(void) wait_for_worker(shared,
							   start_update_worker(pipeline, request), 0);
	}

	pg_read_barrier();
	memcpy(result, shared, sizeof(UpdateShared));
	dsm_detach(segment);

	if (!result->finished && result->exit_message[0] != '\0')
		ereport(ERROR,
				(errcode(result->exit_sqlerrcode),
				 errmsg("%s", result->exit_message),
				 errdetail("The background worker running the update of pipeline \"%s\" exited before finishing.",
						   pipeline->pipeline_name),
				 errhint("What the update committed before that stays committed.")));
	if (!result->finished)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("the background worker running the update of pipeline \"%s\" exited before finishing",
						pipeline->pipeline_name),
				 errdetail("It was killed before it could report an error."),
				 errhint("What the update committed before that stays committed.")));
}
