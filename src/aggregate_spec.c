/*-------------------------------------------------------------------------
 *
 * aggregate_spec.c
 *	  The spec of an aggregate flow, read from its stored definition, and the
 *	  statement text the family builds over it.
 *
 * Stored expressions are checked and placed again whenever a definition is
 * loaded (user_sql.c), so that a catalog row edited by hand cannot splice
 * SQL into the flow's statements.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/aggregate_spec.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/stratnum.h"
#include "catalog/namespace.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/typcache.h"

#include "aggregates_internal.h"
#include "flow.h"
#include "flow_definition.h"
#include "spi_util.h"
#include "sql_names.h"
#include "user_sql.h"

/*
 * The names of the source kinds, as the definition's "source_kind" member
 * and the flow_progress event's details say them.
 */
static const char *const source_kind_names[] = {
	[AGG_SOURCE_APPEND] = "append_only",
	[AGG_SOURCE_CDC] = "auto_cdc",
	[AGG_SOURCE_AGGREGATE] = "aggregate",
};

const char *
AggSourceKindName(AggSourceKind kind)
{
	return source_kind_names[kind];
}

/* A source kind from its stored name; absent means append_only. */
static AggSourceKind
agg_source_kind_from_definition(const FlowDesc *flow)
{
	char	   *name = FlowDefinitionString(flow, "source_kind", false);
	int			kind;

	if (name == NULL)
		return AGG_SOURCE_APPEND;
	for (kind = 0; kind < lengthof(source_kind_names); kind++)
	{
		if (strcmp(source_kind_names[kind], name) == 0)
			return (AggSourceKind) kind;
	}
	FlowDefinitionCorrupted(flow->flow_name, "source_kind");
}

/* Does a name begin with what medallion uses in its statements? */
bool
AggIsReserved(const char *name)
{
	return strncmp(name, AGG_RESERVED_PREFIX,
				   strlen(AGG_RESERVED_PREFIX)) == 0;
}

/*
 * The equality operator of a type's default btree operator class, as
 * "OPERATOR(schema.=)", so that lookups match as GROUP BY and the indexes
 * do whatever the search_path holds.  NULL when the type has none.
 */
char *
AggEqOperatorSql(Oid type)
{
	TypeCacheEntry *typentry;
	Oid			opno;

	typentry = lookup_type_cache(getBaseType(type), TYPECACHE_BTREE_OPFAMILY);
	if (!OidIsValid(typentry->btree_opf))
		return NULL;
	opno = get_opfamily_member(typentry->btree_opf, typentry->btree_opintype,
							   typentry->btree_opintype, BTEqualStrategyNumber);
	if (!OidIsValid(opno))
		return NULL;
	return SqlOperatorName(opno);
}

/* "1, 2, ..., n" */
char *
AggPositions(int n)
{
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	for (i = 1; i <= n; i++)
		appendStringInfo(&buf, "%s%d", i > 1 ? ", " : "", i);
	return buf.data;
}

/* The placed filter, or "true" */
char *
AggWhereSql(AggSpec *spec)
{
	if (spec->filter == NULL)
		return "true";
	return spec->filter_sql;
}

/* "(<e1>\n) AS g1, ..., (<a1>\n) AS a1, ...": the placed items, named */
char *
AggSelectListSql(AggSpec *spec)
{
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	for (i = 0; i < spec->ngroups; i++)
		appendStringInfo(&buf, "%s%s AS %s", i > 0 ? ", " : "",
						 spec->groups[i].sql,
						 quote_identifier(spec->groups[i].name));
	for (i = 0; i < spec->naggs; i++)
		appendStringInfo(&buf, ", %s AS %s", spec->aggs[i].sql,
						 quote_identifier(spec->aggs[i].name));
	return buf.data;
}

/* "(<e1>\n), (<e2>\n)": the placed group expressions alone */
char *
AggGroupExprsSql(AggSpec *spec)
{
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	for (i = 0; i < spec->ngroups; i++)
		appendStringInfo(&buf, "%s%s", i > 0 ? ", " : "",
						 spec->groups[i].sql);
	return buf.data;
}

/* the target's column list, quoted, with an optional qualifier */
char *
AggTargetColumnsSql(AggSpec *spec, const char *qualifier)
{
	StringInfoData buf;
	int			i;
	int			n = 0;

	initStringInfo(&buf);
	for (i = 0; i < spec->ngroups; i++, n++)
		appendStringInfo(&buf, "%s%s%s%s", n > 0 ? ", " : "",
						 qualifier ? qualifier : "", qualifier ? "." : "",
						 quote_identifier(spec->groups[i].name));
	for (i = 0; i < spec->naggs; i++, n++)
		appendStringInfo(&buf, "%s%s%s%s", n > 0 ? ", " : "",
						 qualifier ? qualifier : "", qualifier ? "." : "",
						 quote_identifier(spec->aggs[i].name));
	return buf.data;
}

/* "group_1, ..., group_k" (columns of the state tables) */
char *
AggStateGroupColumnsSql(int ngroups, const char *qualifier)
{
	return SqlNumberedColumns("group_", ngroups, qualifier);
}

/* ", (<argument 1>\n) AS argument_1, ...", over the source */
char *
AggDeltaArgumentListSql(AggSpec *spec)
{
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	for (i = 0; i < spec->delta->narguments; i++)
		appendStringInfo(&buf, ", %s AS argument_%d",
						 spec->delta->argument_sql[i], i + 1);
	return buf.data;
}

/*
 * Items from the parallel lists of expressions and names; what is the
 * argument they came from ("group_by"), for messages.
 */
static AggItem *
agg_def_items(const FlowDesc *flow, const char *exprs_key,
			  const char *names_key, const char *what, int *n)
{
	List	   *exprs = FlowDefinitionStringList(flow, exprs_key, true);
	List	   *names = FlowDefinitionStringList(flow, names_key, true);
	AggItem    *items;
	int			i;

	if (list_length(exprs) != list_length(names))
		FlowDefinitionCorrupted(flow->flow_name, names_key);
	*n = list_length(exprs);
	items = palloc0(sizeof(AggItem) * Max(*n, 1));
	for (i = 0; i < *n; i++)
	{
		items[i].expr = list_nth(exprs, i);
		items[i].name = list_nth(names, i);
		items[i].sql = UserSqlExpression(items[i].expr,
										 psprintf("%s item %d", what, i + 1));
	}
	return items;
}

/* A state table named in the definition, which must still exist. */
static char *
agg_def_table(const char *name, const char *flow_name)
{
	Oid			relid = InvalidOid;

	if (name != NULL)
		relid = RelidFromQualifiedName(name, true);
	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("state table %s of aggregate flow \"%s\" does not exist",
						name ? name : "(none)", flow_name),
				 errhint("Drop the pipeline and create the flow again.")));
	return CatalogQualifiedRelationName(relid);
}

/* The state table a definition member names. */
static char *
agg_def_state_table(const FlowDesc *flow, const char *member)
{
	return agg_def_table(FlowDefinitionString(flow, member, true),
						 flow->flow_name);
}

/*
 * The source: source_table, or the name in the definition when a catalog
 * lacks it; it must still exist.
 */
static void
agg_spec_load_source(AggSpec *spec, const FlowDesc *flow)
{
	spec->source_relid = flow->source_relid;
	if (!OidIsValid(spec->source_relid))
	{
		char	   *source_name = FlowDefinitionString(flow, "source", false);

		if (source_name != NULL)
			spec->source_relid = RelidFromQualifiedName(source_name, true);
	}
	FlowCheckSourceExists(flow, spec->source_relid);
	spec->source_name = CatalogQualifiedRelationName(spec->source_relid);
	spec->source_ref = pstrdup(quote_identifier(get_rel_name(spec->source_relid)));
}

/* The items and the filter, checked and placed again. */
static void
agg_spec_load_items(AggSpec *spec, const FlowDesc *flow)
{
	spec->groups = agg_def_items(flow, "group_expressions", "group_columns",
								 "group_by", &spec->ngroups);
	spec->aggs = agg_def_items(flow, "aggregate_expressions",
							   "aggregate_columns", "aggregates",
							   &spec->naggs);
	if (spec->ngroups == 0 || spec->ngroups > AGG_MAX_GROUPS)
		FlowDefinitionCorrupted(flow->flow_name, "group_expressions");
	spec->filter = FlowDefinitionString(flow, "filter", false);
	if (spec->filter != NULL)
		spec->filter_sql = UserSqlExpression(spec->filter, "filter");
}

/*
 * Delta maintenance: the plan, the groups table, and a values table for
 * exactly the items that need one ("" for the others).
 */
static void
agg_spec_load_delta(AggSpec *spec, const FlowDesc *flow)
{
	char	   *maintenance = FlowDefinitionString(flow, "maintenance", false);
	List	   *values_tables = NIL;
	ListCell   *cell;

	spec->values_tables = palloc0(sizeof(char *) * Max(spec->naggs, 1));
	if (maintenance == NULL || strcmp(maintenance, "delta") != 0)
		return;
	spec->delta = AggregateDeltaFromDefinition(flow);
	if (spec->delta->nitems != spec->naggs ||
		(spec->kind != AGG_SOURCE_APPEND && spec->kind != AGG_SOURCE_CDC))
		FlowDefinitionCorrupted(flow->flow_name, "delta_kinds");
	spec->groups_table = agg_def_state_table(flow, "groups_table");
	values_tables = FlowDefinitionStringList(flow, "values_tables", true);
	if (list_length(values_tables) != spec->naggs)
		FlowDefinitionCorrupted(flow->flow_name, "values_tables");
	foreach(cell, values_tables)
	{
		int			i = foreach_current_index(cell);
		char	   *table = lfirst(cell);

		if (AggregateDeltaNeedsValues(spec->delta, i) != (table[0] != '\0'))
			FlowDefinitionCorrupted(flow->flow_name, "values_tables");
		if (table[0] != '\0')
			spec->values_tables[i] = agg_def_table(table, flow->flow_name);
	}
}

/* The group columns of the target: types, equality, collation. */
static void
agg_spec_resolve_target(AggSpec *spec, const FlowDesc *flow)
{
	int			i;

	spec->group_types = palloc0(sizeof(Oid) * spec->ngroups);
	spec->group_eq = palloc0(sizeof(char *) * spec->ngroups);
	spec->group_collate = palloc0(sizeof(char *) * spec->ngroups);
	for (i = 0; i < spec->ngroups; i++)
	{
		AttrNumber	attnum = get_attnum(spec->target_relid,
										spec->groups[i].name);
		Oid			typid;
		int32		typmod;
		Oid			collation;

		if (attnum == InvalidAttrNumber)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("column \"%s\" of the target of flow \"%s\" does not exist",
							spec->groups[i].name, flow->flow_name),
					 errhint("Do not alter the target of an aggregate flow; run the pipeline with full_refresh after recreating it.")));
		get_atttypetypmodcoll(spec->target_relid, attnum, &typid, &typmod,
							  &collation);
		spec->group_types[i] = typid;
		spec->group_eq[i] = AggEqOperatorSql(typid);
		if (spec->group_eq[i] == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_FUNCTION),
					 errmsg("could not identify an equality operator for type %s",
							format_type_be(typid))));
		spec->group_collate[i] = SqlCollateClause(collation);
	}
}

/*
 * The spec of a flow from its definition.  Stored expressions are checked
 * again before use, so that a catalog row edited by hand cannot splice SQL
 * into the flow's statements (as ExpectationsLoad does).  The caller has
 * set standard_conforming_strings.  resolve_target: also what an apply
 * needs of the target's group columns.
 */
AggSpec *
AggSpecLoad(FlowDesc *flow, bool resolve_target)
{
	AggSpec    *spec = palloc0(sizeof(AggSpec));

	spec->flow_name = flow->flow_name;
	spec->target_relid = flow->target_relid;
	spec->target_name = CatalogQualifiedRelationName(flow->target_relid);
	agg_spec_load_source(spec, flow);
	agg_spec_load_items(spec, flow);
	spec->kind = agg_source_kind_from_definition(flow);
	agg_spec_load_delta(spec, flow);
	if (spec->kind == AGG_SOURCE_CDC)
	{
		spec->feed_table = agg_def_state_table(flow, "change_feed");
		spec->feed_relid = RelidFromQualifiedName(spec->feed_table, false);
	}
	else if (spec->kind == AGG_SOURCE_AGGREGATE)
		spec->state_table = agg_def_state_table(flow, "state_table");
	if (resolve_target)
		agg_spec_resolve_target(spec, flow);
	return spec;
}
