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

#include "miscadmin.h"
#include "pgstat.h"
#include "port/atomics.h"
#include "postmaster/bgworker.h"
#include "storage/dsm.h"
#include "storage/ipc.h"
#include "tcop/tcopprot.h"
#include "utils/memutils.h"

#include "dynamic_worker.h"
#include "medallion.h"
#include "update.h"
#include "update_worker.h"

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

void
MedallionUpdateWorkerMain(Datum main_arg)
{
	dsm_segment *segment;
	UpdateShared *shared;
	UpdateOutcome outcome;
	List	   *refresh_flow_ids = NIL;
	int			index;

	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	segment = dsm_attach(DatumGetUInt32(main_arg));
	if (segment == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("could not map dynamic shared memory segment")));
	shared = dsm_segment_address(segment);
	my_shared = shared;
	previous_emit_log_hook = emit_log_hook;
	emit_log_hook = capture_exit_error;

	DynamicWorkerConnect(shared->database_id, shared->worker_role);
	pgstat_report_appname(psprintf("medallion update: %s",
								   shared->pipeline_name));

	for (index = 0; index < shared->refresh_count; index++)
		refresh_flow_ids = lappend_int(refresh_flow_ids,
									   shared->refresh_flow_ids[index]);
	UpdateRun(shared->pipeline_id, shared->full_refresh, refresh_flow_ids,
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
	dsm_detach(segment);
	proc_exit(0);
}

void
UpdateWorkerRunAndWait(const PipelineDesc *pipeline, bool full_refresh,
					   List *refresh_flow_ids, UpdateShared *result)
{
	dsm_segment *segment;
	UpdateShared *shared;
	BackgroundWorkerHandle *handle;
	BgwHandleStatus status;
	pid_t		pid;
	ListCell   *cell;

	segment = dsm_create(sizeof(UpdateShared), 0);
	shared = dsm_segment_address(segment);
	memset(shared, 0, sizeof(UpdateShared));
	shared->database_id = MyDatabaseId;
	shared->pipeline_id = pipeline->pipeline_id;
	shared->full_refresh = full_refresh;
	foreach(cell, refresh_flow_ids)
	{
		if (shared->refresh_count < MEDALLION_MAX_FLOWS_PER_PIPELINE)
			shared->refresh_flow_ids[shared->refresh_count++] = lfirst_int(cell);
	}
	shared->worker_role = DynamicWorkerSessionRole(pipeline->owner);
	copy_text(shared->pipeline_name, sizeof(shared->pipeline_name),
			  pipeline->pipeline_name);

	handle = DynamicWorkerStart("MedallionUpdateWorkerMain", "medallion update",
								psprintf("medallion update: %s",
										 pipeline->pipeline_name),
								UInt32GetDatum(dsm_segment_handle(segment)),
								NULL, 0);
	if (handle == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
				 errmsg("could not start a background worker to run the pipeline update"),
				 errhint("Raise max_worker_processes, or wait for other background workers to finish.")));

	PG_TRY();
	{
		status = WaitForBackgroundWorkerStartup(handle, &pid);
		if (status == BGWH_POSTMASTER_DIED)
			ereport(ERROR,
					(errcode(ERRCODE_ADMIN_SHUTDOWN),
					 errmsg("postmaster exited during a pipeline update")));
		status = WaitForBackgroundWorkerShutdown(handle);
		if (status == BGWH_POSTMASTER_DIED)
			ereport(ERROR,
					(errcode(ERRCODE_ADMIN_SHUTDOWN),
					 errmsg("postmaster exited during a pipeline update")));
	}
	PG_CATCH();
	{
		/* a cancel: stop the worker; what it committed stays committed */
		TerminateBackgroundWorker(handle);
		PG_RE_THROW();
	}
	PG_END_TRY();

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
