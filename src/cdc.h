/*-------------------------------------------------------------------------
 *
 * cdc.h
 *	  Gold AUTO CDC flows: apply change events to an SCD type 1 or type 2
 *	  target with the semantics of Databricks AUTO CDC INTO.
 *
 * What other families use: the update runs the apply and the reset, and
 * aggregate flows that read a CDC target ask for its SCD type and keys.
 * The family's own shared declarations are in cdc_internal.h.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/cdc.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef MEDALLION_CDC_H
#define MEDALLION_CDC_H

#include "flow.h"

/* Apply the source rows with low < _row_id <= high (current transaction). */
extern void CdcApply(FlowContext *context, FlowDesc *flow, int64 low,
					 int64 high, FlowResult *result);

/* Full refresh: empty what the flow keeps besides its target table. */
extern void CdcReset(FlowDesc *flow);

/*
 * Does a flow of this type keep an auto CDC target (keys, SCD layout, the
 * <target>_current view, a change feed for aggregates): auto_cdc and
 * auto_cdc_snapshot flows.
 */
extern bool CdcFlowTypeKeepsTarget(FlowType type);

/*
 * Members of an auto CDC flow's definition that flows reading its target
 * need: its SCD type (1 or 2) and its keys.
 */
extern int	CdcFlowScdType(const FlowDesc *flow);
extern List *CdcFlowKeys(const FlowDesc *flow);

#endif							/* MEDALLION_CDC_H */
