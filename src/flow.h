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
 * (WaitForLockers), then takes a new snapshot.  Every row with an id up to
 * the ceiling is then either committed and visible or never will be, so
 * processing (watermark, ceiling] and moving the watermark to the ceiling
 * in the same transaction neither skips nor repeats a row, even with
 * concurrent writers.
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

	/*
	 * Target tables changed by the flows of this update that already ran
	 * (OIDs), for flows that depend on what changed, such as attached
	 * materialized views.
	 */
	List	   *changed_relids;
} FlowContext;

extern void FlowResultInit(FlowResult *result);

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

#endif							/* MEDALLION_FLOW_H */
