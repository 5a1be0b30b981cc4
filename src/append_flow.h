/*-------------------------------------------------------------------------
 *
 * append_flow.h
 *	  Append flows: a query over one table of the pipeline, read
 *	  incrementally, appended to an existing silver or bronze target that
 *	  other flows feed too (add_append_flow).
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/append_flow.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef MEDALLION_APPEND_FLOW_H
#define MEDALLION_APPEND_FLOW_H

#include "flow.h"

/*
 * Append the source rows with low < _row_id <= high to the target (current
 * transaction, owner's context).  A once flow does so only in the update
 * it first ran in, until a full refresh or a refresh naming it.
 */
extern void AppendApply(FlowContext *context, FlowDesc *flow, int64 low,
						int64 high, FlowResult *result);

#endif							/* MEDALLION_APPEND_FLOW_H */
