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
#include "user_sql.h"
#include "version.h"

PG_FUNCTION_INFO_V1(medallion_create_aggregate);

/* What the analysis of a new flow's query found. */
typedef struct AggAnalysis
{
	TupleDesc	desc;			/* result columns: groups, then aggregates */
	Query	   *query;			/* the analysed query */
} AggAnalysis;

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
						 errdetail("The item was: %s",
								   (char *) list_nth(group_items, index)),
						 errhint("A group must not depend on the session or the time, so that recomputing it gives the same groups; for example, use (ts AT TIME ZONE 'UTC')::date rather than ts::date for a timestamptz.")));
		}
		else if (contain_volatile_functions((Node *) tle->expr))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("aggregates item %d uses a volatile function",
							index - ngroups + 1),
					 errdetail("The item was: %s",
							   (char *) list_nth(agg_items, index - ngroups))));
		index++;
	}
	if (query->jointree->quals != NULL &&
		contain_mutable_functions(query->jointree->quals))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("filter is not immutable"),
				 errdetail("The filter was: %s", spec->filter),
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
		if (flow->type == FLOW_TYPE_AUTO_CDC)
			return AGG_SOURCE_CDC;
		if (flow->type == FLOW_TYPE_AGGREGATE)
			return AGG_SOURCE_AGGREGATE;
		if (flow->type == FLOW_TYPE_BRONZE || flow->type == FLOW_TYPE_SILVER)
			return AGG_SOURCE_APPEND;
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("an aggregate flow cannot read the target of a %s flow",
						flow->flow_type)));
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

/*
 * medallion.create_aggregate(pipeline_name text, target_table text,
 *							  source_table text, group_by text[],
 *							  aggregates text[], filter text DEFAULT NULL)
 *
 * Checks the items and the query as the caller under the pipeline's
 * search_path (how they will run), creates the target (as the caller, who
 * owns it) with a unique index on the group columns, the index on the
 * source's group expressions (when the caller owns the source), the state
 * table and capture triggers the source kind needs, and registers the flow.
 */
Datum
medallion_create_aggregate(PG_FUNCTION_ARGS)
{
	VERSION_CHECK_CATALOG();
	char	   *pipeline_name = SqlTextArgument(fcinfo, 0, "pipeline_name");
	char	   *target_table = SqlTextArgument(fcinfo, 1, "target_table");
	char	   *source_table = SqlTextArgument(fcinfo, 2, "source_table");
	List	   *group_items = agg_text_array_arg(fcinfo, 3, "group_by");
	List	   *agg_items = agg_text_array_arg(fcinfo, 4, "aggregates");
	char	   *filter = PG_ARGISNULL(5) ? NULL :
		text_to_cstring(PG_GETARG_TEXT_PP(5));
	PipelineDesc *pipeline;
	Oid			namespace_oid;
	char	   *relation_name;
	char	   *target_name;
	Oid			source_relid;
	char	   *source_name;
	char	   *source_relname;
	FlowDesc   *source_flow;
	AggSourceKind kind;
	AggSpec		spec;
	AggAnalysis analysis;
	char	   *state_name = NULL;
	char	   *state_table = NULL;
	char	   *index_name = NULL;
	Oid			target_relid;
	int32		flow_id;
	int			nest_level;
	int			i;
	ListCell   *cell;
	StringInfoData sql;
	FlowDefinitionBuilder definition;
	StringInfoData query_text;
	ErrorContextCallback errcallback;
	List	   *cdc_keys = NIL;
	AggregateDelta *delta = NULL;
	char	   *delta_reason = NULL;
	char	   *groups_name = NULL;
	char	   *groups_table = NULL;
	char	  **values_names = NULL;
	char	   *change_feed = NULL;
	Relation	source_rel;
	TupleDesc	source_desc;
	MemoryContext outer_context;

	if (group_items == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("group_by must list at least one expression"),
				 errhint("For totals over the whole table, use a materialized view (medallion.add_materialized_view).")));
	if (list_length(group_items) > AGG_MAX_GROUPS)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("group_by cannot have more than %d items",
						AGG_MAX_GROUPS)));

	pipeline = CatalogGetPipeline(pipeline_name, false);
	CatalogCheckPipelineOwner(pipeline);

	/* the target's name resolves like CREATE TABLE's, with our search_path */
	ResolveNewTableName(target_table, &namespace_oid, &relation_name);
	target_name = QuoteQualifiedName(namespace_oid, relation_name);

	/* the source, as the caller names it */
	source_relid = RangeVarGetRelid(makeRangeVarFromNameList(stringToQualifiedNameList(source_table)),
									AccessShareLock, false);
	if (get_rel_relkind(source_relid) != RELKIND_RELATION)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a table", source_table),
				 errdetail("The source of an aggregate flow is a pipeline table, or a table with a \"_row_id\" identity column.")));
	source_name = CatalogQualifiedRelationName(source_relid);
	source_relname = get_rel_name(source_relid);
	if (AggIsReserved(source_relname))
		ereport(ERROR,
				(errcode(ERRCODE_RESERVED_NAME),
				 errmsg("table name \"%s\" is reserved for medallion",
						source_relname),
				 errdetail("Names beginning with \"%s\" are used in the statements an aggregate flow runs.",
						   AGG_RESERVED_PREFIX)));
	kind = agg_source_kind(pipeline, source_relid, &source_flow);

	source_rel = relation_open(source_relid, AccessShareLock);
	source_desc = RelationGetDescr(source_rel);
	for (i = 0; i < source_desc->natts; i++)
	{
		Form_pg_attribute attr = TupleDescAttr(source_desc, i);

		if (!attr->attisdropped && AggIsReserved(NameStr(attr->attname)))
			ereport(ERROR,
					(errcode(ERRCODE_RESERVED_NAME),
					 errmsg("column name \"%s\" of the source is reserved for medallion",
							NameStr(attr->attname)),
					 errdetail("Names beginning with \"%s\" are used in the statements an aggregate flow runs.",
							   AGG_RESERVED_PREFIX)));
	}
	relation_close(source_rel, NoLock);

	if (kind == AGG_SOURCE_CDC)
	{
		cdc_keys = CdcFlowKeys(source_flow);
	}
	else if (kind == AGG_SOURCE_AGGREGATE)
		state_name = CompanionRelationName(namespace_oid, relation_name,
										   AGG_CHANGES_SUFFIX,
										   "table of pending changes");
	if (state_name != NULL)
		state_table = QuoteQualifiedName(namespace_oid, state_name);

	/* check the items and the query as the caller, the way they will run */
	errcallback.callback = agg_create_error_callback;
	errcallback.arg = target_name;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;
	nest_level = UserSqlSettingsEnter(pipeline->search_path);

	memset(&spec, 0, sizeof(spec));
	spec.source_relid = source_relid;
	spec.source_name = source_name;
	spec.source_ref = pstrdup(quote_identifier(source_relname));
	spec.target_name = target_name;
	spec.ngroups = list_length(group_items);
	spec.naggs = list_length(agg_items);
	spec.groups = palloc0(sizeof(AggItem) * spec.ngroups);
	spec.aggs = palloc0(sizeof(AggItem) * Max(spec.naggs, 1));
	spec.filter = filter;
	spec.kind = kind;
	spec.state_table = state_table;
	foreach(cell, group_items)
		agg_check_item(&spec.groups[foreach_current_index(cell)], "group_by",
					   foreach_current_index(cell), lfirst(cell));
	foreach(cell, agg_items)
		agg_check_item(&spec.aggs[foreach_current_index(cell)], "aggregates",
					   foreach_current_index(cell), lfirst(cell));
	if (filter != NULL)
		spec.filter_sql = UserSqlExpression(filter, "filter");

	agg_analyze(target_name, &spec, group_items, agg_items, &analysis);

	/* the columns: named, distinct, not reserved; groups indexable */
	for (i = 0; i < analysis.desc->natts; i++)
	{
		Form_pg_attribute attr = TupleDescAttr(analysis.desc, i);
		char	   *name = NameStr(attr->attname);
		int			j;

		if (strcmp(name, "?column?") == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_COLUMN_DEFINITION),
					 errmsg("%s item %d has no name",
							i < spec.ngroups ? "group_by" : "aggregates",
							i < spec.ngroups ? i + 1 : i - spec.ngroups + 1),
					 errhint("Name it with AS; the names become the columns of the target table.")));
		if (AggIsReserved(name))
			ereport(ERROR,
					(errcode(ERRCODE_RESERVED_NAME),
					 errmsg("column name \"%s\" is reserved for medallion", name)));
		for (j = 0; j < i; j++)
		{
			if (strcmp(NameStr(TupleDescAttr(analysis.desc, j)->attname),
					   name) == 0)
				ereport(ERROR,
						(errcode(ERRCODE_DUPLICATE_COLUMN),
						 errmsg("column name \"%s\" appears more than once in the aggregate",
								name),
						 errhint("Give each group_by and aggregates item a distinct name with AS.")));
		}
		if (i < spec.ngroups)
		{
			spec.groups[i].name = pstrdup(name);
			if (AggEqOperatorSql(attr->atttypid) == NULL)
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_FUNCTION),
						 errmsg("could not identify an equality operator for type %s",
								format_type_be(attr->atttypid)),
						 errdetail("group_by item %d (%s) needs a type with a default btree operator class, to be indexed and matched.",
								   i + 1, name)));
			if (!OidIsValid(get_array_type(attr->atttypid)))
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_OBJECT),
						 errmsg("could not find array type for data type %s",
								format_type_be(attr->atttypid))));
		}
		else
			spec.aggs[i - spec.ngroups].name = pstrdup(name);
	}

	/*
	 * Delta maintenance when every item allows it (see aggregate_delta.c);
	 * a source written by another aggregate flow only says which groups
	 * changed, so its readers recompute them.
	 */
	if (kind == AGG_SOURCE_AGGREGATE)
		delta_reason = "the source is the target of another aggregate flow";
	else
	{
		AttrNumber	key_attnum = InvalidAttrNumber;

		if (kind == AGG_SOURCE_CDC && list_length(cdc_keys) == 1)
			key_attnum = get_attnum(source_relid, linitial(cdc_keys));
		delta = AggregateDeltaAnalyze(analysis.query, spec.ngroups,
									  source_relid, key_attnum,
									  kind == AGG_SOURCE_CDC &&
									  agg_one_row_per_key(source_flow,
														  source_relid,
														  analysis.query),
									  kind == AGG_SOURCE_APPEND,
									  &delta_reason);
	}
	if (delta != NULL)
	{
		groups_name = CompanionRelationName(namespace_oid, relation_name,
											AGG_GROUPS_SUFFIX,
											"table of per-group state");
		groups_table = QuoteQualifiedName(namespace_oid, groups_name);
		values_names = palloc0(sizeof(char *) * spec.naggs);
		for (i = 0; i < spec.naggs; i++)
		{
			if (AggregateDeltaNeedsValues(delta, i))
				values_names[i] = CompanionRelationName(namespace_oid,
														  relation_name,
														  psprintf("%s_%d",
																   AGG_VALUES_SUFFIX,
																   i + 1),
														  "table of values");
		}
	}

	/* the query as it is documented in the target's comment */
	initStringInfo(&query_text);
	appendStringInfoString(&query_text, "SELECT ");
	foreach(cell, group_items)
		appendStringInfo(&query_text, "%s%s",
						 foreach_current_index(cell) > 0 ? ", " : "",
						 (char *) lfirst(cell));
	foreach(cell, agg_items)
		appendStringInfo(&query_text, ", %s", (char *) lfirst(cell));
	appendStringInfo(&query_text, " FROM %s", source_name);
	if (filter != NULL)
		appendStringInfo(&query_text, " WHERE %s", filter);
	appendStringInfoString(&query_text, " GROUP BY ");
	for (i = 0; i < spec.ngroups; i++)
		appendStringInfo(&query_text, "%s%s", i > 0 ? ", " : "",
						 spec.groups[i].expr);

	/* create the tables as the caller, with fully qualified names */
	outer_context = CurrentMemoryContext;
	SPI_connect();
	initStringInfo(&sql);
	appendStringInfo(&sql, "CREATE TABLE %s (", target_name);
	for (i = 0; i < analysis.desc->natts; i++)
	{
		Form_pg_attribute attr = TupleDescAttr(analysis.desc, i);

		appendStringInfoString(&sql, i > 0 ? ",\n  " : "\n  ");
		SqlAppendColumnDefinition(&sql, NameStr(attr->attname), attr->atttypid,
								  attr->atttypmod, attr->attcollation);
	}
	appendStringInfoString(&sql, "\n)");
	SpiExecute(sql.data, 0, NULL, NULL, NULL, SPI_OK_UTILITY);

	resetStringInfo(&sql);
	appendStringInfo(&sql, "CREATE UNIQUE INDEX ON %s (", target_name);
	for (i = 0; i < spec.ngroups; i++)
		appendStringInfo(&sql, "%s%s", i > 0 ? ", " : "",
						 quote_identifier(spec.groups[i].name));
	appendStringInfoString(&sql, ") NULLS NOT DISTINCT");
	SpiExecute(sql.data, 0, NULL, NULL, NULL, SPI_OK_UTILITY);

	resetStringInfo(&sql);
	appendStringInfo(&sql, "COMMENT ON TABLE %s IS %s", target_name,
					 quote_literal_cstr(psprintf("Aggregate of medallion pipeline \"%s\", maintained incrementally after every update: %s",
												 pipeline->pipeline_name,
												 query_text.data)));
	SpiExecute(sql.data, 0, NULL, NULL, NULL, SPI_OK_UTILITY);

	CommandCounterIncrement();
	target_relid = get_relname_relid(relation_name, namespace_oid);
	if (!OidIsValid(target_relid))
		elog(ERROR, "could not find the new table %s", target_name);

	/*
	 * The index that makes recomputing a group cheap: on the group
	 * expressions, partial on the filter when the source is append-only.  A
	 * mutable source gets no predicate: it would cover the columns the
	 * filter reads (such as __end_at), and updating them (closing an SCD2
	 * version) could no longer be a HOT update.  Delta maintenance never
	 * reads a group from the source, so it needs none.
	 */
	if (delta != NULL)
		index_name = NULL;
	else if (pg_class_ownercheck(source_relid, GetUserId()))
	{
		Oid			index_relid;

		index_name = ChooseRelationName(source_relname, relation_name,
										"groups", get_rel_namespace(source_relid),
										false);
		resetStringInfo(&sql);
		appendStringInfo(&sql, "CREATE INDEX %s ON %s (",
						 quote_identifier(index_name), source_name);
		appendStringInfo(&sql, "%s)", AggGroupExprsSql(&spec));
		if (filter != NULL && kind == AGG_SOURCE_APPEND)
			appendStringInfo(&sql, " WHERE %s", spec.filter_sql);
		SpiExecute(sql.data, 0, NULL, NULL, NULL, SPI_OK_UTILITY);
		resetStringInfo(&sql);
		appendStringInfo(&sql, "COMMENT ON INDEX %s IS %s",
						 quote_qualified_identifier(get_namespace_name(get_rel_namespace(source_relid)),
													index_name),
						 quote_literal_cstr(psprintf("Group expressions of medallion aggregate %s",
													 target_name)));
		SpiExecute(sql.data, 0, NULL, NULL, NULL, SPI_OK_UTILITY);
		CommandCounterIncrement();
		index_relid = get_relname_relid(index_name,
										get_rel_namespace(source_relid));
		agg_depend_on_target(RelationRelationId, index_relid, target_relid);
		/* for the definition, built after SPI_finish */
		index_name = MemoryContextStrdup(outer_context,
										 quote_qualified_identifier(get_namespace_name(get_rel_namespace(source_relid)),
																	index_name));
	}
	else
		ereport(NOTICE,
				(errmsg("no index was created on the group expressions of %s",
						source_name),
				 errdetail("Only the owner of a table can index it."),
				 errhint("Have the owner index the table on the group_by expressions, or each update may read the whole source.")));

	/* the state tables */
	if (kind == AGG_SOURCE_AGGREGATE)
	{
		resetStringInfo(&sql);
		appendStringInfo(&sql, "CREATE TABLE %s (", state_table);
		agg_append_group_column_defs(&sql, analysis.desc, spec.ngroups, false);
		appendStringInfoString(&sql, "\n)");
		SpiExecute(sql.data, 0, NULL, NULL, NULL, SPI_OK_UTILITY);
		resetStringInfo(&sql);
		appendStringInfo(&sql, "COMMENT ON TABLE %s IS %s", state_table,
						 quote_literal_cstr(psprintf("State of medallion aggregate %s: groups (group_1 ...) touched by changes to %s not yet applied",
													 target_name, source_name)));
		SpiExecute(sql.data, 0, NULL, NULL, NULL, SPI_OK_UTILITY);
	}
	if (state_table != NULL)
	{
		CommandCounterIncrement();
		agg_depend_on_target(RelationRelationId,
							 get_relname_relid(state_name, namespace_oid),
							 target_relid);
	}
	if (delta != NULL)
	{
		resetStringInfo(&sql);
		appendStringInfo(&sql, "CREATE TABLE %s (", groups_table);
		agg_append_group_column_defs(&sql, analysis.desc, spec.ngroups, false);
		AggregateDeltaAppendStateColumnDefs(&sql, delta);
		appendStringInfoString(&sql, "\n)");
		SpiExecute(sql.data, 0, NULL, NULL, NULL, SPI_OK_UTILITY);
		resetStringInfo(&sql);
		appendStringInfo(&sql, "CREATE UNIQUE INDEX ON %s (%s) NULLS NOT DISTINCT",
						 groups_table,
						 AggStateGroupColumnsSql(spec.ngroups, NULL));
		SpiExecute(sql.data, 0, NULL, NULL, NULL, SPI_OK_UTILITY);
		resetStringInfo(&sql);
		appendStringInfo(&sql, "COMMENT ON TABLE %s IS %s", groups_table,
						 quote_literal_cstr(psprintf("State of medallion aggregate %s: for each group (group_1 ...), its number of source rows and the running sums and counts its aggregates are computed from",
													 target_name)));
		SpiExecute(sql.data, 0, NULL, NULL, NULL, SPI_OK_UTILITY);
		CommandCounterIncrement();
		agg_depend_on_target(RelationRelationId,
							 get_relname_relid(groups_name, namespace_oid),
							 target_relid);

		/* the values of each count(DISTINCT x), or min or max that needs them */
		for (i = 0; i < spec.naggs; i++)
		{
			char	   *table;

			if (values_names[i] == NULL)
				continue;
			table = QuoteQualifiedName(namespace_oid, values_names[i]);
			resetStringInfo(&sql);
			appendStringInfo(&sql, "CREATE TABLE %s (", table);
			agg_append_group_column_defs(&sql, analysis.desc, spec.ngroups,
										 false);
			AggregateDeltaAppendDistinctColumnDefs(&sql, delta, i);
			appendStringInfoString(&sql, "\n)");
			SpiExecute(sql.data, 0, NULL, NULL, NULL, SPI_OK_UTILITY);
			SpiExecute(psprintf("CREATE UNIQUE INDEX ON %s (%s, value) NULLS NOT DISTINCT",
								table,
								AggStateGroupColumnsSql(spec.ngroups, NULL)),
					   0, NULL, NULL, NULL, SPI_OK_UTILITY);
			SpiExecute(psprintf("CREATE INDEX ON %s (refs) WHERE refs OPERATOR(pg_catalog.=) 0",
								table),
					   0, NULL, NULL, NULL, SPI_OK_UTILITY);
			SpiExecute(psprintf("COMMENT ON TABLE %s IS %s", table,
								quote_literal_cstr(psprintf("State of medallion aggregate %s: the values of aggregates item %d in each group (group_1 ...), with the number of source rows holding each (refs)",
															target_name, i + 1))),
					   0, NULL, NULL, NULL, SPI_OK_UTILITY);
			CommandCounterIncrement();
			agg_depend_on_target(RelationRelationId,
								 get_relname_relid(values_names[i], namespace_oid),
								 target_relid);
			values_names[i] = MemoryContextStrdup(outer_context, table);
		}
	}
	if (kind == AGG_SOURCE_CDC)
	{
		change_feed = MemoryContextStrdup(outer_context,
										  ChangeFeedEnsure(source_flow,
														   source_relid));

		/*
		 * The expressions are evaluated over the feed under the source's
		 * name: check now that they resolve there (they do unless they name
		 * the source with its schema).
		 */
		spec.delta = delta;
		SpiExecute(psprintf("SELECT %s%s FROM %s AS %s WHERE %s LIMIT 0",
							AggGroupExprsSql(&spec),
							delta != NULL ? AggDeltaArgumentListSql(&spec) : "",
							change_feed, spec.source_ref,
							AggWhereSql(&spec)),
				   0, NULL, NULL, NULL, SPI_OK_SELECT);
	}
	SPI_finish();

	UserSqlSettingsLeave(nest_level);
	error_context_stack = errcallback.previous;

	/* the definition: the arguments, and what they resolved to */
	FlowDefinitionBegin(&definition);
	FlowDefinitionPutString(&definition, "source", source_name);
	FlowDefinitionPutStringList(&definition, "group_by", group_items);
	FlowDefinitionPutStringList(&definition, "aggregates", agg_items);
	FlowDefinitionPutString(&definition, "filter", filter);
	FlowDefinitionPutStringList(&definition, "group_expressions",
								agg_item_list(spec.groups, spec.ngroups, false));
	FlowDefinitionPutStringList(&definition, "group_columns",
								agg_item_list(spec.groups, spec.ngroups, true));
	FlowDefinitionPutStringList(&definition, "aggregate_expressions",
								agg_item_list(spec.aggs, spec.naggs, false));
	FlowDefinitionPutStringList(&definition, "aggregate_columns",
								agg_item_list(spec.aggs, spec.naggs, true));
	FlowDefinitionPutString(&definition, "source_kind", AggSourceKindName(kind));
	FlowDefinitionPutString(&definition, "state_table", state_table);
	FlowDefinitionPutString(&definition, "source_index", index_name);
	FlowDefinitionPutString(&definition, "maintenance",
							delta != NULL ? "delta" : "recompute");
	if (change_feed != NULL)
		FlowDefinitionPutString(&definition, "change_feed", change_feed);
	if (delta != NULL)
	{
		List	   *values_tables = NIL;

		FlowDefinitionPutString(&definition, "groups_table", groups_table);
		AggregateDeltaPutDefinition(&definition, delta);
		for (i = 0; i < spec.naggs; i++)
			values_tables = lappend(values_tables,
									values_names[i] ? values_names[i] : "");
		FlowDefinitionPutStringList(&definition, "values_tables",
									values_tables);
	}
	else
		FlowDefinitionPutString(&definition, "maintenance_reason",
								delta_reason);

	/*
	 * CatalogCreateFlow accepts as source_relid only tables with a _row_id;
	 * for the others, source_table is set below, so that the update skips
	 * this flow when its source's flow failed.
	 */
	flow_id = CatalogCreateFlow(pipeline, FLOW_TYPE_AGGREGATE, target_relid,
								kind == AGG_SOURCE_APPEND ? source_relid : InvalidOid,
								source_name, FlowDefinitionEnd(&definition));
	if (kind != AGG_SOURCE_APPEND)
	{
		Oid			types[2] = {INT4OID, OIDOID};
		Datum		values[2] = {Int32GetDatum(flow_id),
		ObjectIdGetDatum(source_relid)};

		SPI_connect();
		SpiExecuteAsExtensionOwner("UPDATE medallion.flow"
								   " SET source_table = $2::pg_catalog.regclass"
								   " WHERE flow_id OPERATOR(pg_catalog.=) $1",
								   2, types, values, NULL, SPI_OK_UPDATE);
		SPI_finish();
	}

	/* the capture triggers (aggregate sources), now that the id is known */
	if (kind == AGG_SOURCE_AGGREGATE)
	{
		static const char *const events[3] = {"INSERT", "UPDATE", "DELETE"};
		static const char *const suffixes[3] = {"insert", "update", "delete"};

		SPI_connect();
		initStringInfo(&sql);
		for (i = 0; i < 3; i++)
		{
			char	   *trigger_name = psprintf("medallion_aggregate_%d_%s",
												flow_id, suffixes[i]);

			resetStringInfo(&sql);
			appendStringInfo(&sql,
							 "CREATE TRIGGER %s AFTER %s ON %s REFERENCING %s%s%s"
							 " FOR EACH STATEMENT EXECUTE FUNCTION medallion.aggregate_capture('%d')",
							 quote_identifier(trigger_name), events[i],
							 source_name,
							 i != 0 ? "OLD TABLE AS " AGG_OLD_TABLE : "",
							 i == 1 ? " " : "",
							 i != 2 ? "NEW TABLE AS " AGG_NEW_TABLE : "",
							 flow_id);
			SpiExecute(sql.data, 0, NULL, NULL, NULL, SPI_OK_UTILITY);
			CommandCounterIncrement();
			agg_depend_on_target(TriggerRelationId,
								 get_trigger_oid(source_relid, trigger_name, false),
								 target_relid);
		}
		SPI_finish();
	}
	PG_RETURN_VOID();
}
