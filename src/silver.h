/*-------------------------------------------------------------------------
 *
 * silver.h
 *	  Silver flows: a user SELECT over one pipeline table, fed only the new
 *	  source rows, with deduplication, expectations and quarantine.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/silver.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef MEDALLION_SILVER_H
#define MEDALLION_SILVER_H

#include "flow.h"

/* Apply the source rows with low < _row_id <= high (current transaction). */
extern void SilverApply(FlowContext *context, FlowDesc *flow, int64 low,
						int64 high, FlowResult *result);

/* Full refresh: empty what the flow keeps besides its target table. */
extern void SilverReset(FlowDesc *flow);

#endif							/* MEDALLION_SILVER_H */
