/*-------------------------------------------------------------------------
 *
 * cdc_snapshot.h
 *	  Gold AUTO CDC FROM SNAPSHOT flows: an SCD type 1 or type 2 target kept
 *	  by diffing consecutive snapshots of a source on its keys, with the
 *	  semantics of Databricks create_auto_cdc_from_snapshot_flow.
 *
 * The target, its view <target>_current and its change feed are those of
 * an auto CDC flow (cdc.h); only where the changes come from differs.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/cdc_snapshot.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef MEDALLION_CDC_SNAPSHOT_H
#define MEDALLION_CDC_SNAPSHOT_H

#include "flow.h"

/*
 * Apply the snapshots not applied yet, in ascending version order, in the
 * current transaction, as the pipeline owner (an apply_whole routine).
 */
extern void CdcSnapshotApply(FlowContext *context, FlowDesc *flow,
							 FlowResult *result);

#endif							/* MEDALLION_CDC_SNAPSHOT_H */
