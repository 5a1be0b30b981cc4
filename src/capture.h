/*-------------------------------------------------------------------------
 *
 * capture.h
 *	  Change capture of plain tables: the C API that a flow reading a plain
 *	  table of the database (a lookup table edited by hand) calls to learn
 *	  what changed in it since its last update.
 *
 * A captured table has statement-level triggers that append every row it
 * gains or loses to one change log in schema medallion_state, shared by all
 * the flows that read the table.  Each log row is
 *
 *	 __change_id	bigint, increasing in the order the changes were made
 *	 __sign			smallint: 1 the row was added, -1 the row was removed
 *					(an UPDATE logs -old and +new; a TRUNCATE logs every row
 *					the table had as -1)
 *	 <the table's columns when capture began, with their types>
 *
 * A consumer flow reads, in each update:
 *
 *	   range = CaptureBegin(relid, flow_id, pipeline_owner);
 *	   ... SELECT ... FROM <range.log_table>
 *	       WHERE __change_id > range.from_id AND __change_id <= range.to_id
 *	   ... apply the delta ...
 *	   CaptureEnd(relid, flow_id, range.to_id);
 *
 * all in one READ COMMITTED transaction: its position moves with its
 * output, so a crash in between loses and repeats nothing.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/capture.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef MEDALLION_CAPTURE_H
#define MEDALLION_CAPTURE_H

#include "postgres.h"

/* The columns every change log has before the captured table's. */
#define CAPTURE_CHANGE_ID_COLUMN "__change_id"
#define CAPTURE_SIGN_COLUMN "__sign"

/* What a consumer flow has not read yet: changes from_id < id <= to_id. */
typedef struct CaptureRange
{
	char	   *log_table;		/* "medallion_state.<name>", quoted */
	Oid			log_relid;
	int64		from_id;		/* exclusive: the consumer's position */
	int64		to_id;			/* inclusive: every id up to it committed */
} CaptureRange;

/*
 * Whether the changes of plain table relid can be captured for a flow of
 * a pipeline owned by owner.  When not, *reason (if reason is not NULL) is
 * a sentence for the flow's definition saying why, and the caller falls
 * back to recomputing in full.  Never raises for an unsuitable table.
 */
extern bool CaptureAvailable(Oid relid, Oid owner, char **reason);

/*
 * Start capturing relid for consumer flow_id (idempotent): creates the
 * log and the triggers for the table's first consumer, and gives the flow
 * the position "everything committed so far".  Raises the reason of
 * CaptureAvailable when capture is not available.  Blocks the table's
 * writers until the calling transaction ends; the consumer's initial
 * computation must run after this call, in the same transaction.
 */
extern void CaptureEnsure(Oid relid, Oid owner, int32 flow_id);

/*
 * Keep the writers of captured table relid off until the calling
 * transaction ends (a SHARE lock), so that a consumer's statements see the
 * table exactly as of its changes up to CaptureBegin's to_id.  Waits for
 * the writers in flight without queueing a lock request behind them, so
 * that new writers are not held up while it waits (for a long transaction,
 * say); only when a VACUUM of the table, or writers arriving round after
 * round, keep the lock from it does it queue.
 */
extern void CaptureHoldWriters(Oid relid);

/*
 * The changes consumer flow_id has not read yet.  Waits for the writers
 * still writing the log (never blocks new ones); a later statement of the
 * transaction sees every change up to to_id.  Raises a clear error when
 * the table was dropped or is no longer captured for the flow.  flow_owner,
 * the owner of the flow's pipeline, is let read a log another pipeline's
 * owner made.
 */
extern CaptureRange CaptureBegin(Oid relid, int32 flow_id, Oid flow_owner);

/*
 * Record that flow_id has read up to to_id (in the caller's transaction),
 * and remove the log rows every consumer has read.
 */
extern void CaptureEnd(Oid relid, int32 flow_id, int64 to_id);

/*
 * flow_id no longer reads relid; after its last consumer the triggers and
 * the log are dropped.  Deleting the flow (drop_flow, drop_pipeline) does
 * the same by itself, through the catalog's ON DELETE CASCADE.
 */
extern void CaptureRelease(Oid relid, int32 flow_id);

/*
 * When the log of relid lacks a column of the table (one added, renamed or
 * retyped since capture began), make the log again with the table's
 * columns as they are now.  Its consumers stay, at position
 * CAPTURE_POSITION_RESTARTED, which no consumer ever saved: a consumer that
 * compares the position it saved with its from_id recomputes.  Blocks the
 * table's writers until the calling transaction ends.
 */
#define CAPTURE_POSITION_RESTARTED (-1)
extern void CaptureRefreshColumns(Oid relid, Oid owner);

/* The tables captured for flow_id (a List of OIDs). */
extern List *CaptureTablesOfFlow(int32 flow_id);

#endif							/* MEDALLION_CAPTURE_H */
