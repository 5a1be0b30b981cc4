/*-------------------------------------------------------------------------
 *
 * flow_order.c
 *	  The dependency order of a pipeline's flows (see flow_order.h).
 *
 * A flow reads the target of another flow of its pipeline through its
 * source table (medallion.flow.source_table: silver, auto CDC, aggregates)
 * or, for an attached materialized view, through the pipeline tables its
 * query reads, recorded at attachment in the definition's "inputs".  An
 * update runs the flows in a topological order of that relation, so that a
 * flow replaced or created again after the flows that read it still runs
 * before them.
 *
 * Several flows may write one target (bronze sources, append flows): a
 * flow reading that target runs after all of them, and an append flow
 * after the flows of its own source.  Nothing orders the writers of one
 * target among themselves.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/flow_order.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "flow_definition.h"
#include "flow_order.h"

/* Does a definition's "inputs" list name the target of source? */
static bool
inputs_name_target(const FlowDesc *reader, const FlowDesc *source)
{
	List	   *inputs;
	ListCell   *cell;
	char	   *target_name = NULL;

	if (reader->definition == NULL || !FlowDefinitionHas(reader, "inputs"))
		return false;
	inputs = FlowDefinitionStringList(reader, "inputs", false);
	foreach(cell, inputs)
	{
		const char *input = lfirst(cell);

		if (strcmp(input, source->flow_name) == 0)
			return true;
		if (target_name == NULL)
			target_name = CatalogQualifiedRelationName(source->target_relid);
		if (strcmp(input, target_name) == 0)
			return true;
	}
	return false;
}

bool
FlowReads(const FlowDesc *reader, const FlowDesc *source)
{
	if (reader == source || reader->flow_id == source->flow_id)
		return false;
	if (OidIsValid(reader->source_relid) &&
		reader->source_relid == source->target_relid)
		return true;
	return inputs_name_target(reader, source);
}

/*
 * Kahn's algorithm, taking at each step the first flow in creation order
 * whose sources are all placed.  Who reads whom is computed once (at most
 * MEDALLION_MAX_FLOWS_PER_PIPELINE squared pairs); the placement is then
 * cubic in the number of flows, in boolean tests only.
 */
List *
FlowOrderSort(List *flows)
{
	int			count = list_length(flows);
	bool	   *reads = palloc0(sizeof(bool) * Max(count * count, 1));
	bool	   *placed = palloc0(sizeof(bool) * Max(count, 1));
	List	   *ordered = NIL;
	int			i;
	int			j;

	for (i = 0; i < count; i++)
		for (j = 0; j < count; j++)
			reads[i * count + j] = i != j &&
				FlowReads(list_nth(flows, i), list_nth(flows, j));

	while (list_length(ordered) < count)
	{
		int			chosen = -1;

		for (i = 0; i < count && chosen < 0; i++)
		{
			bool		ready = !placed[i];

			for (j = 0; j < count && ready; j++)
				ready = placed[j] || !reads[i * count + j];
			if (ready)
				chosen = i;
		}
		/* a cycle: creation order for what is left */
		for (i = 0; i < count && chosen < 0; i++)
		{
			if (!placed[i])
				chosen = i;
		}
		placed[chosen] = true;
		ordered = lappend(ordered, list_nth(flows, chosen));
	}
	pfree(reads);
	pfree(placed);
	return ordered;
}

/* Does a flow other than flow write to its target? */
static bool
target_has_other_flows(List *flows, const FlowDesc *flow)
{
	ListCell   *cell;

	foreach(cell, flows)
	{
		FlowDesc   *other = lfirst(cell);

		if (other->flow_id != flow->flow_id &&
			other->target_relid == flow->target_relid)
			return true;
	}
	return false;
}

/* Does flow read a table of tables (OIDs)? */
static bool
reads_one_of(List *flows, const FlowDesc *flow, List *tables)
{
	ListCell   *cell;

	foreach(cell, flows)
	{
		FlowDesc   *source = lfirst(cell);

		if (list_member_oid(tables, source->target_relid) &&
			FlowReads(flow, source))
			return true;
	}
	return false;
}

/*
 * The refreshed tables grow from the targets of the flows named until no
 * flow reads one of them without its own target being one; an append flow
 * named alone into a shared target is a re-run, which refreshes nothing.
 */
List *
FlowOrderDownstream(List *flows, List *flow_ids)
{
	List	   *tables = NIL;	/* refreshed targets */
	List	   *reruns = NIL;	/* append flows run again alone */
	List	   *ordered = NIL;
	bool		grew = true;
	ListCell   *cell;

	foreach(cell, flows)
	{
		FlowDesc   *flow = lfirst(cell);

		if (!list_member_int(flow_ids, flow->flow_id))
			continue;
		if (flow->type == FLOW_TYPE_APPEND &&
			target_has_other_flows(flows, flow))
			reruns = lappend(reruns, flow);
		else
			tables = list_append_unique_oid(tables, flow->target_relid);
	}
	while (grew)
	{
		grew = false;
		foreach(cell, flows)
		{
			FlowDesc   *flow = lfirst(cell);

			if (list_member_oid(tables, flow->target_relid) ||
				!reads_one_of(flows, flow, tables))
				continue;
			tables = lappend_oid(tables, flow->target_relid);
			grew = true;
		}
	}

	/* in the order of flows */
	foreach(cell, flows)
	{
		FlowDesc   *flow = lfirst(cell);

		if (list_member_oid(tables, flow->target_relid) ||
			list_member_ptr(reruns, flow))
			ordered = lappend(ordered, flow);
	}
	list_free(tables);
	list_free(reruns);
	return ordered;
}

bool
FlowOrderTargetEmptied(List *flows, List *reset_flows, const FlowDesc *flow)
{
	ListCell   *cell;

	foreach(cell, flows)
	{
		FlowDesc   *other = lfirst(cell);

		if (other->target_relid == flow->target_relid &&
			!list_member_ptr(reset_flows, other))
			return false;
	}
	return true;
}

bool
FlowOrderFeeds(List *flows, Oid from_table, Oid table)
{
	List	   *reached = list_make1_oid(from_table);
	bool		grew = true;
	ListCell   *cell;

	while (grew && !list_member_oid(reached, table))
	{
		grew = false;
		foreach(cell, flows)
		{
			FlowDesc   *flow = lfirst(cell);

			if (list_member_oid(reached, flow->target_relid) ||
				!reads_one_of(flows, flow, reached))
				continue;
			reached = lappend_oid(reached, flow->target_relid);
			grew = true;
		}
	}
	return list_member_oid(reached, table);
}
