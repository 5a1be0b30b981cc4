/*-------------------------------------------------------------------------
 *
 * bronze.h
 *	  Bronze flows: the records of new S3 objects, ingested exactly once.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/bronze.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef MEDALLION_BRONZE_H
#define MEDALLION_BRONZE_H

#include "flow.h"

/*
 * Ingest one batch of the objects not yet in the ledger (at most
 * max_files_per_batch / max_bytes_per_batch).  The first call of an update
 * lists S3; later calls of the same update (same FlowDesc) take the next
 * batch of that listing.  Must be called outside a transaction: it lists
 * S3 and downloads with no transaction open, and commits each object's
 * rows together with its ledger row.
 */
extern void BronzeRunFlow(FlowContext *context, FlowDesc *flow,
						  FlowResult *result);

/*
 * Does the listing of this update's first batch still hold objects for
 * another batch (within max_batches_per_update)?
 */
extern bool BronzeHasObjectsLeft(const FlowDesc *flow);

/* Full refresh: forget the ledger of the flow (current transaction). */
extern void BronzeReset(FlowDesc *flow);

#endif							/* MEDALLION_BRONZE_H */
