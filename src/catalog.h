/*-------------------------------------------------------------------------
 *
 * catalog.h
 *	  Access to medallion's configuration tables: pipelines, flows,
 *	  expectations, watermarks and the event log.
 *
 * Configuration is data: every pipeline, flow and watermark is a row in a
 * table of schema medallion, changed only through medallion's functions.
 * The tables are not writable by ordinary roles; the functions here write
 * them with fixed, schema-qualified statements run as the extension owner
 * (see SpiExecuteAsExtensionOwner), and never run user-supplied SQL while
 * doing so.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/catalog.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef MEDALLION_CATALOG_H
#define MEDALLION_CATALOG_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "nodes/pg_list.h"
#include "utils/jsonb.h"

/* Largest number of flows one pipeline may have. */
#define MEDALLION_MAX_FLOWS_PER_PIPELINE 128

/* One row of medallion.pipeline. */
typedef struct PipelineDesc
{
	int32		pipeline_id;
	char	   *pipeline_name;
	Oid			owner;
	char	   *mode;			/* "triggered" or "continuous" */
	int64		trigger_interval_ms;
	char	   *search_path;	/* search_path in force at creation */
	char	   *state;			/* idle, running, stopped, failed */
	int32		consecutive_failures;
} PipelineDesc;

/*
 * The kinds of flow, as medallion.flow.flow_type names them (FlowTypeName
 * and FlowTypeFromName in flow.c translate); how an update runs each one is
 * update.c's flow-type table.
 */
typedef enum FlowType
{
	FLOW_TYPE_BRONZE,
	FLOW_TYPE_SILVER,
	FLOW_TYPE_AUTO_CDC,
	FLOW_TYPE_AGGREGATE,
	FLOW_TYPE_MATVIEW,
	FLOW_TYPE_AUTO_CDC_SNAPSHOT,
	FLOW_TYPE_APPEND,
	FLOW_TYPE_MATERIALIZED_VIEW
} FlowType;

#define FLOW_TYPE_COUNT (FLOW_TYPE_MATERIALIZED_VIEW + 1)

/* One row of medallion.flow. */
typedef struct FlowDesc
{
	int32		flow_id;
	int32		pipeline_id;
	char	   *flow_name;		/* "schema.table" of the target, or a name
								 * given where a target has several flows */
	char	   *flow_type;		/* the catalog's name of type */
	FlowType	type;
	Oid			target_relid;
	Oid			source_relid;	/* InvalidOid for bronze */
	char	   *source;			/* s3:// URL or source table name */
	Jsonb	   *definition;		/* flow-type-specific arguments */
	int64		watermark;		/* last source _row_id applied */
	Jsonb	   *flow_state;		/* flow-type-specific progress */
	bool		refresh_pending;	/* replaced: recompute at the next update */

	/*
	 * Bronze, within one update: the new objects of the listing made by the
	 * update's first batch (the first objects_taken of them are done), and
	 * the number of batches run (see BronzeRunFlow).
	 */
	List	   *available_objects;
	int			objects_taken;
	int			batches;
} FlowDesc;

/* The catalog's name of a flow type, and back (unknown names: an error). */
extern const char *CatalogFlowTypeName(FlowType type);
extern FlowType CatalogFlowTypeFromName(const char *name);

/*
 * Catalog rows as structs, in the caller's memory context.  A missing
 * pipeline is an error unless missing_ok; flows come in creation order.
 */
extern PipelineDesc *CatalogGetPipeline(const char *pipeline_name,
										bool missing_ok);
extern PipelineDesc *CatalogGetPipelineById(int32 pipeline_id,
											bool missing_ok);
extern List *CatalogGetFlows(int32 pipeline_id);

/*
 * The flow of a target table.  A target fed by several flows (several
 * bronze sources, append flows) answers with its defining flow: the oldest
 * flow that is not an append flow (the one that created the table, while
 * it exists), else the oldest.
 */
extern FlowDesc *CatalogGetFlowByTarget(Oid target_relid, bool missing_ok);

/* Every flow of a target table, in creation order. */
extern List *CatalogGetFlowsByTarget(Oid target_relid);

/* A flow by its id: an error, or NULL if missing_ok, when there is none. */
extern FlowDesc *CatalogGetFlowById(int32 flow_id, bool missing_ok);

/* Raise an error unless the current user may manage this pipeline. */
extern void CatalogCheckPipelineOwner(PipelineDesc *pipeline);

/*
 * Register a flow of a pipeline.  The target table must exist already; the
 * caller created it.  Checks that the pipeline has room for another flow and
 * that source_relid, when valid, is the target of a flow of the same
 * pipeline.  Returns the new flow_id.
 */
extern int32 CatalogCreateFlow(PipelineDesc *pipeline, FlowType type,
							   Oid target_relid, Oid source_relid,
							   const char *source, Jsonb *definition);

/* The same with the flow's name given (NULL: the target's name). */
extern int32 CatalogCreateNamedFlow(PipelineDesc *pipeline, FlowType type,
									const char *flow_name, Oid target_relid,
									Oid source_relid, const char *source,
									Jsonb *definition);

/*
 * Replace the definition of a flow (replace => true): its source (checked
 * as CatalogCreateFlow checks it), source text and definition.  The flow's
 * watermark and progress are left to the full refresh that follows.
 */
extern void CatalogReplaceFlow(PipelineDesc *pipeline, const FlowDesc *flow,
							   Oid source_relid, const char *source,
							   Jsonb *definition);

/*
 * Set refresh_pending of the flows (flow ids): the next update of their
 * pipeline recomputes a pending flow, and those downstream of it, from
 * their sources (a full refresh of those flows, as refresh_tables does);
 * its reset clears the mark.  Applies refuse a pending flow meanwhile.
 */
extern void CatalogSetRefreshPending(List *flow_ids, bool pending);

/*
 * Lock a flow's catalog row (FOR UPDATE, until the end of the transaction)
 * and read its progress as of now: applies of one flow are serialised this
 * way.  Errors clearly when the flow was dropped, or replaced and not
 * recomputed yet.
 */
extern void CatalogLockFlow(const FlowDesc *flow, int64 *watermark,
							Jsonb **flow_state);

/*
 * Share-lock a flow's catalog row until the end of the transaction: an
 * apply of the flow in progress is waited for, and none can start.
 */
extern void CatalogShareLockFlow(const FlowDesc *flow);

extern void CatalogSetWatermark(int32 flow_id, int64 watermark);
extern void CatalogSetFlowState(int32 flow_id, Jsonb *flow_state);

/* The same, the state given as JSON text. */
extern void CatalogSetFlowStateText(int32 flow_id, const char *flow_state_json);

/* Add or replace members of a flow's flow_state (jsonb concatenation). */
extern void CatalogMergeFlowState(int32 flow_id, const char *members_json);

/* Pipeline state changes, each a plain UPDATE in the current transaction. */
extern void CatalogSetPipelineState(int32 pipeline_id, const char *state,
									const char *last_error);
extern void CatalogMarkUpdateStart(int32 pipeline_id);
extern void CatalogMarkUpdateEnd(int32 pipeline_id, int64 update_id,
								 TimestampTz update_start, const char *state,
								 const char *last_error);

/* Record that the current update changed these targets (OIDs). */
extern void CatalogMarkTargetsChanged(int32 pipeline_id, List *target_relids);

/* Record that a direct auto_cdc_apply changed its flow's target, now. */
extern void CatalogMarkTargetChangedNow(int32 flow_id);

/* The flow_state key of an attached materialized view whose input changed. */
#define MATVIEW_INPUT_CHANGED_KEY "input_changed"

/*
 * A table changed outside of an update (a direct auto_cdc_apply): the
 * views that an update skips when nothing they read changed in it (views
 * recomputed in full, attached materialized views) and that read it are
 * recomputed or refreshed at their next update.
 */
extern void CatalogMarkInputChanged(Oid target_relid);

/* Name of a relation as "schema.table", quoted where needed. */
extern char *CatalogQualifiedRelationName(Oid relid);

/*
 * Append a row to medallion.event_log in the current transaction.
 * details_json is a JSON object text or NULL.  pipeline may be NULL for
 * events that belong to no pipeline.
 */
extern void EventLogWrite(const PipelineDesc *pipeline, int64 update_id,
						  const char *flow_name, const char *event_type,
						  const char *level, const char *message,
						  const char *details_json);

/* The same, with the event's time given (0: now). */
extern void EventLogWriteAt(TimestampTz event_time,
							const PipelineDesc *pipeline, int64 update_id,
							const char *flow_name, const char *event_type,
							const char *level, const char *message,
							const char *details_json);

/*
 * Delete the pipeline's events older than medallion.event_log_retention
 * (nothing when it is 0), in the current transaction.
 */
extern void EventLogTrim(const PipelineDesc *pipeline);

/* The next EventLogTrim counts the kept events (a triggered update's first). */
extern void EventLogTrimCountNext(void);

/* Next update id (non-transactional, from a sequence). */
extern int64 CatalogNextUpdateId(void);

#endif							/* MEDALLION_CATALOG_H */
