/*-------------------------------------------------------------------------
 *
 * flow_lifecycle.h
 *	  Changing a pipeline's set of flows: drop_flow, and finding a flow by
 *	  the name a DBA types (for drop_flow and run_pipeline's
 *	  refresh_tables).
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/flow_lifecycle.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef MEDALLION_FLOW_LIFECYCLE_H
#define MEDALLION_FLOW_LIFECYCLE_H

#include "postgres.h"

#include "catalog.h"
#include "utils/array.h"

/*
 * The flow a name denotes: the flow whose target the name resolves to as
 * SQL reads it (its defining flow where several feed it, see
 * CatalogGetFlowByTarget), else the flow of that exact name, else, when the name
 * denotes no table and has no schema, the flow named "<schema>.<name>" for
 * the first schema of the search_path that has one (so that a flow whose
 * target was dropped by hand is found too).  search_path NULL means the current one; pipeline_id 0
 * means any pipeline.  NULL when there is none.
 */
extern FlowDesc *FlowLookupByName(const char *name, int32 pipeline_id,
								  const char *search_path);

/*
 * Drop what medallion made for a flow besides its target and the API's
 * companions: the state tables its definition records, and the triggers
 * and index that go away with its target (see flow_lifecycle.c).
 */
extern void FlowDropInternalObjects(const FlowDesc *flow);

/*
 * The flow ids that run_pipeline's refresh_tables names (resolved with the
 * pipeline's search_path); an unknown name is an error.
 */
extern List *FlowRefreshTableIds(const PipelineDesc *pipeline,
								 ArrayType *refresh_tables);

/*
 * Drop the internal objects medallion made for a flow besides its target
 * (state tables, change feed, capture triggers and indexes on its source),
 * as drop_flow does; replace => true drops them before making them anew.
 */
extern void FlowDropInternalObjects(const FlowDesc *flow);

/* Drop the views medallion made beside a flow's target (<target>_current). */
extern void FlowDropCompanionViews(const FlowDesc *flow);

/*
 * The stored name of a flow given an explicit name (where a target has
 * several flows): an identifier, optionally qualified by the target's
 * schema, stored as "schema.name" in the target's schema.  A name that is
 * another table's is refused, so that refresh_tables and drop_flow read
 * each name one way.  NULL gives NULL (the target's name).
 */
extern char *FlowNameForTarget(const char *flow_name, Oid target_namespace,
							   Oid target_relid);

#endif							/* MEDALLION_FLOW_LIFECYCLE_H */
