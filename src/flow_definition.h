/*-------------------------------------------------------------------------
 *
 * flow_definition.h
 *	  Reading and writing a flow's stored definition: the jsonb object in
 *	  medallion.flow.definition that holds a flow's arguments and what they
 *	  resolved to at creation.
 *
 * Every flow type writes its definition with a FlowDefinitionBuilder and
 * reads it back with the FlowDefinition* readers, so that a definition that
 * is not what medallion wrote (edited by hand, or damaged) raises one error
 * everywhere: ERRCODE_DATA_CORRUPTED, naming the flow and the member.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/flow_definition.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef MEDALLION_FLOW_DEFINITION_H
#define MEDALLION_FLOW_DEFINITION_H

#include "postgres.h"

#include "catalog.h"
#include "lib/stringinfo.h"
#include "nodes/pg_list.h"
#include "utils/jsonb.h"

/* A definition being written, member by member. */
typedef struct FlowDefinitionBuilder
{
	StringInfoData json;
	bool		empty;			/* no member yet */
} FlowDefinitionBuilder;

extern void FlowDefinitionBegin(FlowDefinitionBuilder *builder);

/* Members; a NULL string is stored as JSON null. */
extern void FlowDefinitionPutString(FlowDefinitionBuilder *builder,
									const char *member, const char *value);
extern void FlowDefinitionPutStringList(FlowDefinitionBuilder *builder,
										const char *member, List *values);
extern void FlowDefinitionPutNull(FlowDefinitionBuilder *builder,
								  const char *member);
extern void FlowDefinitionPutBool(FlowDefinitionBuilder *builder,
								  const char *member, bool value);
extern void FlowDefinitionPutInt(FlowDefinitionBuilder *builder,
								 const char *member, int64 value);

/* A member whose value is JSON text the caller built (an object, say). */
extern void FlowDefinitionPutJson(FlowDefinitionBuilder *builder,
								  const char *member, const char *json);

/* The definition as jsonb; the builder is spent. */
extern Jsonb *FlowDefinitionEnd(FlowDefinitionBuilder *builder);

/*
 * Readers.  A member that is absent or JSON null reads as NULL (NIL, or the
 * default) unless it is required; a member of the wrong type, or a required
 * one that is missing, raises FlowDefinitionCorrupted.
 */
extern char *FlowDefinitionString(const FlowDesc *flow, const char *member,
								  bool required);
extern List *FlowDefinitionStringList(const FlowDesc *flow,
									  const char *member, bool required);
extern bool FlowDefinitionBool(const FlowDesc *flow, const char *member,
							   bool default_value);
extern int64 FlowDefinitionInt(const FlowDesc *flow, const char *member,
							   int64 default_value);

/* Is the member present and not JSON null? */
extern bool FlowDefinitionHas(const FlowDesc *flow, const char *member);

/* An object member as jsonb, or NULL when absent or JSON null. */
extern Jsonb *FlowDefinitionObject(const FlowDesc *flow, const char *member);

/*
 * A string member of a flow's progress (medallion.flow.flow_state), or NULL
 * when absent or not a string: progress is rewritten by every update, and a
 * member it lacks means "from the start".
 */
extern char *FlowStateString(const FlowDesc *flow, const char *member);

/* The one error for a definition that is not what medallion wrote. */
extern void FlowDefinitionCorrupted(const char *flow_name,
									const char *member) pg_attribute_noreturn();

#endif							/* MEDALLION_FLOW_DEFINITION_H */
