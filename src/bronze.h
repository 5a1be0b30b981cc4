/*-------------------------------------------------------------------------
 *
 * bronze.h
 *	  Bronze flows: the records of new S3 objects, ingested exactly once.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MEDALLION_BRONZE_H
#define MEDALLION_BRONZE_H

#include "flow.h"

/*
 * Ingest the objects not yet in the ledger.  Must be called outside a
 * transaction: it lists S3 and downloads with no transaction open, and
 * commits each object's rows together with its ledger row.
 */
extern void BronzeRunFlow(FlowContext *context, FlowDesc *flow,
						  FlowResult *result);

/* Full refresh: forget the ledger of the flow (current transaction). */
extern void BronzeReset(FlowDesc *flow);

#endif							/* MEDALLION_BRONZE_H */
