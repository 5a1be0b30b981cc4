/*-------------------------------------------------------------------------
 *
 * aggregate_create.c
 *	  medallion.create_aggregate(): checking a new aggregate flow's query and
 *	  making its target, its state tables and its capture triggers.
 *
 * User SQL.  Each group_by and aggregates item must be one expression,
 * optionally followed by AS and a name, and the filter one expression; they
 * are checked, split from their names and placed by user_sql.c (UserSqlItem,
 * UserSqlExpression), at creation and whenever the definition is loaded.
 * The whole query is then analysed as the caller under the
 * pipeline's search_path, and refused if it uses window functions,
 * set-returning functions or subqueries (which recomputing some groups
 * cannot honour), or if the group expressions or the filter are not
 * immutable (their value would depend on the session, and they could not
 * be indexed).  User expressions are always evaluated in a subquery whose
 * only FROM item is the source (or its change feed, under the source's
 * name), so their names resolve as at creation.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/aggregate_create.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_trigger.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "optimizer/optimizer.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/regproc.h"

#include "aggregates_internal.h"
#include "cdc.h"
#include "change_feed.h"
#include "flow_create.h"
#include "flow_definition.h"
#include "spi_util.h"
#include "sql_names.h"
#include "state_table.h"
#include "user_sql.h"
#include "version.h"

PG_FUNCTION_INFO_V1(medallion_create_aggregate);

/* What the analysis of a new flow's query found. */
typedef struct AggAnalysis
{
	TupleDesc	desc;			/* result columns: groups, then aggregates */
	Query	   *query;			/* the analysed query */
} AggAnalysis;

/*
 * What create_aggregate decides and makes, step by step: the skeleton's
 * state, the arguments, the spec of the new flow (its source, items, kind,
 * state tables and delta plan, as AggSpecLoad will read them back), and the
 * relations made beside the target.
 */
typedef struct AggCreate
{
	FlowCreate	create;
	char	   *source_table;	/* the arguments, as given */
	List	   *group_items;
	List	   *agg_items;
	FlowDesc   *source_flow;	/* the flow writing the source, or NULL */
	AggSpec		spec;
	AggAnalysis analysis;
	char	   *delta_reason;	/* why the items are recomputed */
	char	   *state_name;		/* unquoted names of the state tables */
	char	   *groups_name;
	char	  **values_names;
	char	   *source_index;	/* quoted and qualified, or NULL */
	int32		flow_id;
} AggCreate;

/* The elements of a text[] argument; errors on NULLs and >1 dimension. */
static List *
agg_text_array_arg(FunctionCallInfo fcinfo, int argno, const char *argname)
{
	ArrayType  *array;
	Datum	   *elems;
	bool	   *nulls;
	int			nelems;
	int			i;
	List	   *result = NIL;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", argname)));
	array = PG_GETARG_ARRAYTYPE_P(argno);
	if (ARR_NDIM(array) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("%s must be a one-dimensional array", argname)));
	deconstruct_array_builtin(array, TEXTOID, &elems, &nulls, &nelems);
	for (i = 0; i < nelems; i++)
	{
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s must not contain nulls", argname)));
		result = lappend(result, TextDatumGetCString(elems[i]));
	}
	return result;
}

/* Error context while checking the arguments of a new flow. */
static void
agg_create_error_callback(void *arg)
{
	errcontext("checking aggregate flow \"%s\"", (const char *) arg);
}

/*
 * Check one group_by or aggregates item of a new flow (index from 0): its
 * expression and placed form, and its name when it has one (the others
 * get theirs from the analysed query).
 */
static void
agg_check_item(AggItem *item, const char *what, int index, const char *text)
{
	UserSqlItemText *checked = UserSqlItem(text, psprintf("%s item %d", what,
														  index + 1));

	item->expr = checked->text;
	item->sql = checked->sql;
	item->name = checked->name;
}

/* The expressions (or the names) of items, for the definition. */
static List *
agg_item_list(AggItem *items, int n, bool names)
{
	List	   *list = NIL;
	int			i;

	for (i = 0; i < n; i++)
		list = lappend(list, names ? items[i].name : items[i].expr);
	return list;
}

/*
 * Analyse the query of a new flow as the caller and check what an
 * incremental recompute needs.
 */
static void
agg_analyze(const char *flow_name, AggSpec *spec, List *group_items,
			List *agg_items, AggAnalysis *out)
{
	StringInfoData sql;
	ListCell   *cell;
	List	   *raw;
	Query	   *query;
	int			ngroups = spec->ngroups;
	int			index;

	/*
	 * The placed items, with the names the user gave them; the others get
	 * the names SELECT gives (the placed form parses to the same tree).
	 */
	initStringInfo(&sql);
	appendStringInfoString(&sql, "SELECT ");
	for (index = 0; index < spec->ngroups + spec->naggs; index++)
	{
		AggItem    *item = index < ngroups ? &spec->groups[index] :
			&spec->aggs[index - ngroups];

		appendStringInfo(&sql, "%s%s", index > 0 ? ", " : "", item->sql);
		if (item->name != NULL)
			appendStringInfo(&sql, " AS %s", quote_identifier(item->name));
	}
	appendStringInfo(&sql, " FROM %s", spec->source_name);
	if (spec->filter != NULL)
		appendStringInfo(&sql, " WHERE %s", spec->filter_sql);
	appendStringInfo(&sql, " GROUP BY %s", AggPositions(ngroups));

	raw = UserSqlRawParse(sql.data);
	if (list_length(raw) != 1)
		elog(ERROR, "query of aggregate flow \"%s\" is not one statement",
			 flow_name);
	query = UserSqlAnalyzeQuery(linitial_node(RawStmt, raw), sql.data, 0,
								NULL, NULL, &out->desc);
	out->query = query;

	if (query->hasWindowFuncs)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("an aggregate flow cannot use window functions"),
				 errdetail("Window functions look across groups, and an update recomputes only some groups."),
				 errhint("Compute them in a view over the aggregate table.")));
	if (query->hasTargetSRFs)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("an aggregate flow cannot use set-returning functions in group_by or aggregates")));
	if (query->hasSubLinks)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("an aggregate flow cannot use subqueries"),
				 errdetail("A subquery may read other tables, whose changes the flow does not follow."),
				 errhint("Aggregate a pipeline table that holds what you need, or use a materialized view (medallion.add_materialized_view).")));
	if (query->groupingSets != NIL || list_length(query->rtable) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("unsupported query shape for an aggregate flow")));

	index = 0;
	foreach(cell, query->targetList)
	{
		TargetEntry *tle = lfirst_node(TargetEntry, cell);

		if (tle->resjunk)
			continue;
		if (index < ngroups)
		{
			if (contain_mutable_functions((Node *) tle->expr))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("group_by item %d is not immutable", index + 1),
						 errdetail("The item was: %s.",
								   (char *) list_nth(group_items, index)),
						 errhint("A group must not depend on the session or the time, so that recomputing it gives the same groups; for example, use (ts AT TIME ZONE 'UTC')::date rather than ts::date for a timestamptz.")));
		}
		else if (contain_volatile_functions((Node *) tle->expr))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("aggregates item %d uses a volatile function",
							index - ngroups + 1),
					 errdetail("The item was: %s.",
							   (char *) list_nth(agg_items, index - ngroups))));
		index++;
	}
	if (query->jointree->quals != NULL &&
		contain_mutable_functions(query->jointree->quals))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("filter is not immutable"),
				 errdetail("The filter was: %s.", spec->filter),
				 errhint("The filter must not depend on the session or the time (now(), current_date, casts of timestamptz to date ...): rows it keeps would change without any change to the source.")));
}

/*
 * Does the filter leave at most one row per key of an auto CDC source?  An
 * SCD type 1 target has one row per key; an SCD type 2 target one current
 * version, which a filter with the conjunct "__end_at IS NULL" keeps.
 */
static bool
agg_one_row_per_key(FlowDesc *cdc_flow, Oid source_relid, Query *query)
{
	AttrNumber	end_at = get_attnum(source_relid, "__end_at");
	ListCell   *cell;

	if (CdcFlowScdType(cdc_flow) == 1)
		return true;
	if (end_at == InvalidAttrNumber || query->jointree->quals == NULL)
		return false;
	foreach(cell, make_ands_implicit((Expr *) query->jointree->quals))
	{
		NullTest   *test = lfirst(cell);

		if (IsA(test, NullTest) && test->nulltesttype == IS_NULL &&
			!test->argisrow && IsA(test->arg, Var) &&
			((Var *) test->arg)->varattno == end_at &&
			((Var *) test->arg)->varlevelsup == 0)
			return true;
	}
	return false;
}

/*
 * The kind of a new flow's source: a table of the pipeline (by the type of
 * the flow writing it) or a table with a _row_id identity column.
 */
static AggSourceKind
agg_source_kind(PipelineDesc *pipeline, Oid source_relid,
				FlowDesc **source_flow)
{
	FlowDesc   *flow = CatalogGetFlowByTarget(source_relid, true);

	*source_flow = flow;
	if (flow != NULL)
	{
		if (flow->pipeline_id != pipeline->pipeline_id)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("table \"%s\" belongs to another pipeline",
							CatalogQualifiedRelationName(source_relid)),
					 errhint("A flow reads tables of its own pipeline only.")));
		if (CdcFlowTypeKeepsTarget(flow->type))
			return AGG_SOURCE_CDC;
		if (flow->type == FLOW_TYPE_AGGREGATE)
			return AGG_SOURCE_AGGREGATE;
		if (flow->type == FLOW_TYPE_BRONZE || flow->type == FLOW_TYPE_SILVER)
			return AGG_SOURCE_APPEND;
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("an aggregate flow cannot read the target of a %s flow",
						CatalogFlowTypeName(flow->type))));
	}

	{
		AttrNumber	attnum = get_attnum(source_relid, "_row_id");

		if (attnum == InvalidAttrNumber ||
			get_atttype(source_relid, attnum) != INT8OID ||
			!OidIsValid(getIdentitySequence(source_relid, attnum, true)))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("source table %s is not a table of pipeline \"%s\" and has no \"_row_id\" identity column",
							CatalogQualifiedRelationName(source_relid),
							pipeline->pipeline_name),
					 errhint("Aggregate a table of the pipeline, or a table with a column \"_row_id bigint GENERATED BY DEFAULT AS IDENTITY\" whose rows are only ever inserted.")));
	}
	return AGG_SOURCE_APPEND;
}

/*
 * The group columns of a state table, "group_1 type, ...", typed like the
 * first ngroups columns of desc; after other columns when continuing.
 */
static void
agg_append_group_column_defs(StringInfo sql, TupleDesc desc, int ngroups,
							 bool continuing)
{
	int			i;

	for (i = 0; i < ngroups; i++)
	{
		Form_pg_attribute attr = TupleDescAttr(desc, i);

		appendStringInfoString(sql, continuing || i > 0 ? ",\n  " : "\n  ");
		SqlAppendColumnDefinition(sql, psprintf("group_%d", i + 1),
								  attr->atttypid, attr->atttypmod,
								  attr->attcollation);
	}
}

/* Record that an object goes away with the target of its flow. */
static void
agg_depend_on_target(Oid classid, Oid objectid, Oid target_relid)
{
	ObjectAddress dependent;
	ObjectAddress referenced;

	ObjectAddressSet(dependent, classid, objectid);
	ObjectAddressSet(referenced, RelationRelationId, target_relid);
	recordDependencyOn(&dependent, &referenced, DEPENDENCY_AUTO);
}

/* The name of a state table of the new flow, in medallion_state. */
static char *
agg_state_table_name(AggCreate *state, const char *suffix, const char *what,
					 char **relation_name)
{
	return StateTableName(state->create.namespace_oid,
						  state->create.relation_name, suffix, what,
						  relation_name);
}

/*
 * The arguments other than the pipeline and the target; group_by is
 * checked first, before any lookup.
 */
static void
agg_create_init(AggCreate *state, FunctionCallInfo fcinfo)
{
	memset(state, 0, sizeof(AggCreate));
	state->source_table = SqlTextArgument(fcinfo, 2, "source_table");
	state->group_items = agg_text_array_arg(fcinfo, 3, "group_by");
	state->agg_items = agg_text_array_arg(fcinfo, 4, "aggregates");
	state->spec.filter = PG_ARGISNULL(5) ? NULL :
		text_to_cstring(PG_GETARG_TEXT_PP(5));
	if (state->group_items == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("group_by must list at least one expression"),
				 errhint("For totals over the whole table, use a materialized view (medallion.add_materialized_view).")));
	if (list_length(state->group_items) > AGG_MAX_GROUPS)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("group_by cannot have more than %d items",
						AGG_MAX_GROUPS)));
}

/* Names beginning with AGG_RESERVED_PREFIX are refused in the source. */
static void
agg_check_reserved(const char *name, const char *message_format)
{
	if (AggIsReserved(name))
		ereport(ERROR,
				(errcode(ERRCODE_RESERVED_NAME),
				 errmsg(message_format, name),
				 errdetail("Names beginning with \"%s\" are used in the statements an aggregate flow runs.",
						   AGG_RESERVED_PREFIX)));
}

/*
 * The source, as the caller names it: a table whose name and columns are
 * not reserved; its kind says how its changes will be read.
 */
static void
agg_create_check_source(AggCreate *state)
{
	AggSpec    *spec = &state->spec;
	const char *source_table = state->source_table;
	Relation	source_rel;
	TupleDesc	source_desc;
	char	   *source_relname;
	int			i;

	spec->source_relid = RangeVarGetRelid(makeRangeVarFromNameList(stringToQualifiedNameList(source_table)),
										  AccessShareLock, false);
	if (get_rel_relkind(spec->source_relid) != RELKIND_RELATION)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a table", source_table),
				 errdetail("The source of an aggregate flow is a pipeline table, or a table with a \"_row_id\" identity column.")));
	spec->source_name = CatalogQualifiedRelationName(spec->source_relid);
	source_relname = get_rel_name(spec->source_relid);
	spec->source_ref = pstrdup(quote_identifier(source_relname));
	agg_check_reserved(source_relname,
					   "table name \"%s\" is reserved for medallion");
	spec->kind = agg_source_kind(state->create.pipeline, spec->source_relid,
								 &state->source_flow);

	source_rel = relation_open(spec->source_relid, AccessShareLock);
	source_desc = RelationGetDescr(source_rel);
	for (i = 0; i < source_desc->natts; i++)
	{
		Form_pg_attribute attr = TupleDescAttr(source_desc, i);

		if (!attr->attisdropped)
			agg_check_reserved(NameStr(attr->attname),
							   "column name \"%s\" of the source is reserved for medallion");
	}
	relation_close(source_rel, NoLock);

	if (spec->kind == AGG_SOURCE_AGGREGATE)
		spec->state_table = agg_state_table_name(state, AGG_CHANGES_SUFFIX,
												 "table of pending changes",
												 &state->state_name);
}

/*
 * The target's columns, as the analysed query names them: named, distinct,
 * not reserved; the group columns of types that can be indexed and matched.
 */
static void
agg_check_columns(AggSpec *spec, TupleDesc desc)
{
	int			i;
	int			j;

	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute attr = TupleDescAttr(desc, i);
		char	   *name = NameStr(attr->attname);

		if (strcmp(name, "?column?") == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_COLUMN_DEFINITION),
					 errmsg("%s item %d has no name",
							i < spec->ngroups ? "group_by" : "aggregates",
							i < spec->ngroups ? i + 1 : i - spec->ngroups + 1),
					 errhint("Name it with AS; the names become the columns of the target table.")));
		if (AggIsReserved(name))
			ereport(ERROR,
					(errcode(ERRCODE_RESERVED_NAME),
					 errmsg("column name \"%s\" is reserved for medallion", name)));
		for (j = 0; j < i; j++)
		{
			if (strcmp(NameStr(TupleDescAttr(desc, j)->attname), name) == 0)
				ereport(ERROR,
						(errcode(ERRCODE_DUPLICATE_COLUMN),
						 errmsg("column name \"%s\" appears more than once in the aggregate",
								name),
						 errhint("Give each group_by and aggregates item a distinct name with AS.")));
		}
		if (i >= spec->ngroups)
		{
			spec->aggs[i - spec->ngroups].name = pstrdup(name);
			continue;
		}
		spec->groups[i].name = pstrdup(name);
		if (AggEqOperatorSql(attr->atttypid) == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_FUNCTION),
					 errmsg("could not identify an equality operator for type %s",
							format_type_be(attr->atttypid)),
					 errdetail("The group_by item %d (%s) needs a type with a default btree operator class, to be indexed and matched.",
							   i + 1, name)));
		if (!OidIsValid(get_array_type(attr->atttypid)))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("could not find array type for data type %s",
							format_type_be(attr->atttypid))));
	}
}

/*
 * The items and the query, checked as the caller under the pipeline's
 * search_path (the caller has entered it), the way they will run.
 */
static void
agg_create_check_query(AggCreate *state)
{
	AggSpec    *spec = &state->spec;
	ListCell   *cell;

	spec->target_name = state->create.target_name;
	spec->ngroups = list_length(state->group_items);
	spec->naggs = list_length(state->agg_items);
	spec->groups = palloc0(sizeof(AggItem) * spec->ngroups);
	spec->aggs = palloc0(sizeof(AggItem) * Max(spec->naggs, 1));
	foreach(cell, state->group_items)
		agg_check_item(&spec->groups[foreach_current_index(cell)], "group_by",
					   foreach_current_index(cell), lfirst(cell));
	foreach(cell, state->agg_items)
		agg_check_item(&spec->aggs[foreach_current_index(cell)], "aggregates",
					   foreach_current_index(cell), lfirst(cell));
	if (spec->filter != NULL)
		spec->filter_sql = UserSqlExpression(spec->filter, "filter");

	agg_analyze(spec->target_name, spec, state->group_items, state->agg_items,
				&state->analysis);
	agg_check_columns(spec, state->analysis.desc);
}

/*
 * Delta maintenance when every item allows it (see aggregate_delta.c), with
 * the names of its state tables; a source written by another aggregate
 * flow only says which groups changed, so its readers recompute them.
 */
static void
agg_create_choose_maintenance(AggCreate *state)
{
	AggSpec    *spec = &state->spec;
	AttrNumber	key_attnum = InvalidAttrNumber;
	bool		key_rows_unique = false;
	int			i;

	if (spec->kind == AGG_SOURCE_AGGREGATE)
	{
		state->delta_reason = "the source is the target of another aggregate flow";
		return;
	}
	if (spec->kind == AGG_SOURCE_CDC)
	{
		List	   *cdc_keys = CdcFlowKeys(state->source_flow);

		if (list_length(cdc_keys) == 1)
			key_attnum = get_attnum(spec->source_relid, linitial(cdc_keys));
		key_rows_unique = agg_one_row_per_key(state->source_flow,
											  spec->source_relid,
											  state->analysis.query);
	}
	spec->delta = AggregateDeltaAnalyze(state->analysis.query, spec->ngroups,
										spec->source_relid, key_attnum,
										key_rows_unique,
										spec->kind == AGG_SOURCE_APPEND,
										&state->delta_reason);
	if (spec->delta == NULL)
		return;

	spec->groups_table = agg_state_table_name(state, AGG_GROUPS_SUFFIX,
											  "table of per-group state",
											  &state->groups_name);
	spec->values_tables = palloc0(sizeof(char *) * spec->naggs);
	state->values_names = palloc0(sizeof(char *) * spec->naggs);
	for (i = 0; i < spec->naggs; i++)
	{
		if (AggregateDeltaNeedsValues(spec->delta, i))
			spec->values_tables[i] =
				agg_state_table_name(state,
									 psprintf("%s_%d", AGG_VALUES_SUFFIX, i + 1),
									 "table of values",
									 &state->values_names[i]);
	}
}

/* The query as the target's comment documents it, as the user wrote it. */
static char *
agg_query_text(AggCreate *state)
{
	AggSpec    *spec = &state->spec;
	StringInfoData text;
	ListCell   *cell;
	int			i;

	initStringInfo(&text);
	appendStringInfoString(&text, "SELECT ");
	foreach(cell, state->group_items)
		appendStringInfo(&text, "%s%s", foreach_current_index(cell) > 0 ? ", " : "",
						 (char *) lfirst(cell));
	foreach(cell, state->agg_items)
		appendStringInfo(&text, ", %s", (char *) lfirst(cell));
	appendStringInfo(&text, " FROM %s", spec->source_name);
	if (spec->filter != NULL)
		appendStringInfo(&text, " WHERE %s", spec->filter);
	appendStringInfoString(&text, " GROUP BY ");
	for (i = 0; i < spec->ngroups; i++)
		appendStringInfo(&text, "%s%s", i > 0 ? ", " : "", spec->groups[i].expr);
	return text.data;
}

/* CREATE TABLE of the target: the analysed query's columns. */
static char *
agg_target_table_sql(AggCreate *state)
{
	TupleDesc	desc = state->analysis.desc;
	StringInfoData sql;
	int			i;

	initStringInfo(&sql);
	appendStringInfo(&sql, "CREATE TABLE %s (", state->create.target_name);
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute attr = TupleDescAttr(desc, i);

		appendStringInfoString(&sql, i > 0 ? ",\n  " : "\n  ");
		SqlAppendColumnDefinition(&sql, NameStr(attr->attname), attr->atttypid,
								  attr->atttypmod, attr->attcollation);
	}
	appendStringInfoString(&sql, "\n)");
	return sql.data;
}

/*
 * Each target column's comment is its definition, so that a BI tool shows
 * what a column of an aggregate holds.
 */
static void
agg_comment_target_columns(const AggSpec *spec)
{
	int			ncolumns = spec->ngroups + spec->naggs;
	const char **columns = palloc(sizeof(char *) * ncolumns);
	const char **comments = palloc(sizeof(char *) * ncolumns);
	int			i;

	for (i = 0; i < ncolumns; i++)
	{
		const AggItem *item = i < spec->ngroups ? &spec->groups[i] :
			&spec->aggs[i - spec->ngroups];

		columns[i] = item->name;
		comments[i] = psprintf(i < spec->ngroups ? "Group: %s" : "Aggregate: %s",
							   item->expr);
	}
	FlowCreateColumnComments(spec->target_name, ncolumns, columns, comments);
}

/* The target's unique index on its group columns, and its comment. */
static void
agg_create_target_index(AggCreate *state)
{
	AggSpec    *spec = &state->spec;
	StringInfoData sql;
	int			i;

	initStringInfo(&sql);
	appendStringInfo(&sql, "CREATE UNIQUE INDEX ON %s (", spec->target_name);
	for (i = 0; i < spec->ngroups; i++)
		appendStringInfo(&sql, "%s%s", i > 0 ? ", " : "",
						 quote_identifier(spec->groups[i].name));
	appendStringInfoString(&sql, ") NULLS NOT DISTINCT");
	FlowCreateExecute(sql.data);
	FlowCreateComment(spec->target_name,
					  psprintf("Aggregate of medallion pipeline \"%s\", maintained incrementally after every update: %s",
							   state->create.pipeline->pipeline_name,
							   agg_query_text(state)));
	agg_comment_target_columns(spec);
}

/*
 * The index that makes recomputing a group cheap: on the group expressions,
 * partial on the filter when the source is append-only.  A mutable source
 * gets no predicate: it would cover the columns the filter reads (such as
 * __end_at), and updating them (closing an SCD2 version) could no longer be
 * a HOT update.  Delta maintenance never reads a group from the source, so
 * it needs none.  Only the source's owner can index it.
 */
static void
agg_create_source_index(AggCreate *state)
{
	AggSpec    *spec = &state->spec;
	Oid			namespace_oid = get_rel_namespace(spec->source_relid);
	char	   *index_name;
	StringInfoData sql;

	if (spec->delta != NULL)
		return;
	if (!pg_class_ownercheck(spec->source_relid, GetUserId()))
	{
		ereport(NOTICE,
				(errmsg("no index was created on the group expressions of %s",
						spec->source_name),
				 errdetail("Only the owner of a table can index it."),
				 errhint("Have the owner index the table on the group_by expressions, or each update may read the whole source.")));
		return;
	}

	index_name = ChooseRelationName(get_rel_name(spec->source_relid),
									state->create.relation_name, "groups",
									namespace_oid, false);
	state->source_index =
		quote_qualified_identifier(get_namespace_name(namespace_oid),
								   index_name);
	initStringInfo(&sql);
	appendStringInfo(&sql, "CREATE INDEX %s ON %s (%s)",
					 quote_identifier(index_name), spec->source_name,
					 AggGroupExprsSql(spec));
	if (spec->filter != NULL && spec->kind == AGG_SOURCE_APPEND)
		appendStringInfo(&sql, " WHERE %s", spec->filter_sql);
	FlowCreateExecute(sql.data);
	FlowCreateExecute(psprintf("COMMENT ON INDEX %s IS %s", state->source_index,
							   quote_literal_cstr(psprintf("Group expressions of medallion aggregate %s",
														   spec->target_name))));
	CommandCounterIncrement();
	agg_depend_on_target(RelationRelationId,
						 get_relname_relid(index_name, namespace_oid),
						 state->create.target_relid);
}

/*
 * The group columns of a state table (group_1 ...) say which column of the
 * target each stands for.
 */
static void
agg_comment_state_group_columns(const AggSpec *spec, const char *table)
{
	const char **columns = palloc(sizeof(char *) * spec->ngroups);
	const char **comments = palloc(sizeof(char *) * spec->ngroups);
	int			i;

	for (i = 0; i < spec->ngroups; i++)
	{
		columns[i] = psprintf("group_%d", i + 1);
		comments[i] = psprintf("Group column %s of %s",
							   quote_identifier(spec->groups[i].name),
							   spec->target_name);
	}
	FlowCreateColumnComments(table, spec->ngroups, columns, comments);
}

/*
 * A state table beside the target: "group_1 type, ..." typed like the
 * group columns, then the columns a delta plan adds (columns, may be NULL),
 * with its comment; it goes away with the target.
 */
static void
agg_create_state_table(AggCreate *state, const char *table,
					   const char *relation_name, const char *columns,
					   const char *comment)
{
	StringInfoData sql;

	initStringInfo(&sql);
	appendStringInfo(&sql, "CREATE TABLE %s (", table);
	agg_append_group_column_defs(&sql, state->analysis.desc,
								 state->spec.ngroups, false);
	if (columns != NULL)
		appendStringInfoString(&sql, columns);
	appendStringInfoString(&sql, "\n)");
	StateTableCreate(relation_name, sql.data, state->create.pipeline->owner,
					 state->create.target_relid);
	FlowCreateComment(table, comment);
	agg_comment_state_group_columns(&state->spec, table);
}

/*
 * The state tables: the pending changes of an aggregate source; under delta
 * maintenance, the per-group state, and the values of each count(DISTINCT
 * x), or min or max that needs them.
 */
static void
agg_create_state_tables(AggCreate *state)
{
	AggSpec    *spec = &state->spec;
	char	   *groups = AggStateGroupColumnsSql(spec->ngroups, NULL);
	StringInfoData columns;
	int			i;

	if (spec->kind == AGG_SOURCE_AGGREGATE)
		agg_create_state_table(state, spec->state_table, state->state_name, NULL,
							   psprintf("State of medallion aggregate %s: groups (group_1 ...) touched by changes to %s not yet applied",
										spec->target_name, spec->source_name));
	if (spec->delta == NULL)
		return;

	initStringInfo(&columns);
	AggregateDeltaAppendStateColumnDefs(&columns, spec->delta);
	agg_create_state_table(state, spec->groups_table, state->groups_name,
						   columns.data,
						   psprintf("State of medallion aggregate %s: for each group (group_1 ...), its number of source rows and the running sums and counts its aggregates are computed from",
									spec->target_name));
	StateTableCreateIndex(psprintf("CREATE UNIQUE INDEX ON %s (%s) NULLS NOT DISTINCT",
								   spec->groups_table, groups));
	for (i = 0; i < spec->naggs; i++)
	{
		const char *table = spec->values_tables[i];

		if (table == NULL)
			continue;
		resetStringInfo(&columns);
		AggregateDeltaAppendDistinctColumnDefs(&columns, spec->delta, i);
		agg_create_state_table(state, table, state->values_names[i],
							   columns.data,
							   psprintf("State of medallion aggregate %s: the values of aggregates item %d in each group (group_1 ...), with the number of source rows holding each (refs)",
										spec->target_name, i + 1));
		StateTableCreateIndex(psprintf("CREATE UNIQUE INDEX ON %s (%s, value) NULLS NOT DISTINCT",
									   table, groups));
		{
			const char *const value_columns[] = {"value", "refs"};
			const char *const value_comments[] = {
				psprintf("A value that %s reads in the group", spec->aggs[i].expr),
				"Number of the group's source rows holding the value (0 when none does any more)"
			};

			FlowCreateColumnComments(table, 2, value_columns, value_comments);
		}
		StateTableCreateIndex(psprintf("CREATE INDEX ON %s (refs) WHERE refs OPERATOR(pg_catalog.=) 0",
									   table));
	}
}

/*
 * An auto CDC source: its change feed, made if no aggregate reads it yet.
 * The expressions are evaluated over the feed under the source's name:
 * check now that they resolve there (they do unless they name the source
 * with its schema).
 */
static void
agg_create_change_feed(AggCreate *state)
{
	AggSpec    *spec = &state->spec;

	if (spec->kind != AGG_SOURCE_CDC)
		return;
	spec->feed_table = ChangeFeedEnsure(state->source_flow, spec->source_relid);
	SPI_connect();
	SpiExecute(psprintf("SELECT %s%s FROM %s AS %s WHERE %s LIMIT 0",
						AggGroupExprsSql(spec),
						spec->delta != NULL ? AggDeltaArgumentListSql(spec) : "",
						spec->feed_table, spec->source_ref, AggWhereSql(spec)),
			   0, NULL, NULL, NULL, SPI_OK_SELECT);
	SPI_finish();
}

/* The state tables the flow made, for the definition (STATE_TABLES_KEY). */
static List *
agg_state_table_list(AggSpec *spec)
{
	List	   *tables = NIL;
	int			i;

	if (spec->state_table != NULL)
		tables = lappend(tables, spec->state_table);
	if (spec->groups_table != NULL)
		tables = lappend(tables, spec->groups_table);
	for (i = 0; spec->values_tables != NULL && i < spec->naggs; i++)
	{
		if (spec->values_tables[i] != NULL)
			tables = lappend(tables, spec->values_tables[i]);
	}
	return tables;
}

/* The definition: the arguments, and what they resolved to. */
static Jsonb *
agg_create_definition(AggCreate *state)
{
	AggSpec    *spec = &state->spec;
	FlowDefinitionBuilder definition;
	List	   *values_tables = NIL;
	int			i;

	FlowDefinitionBegin(&definition);
	FlowDefinitionPutString(&definition, "source", spec->source_name);
	FlowDefinitionPutStringList(&definition, "group_by", state->group_items);
	FlowDefinitionPutStringList(&definition, "aggregates", state->agg_items);
	FlowDefinitionPutString(&definition, "filter", spec->filter);
	FlowDefinitionPutStringList(&definition, "group_expressions",
								agg_item_list(spec->groups, spec->ngroups, false));
	FlowDefinitionPutStringList(&definition, "group_columns",
								agg_item_list(spec->groups, spec->ngroups, true));
	FlowDefinitionPutStringList(&definition, "aggregate_expressions",
								agg_item_list(spec->aggs, spec->naggs, false));
	FlowDefinitionPutStringList(&definition, "aggregate_columns",
								agg_item_list(spec->aggs, spec->naggs, true));
	FlowDefinitionPutString(&definition, "source_kind",
							AggSourceKindName(spec->kind));
	FlowDefinitionPutString(&definition, "state_table", spec->state_table);
	FlowDefinitionPutStringList(&definition, STATE_TABLES_KEY,
								agg_state_table_list(spec));
	FlowDefinitionPutString(&definition, "source_index", state->source_index);
	FlowDefinitionPutString(&definition, "maintenance",
							spec->delta != NULL ? "delta" : "recompute");
	if (spec->feed_table != NULL)
		FlowDefinitionPutString(&definition, "change_feed", spec->feed_table);
	if (spec->delta == NULL)
	{
		FlowDefinitionPutString(&definition, "maintenance_reason",
								state->delta_reason);
		return FlowDefinitionEnd(&definition);
	}
	FlowDefinitionPutString(&definition, "groups_table", spec->groups_table);
	AggregateDeltaPutDefinition(&definition, spec->delta);
	for (i = 0; i < spec->naggs; i++)
		values_tables = lappend(values_tables, spec->values_tables[i] ?
								spec->values_tables[i] : "");
	FlowDefinitionPutStringList(&definition, "values_tables", values_tables);
	return FlowDefinitionEnd(&definition);
}

/*
 * CatalogCreateFlow accepts as source_relid only tables with a _row_id; for
 * the others, source_table is set here, so that the update skips this flow
 * when its source's flow failed.
 */
static void
agg_create_set_source_table(AggCreate *state)
{
	Oid			types[2] = {INT4OID, OIDOID};
	Datum		values[2];

	if (state->spec.kind == AGG_SOURCE_APPEND)
		return;
	values[0] = Int32GetDatum(state->flow_id);
	values[1] = ObjectIdGetDatum(state->spec.source_relid);
	SPI_connect();
	SpiExecuteAsExtensionOwner("UPDATE medallion.flow"
							   " SET source_table = $2::pg_catalog.regclass"
							   " WHERE flow_id OPERATOR(pg_catalog.=) $1",
							   2, types, values, NULL, SPI_OK_UPDATE);
	SPI_finish();
}

/*
 * The capture triggers of an aggregate source, one per event, now that the
 * flow's id (their argument) is known; they go away with the target.
 */
static void
agg_create_capture_triggers(AggCreate *state)
{
	static const char *const events[3] = {"INSERT", "UPDATE", "DELETE"};
	static const char *const suffixes[3] = {"insert", "update", "delete"};
	int			i;

	if (state->spec.kind != AGG_SOURCE_AGGREGATE)
		return;
	for (i = 0; i < 3; i++)
	{
		char	   *trigger_name = psprintf("medallion_aggregate_%d_%s",
											state->flow_id, suffixes[i]);

		FlowCreateExecute(psprintf("CREATE TRIGGER %s AFTER %s ON %s REFERENCING %s%s%s"
								   " FOR EACH STATEMENT EXECUTE FUNCTION medallion.aggregate_capture('%d')",
								   quote_identifier(trigger_name), events[i],
								   state->spec.source_name,
								   i != 0 ? "OLD TABLE AS " AGG_OLD_TABLE : "",
								   i == 1 ? " " : "",
								   i != 2 ? "NEW TABLE AS " AGG_NEW_TABLE : "",
								   state->flow_id));
		CommandCounterIncrement();
		agg_depend_on_target(TriggerRelationId,
							 get_trigger_oid(state->spec.source_relid,
											 trigger_name, false),
							 state->create.target_relid);
	}
}

/*
 * medallion.create_aggregate(pipeline_name text, target_table text,
 *							  source_table text, group_by text[],
 *							  aggregates text[], filter text DEFAULT NULL)
 *
 * Checks the items and the query as the caller under the pipeline's
 * search_path (how they will run), creates the target (as the caller, who
 * owns it) with a unique index on the group columns, the index on the
 * source's group expressions (when the caller owns the source), the state
 * tables and capture triggers the source kind needs, and registers the flow.
 */
Datum
medallion_create_aggregate(PG_FUNCTION_ARGS)
{
	VERSION_CHECK_CATALOG();
	char	   *pipeline_name = SqlTextArgument(fcinfo, 0, "pipeline_name");
	char	   *target_table = SqlTextArgument(fcinfo, 1, "target_table");
	AggCreate	state;
	ErrorContextCallback errcallback;
	int			nest_level;

	agg_create_init(&state, fcinfo);
	FlowCreateBegin(&state.create, FLOW_TYPE_AGGREGATE, pipeline_name,
					target_table, FlowCreateReplaceArgument(fcinfo, 6));
	agg_create_check_source(&state);

	errcallback.callback = agg_create_error_callback;
	errcallback.arg = state.create.target_name;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;
	nest_level = UserSqlSettingsEnter(state.create.pipeline->search_path);

	agg_create_check_query(&state);
	agg_create_choose_maintenance(&state);
	FlowCreateTable(&state.create, agg_target_table_sql(&state));
	agg_create_target_index(&state);
	agg_create_source_index(&state);
	agg_create_state_tables(&state);
	agg_create_change_feed(&state);

	UserSqlSettingsLeave(nest_level);
	error_context_stack = errcallback.previous;

	state.flow_id = FlowCreateRegister(&state.create, FLOW_TYPE_AGGREGATE,
									   state.spec.kind == AGG_SOURCE_APPEND ?
									   state.spec.source_relid : InvalidOid,
									   state.spec.source_name,
									   agg_create_definition(&state));
	agg_create_set_source_table(&state);
	agg_create_capture_triggers(&state);
	PG_RETURN_VOID();
}
