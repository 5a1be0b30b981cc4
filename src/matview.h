/*-------------------------------------------------------------------------
 *
 * matview.h
 *	  Gold materialized views (create_materialized_view): a table kept
 *	  equal to a query over tables of the pipeline and plain tables, by
 *	  signed deltas where the query allows it, else recomputed in full.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/matview.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef MEDALLION_MATVIEW_H
#define MEDALLION_MATVIEW_H

#include "postgres.h"

#include "flow.h"

/* Bring a materialized view flow up to date (apply_whole, as the owner). */
extern void MaterializedViewApply(FlowContext *context, FlowDesc *flow,
								  FlowResult *result);

#endif							/* MEDALLION_MATVIEW_H */
