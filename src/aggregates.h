/*-------------------------------------------------------------------------
 *
 * aggregates.h
 *	  Gold aggregate tables maintained incrementally, and materialized views
 *	  attached to a pipeline: what the update runs (the flow-type table in
 *	  update.c).
 *
 * AggregateApply and AggregateReset are in aggregates.c, MatviewRefresh in
 * aggregate_matview.c; the family's other files share
 * aggregates_internal.h.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/aggregates.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef MEDALLION_AGGREGATES_H
#define MEDALLION_AGGREGATES_H

#include "flow.h"

/*
 * Bring an aggregate flow's target up to date with its source, inside the
 * current transaction (the caller has entered the pipeline owner's
 * context).  The flow keeps its own progress (watermark or change log).
 */
extern void AggregateApply(FlowContext *context, FlowDesc *flow,
						   FlowResult *result);

/* Full refresh: empty what the flow keeps besides its target table. */
extern void AggregateReset(FlowDesc *flow);

/*
 * Refresh an attached materialized view when one of the tables it reads
 * changed in this update (context->changed_relids), inside the current
 * transaction, in the pipeline owner's context.
 */
extern void MatviewRefresh(FlowContext *context, FlowDesc *flow,
						   FlowResult *result);

#endif							/* MEDALLION_AGGREGATES_H */
