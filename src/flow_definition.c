/*-------------------------------------------------------------------------
 *
 * flow_definition.c
 *	  Reading and writing a flow's stored definition (see flow_definition.h).
 *
 * Definitions are written as JSON text and parsed once into jsonb, so that
 * what is stored is exactly what jsonb_in accepts; they are read with
 * getKeyJsonValueFromContainer, member by member, checking each member's
 * type.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/flow_definition.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"

#include "flow_definition.h"

void
FlowDefinitionBegin(FlowDefinitionBuilder *builder)
{
	initStringInfo(&builder->json);
	appendStringInfoChar(&builder->json, '{');
	builder->empty = true;
}

/* Start a member: the separator and the quoted key. */
static void
put_key(FlowDefinitionBuilder *builder, const char *member)
{
	if (!builder->empty)
		appendStringInfoString(&builder->json, ", ");
	builder->empty = false;
	escape_json(&builder->json, member);
	appendStringInfoString(&builder->json, ": ");
}

void
FlowDefinitionPutString(FlowDefinitionBuilder *builder, const char *member,
						const char *value)
{
	put_key(builder, member);
	if (value == NULL)
		appendStringInfoString(&builder->json, "null");
	else
		escape_json(&builder->json, value);
}

void
FlowDefinitionPutStringList(FlowDefinitionBuilder *builder,
							const char *member, List *values)
{
	ListCell   *cell;

	put_key(builder, member);
	appendStringInfoChar(&builder->json, '[');
	foreach(cell, values)
	{
		if (foreach_current_index(cell) > 0)
			appendStringInfoString(&builder->json, ", ");
		escape_json(&builder->json, (const char *) lfirst(cell));
	}
	appendStringInfoChar(&builder->json, ']');
}

void
FlowDefinitionPutNull(FlowDefinitionBuilder *builder, const char *member)
{
	put_key(builder, member);
	appendStringInfoString(&builder->json, "null");
}

void
FlowDefinitionPutBool(FlowDefinitionBuilder *builder, const char *member,
					  bool value)
{
	put_key(builder, member);
	appendStringInfoString(&builder->json, value ? "true" : "false");
}

void
FlowDefinitionPutInt(FlowDefinitionBuilder *builder, const char *member,
					 int64 value)
{
	put_key(builder, member);
	appendStringInfo(&builder->json, INT64_FORMAT, value);
}

void
FlowDefinitionPutJson(FlowDefinitionBuilder *builder, const char *member,
					  const char *json)
{
	put_key(builder, member);
	appendStringInfoString(&builder->json, json);
}

Jsonb *
FlowDefinitionEnd(FlowDefinitionBuilder *builder)
{
	Jsonb	   *definition;

	appendStringInfoChar(&builder->json, '}');
	definition = DatumGetJsonbP(DirectFunctionCall1(jsonb_in,
													CStringGetDatum(builder->json.data)));
	pfree(builder->json.data);
	return definition;
}

void
FlowDefinitionCorrupted(const char *flow_name, const char *member)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("definition of flow \"%s\" is corrupted", flow_name),
			 errdetail("Member \"%s\" is missing or has the wrong type.",
					   member),
			 errhint("Definitions are written by medallion only; drop the flow and create it again.")));
}

/*
 * The member's value, or NULL when it is absent or JSON null (an error when
 * it is required).  A definition that is not an object is corrupted as a
 * whole, which the message reports as its first member asked for.
 */
static JsonbValue *
get_member(const FlowDesc *flow, const char *member, bool required)
{
	JsonbValue *value;

	if (flow->definition == NULL || !JB_ROOT_IS_OBJECT(flow->definition))
		FlowDefinitionCorrupted(flow->flow_name, member);
	value = getKeyJsonValueFromContainer(&flow->definition->root, member,
										 strlen(member), NULL);
	if (value != NULL && value->type == jbvNull)
		value = NULL;
	if (value == NULL && required)
		FlowDefinitionCorrupted(flow->flow_name, member);
	return value;
}

bool
FlowDefinitionHas(const FlowDesc *flow, const char *member)
{
	return get_member(flow, member, false) != NULL;
}

char *
FlowDefinitionString(const FlowDesc *flow, const char *member, bool required)
{
	JsonbValue *value = get_member(flow, member, required);

	if (value == NULL)
		return NULL;
	if (value->type != jbvString)
		FlowDefinitionCorrupted(flow->flow_name, member);
	return pnstrdup(value->val.string.val, value->val.string.len);
}

List *
FlowDefinitionStringList(const FlowDesc *flow, const char *member,
						 bool required)
{
	JsonbValue *value = get_member(flow, member, required);
	List	   *result = NIL;
	JsonbIterator *iterator;
	JsonbValue	element;
	JsonbIteratorToken token;

	if (value == NULL)
		return NIL;
	if (value->type != jbvBinary ||
		!JsonContainerIsArray(value->val.binary.data))
		FlowDefinitionCorrupted(flow->flow_name, member);

	iterator = JsonbIteratorInit(value->val.binary.data);
	while ((token = JsonbIteratorNext(&iterator, &element, true)) != WJB_DONE)
	{
		if (token != WJB_ELEM)
			continue;
		if (element.type != jbvString)
			FlowDefinitionCorrupted(flow->flow_name, member);
		result = lappend(result, pnstrdup(element.val.string.val,
										  element.val.string.len));
	}
	return result;
}

bool
FlowDefinitionBool(const FlowDesc *flow, const char *member,
				   bool default_value)
{
	JsonbValue *value = get_member(flow, member, false);

	if (value == NULL)
		return default_value;
	if (value->type != jbvBool)
		FlowDefinitionCorrupted(flow->flow_name, member);
	return value->val.boolean;
}

int64
FlowDefinitionInt(const FlowDesc *flow, const char *member,
				  int64 default_value)
{
	JsonbValue *value = get_member(flow, member, false);

	if (value == NULL)
		return default_value;
	if (value->type != jbvNumeric)
		FlowDefinitionCorrupted(flow->flow_name, member);
	return DatumGetInt64(DirectFunctionCall1(numeric_int8,
											 NumericGetDatum(value->val.numeric)));
}

Jsonb *
FlowDefinitionObject(const FlowDesc *flow, const char *member)
{
	JsonbValue *value = get_member(flow, member, false);

	if (value == NULL)
		return NULL;
	if (value->type != jbvBinary ||
		!JsonContainerIsObject(value->val.binary.data))
		FlowDefinitionCorrupted(flow->flow_name, member);
	return JsonbValueToJsonb(value);
}

char *
FlowStateString(const FlowDesc *flow, const char *member)
{
	JsonbValue *value;

	if (flow->flow_state == NULL || !JB_ROOT_IS_OBJECT(flow->flow_state))
		return NULL;
	value = getKeyJsonValueFromContainer(&flow->flow_state->root, member,
										 strlen(member), NULL);
	if (value == NULL || value->type != jbvString)
		return NULL;
	return pnstrdup(value->val.string.val, value->val.string.len);
}
