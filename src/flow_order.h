/*-------------------------------------------------------------------------
 *
 * flow_order.h
 *	  The dependency order of a pipeline's flows: which flow reads which
 *	  flow's target, the order an update runs them in, and the flows
 *	  downstream of a selection (selective refresh, drop_flow).
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/flow_order.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef MEDALLION_FLOW_ORDER_H
#define MEDALLION_FLOW_ORDER_H

#include "postgres.h"

#include "catalog.h"

/* Does reader read the target of source (its source table, or an input)? */
extern bool FlowReads(const FlowDesc *reader, const FlowDesc *source);

/*
 * The flows in dependency order: every flow after the flows whose targets
 * it reads, and otherwise in the order given (creation order), so that a
 * pipeline whose flows were created upstream first keeps its order.  A
 * cycle, which the create functions cannot make, keeps creation order for
 * the flows on it.  Returns a new list of the same FlowDesc pointers.
 */
extern List *FlowOrderSort(List *flows);

/*
 * The flows of flows (a list of FlowDesc) that are named in flow_ids (an
 * integer list of flow ids) or read, directly or through others, the target
 * of one of them; in the order of flows.
 */
extern List *FlowOrderDownstream(List *flows, List *flow_ids);

#endif							/* MEDALLION_FLOW_ORDER_H */
