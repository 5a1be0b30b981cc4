/*-------------------------------------------------------------------------
 *
 * update_worker.h
 *	  Running one pipeline update in a dynamic background worker, and
 *	  waiting for its result: the execution path of run_pipeline.
 *
 * A transaction that raises cannot also commit the record of its failure,
 * and one transaction cannot commit per object.  So run_pipeline hands the
 * update to a dynamic background worker, which commits per flow step and
 * records failures durably, and waits for its result in shared memory.
 * Dynamic workers need no shared_preload_libraries.  When the library is
 * preloaded, a worker stays a while after its update, and the next
 * run_pipeline of the same pipeline is handed to it (lingering_update.h).
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/update_worker.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef MEDALLION_UPDATE_WORKER_H
#define MEDALLION_UPDATE_WORKER_H

#include "postgres.h"

#include "storage/latch.h"

#include "catalog.h"
#include "lingering_update.h"

/* One row of run_pipeline's result. */
typedef struct UpdateFlowRow
{
	char		flow_name[2 * NAMEDATALEN + 8];
	char		flow_type[16];
	int64		rows_read;
	int64		rows_written;
	int64		rows_dropped;
	int64		duration_us;
} UpdateFlowRow;

/* The shared memory a run_pipeline caller and its worker talk through. */
typedef struct UpdateShared
{
	LingeringKey key;			/* database, extension, pipeline, session role */
	bool		full_refresh;
	int			refresh_count;	/* selective refresh: the flows named */
	int32		refresh_flow_ids[MEDALLION_MAX_FLOWS_PER_PIPELINE];
	char		pipeline_name[NAMEDATALEN];
	Latch	   *caller_latch;	/* set by the worker when it has finished */

	/* filled by the worker */
	bool		accepted;		/* it has begun to run this request */
	bool		declined;		/* a lingering worker that will not run it */
	bool		finished;
	bool		failed;
	int			sqlerrcode;
	char		message[1024];
	char		detail[2048];
	char		hint[1024];
	char		context[1024];
	char		failed_flow[2 * NAMEDATALEN + 8];	/* the failed flow, if any */

	/* the error that ended the worker, if it could not finish */
	int			exit_sqlerrcode;
	char		exit_message[1024];

	int			flow_count;
	UpdateFlowRow flows[MEDALLION_MAX_FLOWS_PER_PIPELINE];
} UpdateShared;

/*
 * Run one update of the pipeline in a dynamic worker and wait for it.
 * Fills *shared (allocated by the caller); interruptible: a cancel
 * terminates the worker, and what it committed stays committed.
 */
extern void UpdateWorkerRunAndWait(const PipelineDesc *pipeline,
								   bool full_refresh, List *refresh_flow_ids,
								   UpdateShared *result);

PGDLLEXPORT void MedallionUpdateWorkerMain(Datum main_arg);

#endif							/* MEDALLION_UPDATE_WORKER_H */
