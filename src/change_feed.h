/*-------------------------------------------------------------------------
 *
 * change_feed.h
 *	  The change feed of an auto CDC target: every row the CDC flow removes
 *	  from or adds to its target, in an append-only table that aggregate
 *	  flows read instead of probing the target key by key.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/change_feed.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef MEDALLION_CHANGE_FEED_H
#define MEDALLION_CHANGE_FEED_H

#include "postgres.h"

#include "catalog.h"

/* Column of the feed holding -1 (row removed), 1 (added), 0 (reset). */
#define CHANGE_FEED_SIGN_COLUMN "__medallion_sign"

typedef struct ChangeFeed ChangeFeed;

/*
 * The feed of an auto CDC flow's target, created if missing, and recorded
 * in the CDC flow's definition so that its applies write it.  Returns the
 * feed's qualified name.  Runs as the caller (the pipeline owner).
 */
extern char *ChangeFeedEnsure(FlowDesc *cdc_flow, Oid target_relid);

/*
 * Create a feed's indexes on _row_id: over all its rows (row_id), over its
 * reset markers only (reset_markers).  Made with the feed, while it is
 * empty: an index built over a feed of a few rows would record in pg_class
 * a density of a row or two per page, from which the planner would count a
 * full feed at a hundredth of its rows until autovacuum counts it again.
 */
extern void ChangeFeedCreateIndexes(const char *name, bool row_id,
									bool reset_markers);

/*
 * Before a reader plans a read of delta_rows rows of a feed: ANALYZE it
 * when its pg_class counts give fewer rows than that, or, for a delta of a
 * thousand rows or more, when it was never analysed; not when a VACUUM or
 * ANALYZE of the feed is under way (never waits for it).  Runs as the
 * caller, who must own the feed (the pipeline owner).
 */
extern void ChangeFeedEnsureStatistics(Oid feed_relid, int64 delta_rows);

/*
 * At the start of a CDC apply: the flow's feed when an aggregate flow reads
 * it (rows every reader has consumed are removed first), else NULL.
 * deriving_again: the apply derives the whole target (ChangeFeedReset
 * follows).
 */
extern ChangeFeed *ChangeFeedBegin(FlowDesc *cdc_flow, Oid target_relid,
								   bool deriving_again);

/*
 * A statement that runs dml (a DELETE, or an UPDATE of __end_at aliased
 * __medallion_t, closing current versions) and records the rows it
 * changes: removed rows, or for closed versions the current row removed and
 * the closed one added.  The statement returns SPI_OK_INSERT.
 */
extern char *ChangeFeedCaptureSql(ChangeFeed *feed, const char *dml,
								  bool closing);

/*
 * The feed's qualified, quoted name, for a statement that writes its rows
 * itself (sign column CHANGE_FEED_SIGN_COLUMN, then target columns by name).
 */
extern const char *ChangeFeedName(ChangeFeed *feed);

/* A row added to the target (values in the target's attribute order). */
extern void ChangeFeedAddRow(ChangeFeed *feed, Datum *values, bool *nulls);

/* The target was derived again from scratch: readers must start over. */
extern void ChangeFeedReset(ChangeFeed *feed);

/* Flush the rows added; before the apply's transaction commits. */
extern void ChangeFeedEnd(ChangeFeed *feed);

#endif							/* MEDALLION_CHANGE_FEED_H */
