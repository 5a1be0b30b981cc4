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
 * The flows of flows (a list of FlowDesc) that a selective refresh of the
 * flows named in flow_ids (an integer list of flow ids) resets, in the
 * order of flows.  A flow named refreshes its target table: every flow
 * writing it is reset.  An append flow named into a table that other flows
 * feed is only run again from the start of its source (its target keeps
 * its rows, so nothing downstream is reset).  A flow that reads a
 * refreshed table, directly or through others, refreshes its own target.
 */
extern List *FlowOrderDownstream(List *flows, List *flow_ids);

/*
 * Is the target of flow emptied by a reset of reset_flows, i.e. is every
 * flow of flows that writes it among them?
 */
extern bool FlowOrderTargetEmptied(List *flows, List *reset_flows,
								   const FlowDesc *flow);

/*
 * Is table computed from from_table (the same table, or the target of a
 * flow reading from_table, and so on)?  A new flow from table into
 * from_table would close a cycle.
 */
extern bool FlowOrderFeeds(List *flows, Oid from_table, Oid table);

#endif							/* MEDALLION_FLOW_ORDER_H */
