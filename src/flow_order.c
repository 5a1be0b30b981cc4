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

List *
FlowOrderDownstream(List *flows, List *flow_ids)
{
	List	   *selected = NIL;
	List	   *ordered = NIL;
	bool		grew = true;
	ListCell   *cell;

	foreach(cell, flows)
	{
		FlowDesc   *flow = lfirst(cell);

		if (list_member_int(flow_ids, flow->flow_id))
			selected = lappend(selected, flow);
	}
	while (grew)
	{
		grew = false;
		foreach(cell, flows)
		{
			FlowDesc   *flow = lfirst(cell);
			ListCell   *source;

			if (list_member_ptr(selected, flow))
				continue;
			foreach(source, selected)
			{
				if (FlowReads(flow, lfirst(source)))
				{
					selected = lappend(selected, flow);
					grew = true;
					break;
				}
			}
		}
	}

	/* in the order of flows */
	foreach(cell, flows)
	{
		if (list_member_ptr(selected, lfirst(cell)))
			ordered = lappend(ordered, lfirst(cell));
	}
	list_free(selected);
	return ordered;
}
