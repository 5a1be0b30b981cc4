/*-------------------------------------------------------------------------
 *
 * aggregate_delta.c
 *	  Aggregates an aggregate flow can maintain by deltas.
 *
 * Recomputing a touched group reads all of the group's source rows, so an
 * update costs in proportion to the size of the groups it touches.  When
 * every aggregates item is one of
 *
 *	 count(*), count(x), count(DISTINCT x), and sum(x) and avg(x) of
 *	 smallint, integer, bigint or numeric x, and min(x) and max(x),
 *
 * the flow instead keeps, per group, a row of state in <target>__groups
 * (the number of rows, and per item the running sum and the number of
 * non-NULL values) and adds to it what changed rows remove and bring (the
 * new rows of an append-only source, the change feed of an auto CDC target:
 * see change_feed.c): an update then costs in proportion to the rows that
 * changed.  The items are
 * computed from the state exactly as the aggregates compute them:
 *
 * - sum is NULL when no value is non-NULL; sum of int2/int4 is bigint, of
 *   int8 and numeric is numeric.  Differences of exact sums are exact, so
 *   the state never drifts (float sums would, and are recomputed instead).
 * - avg is the sum divided by the count as numeric_div divides them, which
 *   is how int8_avg, numeric_poly_avg and numeric_avg finish.
 * - NaN and infinities in numeric input are counted apart, as numeric_sum
 *   and numeric_avg count them (any NaN, or both infinities, give NaN), so
 *   that removing them gives back the finite sum.
 * - count(DISTINCT x) keeps, in a table per item, each group's values with
 *   the number of rows holding them (refs; NULLs are not values): a value
 *   counts while refs > 0.  The upsert of a value's change also records the
 *   change (last_delta), so that its RETURNING tells a value that appeared
 *   (refs - change <= 0 < refs) from one that went; values left with no
 *   row are deleted at the end of the update.  The unique index on (group,
 *   value) uses the type's default btree equality, as DISTINCT does.
 * - count(DISTINCT k) of the key k of an auto CDC source, when each key has
 *   at most one row (an SCD type 1 target, or the current versions of an
 *   SCD type 2 target: a filter with "__end_at IS NULL"), is the number of
 *   the group's rows with a non-NULL key: no values table is needed.
 *
 * A numeric sum keeps the largest display scale it has seen: after a row of
 * 1.50 is removed from 1.50 + 2, the state says 2.00 where a recompute says
 * 2 (equal values).  This is the one difference from a recompute.
 *
 * - min and max, over an append-only source, are the least (greatest) of
 *   the state and of the new rows.  Where rows also go, the group's values
 *   are kept as for count(DISTINCT x), and min (max) is the least
 *   (greatest) value some row still holds, read from the values table by
 *   its index when the group is rewritten; the state only counts the
 *   values that appeared or went, so that the group is rewritten then.
 *
 * Anything else (percentiles, FILTER, ORDER BY inside an aggregate,
 * DISTINCT other than in count, an expression around an aggregate, float
 * sums) is kept by recomputing touched groups (see aggregates.c).
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/aggregate_delta.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_aggregate.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "nodes/nodeFuncs.h"
#include "nodes/primnodes.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/ruleutils.h"
#include "utils/typcache.h"

#include "aggregate_delta.h"
#include "spi_util.h"
#include "sql_names.h"
#include "user_sql.h"

#define NUMERIC_SQL		"pg_catalog.\"numeric\""
#define INT8_SQL		"pg_catalog.int8"

static const char *const kind_names[] = {
	[AGG_DELTA_COUNT_STAR] = "count_star",
	[AGG_DELTA_COUNT] = "count",
	[AGG_DELTA_SUM_INT] = "sum_int",
	[AGG_DELTA_SUM_INT8] = "sum_int8",
	[AGG_DELTA_SUM_NUMERIC] = "sum_numeric",
	[AGG_DELTA_AVG_INT] = "avg_int",
	[AGG_DELTA_AVG_INT8] = "avg_int8",
	[AGG_DELTA_AVG_NUMERIC] = "avg_numeric",
	[AGG_DELTA_COUNT_DISTINCT] = "count_distinct",
	[AGG_DELTA_MIN] = "min",
	[AGG_DELTA_MAX] = "max",
	[AGG_DELTA_MIN_VALUES] = "min_values",
	[AGG_DELTA_MAX_VALUES] = "max_values",
};

bool
AggregateDeltaNeedsValues(AggregateDelta *delta, int item)
{
	AggregateDeltaKind kind = delta->items[item].kind;

	return kind == AGG_DELTA_COUNT_DISTINCT || kind == AGG_DELTA_MIN_VALUES ||
		kind == AGG_DELTA_MAX_VALUES;
}

/* What a kind keeps beyond the group's row count. */
static bool
kind_has_sum(AggregateDeltaKind kind)
{
	return kind >= AGG_DELTA_SUM_INT && kind <= AGG_DELTA_AVG_NUMERIC;
}

static bool
kind_is_numeric(AggregateDeltaKind kind)
{
	return kind == AGG_DELTA_SUM_NUMERIC || kind == AGG_DELTA_AVG_NUMERIC;
}

/* SQL type of a kind's running sum. */
static const char *
kind_sum_type(AggregateDeltaKind kind)
{
	return (kind == AGG_DELTA_SUM_INT || kind == AGG_DELTA_AVG_INT) ?
		INT8_SQL : NUMERIC_SQL;
}

/*
 * The argument index of an expression text, added when new.  The text is
 * checked and placed like user text, whether it was deparsed from the
 * user's item or read from the catalog.
 */
static int
delta_argument(AggregateDelta *delta, const char *text)
{
	int			i;

	for (i = 0; i < delta->narguments; i++)
	{
		if (strcmp(delta->arguments[i], text) == 0)
			return i;
	}
	delta->arguments[delta->narguments] = pstrdup(text);
	delta->argument_sql[delta->narguments] =
		UserSqlExpression(text, "argument of an aggregates item");
	return delta->narguments++;
}

/* What the analysis knows of the source, for every item. */
typedef struct DeltaSource
{
	AttrNumber	key_attnum;		/* single-column auto CDC key, or 0 */
	bool		key_rows_unique;	/* at most one row per key */
	bool		rows_only_added;	/* rows are only ever inserted */
} DeltaSource;

/* An item that keeps a value of its argument's type (distinct, min, max). */
static void
delta_item_set_value_type(AggregateDeltaItem *item, Node *argument)
{
	item->value_type = exprType(argument);
	item->value_typmod = exprTypmod(argument);
	item->value_collation = exprCollation(argument);
}

/*
 * count(DISTINCT x).  Where each key has at most one row, count(DISTINCT
 * key) counts the group's rows with a key; else the values are counted
 * apart, in a table with a unique index on them: the type's default btree
 * equality is the one DISTINCT uses.  NULL when x's type has none.
 */
static char *
delta_count_distinct(AggregateDeltaItem *item, Node *argument,
					 const DeltaSource *source, int itemno)
{
	TypeCacheEntry *typentry;

	item->kind = AGG_DELTA_COUNT;
	if (source->key_rows_unique && source->key_attnum != InvalidAttrNumber &&
		IsA(argument, Var) &&
		((Var *) argument)->varattno == source->key_attnum &&
		((Var *) argument)->varlevelsup == 0)
		return NULL;

	typentry = lookup_type_cache(exprType(argument), TYPECACHE_BTREE_OPFAMILY);
	if (!OidIsValid(typentry->btree_opf))
		return psprintf("aggregates item %d counts distinct values of a type without a default btree operator class",
						itemno);
	item->kind = AGG_DELTA_COUNT_DISTINCT;
	delta_item_set_value_type(item, argument);
	return NULL;
}

/*
 * The built-in min and max.  While rows only come, the new extreme is the
 * least (greatest) of the old one and the new rows', as LEAST (GREATEST)
 * compares them with the type's default btree order, like min (max); else
 * rows also go, and the values table (as for count(DISTINCT x)) holds the
 * group's values.  False for any other aggregate.
 */
static bool
delta_extreme(AggregateDeltaItem *item, Aggref *aggref, Node *argument,
			  const DeltaSource *source)
{
	char	   *name = get_func_name(aggref->aggfnoid);
	bool		is_min;

	if (argument == NULL ||
		get_func_namespace(aggref->aggfnoid) != PG_CATALOG_NAMESPACE ||
		(strcmp(name, "min") != 0 && strcmp(name, "max") != 0))
		return false;
	is_min = strcmp(name, "min") == 0;
	if (source->rows_only_added)
		item->kind = is_min ? AGG_DELTA_MIN : AGG_DELTA_MAX;
	else
		item->kind = is_min ? AGG_DELTA_MIN_VALUES : AGG_DELTA_MAX_VALUES;
	delta_item_set_value_type(item, argument);
	return true;
}

/*
 * How one aggregates item (itemno from 1) is kept, in *item; or why it
 * cannot be kept by deltas.  The argument of a one-argument aggregate is
 * returned in *argument.
 */
static char *
delta_item(AggregateDeltaItem *item, Expr *expr, const DeltaSource *source,
		   int itemno, Node **argument)
{
	Aggref	   *aggref;

	*argument = NULL;
	if (!IsA(expr, Aggref))
		return psprintf("aggregates item %d is not one call of count, sum or avg",
						itemno);
	aggref = (Aggref *) expr;
	if (aggref->aggfilter != NULL || aggref->aggorder != NIL ||
		aggref->aggkind != AGGKIND_NORMAL || aggref->agglevelsup != 0 ||
		aggref->aggdirectargs != NIL)
		return psprintf("aggregates item %d is not one call of count, sum or avg",
						itemno);
	if (list_length(aggref->args) == 1)
		*argument = (Node *) linitial_node(TargetEntry, aggref->args)->expr;

	switch (aggref->aggfnoid)
	{
		case F_COUNT_:
			item->kind = AGG_DELTA_COUNT_STAR;
			break;
		case F_COUNT_ANY:
			item->kind = AGG_DELTA_COUNT;
			if (aggref->aggdistinct != NIL)
				return delta_count_distinct(item, *argument, source, itemno);
			break;
		case F_SUM_INT2:
		case F_SUM_INT4:
			item->kind = AGG_DELTA_SUM_INT;
			break;
		case F_SUM_INT8:
			item->kind = AGG_DELTA_SUM_INT8;
			break;
		case F_SUM_NUMERIC:
			item->kind = AGG_DELTA_SUM_NUMERIC;
			break;
		case F_AVG_INT2:
		case F_AVG_INT4:
			item->kind = AGG_DELTA_AVG_INT;
			break;
		case F_AVG_INT8:
			item->kind = AGG_DELTA_AVG_INT8;
			break;
		case F_AVG_NUMERIC:
			item->kind = AGG_DELTA_AVG_NUMERIC;
			break;
		default:
			if (!delta_extreme(item, aggref, *argument, source))
				return psprintf("aggregates item %d uses %s, which cannot be maintained by deltas",
								itemno, format_procedure(aggref->aggfnoid));
			break;
	}
	/* DISTINCT anywhere but in count */
	if (aggref->aggdistinct != NIL)
		return psprintf("aggregates item %d uses DISTINCT", itemno);
	return NULL;
}

/*
 * AggregateDeltaAnalyze: see aggregate_delta.h.  The argument expressions
 * are deparsed from the analysed query, so they say what the user's items
 * resolved to; they are evaluated later with the same search_path.
 */
AggregateDelta *
AggregateDeltaAnalyze(Query *query, int ngroups, Oid source_relid,
					  AttrNumber key_attnum, bool key_rows_unique,
					  bool rows_only_added, char **reason)
{
	AggregateDelta *delta = palloc0(sizeof(AggregateDelta));
	DeltaSource source = {key_attnum, key_rows_unique, rows_only_added};
	List	   *context;
	ListCell   *cell;
	int			index = 0;
	int			nitems = list_length(query->targetList) - ngroups;

	context = deparse_context_for(get_rel_name(source_relid), source_relid);
	delta->items = palloc0(sizeof(AggregateDeltaItem) * Max(nitems, 1));
	delta->arguments = palloc0(sizeof(char *) * Max(nitems, 1));
	delta->argument_sql = palloc0(sizeof(char *) * Max(nitems, 1));

	foreach(cell, query->targetList)
	{
		TargetEntry *tle = lfirst_node(TargetEntry, cell);
		AggregateDeltaItem *item = &delta->items[delta->nitems];
		Node	   *argument;

		if (tle->resjunk || index++ < ngroups)
			continue;
		*reason = delta_item(item, tle->expr, &source, delta->nitems + 1,
							 &argument);
		if (*reason != NULL)
			return NULL;
		if (item->kind == AGG_DELTA_COUNT_STAR)
			item->argument = -1;
		else
		{
			Assert(argument != NULL);
			item->argument = delta_argument(delta,
											deparse_expression(argument, context,
															   false, false));
		}
		delta->nitems++;
	}
	*reason = NULL;
	return delta;
}

/*
 * AggregateDeltaPutDefinition: see aggregate_delta.h.  An item without an
 * argument (count(*)) stores the empty string.
 */
void
AggregateDeltaPutDefinition(FlowDefinitionBuilder *builder,
							AggregateDelta *delta)
{
	List	   *kinds = NIL;
	List	   *arguments = NIL;
	int			i;

	for (i = 0; i < delta->nitems; i++)
	{
		kinds = lappend(kinds, (char *) kind_names[delta->items[i].kind]);
		arguments = lappend(arguments, delta->items[i].argument < 0 ? "" :
							delta->arguments[delta->items[i].argument]);
	}
	FlowDefinitionPutStringList(builder, "delta_kinds", kinds);
	FlowDefinitionPutStringList(builder, "delta_arguments", arguments);
}

/* The kind a stored kind name stands for, or -1. */
static int
kind_from_name(const char *name)
{
	int			k;

	for (k = 0; k < lengthof(kind_names); k++)
	{
		if (strcmp(kind_names[k], name) == 0)
			return k;
	}
	return -1;
}

/*
 * AggregateDeltaFromDefinition: see aggregate_delta.h.  count(*) alone has
 * no argument.
 */
AggregateDelta *
AggregateDeltaFromDefinition(const FlowDesc *flow)
{
	List	   *kinds = FlowDefinitionStringList(flow, "delta_kinds", true);
	List	   *arguments = FlowDefinitionStringList(flow, "delta_arguments",
													 true);
	AggregateDelta *delta = palloc0(sizeof(AggregateDelta));
	ListCell   *cell;
	int			n = list_length(kinds);

	if (n == 0)
		FlowDefinitionCorrupted(flow->flow_name, "delta_kinds");
	if (list_length(arguments) != n)
		FlowDefinitionCorrupted(flow->flow_name, "delta_arguments");
	delta->items = palloc0(sizeof(AggregateDeltaItem) * n);
	delta->arguments = palloc0(sizeof(char *) * n);
	delta->argument_sql = palloc0(sizeof(char *) * n);
	foreach(cell, kinds)
	{
		int			i = foreach_current_index(cell);
		AggregateDeltaItem *item = &delta->items[i];
		const char *text = list_nth(arguments, i);
		int			k = kind_from_name(lfirst(cell));

		if (k < 0)
			FlowDefinitionCorrupted(flow->flow_name, "delta_kinds");
		if ((k == AGG_DELTA_COUNT_STAR) != (text[0] == '\0'))
			FlowDefinitionCorrupted(flow->flow_name, "delta_arguments");
		item->kind = (AggregateDeltaKind) k;
		item->argument = text[0] == '\0' ? -1 :
			delta_argument(delta, text);
		delta->nitems++;
	}
	return delta;
}

/*
 * The state columns, in one order that every function below follows:
 * row_count, then per item its sum, count of non-NULL values (or of
 * distinct values), and the NaN and infinity counts of numeric input; or
 * its least or greatest value so far (type NULL: the argument's type).
 */
typedef void (*StateColumnCallback) (StringInfo buf, int item,
									 const char *column, const char *type,
									 void *arg);

/* Call callback for each state column, in that order. */
static void
for_each_state_column(AggregateDelta *delta, StringInfo buf,
					  StateColumnCallback callback, void *arg)
{
	int			i;

	callback(buf, -1, "row_count", INT8_SQL, arg);
	for (i = 0; i < delta->nitems; i++)
	{
		AggregateDeltaKind kind = delta->items[i].kind;

		if (kind == AGG_DELTA_COUNT_STAR)
			continue;
		if (kind == AGG_DELTA_MIN || kind == AGG_DELTA_MAX)
		{
			/* of the argument's type (NULL), nullable: no value yet */
			callback(buf, i, kind == AGG_DELTA_MIN ? "min" : "max", NULL, arg);
			continue;
		}
		if (kind == AGG_DELTA_MIN_VALUES || kind == AGG_DELTA_MAX_VALUES)
		{
			/* how many values appeared or went: the group is rewritten */
			callback(buf, i, "changes", INT8_SQL, arg);
			continue;
		}
		if (kind_has_sum(kind))
			callback(buf, i, "sum", kind_sum_type(kind), arg);
		callback(buf, i, "count", INT8_SQL, arg);
		if (kind_is_numeric(kind))
		{
			callback(buf, i, "nan", INT8_SQL, arg);
			callback(buf, i, "pinf", INT8_SQL, arg);
			callback(buf, i, "ninf", INT8_SQL, arg);
		}
	}
}

/* "row_count", or "item_<n>_<column>" for an item's column. */
static char *
state_column_name(int item, const char *column)
{
	return item < 0 ? pstrdup(column) : psprintf("item_%d_%s", item + 1, column);
}

/*
 * A column definition: bigint or numeric counters and sums, NOT NULL (a
 * group starts at 0); min and max of the argument's type, NULL until a
 * value comes.
 */
static void
column_def_callback(StringInfo buf, int item, const char *column,
					const char *type, void *arg)
{
	AggregateDelta *delta = arg;

	if (type == NULL)
	{
		AggregateDeltaItem *it = &delta->items[item];

		appendStringInfoString(buf, ",\n  ");
		SqlAppendColumnDefinition(buf, state_column_name(item, column),
								  it->value_type, it->value_typmod,
								  it->value_collation);
		return;
	}
	appendStringInfo(buf, ",\n  %s %s NOT NULL", state_column_name(item, column),
					 type);
}

void
AggregateDeltaAppendStateColumnDefs(StringInfo sql, AggregateDelta *delta)
{
	for_each_state_column(delta, sql, column_def_callback, delta);
}

/* The column's name, optionally qualified. */
static void
column_list_callback(StringInfo buf, int item, const char *column,
					 const char *type, void *arg)
{
	const char *qualifier = arg;

	appendStringInfo(buf, "%s%s%s%s", buf->len > 0 ? ", " : "",
					 qualifier ? qualifier : "", qualifier ? "." : "",
					 state_column_name(item, column));
}

char *
AggregateDeltaStateColumns(AggregateDelta *delta, const char *qualifier)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for_each_state_column(delta, &buf, column_list_callback,
						  (void *) qualifier);
	return buf.data;
}

/* Is a numeric argument (SQL) finite?  NaN equals NaN as numeric. */
static char *
finite_sql(const char *argument)
{
	return psprintf("((%s) OPERATOR(pg_catalog.<>) ALL ('{NaN,Infinity,-Infinity}'::" NUMERIC_SQL "[]))",
					argument);
}

/* Is a numeric argument (SQL) the special value a column counts? */
static char *
special_sql(const char *argument, const char *column)
{
	const char *value = strcmp(column, "nan") == 0 ? "NaN" :
		strcmp(column, "pinf") == 0 ? "Infinity" : "-Infinity";

	return psprintf("((%s) OPERATOR(pg_catalog.=) '%s'::" NUMERIC_SQL ")",
					argument, value);
}

/* Sums over change rows, or over the source. */
typedef struct SumsContext
{
	AggregateDelta *delta;
	bool		changes;		/* over change rows, or over the source */
} SumsContext;

/*
 * An item's argument: a column of the change rows or of the source's rows,
 * computed once per row (a numeric item reads it up to five times).
 */
static const char *
sums_argument(SumsContext *context, int item)
{
	AggregateDeltaItem *it = &context->delta->items[item];

	return psprintf("c.argument_%d", it->argument + 1);
}

/*
 * One state column's delta over change rows (each carries its sign), or
 * its value over the source rows of a group.
 */
static void
sums_callback(StringInfo buf, int item, const char *column, const char *type,
			  void *arg)
{
	SumsContext *context = arg;
	const char *argument = item >= 0 ? sums_argument(context, item) : NULL;
	AggregateDeltaKind kind = item >= 0 ? context->delta->items[item].kind :
		AGG_DELTA_COUNT_STAR;
	const char *count_of = context->changes ?
		"pg_catalog.sum(c.__medallion_sign)" : "pg_catalog.count(*)";
	char	   *value;

	if (type == NULL)
	{
		/* min or max: no value is NULL, and the type stays */
		appendStringInfo(buf, "%spg_catalog.%s(%s) AS %s",
						 buf->len > 0 ? ", " : "", column, argument,
						 state_column_name(item, column));
		return;
	}
	if (item < 0)
		value = psprintf("%s", count_of);
	else if (strcmp(column, "changes") == 0)
		value = "0";			/* the values table says what changed */
	else if (strcmp(column, "sum") == 0)
	{
		const char *term = context->changes ?
			psprintf("((c.__medallion_sign)::%s OPERATOR(pg_catalog.*) (%s)::%s)",
					 type, argument, type) :
			psprintf("(%s)::%s", argument, type);

		value = psprintf("pg_catalog.sum(%s)%s", term,
						 kind_is_numeric(kind) ?
						 psprintf(" FILTER (WHERE %s)", finite_sql(argument)) : "");
	}
	else if (strcmp(column, "count") == 0 &&
			 kind == AGG_DELTA_COUNT_DISTINCT)
	{
		/* over changes, the values' table says what changed */
		if (context->changes)
			value = "0";
		else
			value = psprintf("pg_catalog.count(DISTINCT %s)", argument);
	}
	else if (strcmp(column, "count") == 0)
		value = psprintf("%s FILTER (WHERE (%s) IS NOT NULL)", count_of,
						 argument);
	else
		value = psprintf("%s FILTER (WHERE %s)", count_of,
						 special_sql(argument, column));

	/* sums of bigint are numeric; a sum over no rows is NULL */
	appendStringInfo(buf, "%sCOALESCE(%s, 0)::%s AS %s",
					 buf->len > 0 ? ", " : "", value, type,
					 state_column_name(item, column));
}

char *
AggregateDeltaChangeSums(AggregateDelta *delta)
{
	StringInfoData buf;
	SumsContext context = {delta, true};

	initStringInfo(&buf);
	for_each_state_column(delta, &buf, sums_callback, &context);
	return buf.data;
}

char *
AggregateDeltaSourceSums(AggregateDelta *delta)
{
	StringInfoData buf;
	SumsContext context = {delta, false};

	initStringInfo(&buf);
	for_each_state_column(delta, &buf, sums_callback, &context);
	return buf.data;
}

/*
 * AggregateDeltaAppendDistinctColumnDefs: the value and reference count
 * columns of an item's values table, after its group columns.
 */
void
AggregateDeltaAppendDistinctColumnDefs(StringInfo sql, AggregateDelta *delta,
									   int item)
{
	AggregateDeltaItem *it = &delta->items[item];

	appendStringInfoString(sql, ",\n  ");
	SqlAppendColumnDefinition(sql, "value", it->value_type, it->value_typmod,
							  it->value_collation);
	appendStringInfoString(sql, " NOT NULL,\n  refs " INT8_SQL " NOT NULL,\n"
						   "  last_delta " INT8_SQL " NOT NULL");
}

/*
 * AggregateDeltaDistinctChange: refs is the value's count after the
 * change, last_delta the change: a value with no row before (refs - delta
 * <= 0) and some now appeared.
 */
char *
AggregateDeltaDistinctChange(const char *alias)
{
	return psprintf("(CASE WHEN %s.refs OPERATOR(pg_catalog.>) 0"
					" AND (%s.refs OPERATOR(pg_catalog.-) %s.last_delta) OPERATOR(pg_catalog.<=) 0 THEN 1"
					" WHEN %s.refs OPERATOR(pg_catalog.<=) 0"
					" AND (%s.refs OPERATOR(pg_catalog.-) %s.last_delta) OPERATOR(pg_catalog.>) 0 THEN -1"
					" ELSE 0 END)",
					alias, alias, alias, alias, alias, alias);
}

/* A delta row carrying only one item's change of distinct values. */
typedef struct DistinctSumsContext
{
	int			item;
	const char *change;
} DistinctSumsContext;

/*
 * Zero (NULL for min and max) for every column but the item's count of
 * distinct values (the change) and, for min and max from values, its
 * count of changes.
 */
static void
distinct_sums_callback(StringInfo buf, int item, const char *column,
					   const char *type, void *arg)
{
	DistinctSumsContext *context = arg;

	if (type == NULL)
		appendStringInfo(buf, "%sNULL AS %s", buf->len > 0 ? ", " : "",
						 state_column_name(item, column));
	else
		appendStringInfo(buf, "%s%s::%s AS %s", buf->len > 0 ? ", " : "",
						 item != context->item ? "0" :
						 strcmp(column, "count") == 0 ? context->change :
						 strcmp(column, "changes") == 0 ?
						 psprintf("pg_catalog.abs(%s)", context->change) : "0",
						 type, state_column_name(item, column));
}

char *
AggregateDeltaDistinctSums(AggregateDelta *delta, int item, const char *change)
{
	StringInfoData buf;
	DistinctSumsContext context = {item, change};

	initStringInfo(&buf);
	for_each_state_column(delta, &buf, distinct_sums_callback, &context);
	return buf.data;
}

/* Sum delta rows of a group; min and max combine with min and max. */
static void
resum_callback(StringInfo buf, int item, const char *column, const char *type,
			   void *arg)
{
	char	   *name = state_column_name(item, column);

	if (type == NULL)
		appendStringInfo(buf, "%spg_catalog.%s(%s.%s) AS %s",
						 buf->len > 0 ? ", " : "", column, (const char *) arg,
						 name, name);
	else
		appendStringInfo(buf, "%spg_catalog.sum(%s.%s)::%s AS %s",
						 buf->len > 0 ? ", " : "", (const char *) arg, name,
						 type, name);
}

char *
AggregateDeltaResum(AggregateDelta *delta, const char *alias)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for_each_state_column(delta, &buf, resum_callback, (void *) alias);
	return buf.data;
}

/* Add a delta to the state: LEAST or GREATEST for min and max. */
static void
upsert_set_callback(StringInfo buf, int item, const char *column,
					const char *type, void *arg)
{
	const char *alias = arg;
	char	   *name = state_column_name(item, column);

	if (type == NULL)
		appendStringInfo(buf, "%s%s = %s(%s.%s, excluded.%s)",
						 buf->len > 0 ? ", " : "", name,
						 strcmp(column, "min") == 0 ? "LEAST" : "GREATEST",
						 alias, name, name);
	else
		appendStringInfo(buf, "%s%s = (%s.%s OPERATOR(pg_catalog.+) excluded.%s)",
						 buf->len > 0 ? ", " : "", name, alias, name, name);
}

char *
AggregateDeltaUpsertSet(AggregateDelta *delta, const char *alias)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for_each_state_column(delta, &buf, upsert_set_callback, (void *) alias);
	return buf.data;
}

/* Does the delta change this column? */
static void
changes_state_callback(StringInfo buf, int item, const char *column,
					   const char *type, void *arg)
{
	const char *alias = arg;

	if (type == NULL)
		appendStringInfo(buf, "%s%s.%s IS NOT NULL",
						 buf->len > 0 ? " OR " : "", alias,
						 state_column_name(item, column));
	else
		appendStringInfo(buf, "%s%s.%s OPERATOR(pg_catalog.<>) 0",
						 buf->len > 0 ? " OR " : "", alias,
						 state_column_name(item, column));
}

char *
AggregateDeltaChangesState(AggregateDelta *delta, const char *alias)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for_each_state_column(delta, &buf, changes_state_callback, (void *) alias);
	return psprintf("(%s)", buf.data);
}

/*
 * AggregateDeltaFinalValue: the item's value from the state, as the
 * aggregate's final function computes it from its own transition state.
 */
char *
AggregateDeltaFinalValue(AggregateDelta *delta, int item, const char *alias)
{
	AggregateDeltaKind kind = delta->items[item].kind;
	char	   *sum = psprintf("%s.item_%d_sum", alias, item + 1);
	char	   *count = psprintf("%s.item_%d_count", alias, item + 1);
	char	   *value;
	char	   *special;

	switch (kind)
	{
		case AGG_DELTA_COUNT_STAR:
			return psprintf("%s.row_count", alias);
		case AGG_DELTA_COUNT:
		case AGG_DELTA_COUNT_DISTINCT:
			return count;
		case AGG_DELTA_MIN:
			return psprintf("%s.item_%d_min", alias, item + 1);
		case AGG_DELTA_MAX:
			return psprintf("%s.item_%d_max", alias, item + 1);
		case AGG_DELTA_MIN_VALUES:
		case AGG_DELTA_MAX_VALUES:
			return NULL;
		case AGG_DELTA_SUM_INT:
		case AGG_DELTA_SUM_INT8:
		case AGG_DELTA_SUM_NUMERIC:
			value = sum;
			break;
		case AGG_DELTA_AVG_INT:
		case AGG_DELTA_AVG_INT8:
		case AGG_DELTA_AVG_NUMERIC:
			value = psprintf("((%s)::" NUMERIC_SQL " OPERATOR(pg_catalog./) (%s)::" NUMERIC_SQL ")",
							 sum, count);
			break;
		default:
			elog(ERROR, "unrecognized delta kind %d", (int) kind);
	}

	special = "";
	if (kind_is_numeric(kind))
		special = psprintf(" WHEN %s.item_%d_nan OPERATOR(pg_catalog.>) 0"
						   " OR (%s.item_%d_pinf OPERATOR(pg_catalog.>) 0 AND %s.item_%d_ninf OPERATOR(pg_catalog.>) 0)"
						   " THEN 'NaN'::" NUMERIC_SQL
						   " WHEN %s.item_%d_pinf OPERATOR(pg_catalog.>) 0 THEN 'Infinity'::" NUMERIC_SQL
						   " WHEN %s.item_%d_ninf OPERATOR(pg_catalog.>) 0 THEN '-Infinity'::" NUMERIC_SQL,
						   alias, item + 1, alias, item + 1, alias, item + 1,
						   alias, item + 1, alias, item + 1);
	return psprintf("(CASE WHEN %s OPERATOR(pg_catalog.=) 0 THEN NULL%s ELSE %s END)",
					count, special, value);
}
