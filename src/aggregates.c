/*-------------------------------------------------------------------------
 *
 * aggregates.c
 *	  Gold aggregate flows, maintained incrementally, and materialized views
 *	  attached to a pipeline.
 *
 * An aggregate flow keeps its target equal, after every update, to
 *
 *	 SELECT <group_by>, <aggregates> FROM <source> WHERE <filter>
 *	 GROUP BY <group_by>
 *
 * by rewriting only the groups whose input rows changed in the update: the
 * target's rows of those groups are deleted and the groups' rows computed
 * again (from the source, or from per-group state kept by deltas), so any
 * aggregate works (count(DISTINCT), min, max, percentiles ...), groups that
 * became empty disappear, and a row that moved from one group to another
 * touches both.  Recomputing a group is idempotent, so change capture may
 * over-approximate the touched groups; it must never miss one.
 *
 * Change capture depends on how the source is written (source_kind):
 *
 * - "append_only": bronze and silver targets, and any table with a
 *   "_row_id" identity column.  Rows are only inserted, so the changes are
 *   the rows in (watermark, ceiling], read by the safe ceiling protocol of
 *   flow.h; the flow's watermark is the source's last _row_id aggregated.
 *
 * - "auto_cdc": the target of an AUTO CDC flow, whose rows are inserted,
 *   updated (an SCD2 version closing) and deleted.  The CDC flow appends
 *   every row it removes or adds to the target's change feed while an
 *   aggregate flow reads it (change_feed.c), so the changes are the feed's
 *   rows in (watermark, ceiling], with their sign, and the watermark is a
 *   _row_id of the feed.  A reset marker in the range (the CDC flow derived
 *   its target again: an SCD1 truncate) makes the update a full recompute.
 *
 * - "aggregate": the target of another aggregate flow, which medallion
 *   writes with plain DELETE and INSERT.  Statement-level triggers with
 *   transition tables on the source (one per event) record the groups of
 *   the old and new rows in <target>__changes; an update consumes them.
 *
 * Two ways to apply the changes (the flow's "maintenance", chosen at
 * creation): "delta" adds them to per-group running state when every item
 * allows it (aggregate_delta.c; append_only and auto_cdc sources), else
 * "recompute" recomputes, from the source, the groups of the changed rows
 * (a removed row's group and an added row's group).  A full recompute
 * (delete everything, aggregate the whole source) is chosen when the flow
 * has no previous state (its first update, after a full refresh), when the
 * changes are a large share of the source (a fifth to recompute; as many
 * as the source's rows for delta maintenance), or, to recompute, when the
 * touched groups are at least a fifth of the target's groups: then one
 * pass over the source costs less than an index probe per group.
 *
 * Recomputing touched groups.  The touched groups' values are passed as
 * arrays, one per group column, and each group is recomputed by a LATERAL
 * subquery that reads the source by an index on the group expressions
 * (created with the flow, partial on the filter for append-only sources).
 * Groups with NULL values are handled apart, one statement per pattern of
 * NULL columns, with "IS NULL" instead of "=", so that every lookup stays
 * indexable and NULL groups are matched as GROUP BY matches them.  The rows
 * deleted and inserted are compared (as text) to tell whether the target
 * changed, so that an update that recomputes groups to the same values does
 * not count as a change (nor refresh views or notify listeners).  Under
 * delta maintenance the rows of the groups whose state changed are written
 * the same way, computed from their state rather than from the source.
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
 * Attached materialized views.  add_materialized_view registers a DBA's
 * materialized view as a flow; each update refreshes it (CONCURRENTLY when
 * it is populated and has a unique index usable for that) when a table it
 * reads, directly or through views, changed earlier in the update, and
 * otherwise leaves it alone.
 *
 * Copyright (c) 2025, medallion contributors
 *
 * IDENTIFICATION
 *	  src/aggregates.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_index.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_trigger.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "parser/parser.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/regproc.h"
#include "utils/syscache.h"
#include "utils/typcache.h"

#include "aggregates.h"
#include "aggregate_delta.h"
#include "catalog.h"
#include "cdc.h"
#include "change_feed.h"
#include "flow.h"
#include "flow_definition.h"
#include "spi_util.h"
#include "user_sql.h"
#include "version.h"

PG_FUNCTION_INFO_V1(medallion_create_aggregate);
PG_FUNCTION_INFO_V1(medallion_add_materialized_view);
PG_FUNCTION_INFO_V1(medallion_aggregate_capture);


/* Names medallion uses in the statements it builds; users may not. */
#define AGG_RESERVED_PREFIX		"__medallion"

/* Suffixes of the state tables, in the target's schema. */
#define AGG_CHANGES_SUFFIX		"__changes"
#define AGG_GROUPS_SUFFIX		"__groups"
#define AGG_VALUES_SUFFIX		"__values"

/* Transition tables of the capture triggers. */
#define AGG_OLD_TABLE			"__medallion_old"
#define AGG_NEW_TABLE			"__medallion_new"

/*
 * A full recompute is chosen when the changes reach 1/AGG_FULL_SHARE of
 * what they are compared with (see the file header).
 */
#define AGG_FULL_SHARE			5

/* Most group_by items (the target's unique index has this many columns). */
#define AGG_MAX_GROUPS			INDEX_MAX_KEYS

typedef enum AggSourceKind
{
	AGG_SOURCE_APPEND,			/* rows only inserted, read by _row_id */
	AGG_SOURCE_CDC,				/* target of an AUTO CDC flow */
	AGG_SOURCE_AGGREGATE		/* target of another aggregate flow */
} AggSourceKind;

/* One group_by or aggregates item. */
typedef struct AggItem
{
	char	   *expr;			/* the expression alone, as written */
	char	   *sql;			/* the same, placed (user_sql.h) */
	char	   *name;			/* the target column */
} AggItem;

/* What an apply (or the capture trigger) needs to know about a flow. */
typedef struct AggSpec
{
	char	   *flow_name;
	Oid			source_relid;
	char	   *source_name;	/* schema-qualified, quoted */
	char	   *source_ref;		/* quoted table name: how user SQL names it */
	Oid			target_relid;
	char	   *target_name;
	int			ngroups;
	AggItem    *groups;
	int			naggs;
	AggItem    *aggs;
	char	   *filter;			/* NULL when none */
	char	   *filter_sql;		/* the same, placed (user_sql.h) */
	AggSourceKind kind;
	char	   *state_table;	/* members or changes table, or NULL */
	AggregateDelta *delta;		/* NULL: touched groups are recomputed */
	char	   *groups_table;	/* per-group state of delta maintenance */
	char	   *feed_table;		/* change feed of an auto_cdc source */
	char	  **values_tables;		/* per item: its values table, or NULL */
	Oid			feed_relid;

	/* group columns of the target (filled at apply) */
	Oid		   *group_types;
	char	  **group_eq;		/* "OPERATOR(schema.=)" */
	char	  **group_collate;	/* " COLLATE ..." or "" */
} AggSpec;

/* What the flow keeps in flow_state between updates. */
typedef struct AggProgress
{
	bool		valid;			/* false: no previous state */
	int64		groups;			/* rows of the target */
	int64		rows;			/* source rows passing the filter (auto_cdc
								 * sources and delta maintenance) */
} AggProgress;

/* Counters of one apply. */
typedef struct AggRun
{
	int64		groups_recomputed;
	int64		groups_deleted;
	int64		groups_inserted;
	int64		source_rows;	/* source rows aggregated */
	bool		changed;
	bool		full;
	const char *full_reason;
} AggRun;

static const char *
agg_kind_name(AggSourceKind kind)
{
	switch (kind)
	{
		case AGG_SOURCE_APPEND:
			return "append_only";
		case AGG_SOURCE_CDC:
			return "auto_cdc";
		case AGG_SOURCE_AGGREGATE:
			return "aggregate";
	}
	return "append_only";		/* keep compiler quiet */
}

/*
 * Small helpers
 */

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

static bool
agg_is_reserved(const char *name)
{
	return strncmp(name, AGG_RESERVED_PREFIX,
				   strlen(AGG_RESERVED_PREFIX)) == 0;
}

/*
 * The equality operator of a type's default btree operator class, as
 * "OPERATOR(schema.=)", so that lookups match as GROUP BY and the indexes
 * do whatever the search_path holds.  NULL when the type has none.
 */
static char *
agg_eq_operator_sql(Oid type)
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
static char *
agg_positions(int n)
{
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	for (i = 1; i <= n; i++)
		appendStringInfo(&buf, "%s%d", i > 1 ? ", " : "", i);
	return buf.data;
}

/* Is a relation owned by (a role the current user has the privileges of)? */
static bool
agg_owns(Oid relid)
{
	return pg_class_ownercheck(relid, GetUserId());
}

/*
 * Parsing user SQL
 */

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

/*
 * Statement text
 */

/* The placed filter, or "true" */
static char *
agg_where_sql(AggSpec *spec)
{
	if (spec->filter == NULL)
		return "true";
	return spec->filter_sql;
}

/* "(<e1>\n) AS g1, ..., (<a1>\n) AS a1, ...": the placed items, named */
static char *
agg_select_list_sql(AggSpec *spec)
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
static char *
agg_group_exprs_sql(AggSpec *spec)
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
static char *
agg_target_columns_sql(AggSpec *spec, const char *qualifier)
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
static char *
agg_state_group_columns_sql(int ngroups, const char *qualifier)
{
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	for (i = 1; i <= ngroups; i++)
		appendStringInfo(&buf, "%s%s%sgroup_%d", i > 1 ? ", " : "",
						 qualifier ? qualifier : "", qualifier ? "." : "", i);
	return buf.data;
}

/* "(<e1>\n) AS group_1, ...": the group expressions as state columns */
static char *
agg_group_exprs_aliased_sql(AggSpec *spec)
{
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	for (i = 0; i < spec->ngroups; i++)
		appendStringInfo(&buf, "%s%s AS group_%d", i > 0 ? ", " : "",
						 spec->groups[i].sql, i + 1);
	return buf.data;
}

/* ", (<argument 1>\n) AS argument_1, ...", over the source */
static char *
agg_delta_argument_list_sql(AggSpec *spec)
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
 * The CTEs that add the change rows of CTE __medallion_c (group_<n>,
 * argument_<n>, key_1 for auto_cdc sources, __medallion_sign) to the state
 * of their groups, and yield, as __medallion_u, the groups whose state
 * changed (a group whose rows changed in nothing the items read is left
 * alone).
 */
static char *
agg_delta_apply_sql(AggSpec *spec)
{
	char	   *groups = agg_state_group_columns_sql(spec->ngroups, NULL);
	StringInfoData ctes;
	StringInfoData deltas;
	int			i;

	/*
	 * count(DISTINCT x): the net change of each (group, value) goes to the
	 * values table, whose upsert says which values appeared or went.
	 */
	initStringInfo(&ctes);
	initStringInfo(&deltas);
	appendStringInfo(&deltas,
					 "  SELECT %s, %s\n"
					 "    FROM __medallion_c AS c\n"
					 "   GROUP BY %s",
					 agg_state_group_columns_sql(spec->ngroups, "c"),
					 AggregateDeltaChangeSums(spec->delta),
					 agg_positions(spec->ngroups));
	for (i = 0; i < spec->naggs; i++)
	{
		const char *argument;

		if (spec->values_tables[i] == NULL)
			continue;
		argument = psprintf("c.argument_%d",
							spec->delta->items[i].argument + 1);
		appendStringInfo(&ctes,
						 ",\n__medallion_v%d AS (\n"
						 " INSERT INTO %s AS v (%s, value, refs, last_delta)\n"
						 " SELECT %s, %s, pg_catalog.sum(c.__medallion_sign), pg_catalog.sum(c.__medallion_sign)\n"
						 "   FROM __medallion_c AS c\n"
						 "  WHERE %s IS NOT NULL\n"
						 "  GROUP BY %s\n"
						 " HAVING pg_catalog.sum(c.__medallion_sign) OPERATOR(pg_catalog.<>) 0\n"
						 " ON CONFLICT (%s, value) DO UPDATE\n"
						 "   SET refs = v.refs OPERATOR(pg_catalog.+) excluded.refs,\n"
						 "       last_delta = excluded.last_delta\n"
						 " RETURNING %s, %s AS change)",
						 i + 1, spec->values_tables[i], groups,
						 agg_state_group_columns_sql(spec->ngroups, "c"),
						 argument, argument, agg_positions(spec->ngroups + 1),
						 groups, agg_state_group_columns_sql(spec->ngroups, "v"),
						 AggregateDeltaDistinctChange("v"));
		appendStringInfo(&deltas,
						 "\n  UNION ALL\n"
						 "  SELECT %s, %s FROM __medallion_v%d AS v",
						 agg_state_group_columns_sql(spec->ngroups, "v"),
						 AggregateDeltaDistinctSums(spec->delta, i, "v.change"),
						 i + 1);
	}

	return psprintf("%s,\n__medallion_dd AS (\n"
					" SELECT %s, %s\n"
					"   FROM (\n%s) AS x\n"
					"  GROUP BY %s),\n"
					"__medallion_u AS (\n"
					" INSERT INTO %s AS __medallion_s (%s, %s)\n"
					" SELECT * FROM __medallion_dd AS d WHERE %s\n"
					" ON CONFLICT (%s) DO UPDATE SET %s\n"
					" RETURNING %s)",
					ctes.data,
					agg_state_group_columns_sql(spec->ngroups, "x"),
					AggregateDeltaResum(spec->delta, "x"),
					deltas.data,
					agg_positions(spec->ngroups),
					spec->groups_table, groups,
					AggregateDeltaStateColumns(spec->delta, NULL),
					AggregateDeltaChangesState(spec->delta, "d"),
					groups,
					AggregateDeltaUpsertSet(spec->delta, "__medallion_s"),
					agg_state_group_columns_sql(spec->ngroups, "__medallion_s"));
}

/*
 * Values whose rows all went stay in a values table with refs 0 until the
 * end of the update that emptied them.
 */
static void
agg_delta_forget_values(AggSpec *spec)
{
	int			i;

	for (i = 0; i < spec->naggs; i++)
	{
		if (spec->values_tables[i] != NULL)
			SpiExecute(psprintf("DELETE FROM %s WHERE refs OPERATOR(pg_catalog.=) 0",
								spec->values_tables[i]),
					   0, NULL, NULL, NULL, SPI_OK_DELETE);
	}
}

/*
 * A target row from a groups table row (alias): its group columns, then
 * each item's value, named like the target's columns.  values_match is how
 * a values table row (alias __medallion_v) matches the group.
 */
static char *
agg_delta_final_list_sql(AggSpec *spec, const char *alias,
						 const char *values_match)
{
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	for (i = 0; i < spec->ngroups; i++)
		appendStringInfo(&buf, "%s%s.group_%d AS %s", i > 0 ? ", " : "", alias,
						 i + 1, quote_identifier(spec->groups[i].name));
	for (i = 0; i < spec->naggs; i++)
	{
		char	   *value = AggregateDeltaFinalValue(spec->delta, i, alias);

		/* min or max: the least or greatest value a row still holds */
		if (value == NULL)
			value = psprintf("(SELECT __medallion_v.value FROM %s AS __medallion_v\n"
							 "  WHERE %s AND __medallion_v.refs OPERATOR(pg_catalog.>) 0\n"
							 "  ORDER BY __medallion_v.value%s LIMIT 1)",
							 spec->values_tables[i], values_match,
							 spec->delta->items[i].kind == AGG_DELTA_MAX_VALUES ?
							 " DESC" : "");
		appendStringInfo(&buf, ", %s AS %s", value,
						 quote_identifier(spec->aggs[i].name));
	}
	return buf.data;
}

/*
 * The definition
 */

static void
agg_json_list(StringInfo json, const char *key, AggItem *items, int n,
			  bool names)
{
	int			i;

	appendStringInfo(json, ", \"%s\": [", key);
	for (i = 0; i < n; i++)
	{
		if (i > 0)
			appendStringInfoString(json, ", ");
		escape_json(json, names ? items[i].name : items[i].expr);
	}
	appendStringInfoChar(json, ']');
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

static char *
agg_def_state_table(const FlowDesc *flow, const char *member)
{
	return agg_def_table(FlowDefinitionString(flow, member, true),
						 flow->flow_name);
}

/*
 * The spec of a flow from its definition.  Stored expressions are checked
 * again before use, so that a catalog row edited by hand cannot splice SQL
 * into the flow's statements (as ExpectationsLoad does).  The caller has
 * set standard_conforming_strings.
 */
static AggSpec *
agg_load_spec(FlowDesc *flow, bool resolve_target)
{
	AggSpec    *spec = palloc0(sizeof(AggSpec));
	char	   *kind;
	char	   *source_name;
	char	   *maintenance;
	List	   *values_tables = NIL;
	ListCell   *cell;
	int			i;

	spec->flow_name = flow->flow_name;
	spec->target_relid = flow->target_relid;
	spec->target_name = CatalogQualifiedRelationName(flow->target_relid);

	/* the source: source_table, or the name when a catalog lacks it */
	spec->source_relid = flow->source_relid;
	if (!OidIsValid(spec->source_relid))
	{
		source_name = FlowDefinitionString(flow, "source", false);
		if (source_name != NULL)
			spec->source_relid =
				RelidFromQualifiedName(source_name, true);
	}
	FlowCheckSourceExists(flow, spec->source_relid);
	spec->source_name = CatalogQualifiedRelationName(spec->source_relid);
	spec->source_ref = pstrdup(quote_identifier(get_rel_name(spec->source_relid)));

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

	kind = FlowDefinitionString(flow, "source_kind", false);
	if (kind == NULL || strcmp(kind, "append_only") == 0)
		spec->kind = AGG_SOURCE_APPEND;
	else if (strcmp(kind, "auto_cdc") == 0)
		spec->kind = AGG_SOURCE_CDC;
	else if (strcmp(kind, "aggregate") == 0)
		spec->kind = AGG_SOURCE_AGGREGATE;
	else
		FlowDefinitionCorrupted(flow->flow_name, "source_kind");

	maintenance = FlowDefinitionString(flow, "maintenance", false);
	if (maintenance != NULL && strcmp(maintenance, "delta") == 0)
	{
		spec->delta = AggregateDeltaFromLists(FlowDefinitionStringList(flow, "delta_kinds", true),
											  FlowDefinitionStringList(flow, "delta_arguments", true),
											  flow->flow_name);
		if (spec->delta->nitems != spec->naggs ||
			(spec->kind != AGG_SOURCE_APPEND && spec->kind != AGG_SOURCE_CDC))
			FlowDefinitionCorrupted(flow->flow_name, "delta_kinds");
		spec->groups_table = agg_def_state_table(flow, "groups_table");
		values_tables = FlowDefinitionStringList(flow, "values_tables", true);
		if (list_length(values_tables) != spec->naggs)
			FlowDefinitionCorrupted(flow->flow_name, "values_tables");
		foreach(cell, values_tables)
		{
			i = foreach_current_index(cell);
			if (AggregateDeltaNeedsValues(spec->delta, i) !=
				(((char *) lfirst(cell))[0] != '\0'))
				FlowDefinitionCorrupted(flow->flow_name, "values_tables");
		}
	}
	spec->values_tables = palloc0(sizeof(char *) * Max(spec->naggs, 1));
	foreach(cell, values_tables)
	{
		if (((char *) lfirst(cell))[0] == '\0')
			continue;
		spec->values_tables[foreach_current_index(cell)] =
			agg_def_table(lfirst(cell), flow->flow_name);
	}
	if (spec->kind == AGG_SOURCE_CDC)
	{
		spec->feed_table = agg_def_state_table(flow, "change_feed");
		spec->feed_relid = RelidFromQualifiedName(spec->feed_table, false);
	}
	else if (spec->kind == AGG_SOURCE_AGGREGATE)
		spec->state_table = agg_def_state_table(flow, "state_table");

	if (!resolve_target)
		return spec;

	/* the group columns of the target: types, equality, collation */
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
		spec->group_eq[i] = agg_eq_operator_sql(typid);
		if (spec->group_eq[i] == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_FUNCTION),
					 errmsg("could not identify an equality operator for type %s",
							format_type_be(typid))));
		spec->group_collate[i] = SqlCollateClause(collation);
	}
	return spec;
}

/*
 * Flow state
 */

static int64
agg_state_int(Jsonb *state, const char *key, bool *found)
{
	JsonbValue *value;

	*found = false;
	if (state == NULL || !JB_ROOT_IS_OBJECT(state))
		return 0;
	value = getKeyJsonValueFromContainer(&state->root, key, strlen(key), NULL);
	if (value == NULL || value->type != jbvNumeric)
		return 0;
	*found = true;
	return DatumGetInt64(DirectFunctionCall1(numeric_int8,
											 NumericGetDatum(value->val.numeric)));
}

static void
agg_state_read(Jsonb *flow_state, AggProgress *state)
{
	bool		found;

	memset(state, 0, sizeof(AggProgress));
	state->groups = agg_state_int(flow_state, "groups", &found);
	state->valid = found;
	state->rows = agg_state_int(flow_state, "rows", &found);
}

/*
 * flow_state: the target's groups, and, when a full recompute is chosen by
 * comparing the changes with the source (auto_cdc sources, delta
 * maintenance), the source's rows that pass the filter.
 */
static Jsonb *
agg_state_build(AggProgress *state, AggSpec *spec)
{
	char	   *json;

	if (spec->delta != NULL || spec->kind == AGG_SOURCE_CDC)
		json = psprintf("{\"groups\": " INT64_FORMAT ", \"rows\": " INT64_FORMAT "}",
						state->groups, state->rows);
	else
		json = psprintf("{\"groups\": " INT64_FORMAT "}", state->groups);
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(json)));
}

/*
 * Recomputing
 */

/*
 * Full recompute: delete every row of the target and aggregate the whole
 * source (under delta maintenance, into the per-group state and the values
 * tables too).
 */
static void
agg_recompute_full(AggSpec *spec, AggProgress *state, AggRun *run)
{
	StringInfoData sql;
	bool		isnull;

	run->full = true;
	run->groups_deleted = (int64) SpiExecute(psprintf("DELETE FROM %s",
													  spec->target_name),
											 0, NULL, NULL, NULL,
											 SPI_OK_DELETE);

	if (spec->delta != NULL)
	{
		int			i;

		/* the values of count(DISTINCT x), min and max items */
		for (i = 0; i < spec->naggs; i++)
		{
			const char *argument;

			if (spec->values_tables[i] == NULL)
				continue;
			argument = spec->delta->argument_sql[spec->delta->items[i].argument];
			SpiExecute(psprintf("TRUNCATE %s", spec->values_tables[i]), 0,
					   NULL, NULL, NULL, SPI_OK_UTILITY);
			SpiExecute(psprintf("INSERT INTO %s (%s, value, refs, last_delta)\n"
								"SELECT %s, %s, pg_catalog.count(*), 0\n"
								"  FROM %s\n"
								" WHERE %s AND %s IS NOT NULL\n"
								" GROUP BY %s",
								spec->values_tables[i],
								agg_state_group_columns_sql(spec->ngroups, NULL),
								agg_group_exprs_sql(spec), argument,
								spec->source_name, agg_where_sql(spec),
								argument, agg_positions(spec->ngroups + 1)),
					   0, NULL, NULL, NULL, SPI_OK_INSERT);
		}

		/* the per-group state */
		SpiExecute(psprintf("TRUNCATE %s", spec->groups_table), 0, NULL, NULL,
				   NULL, SPI_OK_UTILITY);
		SpiExecute(psprintf("INSERT INTO %s (%s, %s)\n"
							"SELECT %s, %s\n"
							"  FROM %s\n"
							" WHERE %s\n"
							" GROUP BY %s",
							spec->groups_table,
							agg_state_group_columns_sql(spec->ngroups, NULL),
							AggregateDeltaStateColumns(spec->delta, NULL),
							agg_group_exprs_sql(spec),
							AggregateDeltaSourceSums(spec->delta),
							spec->source_name, agg_where_sql(spec),
							agg_positions(spec->ngroups)),
				   0, NULL, NULL, NULL, SPI_OK_INSERT);
	}

	/* the target: the query itself */
	initStringInfo(&sql);
	appendStringInfo(&sql,
					 "WITH __medallion_r AS (\n"
					 " SELECT %s, pg_catalog.count(*) AS __medallion_n\n"
					 "   FROM %s\n"
					 "  WHERE %s\n"
					 "  GROUP BY %s),\n"
					 "__medallion_i AS (\n"
					 " INSERT INTO %s (%s)\n"
					 " SELECT %s FROM __medallion_r RETURNING 1)\n"
					 "SELECT (SELECT pg_catalog.count(*) FROM __medallion_i),\n"
					 "       (SELECT pg_catalog.sum(__medallion_n) FROM __medallion_r)::pg_catalog.int8",
					 agg_select_list_sql(spec), spec->source_name,
					 agg_where_sql(spec), agg_positions(spec->ngroups),
					 spec->target_name, agg_target_columns_sql(spec, NULL),
					 agg_target_columns_sql(spec, NULL));
	SpiExecute(sql.data, 0, NULL, NULL, NULL, SPI_OK_SELECT);
	run->groups_inserted = SpiGetInt64(0, 1, NULL);
	run->source_rows = SpiGetInt64(0, 2, &isnull);
	run->groups_recomputed = run->groups_inserted;
	run->changed = run->groups_deleted > 0 || run->groups_inserted > 0;
	state->groups = run->groups_inserted;
	state->rows = run->source_rows;

	if (spec->kind == AGG_SOURCE_AGGREGATE)
		SpiExecute(psprintf("DELETE FROM %s", spec->state_table), 0, NULL,
				   NULL, NULL, SPI_OK_DELETE);
}

/* Is the attribute of a row in a tuptable NULL? */
#define agg_attisnull(tuptable, row, attnum) \
	heap_attisnull((tuptable)->vals[(row)], (attnum), (tuptable)->tupdesc)

/* Touched groups of one pattern of NULL group columns. */
typedef struct AggPattern
{
	uint32		nullmask;		/* bit i: group column i is NULL */
	List	   *rows;			/* row numbers in the touched tuptable */
} AggPattern;

/* Do two text[] datums (either may be NULL) hold the same elements? */
static bool
agg_text_arrays_equal(Datum a, bool a_null, Datum b, bool b_null)
{
	Datum	   *a_elems;
	Datum	   *b_elems;
	bool	   *a_nulls;
	bool	   *b_nulls;
	int			a_n = 0;
	int			b_n = 0;
	int			i;

	if (!a_null)
		deconstruct_array_builtin(DatumGetArrayTypeP(a), TEXTOID, &a_elems,
								  &a_nulls, &a_n);
	if (!b_null)
		deconstruct_array_builtin(DatumGetArrayTypeP(b), TEXTOID, &b_elems,
								  &b_nulls, &b_n);
	if (a_n != b_n)
		return false;
	for (i = 0; i < a_n; i++)
	{
		text	   *x;
		text	   *y;

		if (a_nulls[i] != b_nulls[i])
			return false;
		if (a_nulls[i])
			continue;
		x = DatumGetTextPP(a_elems[i]);
		y = DatumGetTextPP(b_elems[i]);
		if (VARSIZE_ANY_EXHDR(x) != VARSIZE_ANY_EXHDR(y) ||
			memcmp(VARDATA_ANY(x), VARDATA_ANY(y), VARSIZE_ANY_EXHDR(x)) != 0)
			return false;
	}
	return true;
}

/* Number of elements of a text[] datum, 0 for NULL. */
static int64
agg_array_length(Datum a, bool isnull)
{
	ArrayType  *array;

	if (isnull)
		return 0;
	array = DatumGetArrayTypeP(a);
	return ARR_NDIM(array) == 0 ? 0 : ArrayGetNItems(ARR_NDIM(array),
													  ARR_DIMS(array));
}

/*
 * Recompute the groups of one NULL pattern: delete their target rows, then
 * insert their rows computed again (none for a group now empty): from the
 * source, or under delta maintenance from their state (whose rows of groups
 * now empty are deleted too).  values holds one array per non-NULL group
 * column.
 */
static void
agg_recompute_pattern(AggSpec *spec, uint32 nullmask, int nparams,
					  Oid *types, Datum *values, AggRun *run)
{
	StringInfoData from;
	StringInfoData target_match;
	StringInfoData source_match;
	StringInfoData state_match;
	StringInfoData values_match;
	StringInfoData sql;
	Datum		deleted;
	bool		deleted_null;
	Datum		inserted;
	bool		inserted_null;
	bool		isnull;
	int			i;
	int			param = 0;

	/* the touched groups as rows: unnest of the arrays, or one row */
	initStringInfo(&from);
	if (nparams == 0)
		appendStringInfoString(&from,
							   "(VALUES (1)) AS __medallion_g(__medallion_g0)");
	else
	{
		appendStringInfoString(&from, "ROWS FROM (");
		for (i = 1; i <= nparams; i++)
			appendStringInfo(&from, "%spg_catalog.unnest($%d)",
							 i > 1 ? ", " : "", i);
		appendStringInfoString(&from, ") AS __medallion_g(");
		for (i = 0; i < spec->ngroups; i++)
		{
			if (nullmask & ((uint32) 1 << i))
				continue;
			appendStringInfo(&from, "%s__medallion_g%d", param > 0 ? ", " : "",
							 i + 1);
			param++;
		}
		appendStringInfoChar(&from, ')');
	}

	/* how a target row, a source row and a state row match a group */
	initStringInfo(&target_match);
	initStringInfo(&source_match);
	initStringInfo(&state_match);
	initStringInfo(&values_match);
	for (i = 0; i < spec->ngroups; i++)
	{
		const char *column = quote_identifier(spec->groups[i].name);

		if (i > 0)
		{
			appendStringInfoString(&target_match, " AND ");
			appendStringInfoString(&source_match, " AND ");
			appendStringInfoString(&state_match, " AND ");
			appendStringInfoString(&values_match, " AND ");
		}
		if (nullmask & ((uint32) 1 << i))
		{
			appendStringInfo(&target_match, "__medallion_t.%s IS NULL", column);
			appendStringInfo(&source_match, "%s IS NULL",
							 spec->groups[i].sql);
			appendStringInfo(&state_match, "__medallion_s.group_%d IS NULL",
							 i + 1);
			appendStringInfo(&values_match, "__medallion_v.group_%d IS NULL",
							 i + 1);
		}
		else
		{
			appendStringInfo(&target_match,
							 "__medallion_t.%s %s __medallion_g.__medallion_g%d%s",
							 column, spec->group_eq[i], i + 1,
							 spec->group_collate[i]);
			appendStringInfo(&source_match,
							 "%s %s __medallion_g.__medallion_g%d%s",
							 spec->groups[i].sql, spec->group_eq[i], i + 1,
							 spec->group_collate[i]);
			appendStringInfo(&state_match,
							 "__medallion_s.group_%d %s __medallion_g.__medallion_g%d%s",
							 i + 1, spec->group_eq[i], i + 1,
							 spec->group_collate[i]);
			appendStringInfo(&values_match,
							 "__medallion_v.group_%d %s __medallion_g.__medallion_g%d%s",
							 i + 1, spec->group_eq[i], i + 1,
							 spec->group_collate[i]);
		}
	}

	/* delete the target rows of the groups, and the state of empty ones */
	initStringInfo(&sql);
	appendStringInfo(&sql,
					 "WITH __medallion_d AS (\n"
					 " DELETE FROM %s AS __medallion_t USING %s\n"
					 "  WHERE %s\n"
					 " RETURNING __medallion_t::pg_catalog.text AS __medallion_row)",
					 spec->target_name, from.data, target_match.data);
	if (spec->delta != NULL)
		appendStringInfo(&sql,
						 ",\n__medallion_e AS (\n"
						 " DELETE FROM %s AS __medallion_s USING %s\n"
						 "  WHERE %s AND __medallion_s.row_count OPERATOR(pg_catalog.=) 0)",
						 spec->groups_table, from.data, state_match.data);
	appendStringInfoString(&sql,
						   "\nSELECT pg_catalog.array_agg(__medallion_row ORDER BY __medallion_row COLLATE pg_catalog.\"C\")\n"
						   "  FROM __medallion_d");
	SpiExecute(sql.data, nparams, types, values, NULL, SPI_OK_SELECT);
	deleted = SpiGetDatum(0, 1, &deleted_null);

	/*
	 * Aggregate each group again, reading the source by the index on the
	 * group expressions.  The user's expressions sit in a subquery whose
	 * only FROM item is the source, so their names resolve as at creation.
	 * Under delta maintenance, the group's row is read from its state.
	 */
	resetStringInfo(&sql);
	appendStringInfo(&sql,
					 "WITH __medallion_r AS (\n"
					 " SELECT __medallion_x.*\n"
					 "   FROM %s\n"
					 "  CROSS JOIN LATERAL (\n",
					 from.data);
	if (spec->delta == NULL)
		appendStringInfo(&sql,
						 "   SELECT %s, pg_catalog.count(*) AS __medallion_n\n"
						 "     FROM %s\n"
						 "    WHERE %s\n"
						 "      AND %s\n"
						 "    GROUP BY %s) AS __medallion_x),\n",
						 agg_select_list_sql(spec), spec->source_name,
						 agg_where_sql(spec), source_match.data,
						 agg_positions(spec->ngroups));
	else
		appendStringInfo(&sql,
						 "   SELECT %s, 0::pg_catalog.int8 AS __medallion_n\n"
						 "     FROM %s AS __medallion_s\n"
						 "    WHERE %s\n"
						 "      AND __medallion_s.row_count OPERATOR(pg_catalog.>) 0) AS __medallion_x),\n",
						 agg_delta_final_list_sql(spec, "__medallion_s",
												  values_match.data),
						 spec->groups_table, state_match.data);
	appendStringInfo(&sql,
					 "__medallion_i AS (\n"
					 " INSERT INTO %s AS __medallion_t (%s)\n"
					 " SELECT %s FROM __medallion_r\n"
					 " RETURNING __medallion_t::pg_catalog.text AS __medallion_row)\n"
					 "SELECT (SELECT pg_catalog.array_agg(__medallion_row ORDER BY __medallion_row COLLATE pg_catalog.\"C\")\n"
					 "          FROM __medallion_i),\n"
					 "       (SELECT pg_catalog.sum(__medallion_n) FROM __medallion_r)::pg_catalog.int8",
					 spec->target_name,
					 agg_target_columns_sql(spec, NULL),
					 agg_target_columns_sql(spec, NULL));
	SpiExecute(sql.data, nparams, types, values, NULL, SPI_OK_SELECT);
	inserted = SpiGetDatum(0, 1, &inserted_null);
	run->source_rows += SpiGetInt64(0, 2, &isnull);

	run->groups_deleted += agg_array_length(deleted, deleted_null);
	run->groups_inserted += agg_array_length(inserted, inserted_null);
	if (!agg_text_arrays_equal(deleted, deleted_null, inserted, inserted_null))
		run->changed = true;
}

/*
 * Recompute the touched groups, the rows of the tuptable touched (group
 * columns first, in order), pattern by pattern of NULL columns.
 */
static void
agg_recompute_groups(AggSpec *spec, SPITupleTable *touched, uint64 ntouched,
					 AggProgress *state, AggRun *run)
{
	List	   *patterns = NIL;
	ListCell   *cell;
	uint64		row;
	int			i;

	for (row = 0; row < ntouched; row++)
	{
		uint32		mask = 0;
		AggPattern *pattern = NULL;

		for (i = 0; i < spec->ngroups; i++)
		{
			if (agg_attisnull(touched, row, i + 1))
				mask |= (uint32) 1 << i;
		}
		foreach(cell, patterns)
		{
			if (((AggPattern *) lfirst(cell))->nullmask == mask)
			{
				pattern = lfirst(cell);
				break;
			}
		}
		if (pattern == NULL)
		{
			pattern = palloc0(sizeof(AggPattern));
			pattern->nullmask = mask;
			patterns = lappend(patterns, pattern);
		}
		pattern->rows = lappend_int(pattern->rows, (int) row);
	}

	foreach(cell, patterns)
	{
		AggPattern *pattern = lfirst(cell);
		int			nrows = list_length(pattern->rows);
		Oid			types[AGG_MAX_GROUPS];
		Datum		values[AGG_MAX_GROUPS];
		int			nparams = 0;

		for (i = 0; i < spec->ngroups; i++)
		{
			Oid			elemtype;
			int16		typlen;
			bool		typbyval;
			char		typalign;
			Datum	   *elems;
			ListCell   *rcell;
			int			dims[1];
			int			lbs[1];

			if (pattern->nullmask & ((uint32) 1 << i))
				continue;
			elemtype = SPI_gettypeid(touched->tupdesc, i + 1);
			get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
			elems = palloc(sizeof(Datum) * nrows);
			foreach(rcell, pattern->rows)
			{
				bool		isnull;

				elems[foreach_current_index(rcell)] =
					SPI_getbinval(touched->vals[lfirst_int(rcell)],
								  touched->tupdesc, i + 1, &isnull);
			}
			dims[0] = nrows;
			lbs[0] = 1;
			types[nparams] = get_array_type(elemtype);
			if (!OidIsValid(types[nparams]))
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_OBJECT),
						 errmsg("could not find array type for data type %s",
								format_type_be(elemtype))));
			values[nparams] = PointerGetDatum(construct_md_array(elems, NULL, 1,
																 dims, lbs,
																 elemtype,
																 typlen,
																 typbyval,
																 typalign));
			nparams++;
		}
		agg_recompute_pattern(spec, pattern->nullmask, nparams, types, values,
							  run);
		run->groups_recomputed += nrows;
	}
	state->groups += run->groups_inserted - run->groups_deleted;
	if (state->groups < 0)
		state->groups = 0;
}

/*
 * Change capture
 */

/*
 * Append-only source: the groups of the rows in (low, high] that pass the
 * filter, with the number of such rows.
 */
static uint64
agg_touched_append(AggSpec *spec, int64 low, int64 high, int64 *rows)
{
	StringInfoData sql;
	Oid			types[2] = {INT8OID, INT8OID};
	Datum		values[2] = {Int64GetDatum(low), Int64GetDatum(high)};
	uint64		n;
	uint64		row;

	initStringInfo(&sql);
	appendStringInfo(&sql,
					 "SELECT %s, pg_catalog.count(*)\n"
					 "  FROM %s\n"
					 " WHERE _row_id OPERATOR(pg_catalog.>) $1\n"
					 "   AND _row_id OPERATOR(pg_catalog.<=) $2\n"
					 "   AND %s\n"
					 " GROUP BY %s",
					 agg_group_exprs_sql(spec), spec->source_name,
					 agg_where_sql(spec), agg_positions(spec->ngroups));
	n = SpiExecute(sql.data, 2, types, values, NULL, SPI_OK_SELECT);
	*rows = 0;
	for (row = 0; row < n; row++)
		*rows += SpiGetInt64(row, spec->ngroups + 1, NULL);
	return n;
}

/*
 * Delta maintenance: add the changes in (low, high] to the state of their
 * groups; they are the new rows of an append-only source, or the rows of
 * the change feed of an auto_cdc source (read under the source's name, so
 * that the user's expressions resolve as over the source).  Returns the
 * groups whose state changed, in SPI_tuptable, the number of changes that
 * pass the filter in *rows, and their sum of signs in *net_rows.
 */
static uint64
agg_delta_changes(AggSpec *spec, int64 low, int64 high, int64 *rows,
				  int64 *net_rows)
{
	StringInfoData sql;
	Oid			types[2] = {INT8OID, INT8OID};
	Datum		values[2] = {Int64GetDatum(low), Int64GetDatum(high)};
	bool		feed = spec->kind == AGG_SOURCE_CDC;
	uint64		n;

	initStringInfo(&sql);
	appendStringInfo(&sql,
					 "WITH __medallion_c AS (\n"
					 " SELECT %s%s, %s AS __medallion_sign\n"
					 "   FROM %s%s%s\n"
					 "  WHERE _row_id OPERATOR(pg_catalog.>) $1\n"
					 "    AND _row_id OPERATOR(pg_catalog.<=) $2\n"
					 "    AND %s%s)%s\n"
					 "SELECT %s, (SELECT pg_catalog.count(*) FROM __medallion_c),\n"
					 "       (SELECT pg_catalog.sum(__medallion_sign) FROM __medallion_c)::pg_catalog.int8\n"
					 "  FROM __medallion_u",
					 agg_group_exprs_aliased_sql(spec),
					 agg_delta_argument_list_sql(spec),
					 feed ? CHANGE_FEED_SIGN_COLUMN : "1",
					 feed ? spec->feed_table : spec->source_name,
					 feed ? " AS " : "", feed ? spec->source_ref : "",
					 agg_where_sql(spec),
					 feed ? " AND " CHANGE_FEED_SIGN_COLUMN " OPERATOR(pg_catalog.<>) 0" : "",
					 agg_delta_apply_sql(spec),
					 agg_state_group_columns_sql(spec->ngroups, NULL));
	n = SpiExecute(sql.data, 2, types, values, NULL, SPI_OK_SELECT);
	*rows = n > 0 ? SpiGetInt64(0, spec->ngroups + 1, NULL) : 0;
	*net_rows = n > 0 ? SpiGetInt64(0, spec->ngroups + 2, NULL) : 0;
	return n;
}

/*
 * auto_cdc source, recomputed: the groups of the change feed's rows in
 * (low, high] that pass the filter (a removed row's group, an added row's
 * group), with the number of such rows in *rows and their sum of signs in
 * *net_rows.  The feed is read under the source's name, so that the user's
 * expressions resolve as over the source.
 */
static uint64
agg_touched_feed(AggSpec *spec, int64 low, int64 high, int64 *rows,
				 int64 *net_rows)
{
	Oid			types[2] = {INT8OID, INT8OID};
	Datum		values[2] = {Int64GetDatum(low), Int64GetDatum(high)};
	uint64		n;
	uint64		row;

	n = SpiExecute(psprintf("SELECT %s, pg_catalog.count(*),"
							" pg_catalog.sum(" CHANGE_FEED_SIGN_COLUMN ")::pg_catalog.int8\n"
							"  FROM %s AS %s\n"
							" WHERE _row_id OPERATOR(pg_catalog.>) $1\n"
							"   AND _row_id OPERATOR(pg_catalog.<=) $2\n"
							"   AND " CHANGE_FEED_SIGN_COLUMN " OPERATOR(pg_catalog.<>) 0\n"
							"   AND %s\n"
							" GROUP BY %s",
							agg_group_exprs_sql(spec), spec->feed_table,
							spec->source_ref, agg_where_sql(spec),
							agg_positions(spec->ngroups)),
				   2, types, values, NULL, SPI_OK_SELECT);
	*rows = 0;
	*net_rows = 0;
	for (row = 0; row < n; row++)
	{
		*rows += SpiGetInt64(row, spec->ngroups + 1, NULL);
		*net_rows += SpiGetInt64(row, spec->ngroups + 2, NULL);
	}
	return n;
}

/*
 * Is there a reset marker (sign 0) in (low, high] of a change feed?  Its
 * CDC flow derived the target again from scratch (a full refresh, an SCD1
 * truncate): the changes are not in the feed.
 */
static bool
agg_feed_has_reset(AggSpec *spec, int64 low, int64 high)
{
	Oid			types[2] = {INT8OID, INT8OID};
	Datum		values[2] = {Int64GetDatum(low), Int64GetDatum(high)};
	bool		isnull;

	SpiExecute(psprintf("SELECT EXISTS (SELECT FROM %s"
						" WHERE _row_id OPERATOR(pg_catalog.>) $1"
						"   AND _row_id OPERATOR(pg_catalog.<=) $2"
						"   AND " CHANGE_FEED_SIGN_COLUMN " OPERATOR(pg_catalog.=) 0)",
						spec->feed_table),
			   2, types, values, NULL, SPI_OK_SELECT);
	return DatumGetBool(SpiGetDatum(0, 1, &isnull));
}

/* Error context of an apply. */
static void
agg_apply_error_callback(void *arg)
{
	errcontext("applying aggregate flow \"%s\"", (const char *) arg);
}

/*
 * AggregateApply: see aggregates.h and the file header.
 */
void
AggregateApply(FlowContext *context, FlowDesc *flow, FlowResult *result)
{
	AggSpec    *spec;
	AggProgress	state;
	AggRun		run;
	FlowDesc   *cdc_flow = NULL;
	int64		watermark;
	int64		new_watermark;
	int64		changes = 0;
	int64		net_rows = 0;
	bool		full = false;
	const char *full_reason = NULL;
	SPITupleTable *touched = NULL;
	uint64		ntouched = 0;
	int			nest_level;
	ErrorContextCallback errcallback;
	Jsonb	   *flow_state;

	errcallback.callback = agg_apply_error_callback;
	errcallback.arg = flow->flow_name;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;

	/* search_path is the pipeline's already (owner context) */
	nest_level = UserSqlSettingsEnter(NULL);
	memset(&run, 0, sizeof(run));

	/* this flow's progress as of now, locked against a concurrent apply */
	SPI_connect();
	CatalogLockFlow(flow, &watermark, &flow_state);
	agg_state_read(flow_state, &state);
	new_watermark = watermark;

	spec = agg_load_spec(flow, true);
	if (!state.valid)
	{
		full = true;
		full_reason = "no previous state";
	}

	switch (spec->kind)
	{
		case AGG_SOURCE_APPEND:
			{
				int64		ceiling = FlowSourceCeiling(spec->source_relid);

				new_watermark = Max(ceiling, watermark);
				if (full || ceiling <= watermark)
					break;
				if ((ceiling - watermark) * AGG_FULL_SHARE >= ceiling)
				{
					full = true;
					full_reason = "new source rows are a large share of the source";
					break;
				}
				if (spec->delta != NULL)
					ntouched = agg_delta_changes(spec, watermark, ceiling,
												 &changes, &net_rows);
				else
					ntouched = agg_touched_append(spec, watermark, ceiling,
												  &changes);
				touched = SPI_tuptable;
				break;
			}
		case AGG_SOURCE_CDC:
			{
				int64		ceiling;

				cdc_flow = CatalogGetFlowByTarget(spec->source_relid, true);
				if (cdc_flow == NULL ||
					cdc_flow->type != FLOW_TYPE_AUTO_CDC)
					ereport(ERROR,
							(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
							 errmsg("source %s of flow \"%s\" is no longer the target of an auto CDC flow",
									spec->source_name, flow->flow_name),
							 errhint("Drop the pipeline and create its flows again.")));

				/*
				 * The changes are in the CDC flow's change feed; no apply of
				 * the CDC flow is in progress once its row is locked, so the
				 * feed and the target agree.
				 */
				CatalogShareLockFlow(cdc_flow);
				ceiling = FlowSourceCeiling(spec->feed_relid);
				if (!full && ceiling < watermark)
				{
					/* a feed created again numbers its rows from 1 */
					full = true;
					full_reason = "the change feed started over";
				}
				new_watermark = full ? ceiling : Max(ceiling, watermark);
				if (full || ceiling <= watermark)
					break;
				if (agg_feed_has_reset(spec, watermark, ceiling))
				{
					full = true;
					full_reason = "the auto CDC flow derived its target again";
					break;
				}

				/*
				 * Recomputing reads each touched group; delta maintenance
				 * reads each change.
				 */
				if ((ceiling - watermark) * (spec->delta != NULL ? 1 : AGG_FULL_SHARE) >=
					state.rows)
				{
					full = true;
					full_reason = "changes are a large share of the source";
					break;
				}
				if (spec->delta != NULL)
					ntouched = agg_delta_changes(spec, watermark, ceiling,
												 &changes, &net_rows);
				else
					ntouched = agg_touched_feed(spec, watermark, ceiling,
												&changes, &net_rows);
				touched = SPI_tuptable;
				break;
			}
		case AGG_SOURCE_AGGREGATE:
			{
				StringInfoData sql;
				uint64		row;

				if (full)
					break;

				/*
				 * DELETE ... RETURNING reads and consumes exactly the same
				 * rows, even if a writer adds some meanwhile.
				 */
				initStringInfo(&sql);
				appendStringInfo(&sql,
								 "WITH __medallion_c AS (DELETE FROM %s RETURNING *)\n"
								 "SELECT %s, pg_catalog.count(*) FROM __medallion_c GROUP BY %s",
								 spec->state_table,
								 agg_state_group_columns_sql(spec->ngroups, NULL),
								 agg_positions(spec->ngroups));
				ntouched = SpiExecute(sql.data, 0, NULL, NULL, NULL,
									  SPI_OK_SELECT);
				touched = SPI_tuptable;
				for (row = 0; row < ntouched; row++)
					changes += SpiGetInt64(row, spec->ngroups + 1, NULL);
				break;
			}
	}

	/*
	 * Recomputing touched groups costs what reading their rows costs, so a
	 * large share of the groups is best recomputed in one pass; delta
	 * maintenance has already applied the changes and only writes groups.
	 */
	if (!full && ntouched > 0 && spec->delta == NULL &&
		(int64) ntouched * AGG_FULL_SHARE >= state.groups)
	{
		full = true;
		full_reason = "touched groups are a large share of the groups";
	}

	if (full)
	{
		agg_recompute_full(spec, &state, &run);
		run.full_reason = full_reason;
		result->rows_read += run.source_rows;
	}
	else
	{
		if (ntouched > 0)
			agg_recompute_groups(spec, touched, ntouched, &state, &run);
		if (spec->delta != NULL && changes > 0)
			agg_delta_forget_values(spec);
		result->rows_read += changes;
		state.rows += net_rows;
	}

	/* progress: watermark and state in this transaction */
	if (new_watermark != watermark)
		CatalogSetWatermark(flow->flow_id, new_watermark);
	flow->watermark = new_watermark;
	if (full || run.groups_recomputed > 0 || !state.valid)
	{
		state.valid = true;
		CatalogSetFlowState(flow->flow_id, agg_state_build(&state, spec));
	}

	result->rows_written += run.groups_inserted;
	if (run.changed)
		result->changed = true;
	if (result->details.len > 0)
		appendStringInfoString(&result->details, ", ");
	appendStringInfo(&result->details,
					 "\"groups_recomputed\": " INT64_FORMAT
					 ", \"full_recompute\": %s",
					 run.groups_recomputed, full ? "true" : "false");
	if (full)
	{
		appendStringInfoString(&result->details, ", \"full_recompute_reason\": ");
		escape_json(&result->details, full_reason);
	}
	appendStringInfo(&result->details,
					 ", \"groups_deleted\": " INT64_FORMAT
					 ", \"groups_written\": " INT64_FORMAT
					 ", \"source_rows_aggregated\": " INT64_FORMAT
					 ", \"source_kind\": \"%s\""
					 ", \"maintenance\": \"%s\"",
					 run.groups_deleted, run.groups_inserted, run.source_rows,
					 agg_kind_name(spec->kind),
					 spec->delta != NULL ? "delta" : "recompute");

	/* spec and the rest live in SPI's memory until here */
	SPI_finish();
	UserSqlSettingsLeave(nest_level);
	error_context_stack = errcallback.previous;
}

/*
 * AggregateReset: full refresh empties the state table (the update then
 * finds no previous state and recomputes everything).  Runs in the
 * pipeline owner's context.
 */
void
AggregateReset(FlowDesc *flow)
{
	AggSpec    *spec;
	int			nest_level;
	int			i;

	nest_level = UserSqlSettingsEnter(NULL);
	spec = agg_load_spec(flow, false);
	SPI_connect();
	if (spec->state_table != NULL)
		SpiExecute(psprintf("TRUNCATE %s", spec->state_table), 0, NULL, NULL,
				   NULL, SPI_OK_UTILITY);
	if (spec->groups_table != NULL)
		SpiExecute(psprintf("TRUNCATE %s", spec->groups_table), 0, NULL, NULL,
				   NULL, SPI_OK_UTILITY);
	for (i = 0; i < spec->naggs; i++)
	{
		if (spec->values_tables[i] != NULL)
			SpiExecute(psprintf("TRUNCATE %s", spec->values_tables[i]), 0,
					   NULL, NULL, NULL, SPI_OK_UTILITY);
	}
	SPI_finish();
	UserSqlSettingsLeave(nest_level);
}

/*
 * The capture trigger (aggregate sources)
 */

/*
 * medallion.aggregate_capture(): AFTER ... FOR EACH STATEMENT trigger on
 * the target of an aggregate flow that another aggregate flow reads.  Its
 * argument is the reading flow's id; it records the groups (of the
 * reading flow) of the old and new rows of the statement in the flow's
 * changes table.  Runs as the pipeline owner (whoever the writer is), with
 * the pipeline's search_path.
 */
Datum
medallion_aggregate_capture(PG_FUNCTION_ARGS)
{
	VERSION_CHECK_CATALOG();
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Trigger    *trigger;
	int32		flow_id;
	Oid			types[1] = {INT4OID};
	Datum		values[1];
	FlowDesc   *flow;
	PipelineDesc *pipeline;
	AggSpec    *spec;
	OwnerContext owner;
	int			nest_level;
	int			pass;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("medallion.aggregate_capture() must be called as a trigger")));
	if (!TRIGGER_FIRED_AFTER(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_STATEMENT(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("medallion.aggregate_capture() must be an AFTER ... FOR EACH STATEMENT trigger")));
	trigger = trigdata->tg_trigger;
	if (trigger->tgnargs != 1)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("medallion.aggregate_capture() takes the id of an aggregate flow")));
	flow_id = pg_strtoint32(trigger->tgargs[0]);

	/* the flow may be gone (its pipeline was dropped): nothing to record */
	values[0] = Int32GetDatum(flow_id);
	SPI_connect();
	SpiExecuteAsExtensionOwner("SELECT 1 FROM medallion.flow"
							   " WHERE flow_id OPERATOR(pg_catalog.=) $1"
							   " AND flow_type OPERATOR(pg_catalog.=) 'aggregate'",
							   1, types, values, NULL, SPI_OK_SELECT);
	if (SPI_processed == 0)
	{
		SPI_finish();
		return PointerGetDatum(NULL);
	}
	SPI_finish();

	flow = CatalogGetFlowById(flow_id);
	pipeline = CatalogGetPipelineById(flow->pipeline_id, false);

	/*
	 * The group expressions are the pipeline owner's SQL: they run as the
	 * owner, whoever wrote to the table (a superuser's manual fix must not
	 * run them with its rights).
	 */
	FlowEnterOwnerContext(pipeline, &owner);
	nest_level = UserSqlSettingsEnter(pipeline->search_path);
	spec = agg_load_spec(flow, false);
	if (spec->kind != AGG_SOURCE_AGGREGATE ||
		spec->source_relid != RelationGetRelid(trigdata->tg_relation))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("medallion.aggregate_capture() fired on %s, which flow \"%s\" does not read",
						CatalogQualifiedRelationName(RelationGetRelid(trigdata->tg_relation)),
						flow->flow_name)));

	SPI_connect();
	if (SPI_register_trigger_data(trigdata) != SPI_OK_TD_REGISTER)
		elog(ERROR, "could not register the transition tables");
	for (pass = 0; pass < 2; pass++)
	{
		const char *table = pass == 0 ? AGG_OLD_TABLE : AGG_NEW_TABLE;

		if ((pass == 0 ? trigdata->tg_oldtable : trigdata->tg_newtable) == NULL)
			continue;
		SpiExecute(psprintf("INSERT INTO %s (%s)\n"
							"SELECT DISTINCT %s FROM %s AS %s WHERE %s",
							spec->state_table,
							agg_state_group_columns_sql(spec->ngroups, NULL),
							agg_group_exprs_sql(spec), table,
							spec->source_ref, agg_where_sql(spec)),
				   0, NULL, NULL, NULL, SPI_OK_INSERT);
	}
	SPI_finish();
	UserSqlSettingsLeave(nest_level);
	FlowLeaveOwnerContext(&owner);
	return PointerGetDatum(NULL);
}

/*
 * create_aggregate
 */

/* What the analysis of a new flow's query found. */
typedef struct AggAnalysis
{
	TupleDesc	desc;			/* result columns: groups, then aggregates */
	Query	   *query;			/* the analysed query */
} AggAnalysis;

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
	appendStringInfo(&sql, " GROUP BY %s", agg_positions(ngroups));

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
	StringInfoData json;
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
	if (agg_is_reserved(source_relname))
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

		if (!attr->attisdropped && agg_is_reserved(NameStr(attr->attname)))
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
		if (agg_is_reserved(name))
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
			if (agg_eq_operator_sql(attr->atttypid) == NULL)
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
	else if (agg_owns(source_relid))
	{
		Oid			index_relid;

		index_name = ChooseRelationName(source_relname, relation_name,
										"groups", get_rel_namespace(source_relid),
										false);
		resetStringInfo(&sql);
		appendStringInfo(&sql, "CREATE INDEX %s ON %s (",
						 quote_identifier(index_name), source_name);
		appendStringInfo(&sql, "%s)", agg_group_exprs_sql(&spec));
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
						 agg_state_group_columns_sql(spec.ngroups, NULL));
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
								agg_state_group_columns_sql(spec.ngroups, NULL)),
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
							agg_group_exprs_sql(&spec),
							delta != NULL ? agg_delta_argument_list_sql(&spec) : "",
							change_feed, spec.source_ref,
							agg_where_sql(&spec)),
				   0, NULL, NULL, NULL, SPI_OK_SELECT);
	}
	SPI_finish();

	UserSqlSettingsLeave(nest_level);
	error_context_stack = errcallback.previous;

	/* the definition: the arguments, and what they resolved to */
	initStringInfo(&json);
	appendStringInfoString(&json, "{\"source\": ");
	escape_json(&json, source_name);
	JsonAppendTextList(&json, "group_by", group_items);
	JsonAppendTextList(&json, "aggregates", agg_items);
	JsonAppendText(&json, "filter", filter);
	agg_json_list(&json, "group_expressions", spec.groups, spec.ngroups, false);
	agg_json_list(&json, "group_columns", spec.groups, spec.ngroups, true);
	agg_json_list(&json, "aggregate_expressions", spec.aggs, spec.naggs, false);
	agg_json_list(&json, "aggregate_columns", spec.aggs, spec.naggs, true);
	JsonAppendText(&json, "source_kind", agg_kind_name(kind));
	JsonAppendText(&json, "state_table", state_table);
	JsonAppendText(&json, "source_index", index_name);
	JsonAppendText(&json, "maintenance", delta != NULL ? "delta" : "recompute");
	if (change_feed != NULL)
		JsonAppendText(&json, "change_feed", change_feed);
	if (delta != NULL)
	{
		JsonAppendText(&json, "groups_table", groups_table);
		AggregateDeltaAppendJson(&json, delta);
		appendStringInfoString(&json, ", \"values_tables\": [");
		for (i = 0; i < spec.naggs; i++)
		{
			if (i > 0)
				appendStringInfoString(&json, ", ");
			escape_json(&json, values_names[i] ? values_names[i] : "");
		}
		appendStringInfoChar(&json, ']');
	}
	else
		JsonAppendText(&json, "maintenance_reason", delta_reason);
	appendStringInfoChar(&json, '}');

	/*
	 * CatalogCreateFlow accepts as source_relid only tables with a _row_id;
	 * for the others, source_table is set below, so that the update skips
	 * this flow when its source's flow failed.
	 */
	flow_id = CatalogCreateFlow(pipeline, FLOW_TYPE_AGGREGATE, target_relid,
								kind == AGG_SOURCE_APPEND ? source_relid : InvalidOid,
								source_name,
								DatumGetJsonbP(DirectFunctionCall1(jsonb_in,
																   CStringGetDatum(json.data))));
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

/*
 * Attached materialized views
 */

/*
 * The relations a materialized view reads, found through the dependencies
 * of its rewrite rule, and of the rules of the views it reads, recursively.
 * Materialized views read are leaves: they change only when refreshed.
 */
static List *
matview_inputs(Oid matview_relid)
{
	List	   *queue = list_make1_oid(matview_relid);
	List	   *seen = list_make1_oid(matview_relid);
	List	   *inputs = NIL;
	Oid			types[1] = {OIDOID};
	MemoryContext caller_context = CurrentMemoryContext;

	SPI_connect();
	while (queue != NIL)
	{
		Oid			relid = linitial_oid(queue);
		Datum		values[1] = {ObjectIdGetDatum(relid)};
		uint64		n;
		uint64		row;

		queue = list_delete_first(queue);
		n = SpiExecute("SELECT DISTINCT d.refobjid, c.relkind"
					   "  FROM pg_catalog.pg_rewrite r"
					   "  JOIN pg_catalog.pg_depend d"
					   "    ON d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_rewrite'::pg_catalog.regclass"
					   "   AND d.objid OPERATOR(pg_catalog.=) r.oid"
					   "  JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) d.refobjid"
					   " WHERE r.ev_class OPERATOR(pg_catalog.=) $1"
					   "   AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass"
					   "   AND d.refobjid OPERATOR(pg_catalog.<>) $1",
					   1, types, values, NULL, SPI_OK_SELECT);
		for (row = 0; row < n; row++)
		{
			bool		isnull;
			Oid			input = DatumGetObjectId(SpiGetDatum(row, 1, &isnull));
			char		relkind = DatumGetChar(SpiGetDatum(row, 2, &isnull));

			MemoryContext spi_context;

			if (list_member_oid(seen, input))
				continue;
			/* the lists outlive SPI_finish */
			spi_context = MemoryContextSwitchTo(caller_context);
			seen = lappend_oid(seen, input);
			if (relkind == RELKIND_VIEW)
				queue = lappend_oid(queue, input);
			else if (relkind == RELKIND_RELATION ||
					 relkind == RELKIND_PARTITIONED_TABLE ||
					 relkind == RELKIND_MATVIEW ||
					 relkind == RELKIND_FOREIGN_TABLE)
				inputs = lappend_oid(inputs, input);
			MemoryContextSwitchTo(spi_context);
		}
	}
	SPI_finish();
	return inputs;
}

/*
 * Can the view be refreshed CONCURRENTLY?  That needs a valid unique index
 * on plain columns, without a predicate (as core checks).
 */
static bool
matview_has_usable_unique_index(Relation rel)
{
	List	   *indexes = RelationGetIndexList(rel);
	ListCell   *cell;
	bool		found = false;

	foreach(cell, indexes)
	{
		Relation	index = index_open(lfirst_oid(cell), AccessShareLock);
		Form_pg_index form = index->rd_index;
		int			i;
		bool		plain = true;

		for (i = 0; i < form->indnkeyatts; i++)
		{
			if (form->indkey.values[i] <= 0)
				plain = false;
		}
		if (form->indisunique && form->indimmediate &&
			form->indisvalid && plain &&
			RelationGetIndexPredicate(index) == NIL)
			found = true;
		index_close(index, AccessShareLock);
		if (found)
			break;
	}
	list_free(indexes);
	return found;
}

/*
 * Run a REFRESH MATERIALIZED VIEW statement.  REFRESH runs the view's
 * query as a restricted operation itself, but CONCURRENTLY first creates a
 * temporary table, which cannot be done in a restricted operation: so the
 * command runs as the pipeline owner without our restriction, exactly as
 * when the owner types it.
 */
static void
matview_run_refresh(const char *sql)
{
	Oid			saved_user;
	int			saved_context;

	GetUserIdAndSecContext(&saved_user, &saved_context);
	SetUserIdAndSecContext(saved_user,
						   saved_context & ~SECURITY_RESTRICTED_OPERATION);
	PG_TRY();
	{
		SPI_connect();
		SpiExecute(sql, 0, NULL, NULL, NULL, SPI_OK_UTILITY);
		SPI_finish();
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(saved_user, saved_context);
	}
	PG_END_TRY();
}

/*
 * MatviewRefresh: see aggregates.h.  The view is refreshed when a table it
 * reads changed earlier in this update; also on a full refresh, when it has
 * never been populated, and after an update of the pipeline that failed
 * (this refresh may be what failed, and the change it missed is not in
 * this update's changed tables).
 */
void
MatviewRefresh(FlowContext *context, FlowDesc *flow, FlowResult *result)
{
	List	   *inputs;
	ListCell   *cell;
	const char *reason = NULL;
	Relation	rel;
	bool		populated;
	bool		concurrently = false;

	rel = relation_open(flow->target_relid, AccessShareLock);
	if (rel->rd_rel->relkind != RELKIND_MATVIEW)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a materialized view",
						RelationGetRelationName(rel))));
	populated = RelationIsPopulated(rel);

	inputs = matview_inputs(flow->target_relid);
	foreach(cell, inputs)
	{
		if (list_member_oid(context->changed_relids, lfirst_oid(cell)))
		{
			reason = "input changed";
			break;
		}
	}
	if (reason == NULL && context->full_refresh)
		reason = "full refresh";
	if (reason == NULL && !populated)
		reason = "not populated";
	if (reason == NULL && context->pipeline->consecutive_failures > 0)
		reason = "previous update failed";

	if (reason != NULL)
		concurrently = populated && matview_has_usable_unique_index(rel);
	/* REFRESH refuses a view this session holds open; keep the lock */
	relation_close(rel, NoLock);
	if (reason != NULL)
	{
		matview_run_refresh(psprintf("REFRESH MATERIALIZED VIEW %s%s",
									 concurrently ? "CONCURRENTLY " : "",
									 CatalogQualifiedRelationName(flow->target_relid)));
		result->changed = true;
	}

	if (result->details.len > 0)
		appendStringInfoString(&result->details, ", ");
	appendStringInfo(&result->details, "\"refreshed\": %s",
					 reason != NULL ? "true" : "false");
	if (reason != NULL)
	{
		appendStringInfo(&result->details, ", \"concurrently\": %s, \"reason\": ",
						 concurrently ? "true" : "false");
		escape_json(&result->details, reason);
	}
}

/*
 * medallion.add_materialized_view(pipeline_name text, matview regclass)
 *
 * Registers the caller's materialized view as a flow of type "matview".
 * Flows run in creation order, so the view must be added after the flows
 * whose tables it reads: it must read at least one of them now.
 */
Datum
medallion_add_materialized_view(PG_FUNCTION_ARGS)
{
	VERSION_CHECK_CATALOG();
	char	   *pipeline_name = SqlTextArgument(fcinfo, 0, "pipeline_name");
	Oid			matview_relid;
	PipelineDesc *pipeline;
	List	   *inputs;
	List	   *flows;
	List	   *pipeline_inputs = NIL;
	ListCell   *cell;
	FlowDesc   *existing;
	StringInfoData json;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("matview must not be null")));
	matview_relid = PG_GETARG_OID(1);

	pipeline = CatalogGetPipeline(pipeline_name, false);
	CatalogCheckPipelineOwner(pipeline);

	if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(matview_relid)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", matview_relid)));
	if (get_rel_relkind(matview_relid) != RELKIND_MATVIEW)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a materialized view",
						CatalogQualifiedRelationName(matview_relid)),
				 errhint("Attach a materialized view; aggregate tables are made with medallion.create_aggregate().")));
	if (!agg_owns(matview_relid))
		aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_MATVIEW,
					   get_rel_name(matview_relid));
	{
		HeapTuple	tuple = SearchSysCache1(RELOID,
											ObjectIdGetDatum(matview_relid));
		Oid			relowner;

		if (!HeapTupleIsValid(tuple))
			elog(ERROR, "cache lookup failed for relation %u", matview_relid);
		relowner = ((Form_pg_class) GETSTRUCT(tuple))->relowner;
		ReleaseSysCache(tuple);
		if (!has_privs_of_role(pipeline->owner, relowner))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("the owner of pipeline \"%s\" cannot refresh materialized view %s",
							pipeline->pipeline_name,
							CatalogQualifiedRelationName(matview_relid)),
					 errdetail("Updates run as the pipeline's owner, and only the owner of a materialized view can refresh it."),
					 errhint("Make the pipeline's owner the owner of the materialized view.")));
	}

	existing = CatalogGetFlowByTarget(matview_relid, true);
	if (existing != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("materialized view %s is already attached to a pipeline",
						CatalogQualifiedRelationName(matview_relid))));

	inputs = matview_inputs(matview_relid);
	flows = CatalogGetFlows(pipeline->pipeline_id);
	foreach(cell, inputs)
	{
		ListCell   *fcell;

		foreach(fcell, flows)
		{
			if (((FlowDesc *) lfirst(fcell))->target_relid == lfirst_oid(cell))
			{
				pipeline_inputs = lappend(pipeline_inputs,
										  CatalogQualifiedRelationName(lfirst_oid(cell)));
				break;
			}
		}
	}
	if (pipeline_inputs == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("materialized view %s reads no table of pipeline \"%s\"",
						CatalogQualifiedRelationName(matview_relid),
						pipeline->pipeline_name),
				 errdetail("It is refreshed when a pipeline table it reads changes; flows run in the order they were created."),
				 errhint("Create the flows it reads first, then attach it.")));

	initStringInfo(&json);
	appendStringInfoString(&json, "{\"inputs\": [");
	foreach(cell, pipeline_inputs)
	{
		if (foreach_current_index(cell) > 0)
			appendStringInfoString(&json, ", ");
		escape_json(&json, (char *) lfirst(cell));
	}
	appendStringInfoString(&json, "]}");

	(void) CatalogCreateFlow(pipeline, FLOW_TYPE_MATVIEW, matview_relid,
							 InvalidOid, NULL,
							 DatumGetJsonbP(DirectFunctionCall1(jsonb_in,
																CStringGetDatum(json.data))));
	PG_RETURN_VOID();
}
