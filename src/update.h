/*-------------------------------------------------------------------------
 *
 * update.h
 *	  One update of a pipeline: every flow, upstream first, once per bronze
 *	  batch.  Shared by run_pipeline (through a dynamic background worker)
 *	  and the continuous workers.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/update.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef MEDALLION_UPDATE_H
#define MEDALLION_UPDATE_H

#include "postgres.h"

#include "flow.h"
#include "storage/lock.h"
#include "update_control.h"

/*
 * max_step_duration of a pipeline whose catalog has no such column yet (a
 * database not yet updated to 0.2.0); the column's default is the same.
 */
#define MEDALLION_DEFAULT_MAX_STEP_DURATION_MS	((int64) 3600 * 1000)

/* Called once per flow when it has finished (or failed). */
typedef void (*UpdateFlowReport) (const FlowDesc *flow,
								  const FlowResult *result,
								  int64 duration_us, void *arg);

/* What an update ended with. */
typedef struct UpdateOutcome
{
	int64		update_id;
	bool		failed;
	bool		changed;		/* some flow changed its target */
	bool		backlog;		/* input remains: run again at once */
	bool		transient;		/* the failure may go away by itself */
	UpdateStopReason stopped;	/* ended early on this request */
	ErrorData  *error;			/* the first flow error, if failed */
	const char *failed_flow;	/* the flow of that error, if any */
} UpdateOutcome;


/*
 * Run one update of the pipeline.  Must be called outside a transaction
 * (it starts and commits its own, one per flow step); pipeline_id names a
 * committed pipeline.  A triggered pipeline's update runs the flows once
 * per bronze batch until the objects listed at its start are ingested (the
 * report callback is called once per flow and batch); a continuous one
 * runs one batch.  Errors of flows are recorded durably (event_log,
 * pipeline state) and returned in outcome, not thrown.  Each flow step is
 * limited to the pipeline's max_step_duration (restarted at each commit
 * inside the step); a step that exceeds it fails with a clear error.  The
 * update registers itself in the update control registry, so that a stop
 * request ends it: outcome->stopped then names the request.
 *
 * Flows run in dependency order (flow_order.h).  full_refresh first empties
 * every flow's target, ledger and watermark; refresh_flow_ids (flow ids, or
 * NIL) limits that to the flows named and those downstream of them, and
 * implies full_refresh.
 */
extern void UpdateRun(int32 pipeline_id, bool full_refresh,
					  List *refresh_flow_ids,
					  UpdateFlowReport report, void *report_arg,
					  UpdateOutcome *outcome);

#endif							/* MEDALLION_UPDATE_H */
