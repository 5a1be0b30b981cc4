/*-------------------------------------------------------------------------
 *
 * flow.h
 *	  What every flow type shares: the context an update runs a flow in,
 *	  the per-flow result, the owner's security context, and the safe way to
 *	  read a source table incrementally.
 *
 * Reading a source exactly once: every pipeline table has a leading
 * "_row_id bigint" drawn from an identity sequence (CACHE 1) inside the
 * inserting statement.  A flow that applies source rows beyond its
 * watermark first reads the sequence's last value (the ceiling), then waits
 * for every transaction that holds a write lock on the source
 * (WaitForTableWriters: not for a VACUUM of it), then takes a new snapshot.  Every row with an id up to
 * the ceiling is then either committed and visible or never will be, so
 * processing (watermark, ceiling] and moving the watermark to the ceiling
 * in the same transaction neither skips nor repeats a row, even with
 * concurrent writers.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/flow.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef MEDALLION_FLOW_H
#define MEDALLION_FLOW_H

#include "postgres.h"

#include "catalog.h"
#include "lib/stringinfo.h"

/* Counters one flow reports for one update. */
typedef struct FlowResult
{
	int64		rows_read;
	int64		rows_written;
	int64		rows_dropped;
	bool		changed;		/* did the flow change its target? */
	bool		backlog;		/* more input is waiting (bronze batches) */

	/*
	 * Extra members of the flow_progress event's details object, as JSON
	 * text of comma-separated members without braces, e.g.
	 * "\"expectations\": [...]".  Empty when there are none.
	 */
	StringInfoData details;

	/*
	 * Messages of S3 retries not yet in the event log: they happen outside
	 * any transaction, and the update writes them as retry events when the
	 * flow ends, whether it succeeded or failed.
	 */
	List	   *retries;
} FlowResult;

/* What an update passes to each flow. */
typedef struct FlowContext
{
	PipelineDesc *pipeline;
	int64		update_id;
	bool		full_refresh;
	TimestampTz update_start;	/* when the update started; 0: unknown */

	/*
	 * Target tables changed by the flows of this update that already ran
	 * (OIDs), for flows that depend on what changed, such as attached
	 * materialized views.
	 */
	List	   *changed_relids;
} FlowContext;

extern void FlowResultInit(FlowResult *result);

/*
 * Start a member of result->details (the members of the flow_progress
 * event's details after its own, without braces): a ", " after the ones
 * before it, if any.  Then append "\"name\": value".
 */
extern void FlowResultDetail(FlowResult *result);

/*
 * Enter the pipeline owner's security context for user SQL: the owner's
 * role with SECURITY_RESTRICTED_OPERATION and the pipeline's stored
 * search_path.  Must be called inside a transaction; FlowLeaveOwnerContext
 * undoes it, and so does transaction abort.
 */
typedef struct OwnerContext
{
	Oid			saved_user;
	int			saved_security_context;
	int			guc_nest_level;
} OwnerContext;

extern void FlowEnterOwnerContext(const PipelineDesc *pipeline,
								  OwnerContext *saved);
extern void FlowLeaveOwnerContext(OwnerContext *saved);

/*
 * The id sequence of a pipeline table's _row_id column; errors clearly when
 * the table has none.
 */
extern Oid	FlowRowIdSequence(Oid relid);

/*
 * The highest _row_id of source_relid that is safe to process now (see the
 * file header): reads the sequence, waits for in-flight writers, and makes
 * sure later statements of this transaction use a new snapshot.  Returns 0
 * when the sequence was never used.
 */
extern int64 FlowSourceCeiling(Oid source_relid);

/*
 * Raise the one error for a flow whose target table no longer exists (it
 * was dropped by hand), with the way out as its hint.
 */
extern void FlowCheckTargetExists(const FlowDesc *flow);

/* The same for the table a flow reads (source_relid may be invalid). */
extern void FlowCheckSourceExists(const FlowDesc *flow, Oid source_relid);

/*
 * The flow-type table.  Like an index access method's routine table, each
 * flow type hands the update a FlowTypeRoutine saying how it runs; update.c
 * holds the table (it is the only file that knows every flow type), and the
 * update runs a flow through its routine without asking its type.
 */

/* Apply a source's rows with _row_id in (watermark, ceiling]. */
typedef void (*FlowApplyRows) (FlowContext *context, FlowDesc *flow,
							   int64 watermark, int64 ceiling,
							   FlowResult *result);

/* Bring a target up to date from its sources, in the current transaction. */
typedef void (*FlowApplyWhole) (FlowContext *context, FlowDesc *flow,
								FlowResult *result);

/* Run a flow that commits its own transactions (bronze, object by object). */
typedef void (*FlowRunSteps) (FlowContext *context, FlowDesc *flow,
							  FlowResult *result);

/* Forget a flow's own state for a full refresh. */
typedef void (*FlowReset) (FlowDesc *flow);

/* Is input that the update saw at its start still waiting? */
typedef bool (*FlowHasInputLeft) (const FlowDesc *flow);

typedef struct FlowTypeRoutine
{
	FlowType	type;

	/*
	 * How an update runs the flow: exactly one of these is set.  apply_rows
	 * runs through FlowApplyIncremental, apply_whole in one transaction as
	 * the owner, run_steps outside any transaction.
	 */
	FlowApplyRows apply_rows;
	FlowApplyWhole apply_whole;
	FlowRunSteps run_steps;

	/* Full refresh: empty the target first (false: it is rebuilt whole). */
	bool		truncate_on_reset;
	/* Full refresh: state reset run as the pipeline owner, or NULL. */
	FlowReset	reset_as_owner;
	/* Full refresh: catalog state reset run as medallion, or NULL. */
	FlowReset	reset_catalog;

	/* Triggered updates run again while this says so (NULL: never). */
	FlowHasInputLeft has_input_left;

	/*
	 * When a triggered update takes several batches, the flow waits for the
	 * last one and then derives its output once, over its whole input
	 * (set-based), instead of batch after batch: always (wait_in_backlog),
	 * or only in a full refresh (wait_in_full_refresh).
	 */
	bool		wait_in_backlog;
	bool		wait_in_full_refresh;
} FlowTypeRoutine;

/*
 * Apply the source rows beyond an incremental flow's watermark, inside the
 * current transaction: locks the flow's catalog row, reads the safe ceiling
 * of the source, runs apply in the pipeline owner's context, and advances
 * the watermark.  Used by the update and by direct calls such as
 * auto_cdc_apply().
 */
extern void FlowApplyIncremental(FlowContext *context, FlowDesc *flow,
								 FlowApplyRows apply, FlowResult *result);

/*
 * JSON text of the details of a flow's flow_progress event: status, flow
 * type, counters, duration, watermark and the flow's own members.
 */
extern char *FlowProgressDetails(const FlowDesc *flow,
								 const FlowResult *result,
								 int64 duration_us, const char *status);

#endif							/* MEDALLION_FLOW_H */
