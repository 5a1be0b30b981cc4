/*-------------------------------------------------------------------------
 *
 * matview_groups.c
 *	  Grouped materialized views kept by running values: per group, the
 *	  number of rows and each aggregate's running count and sum, in a state
 *	  table, moved by the weighted values of the signed delta terms.
 *
 * A grouped view whose every output column is a group key or one of
 * count(*), count(x), sum(x) or avg(x) (for sum and avg, x of an exact
 * type: int2, int4, int8, numeric; no FILTER or ORDER BY in the aggregate,
 * no HAVING) or count(DISTINCT x) needs no recomputation of the groups a
 * change touches: the delta terms (matview_delta.c) give each changed row
 * with its weight w (+1 added, -1 removed, or a product of signs) and the
 * aggregates' arguments,
 * so per group the number of rows moves by sum(w), a count(x) by sum(w)
 * over the rows where x is not NULL, a sum(x) by sum(w * x).  The state
 * table (medallion_state, see state_table.h) holds these per group:
 *
 *	 group_1 .. group_k   the group keys (unique, NULLS NOT DISTINCT)
 *	 n_rows               the group's number of rows (count(*))
 *	 count_i, sum_i       aggregate i: rows where its argument is not NULL,
 *	                      the sum of the argument over them (0 if none)
 *
 * and the target's rows of the touched groups are deleted and derived
 * again from it: count(*) = n_rows, count(x) = count_i, sum(x) = sum_i unless
 * count_i = 0 (then NULL), avg(x) = sum_i::numeric / count_i::numeric, the
 * very division PostgreSQL's avg ends with, so the values are the query's.
 * A group whose rows drop to 0 leaves the state and the target.  Integer
 * sums are exact; a numeric sum is exact in value, and its display scale is
 * the largest among the values it added since the last recompute (the
 * query's is the largest among the values present: they differ only when
 * the values of one column have different scales).  A numeric argument's
 * NaN and infinities are counted apart (nan_i, pinf_i, ninf_i) and the
 * sum kept over its finite values, so that the result is NaN, Infinity or
 * -Infinity exactly when PostgreSQL's sum and avg give it.
 *
 * count(DISTINCT x) (x of a type with a btree order) keeps distinct_j in the
 * state, and a table of values per such aggregate:
 *
 *	 group_1 .. group_k, value   a group and a non-NULL value of x (unique)
 *	 m                           the rows of the group holding the value
 *	 last                        what the last update added to m
 *
 * An update moves m by the weights of the terms' rows (an upsert returning
 * m and last); a value appeared where m > 0 and m - last <= 0, disappeared
 * where m <= 0 and m - last > 0, and distinct_j moves by the difference.
 * Values whose m dropped to 0 leave the table.  min, max, float arguments
 * and HAVING keep the recomputation of the touched groups
 * (matview_apply.c).
 *
 * The state tables are made at the view's first recompute (and recorded in
 * the flow's definition: "group_state", "group_distinct_states" and
 * "state_tables"), filled by every recompute from the sources' bounded
 * states.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/matview_groups.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_aggregate.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/typcache.h"

#include "flow_definition.h"
#include "matview_internal.h"
#include "spi_util.h"
#include "sql_names.h"
#include "state_table.h"

#define GROUP_STATE_KEY		"group_state"
#define GROUP_STATE_LAYOUT_KEY	"group_state_columns"
#define GROUP_STATE_SUFFIX	"__view_groups"
#define DISTINCT_STATES_KEY	"group_distinct_states"

/* What an output column of a view kept by running values is. */
typedef enum RunningKind
{
	RUNNING_KEY,				/* a group key */
	RUNNING_ROWS,				/* count(*) */
	RUNNING_COUNT,				/* count(x) */
	RUNNING_SUM,				/* sum(x) */
	RUNNING_AVG,				/* avg(x) */
	RUNNING_DISTINCT			/* count(DISTINCT x) */
} RunningKind;

struct MatviewRunning
{
	RunningKind *kind;			/* per output column */
	int		   *item;			/* per output column: key or aggregate index */
	Oid		   *sum_type;		/* per aggregate: its running sum's type */
	bool	   *special;		/* per aggregate: counts NaN and infinities */
	bool	   *count_only;		/* per aggregate: count(x), whose x (of any
								 * type) is counted, never summed */
	int			naggs;			/* aggregates with an argument */
	int			ndistinct;		/* count(DISTINCT x) aggregates */
	List	   *distinct_args;	/* Expr *, their arguments */
	List	   *distinct_tables;	/* char *, their value tables */
};

/* An aggregate's state columns are <counter>_<its number>. */
static const char *const running_counters[] = {"count", "sum", "nan", "pinf", "ninf"};

/* How many of running_counters aggregate i (from 1) has. */
static int
running_counter_count(MatviewRunning *running, int i)
{
	return running->special[i - 1] ? 5 : 2;
}

/* The index of an output column among the group keys, or -1. */
static int
group_key_of_column(MatviewAnalysis *analysis, int column)
{
	int			i;

	for (i = 0; i < analysis->ngroup_columns; i++)
		if (analysis->group_columns[i] == column)
			return i;
	return -1;
}

/*
 * Is the aggregate one kept by a running value?  Its kind, and for sum and
 * avg the type of the running sum (that of sum(x)).
 */
static bool
running_aggregate(Aggref *aggref, RunningKind *kind, Oid *sum_type)
{
	if (aggref->aggdistinct != NIL && aggref->aggfnoid == F_COUNT_ANY &&
		aggref->aggfilter == NULL && aggref->aggkind == AGGKIND_NORMAL &&
		aggref->agglevelsup == 0 && list_length(aggref->args) == 1)
	{
		*kind = RUNNING_DISTINCT;
		*sum_type = InvalidOid;
		return true;
	}
	if (aggref->aggfilter != NULL || aggref->aggdistinct != NIL ||
		aggref->aggorder != NIL || aggref->aggkind != AGGKIND_NORMAL ||
		aggref->agglevelsup != 0)
		return false;
	*sum_type = NUMERICOID;
	switch (aggref->aggfnoid)
	{
		case F_COUNT_:
			*kind = RUNNING_ROWS;
			return true;
		case F_COUNT_ANY:
			*kind = RUNNING_COUNT;
			return true;
		case F_SUM_INT2:
		case F_SUM_INT4:
			*sum_type = INT8OID;
			/* FALLTHROUGH */
		case F_SUM_INT8:
		case F_SUM_NUMERIC:
			*kind = RUNNING_SUM;
			return true;
		case F_AVG_INT2:
		case F_AVG_INT4:
			*sum_type = INT8OID;
			/* FALLTHROUGH */
		case F_AVG_INT8:
		case F_AVG_NUMERIC:
			*kind = RUNNING_AVG;
			return true;
		default:
			return false;
	}
}

/* Can values of the expression be part of a unique (btree) key? */
static bool
expression_sortable(Expr *expr)
{
	TypeCacheEntry *type = lookup_type_cache(exprType((Node *) expr),
											 TYPECACHE_BTREE_OPFAMILY);

	return OidIsValid(type->btree_opf);
}

/* Can the group keys be the unique (btree) key of the state table? */
static bool
group_keys_sortable(MatviewAnalysis *analysis)
{
	ListCell   *cell;

	foreach(cell, analysis->query->groupClause)
	{
		SortGroupClause *clause = lfirst(cell);
		TargetEntry *tle = get_sortgroupclause_tle(clause, analysis->query->targetList);

		if (!expression_sortable(tle->expr))
			return false;
	}
	return true;
}

/*
 * MatviewRunningAnalyze: see matview_internal.h.  Sets analysis->running
 * and running_args when every output column is a group key or an
 * aggregate kept by a running value.
 */
void
MatviewRunningAnalyze(MatviewAnalysis *analysis)
{
	Query	   *query = analysis->query;
	MatviewRunning *running;
	List	   *args = NIL;
	ListCell   *cell;
	int			column = 0;

	if (!analysis->grouped || !analysis->incremental ||
		query->havingQual != NULL || query->distinctClause != NIL ||
		query->hasWindowFuncs || query->hasTargetSRFs ||
		!group_keys_sortable(analysis))
		return;
	running = palloc0(sizeof(MatviewRunning));
	running->kind = palloc0(sizeof(RunningKind) * analysis->ncolumns);
	running->item = palloc0(sizeof(int) * analysis->ncolumns);
	running->sum_type = palloc0(sizeof(Oid) * analysis->ncolumns);
	running->special = palloc0(sizeof(bool) * analysis->ncolumns);
	running->count_only = palloc0(sizeof(bool) * analysis->ncolumns);
	foreach(cell, query->targetList)
	{
		TargetEntry *tle = lfirst(cell);
		RunningKind kind;
		Oid			sum_type;

		if (tle->resjunk)
			continue;
		running->item[column] = group_key_of_column(analysis, column);
		if (running->item[column] >= 0)
			running->kind[column] = RUNNING_KEY;
		else if (IsA(tle->expr, Aggref) &&
				 running_aggregate((Aggref *) tle->expr, &kind, &sum_type))
		{
			running->kind[column] = kind;
			if (kind == RUNNING_DISTINCT)
			{
				Expr	   *arg = linitial_node(TargetEntry,
												((Aggref *) tle->expr)->args)->expr;

				if (!expression_sortable(arg))
					return;
				running->item[column] = running->ndistinct++;
				running->distinct_args = lappend(running->distinct_args, arg);
			}
			else if (kind != RUNNING_ROWS)
			{
				Expr	   *arg = linitial_node(TargetEntry,
												((Aggref *) tle->expr)->args)->expr;

				running->sum_type[running->naggs] = sum_type;
				running->count_only[running->naggs] = kind == RUNNING_COUNT;
				running->special[running->naggs] = kind != RUNNING_COUNT &&
					exprType((Node *) arg) == NUMERICOID;
				running->item[column] = running->naggs++;
				args = lappend(args, arg);
			}
		}
		else
			return;
		column++;
	}
	analysis->running = running;
	/* the terms' columns: group keys, these arguments, the distinct ones */
	analysis->running_args = list_concat(args, running->distinct_args);
}

/* The state table's columns, comma-separated (for INSERT and RETURNING). */
static char *
state_columns(MatviewAnalysis *analysis, const char *qualifier)
{
	StringInfoData list;
	const char *q = qualifier ? qualifier : "";
	const char *dot = qualifier ? "." : "";
	int			i;

	initStringInfo(&list);
	for (i = 1; i <= analysis->ngroup_columns; i++)
		appendStringInfo(&list, "%s%sgroup_%d, ", q, dot, i);
	appendStringInfo(&list, "%s%sn_rows", q, dot);
	for (i = 1; i <= analysis->running->naggs; i++)
	{
		appendStringInfo(&list, ", %s%scount_%d, %s%ssum_%d", q, dot, i, q, dot, i);
		if (analysis->running->special[i - 1])
			appendStringInfo(&list, ", %s%snan_%d, %s%spinf_%d, %s%sninf_%d",
							 q, dot, i, q, dot, i, q, dot, i);
	}
	for (i = 1; i <= analysis->running->ndistinct; i++)
		appendStringInfo(&list, ", %s%sdistinct_%d", q, dot, i);
	return list.data;
}

/*
 * Per group, the change of the state's values: the terms (c1..ck group
 * keys, then the aggregates' arguments, then w) summed by group.  With
 * unit_weights (the bounded state's single term, w = 1) plain counts and
 * sums do, which cost less.
 */
static char *
state_delta_sql(MatviewAnalysis *analysis, const char *terms, bool unit_weights)
{
	const char *weight = unit_weights ? "pg_catalog.count(*)" : "pg_catalog.sum(w)";
	const char *times = unit_weights ? "" : "w OPERATOR(pg_catalog.*) ";
	StringInfoData sql;
	StringInfoData finite;
	int			k = analysis->ngroup_columns;
	char	   *keys = SqlNumberedColumns("c", k, NULL);
	int			i;

	initStringInfo(&sql);
	initStringInfo(&finite);
	appendStringInfo(&sql, "SELECT %s,\n  %s", keys, weight);
	for (i = 1; i <= analysis->running->naggs; i++)
	{
		int			c = k + i;

		if (unit_weights)
			appendStringInfo(&sql, ",\n  pg_catalog.count(c%d)", c);
		else
			appendStringInfo(&sql, ",\n  COALESCE(pg_catalog.sum(w) FILTER (WHERE c%d IS NOT NULL), 0)",
							 c);
		if (analysis->running->count_only[i - 1])
			appendStringInfoString(&sql, ",\n  0");
		else if (!analysis->running->special[i - 1])
			appendStringInfo(&sql, ",\n  COALESCE(pg_catalog.sum(%sc%d), 0)", times, c);
		else
		{
			appendStringInfo(&sql,
							 ",\n  COALESCE(pg_catalog.sum(%sc%d) FILTER (WHERE f%d), 0)"
							 ",\n  COALESCE(%s FILTER (WHERE NOT f%d AND c%d OPERATOR(pg_catalog.=) 'NaN'), 0)"
							 ",\n  COALESCE(%s FILTER (WHERE NOT f%d AND c%d OPERATOR(pg_catalog.=) 'Infinity'), 0)"
							 ",\n  COALESCE(%s FILTER (WHERE NOT f%d AND c%d OPERATOR(pg_catalog.=) '-Infinity'), 0)",
							 times, c, c, weight, c, c, weight, c, c, weight, c, c);
			appendStringInfo(&finite,
							 ", c%d OPERATOR(pg_catalog.>) '-Infinity'"
							 " AND c%d OPERATOR(pg_catalog.<) 'Infinity' AS f%d",
							 c, c, c);
		}
	}
	for (i = 1; i <= analysis->running->ndistinct; i++)
	{
		int			c = k + analysis->running->naggs + i;

		if (unit_weights)
			appendStringInfo(&sql, ",\n  pg_catalog.count(DISTINCT c%d)", c);
		else
			appendStringInfo(&sql,
							 ",\n  COALESCE((SELECT __medallion_dd.d FROM __medallion_dd%d __medallion_dd"
							 " WHERE ROW(%s) IS NOT DISTINCT FROM ROW(%s)), 0)",
							 i, SqlNumberedColumns("group_", k, "__medallion_dd"), keys);
	}
	/*
	 * OFFSET 0: each argument computed once per row, not once per use; and
	 * whether a numeric argument is finite (NaN sorts above Infinity), once
	 * per row for its four FILTERs, the special values' three comparisons
	 * made only for the rows that are not.
	 */
	if (finite.len == 0)
		appendStringInfo(&sql, "\n FROM (\n%s\n OFFSET 0) __medallion_u GROUP BY %s",
						 terms, keys);
	else
		appendStringInfo(&sql, "\n FROM (SELECT *%s FROM (\n%s\n OFFSET 0) __medallion_r"
						 " OFFSET 0) __medallion_u GROUP BY %s",
						 finite.data, terms, keys);
	return sql.data;
}

/*
 * MatviewRunningPartialSql: see matview_internal.h.  The same values as
 * state_delta_sql's with unit weights, per aggregate: count(x), the sum of
 * x over its finite values, its NaN and infinities.
 */
char *
MatviewRunningPartialSql(MatviewAnalysis *analysis, const char *rows)
{
	StringInfoData sql;
	StringInfoData finite;
	int			i;

	Assert(analysis->running->ndistinct == 0);
	initStringInfo(&sql);
	initStringInfo(&finite);
	appendStringInfoString(&sql, "SELECT pg_catalog.count(*) AS n_rows");
	for (i = 1; i <= analysis->running->naggs; i++)
	{
		appendStringInfo(&sql, ", pg_catalog.count(a%d) AS count_%d", i, i);
		if (analysis->running->count_only[i - 1])
			appendStringInfo(&sql, ", 0 AS sum_%d", i);
		else if (!analysis->running->special[i - 1])
			appendStringInfo(&sql, ", pg_catalog.sum(a%d) AS sum_%d", i, i);
		else
		{
			appendStringInfo(&sql,
							 ", pg_catalog.sum(a%d) FILTER (WHERE f%d) AS sum_%d"
							 ", pg_catalog.count(*) FILTER (WHERE NOT f%d AND a%d OPERATOR(pg_catalog.=) 'NaN') AS nan_%d"
							 ", pg_catalog.count(*) FILTER (WHERE NOT f%d AND a%d OPERATOR(pg_catalog.=) 'Infinity') AS pinf_%d"
							 ", pg_catalog.count(*) FILTER (WHERE NOT f%d AND a%d OPERATOR(pg_catalog.=) '-Infinity') AS ninf_%d",
							 i, i, i, i, i, i, i, i, i, i, i, i);
			appendStringInfo(&finite,
							 ", a%d OPERATOR(pg_catalog.>) '-Infinity'"
							 " AND a%d OPERATOR(pg_catalog.<) 'Infinity' AS f%d",
							 i, i, i);
		}
	}
	appendStringInfo(&sql, " FROM (SELECT *%s FROM %s OFFSET 0) __medallion_y"
					 " HAVING pg_catalog.count(*) OPERATOR(pg_catalog.>) 0",
					 finite.data, rows);
	return sql.data;
}

/*
 * The change of the state's values per group when some terms were
 * aggregated eagerly (matview_eager.c): the raw terms' sums (state_delta_sql,
 * or NULL when there are none) and the eager terms' weighted partials, in
 * the state's columns, summed per group.
 */
static char *
partials_delta_sql(MatviewAnalysis *analysis, const char *raw, const char *eager)
{
	StringInfoData sql;
	int			k = analysis->ngroup_columns;
	char	   *keys = SqlNumberedColumns("group_", k, NULL);
	int			i;

	initStringInfo(&sql);
	appendStringInfo(&sql, "SELECT %s, pg_catalog.sum(n_rows)", keys);
	for (i = 1; i <= analysis->running->naggs; i++)
	{
		int			j;

		for (j = 0; j < running_counter_count(analysis->running, i); j++)
			appendStringInfo(&sql, ", COALESCE(pg_catalog.sum(%s_%d), 0)",
							 running_counters[j], i);
	}
	appendStringInfo(&sql, "\n FROM (%s%s%s\n) __medallion_p(%s) GROUP BY %s",
					 raw != NULL ? raw : "", raw != NULL ? "\nUNION ALL\n" : "",
					 eager, state_columns(analysis, NULL), keys);
	return sql.data;
}

/* The view's rows derived from the state rows of relation (a table or CTE). */
static char *
rows_from_state_sql(MatviewAnalysis *analysis, const char *relation)
{
	MatviewRunning *running = analysis->running;
	StringInfoData sql;
	int			i;

	initStringInfo(&sql);
	appendStringInfoString(&sql, "SELECT ");
	for (i = 0; i < analysis->ncolumns; i++)
	{
		int			item = running->item[i] + 1;

		if (i > 0)
			appendStringInfoString(&sql, ", ");
		if (running->kind[i] == RUNNING_KEY)
			appendStringInfo(&sql, "__medallion_s.group_%d", item);
		else if (running->kind[i] == RUNNING_ROWS)
			appendStringInfoString(&sql, "__medallion_s.n_rows");
		else if (running->kind[i] == RUNNING_COUNT)
			appendStringInfo(&sql, "__medallion_s.count_%d", item);
		else if (running->kind[i] == RUNNING_DISTINCT)
			appendStringInfo(&sql, "__medallion_s.distinct_%d", item);
		else
		{
			appendStringInfo(&sql, "CASE WHEN __medallion_s.count_%d OPERATOR(pg_catalog.=) 0"
							 " THEN NULL", item);
			if (running->special[item - 1])
				appendStringInfo(&sql,
								 " WHEN __medallion_s.nan_%d OPERATOR(pg_catalog.>) 0"
								 " OR (__medallion_s.pinf_%d OPERATOR(pg_catalog.>) 0"
								 " AND __medallion_s.ninf_%d OPERATOR(pg_catalog.>) 0) THEN 'NaN'"
								 " WHEN __medallion_s.pinf_%d OPERATOR(pg_catalog.>) 0 THEN 'Infinity'"
								 " WHEN __medallion_s.ninf_%d OPERATOR(pg_catalog.>) 0 THEN '-Infinity'",
								 item, item, item, item, item);
			if (running->kind[i] == RUNNING_SUM)
				appendStringInfo(&sql, " ELSE __medallion_s.sum_%d END", item);
			else
				appendStringInfo(&sql, " ELSE __medallion_s.sum_%d::pg_catalog.numeric"
								 " OPERATOR(pg_catalog./) __medallion_s.count_%d::pg_catalog.numeric END",
								 item, item);
		}
	}
	appendStringInfo(&sql, " FROM %s __medallion_s"
					 " WHERE __medallion_s.n_rows OPERATOR(pg_catalog.>) 0", relation);
	return sql.data;
}

/* The group keys' column definitions, typed as the view's, each with a comma. */
static void
append_group_key_definitions(StringInfo sql, MatviewAnalysis *analysis)
{
	int			i;

	for (i = 0; i < analysis->ngroup_columns; i++)
	{
		TargetEntry *tle = NULL;
		ListCell   *cell;
		int			column = 0;

		foreach(cell, analysis->query->targetList)
		{
			if (((TargetEntry *) lfirst(cell))->resjunk)
				continue;
			if (column++ == analysis->group_columns[i])
				tle = lfirst(cell);
		}
		appendStringInfoString(sql, "\n  ");
		SqlAppendColumnDefinition(sql, psprintf("group_%d", i + 1),
								  exprType((Node *) tle->expr),
								  exprTypmod((Node *) tle->expr),
								  exprCollation((Node *) tle->expr));
		appendStringInfoChar(sql, ',');
	}
}

/* CREATE TABLE of the state table: group keys typed as the view's. */
static char *
state_table_create_sql(MatviewAnalysis *analysis, const char *name)
{
	StringInfoData sql;
	int			i;

	initStringInfo(&sql);
	appendStringInfo(&sql, "CREATE TABLE %s (", name);
	append_group_key_definitions(&sql, analysis);
	appendStringInfoString(&sql, "\n  n_rows pg_catalog.int8 NOT NULL");
	for (i = 0; i < analysis->running->naggs; i++)
	{
		appendStringInfo(&sql, ",\n  count_%d pg_catalog.int8 NOT NULL,\n  sum_%d %s NOT NULL",
						 i + 1, i + 1,
						 analysis->running->sum_type[i] == INT8OID ?
						 "pg_catalog.int8" : "pg_catalog.numeric");
		if (analysis->running->special[i])
			appendStringInfo(&sql, ",\n  nan_%d pg_catalog.int8 NOT NULL,"
							 "\n  pinf_%d pg_catalog.int8 NOT NULL,"
							 "\n  ninf_%d pg_catalog.int8 NOT NULL",
							 i + 1, i + 1, i + 1);
	}
	for (i = 0; i < analysis->running->ndistinct; i++)
		appendStringInfo(&sql, ",\n  distinct_%d pg_catalog.int8 NOT NULL", i + 1);
	appendStringInfoString(&sql, "\n)");
	return sql.data;
}

/*
 * CREATE TABLE of the value table of count(DISTINCT x) number j (0-based):
 * per group and value of x, its number of rows (m) and the change the
 * last update made to it (last), from which the update tells the values
 * that appeared (m > 0, m - last <= 0) and disappeared.
 */
static char *
distinct_table_create_sql(MatviewAnalysis *analysis, int j, const char *name)
{
	StringInfoData sql;
	Expr	   *arg = list_nth(analysis->running->distinct_args, j);

	initStringInfo(&sql);
	appendStringInfo(&sql, "CREATE TABLE %s (", name);
	append_group_key_definitions(&sql, analysis);
	appendStringInfoString(&sql, "\n  ");
	SqlAppendColumnDefinition(&sql, "value", exprType((Node *) arg),
							  exprTypmod((Node *) arg), exprCollation((Node *) arg));
	appendStringInfoString(&sql, " NOT NULL,\n  m pg_catalog.int8 NOT NULL,"
						   "\n  last pg_catalog.int8 NOT NULL\n)");
	return sql.data;
}

/*
 * Create a state table of a view with its unique key (NULLs equal, as
 * GROUP BY takes them) and a partial index of its rows whose count
 * (count_column) fell to zero, which each update deletes; returns its
 * qualified name.
 */
static char *
keyed_state_table_create(FlowDesc *flow, Oid owner, const char *relname,
						 const char *name, const char *create_sql,
						 const char *key_columns, const char *count_column)
{
	Oid			relid = StateTableCreate(relname, create_sql, owner,
										 flow->target_relid);

	StateTableCreateIndex(psprintf("CREATE UNIQUE INDEX ON %s (%s) NULLS NOT DISTINCT",
								   name, key_columns));
	StateTableCreateIndex(psprintf("CREATE INDEX ON %s (%s) WHERE %s OPERATOR(pg_catalog.=) 0",
								   name, count_column, count_column));
	return CatalogQualifiedRelationName(relid);
}

/*
 * Create the value table of count(DISTINCT x) number j (0-based), its
 * unique key and an index of the values gone, and record it in the flow's
 * definition (among its state tables: dropped with the flow).
 */
static char *
distinct_table_create(FlowDesc *flow, MatviewAnalysis *analysis, Oid owner,
					  int j)
{
	char	   *relname;
	char	   *name = StateTableName(get_rel_namespace(flow->target_relid),
									  get_rel_name(flow->target_relid),
									  psprintf("__view_distinct_%d", j + 1),
									  "count(DISTINCT) values", &relname);
	Oid			types[2] = {INT4OID, TEXTOID};
	Datum		values[2];

	name = keyed_state_table_create(flow, owner, relname, name,
									distinct_table_create_sql(analysis, j, name),
									psprintf("%s, value",
											 SqlNumberedColumns("group_", analysis->ngroup_columns, NULL)),
									"m");
	values[0] = Int32GetDatum(flow->flow_id);
	values[1] = CStringGetTextDatum(name);
	SpiExecuteAsExtensionOwner("UPDATE medallion.flow"
							   " SET definition = definition OPERATOR(pg_catalog.||)"
							   " pg_catalog.jsonb_build_object('" DISTINCT_STATES_KEY "',"
							   "   COALESCE(definition OPERATOR(pg_catalog.->) '" DISTINCT_STATES_KEY "',"
							   "            '[]'::pg_catalog.jsonb)"
							   "   OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_array($2),"
							   "   " STATE_TABLES_WITH_SQL("$2") ")"
							   " WHERE flow_id OPERATOR(pg_catalog.=) $1",
							   2, types, values, NULL, SPI_OK_UPDATE);
	return name;
}

/*
 * Create the state table of a view, its unique key and an index of the
 * emptied groups, and record it in the flow's definition; and the value
 * tables of its count(DISTINCT) aggregates.
 */
static char *
state_table_create(FlowDesc *flow, MatviewAnalysis *analysis, Oid owner)
{
	char	   *relname;
	char	   *name = StateTableName(get_rel_namespace(flow->target_relid),
									  get_rel_name(flow->target_relid),
									  GROUP_STATE_SUFFIX, "group state", &relname);
	Oid			types[3] = {INT4OID, TEXTOID, TEXTOID};
	Datum		values[3];
	int			i;

	name = keyed_state_table_create(flow, owner, relname, name,
									state_table_create_sql(analysis, name),
									SqlNumberedColumns("group_", analysis->ngroup_columns, NULL),
									"n_rows");
	values[0] = Int32GetDatum(flow->flow_id);
	values[1] = CStringGetTextDatum(name);
	values[2] = CStringGetTextDatum(state_columns(analysis, NULL));
	SpiExecuteAsExtensionOwner("UPDATE medallion.flow"
							   " SET definition = definition OPERATOR(pg_catalog.||)"
							   " pg_catalog.jsonb_build_object('" GROUP_STATE_KEY "', $2,"
							   "   '" GROUP_STATE_LAYOUT_KEY "', $3,"
							   "   '" DISTINCT_STATES_KEY "', '[]'::pg_catalog.jsonb,"
							   "   " STATE_TABLES_WITH_SQL("$2") ")"
							   " WHERE flow_id OPERATOR(pg_catalog.=) $1",
							   3, types, values, NULL, SPI_OK_UPDATE);
	analysis->running->distinct_tables = NIL;
	for (i = 0; i < analysis->running->ndistinct; i++)
		analysis->running->distinct_tables =
			lappend(analysis->running->distinct_tables,
					distinct_table_create(flow, analysis, owner, i));
	return name;
}

/*
 * MatviewRunningStateTable: see matview_internal.h.  The recorded table
 * counts only while it is one of the flow's state tables and has the
 * columns this version of medallion gives it (else, when create, it is
 * dropped and made again: the recompute fills it).
 */
char *
MatviewRunningStateTable(FlowDesc *flow, MatviewAnalysis *analysis,
						 Oid owner, bool create)
{
	char	   *name = FlowDefinitionString(flow, GROUP_STATE_KEY, false);
	char	   *layout = FlowDefinitionString(flow, GROUP_STATE_LAYOUT_KEY, false);
	List	   *distinct = FlowDefinitionStringList(flow, DISTINCT_STATES_KEY, false);
	Oid			relid = name ? RelidFromQualifiedName(name, true) : InvalidOid;
	List	   *state_tables = StateTablesOfFlow(flow);
	bool		distinct_ok = list_length(distinct) == analysis->running->ndistinct;
	ListCell   *cell;

	if (!OidIsValid(relid) || !list_member_oid(state_tables, relid))
		return create ? state_table_create(flow, analysis, owner) : NULL;
	foreach(cell, distinct)
	{
		Oid			distinct_relid = RelidFromQualifiedName(lfirst(cell), true);

		distinct_ok &= OidIsValid(distinct_relid) &&
			list_member_oid(state_tables, distinct_relid);
	}
	if (distinct_ok && layout != NULL &&
		strcmp(layout, state_columns(analysis, NULL)) == 0)
	{
		analysis->running->distinct_tables = distinct;
		return CatalogQualifiedRelationName(relid);
	}
	if (!create)
		return NULL;
	SpiExecute(psprintf("DROP TABLE %s", CatalogQualifiedRelationName(relid)),
			   0, NULL, NULL, NULL, SPI_OK_UTILITY);
	foreach(cell, distinct)
	{
		Oid			distinct_relid = RelidFromQualifiedName(lfirst(cell), true);

		if (OidIsValid(distinct_relid) && list_member_oid(state_tables, distinct_relid))
			SpiExecute(psprintf("DROP TABLE %s", CatalogQualifiedRelationName(distinct_relid)),
					   0, NULL, NULL, NULL, SPI_OK_UTILITY);
	}
	return state_table_create(flow, analysis, owner);
}

/*
 * The CTEs that fill or move the value tables of the count(DISTINCT)
 * aggregates from the rows of __medallion_terms (c1..ck group keys, the
 * arguments, w): per group and value, its rows (__medallion_v<j>).  For a
 * recompute (the tables emptied), their count; for an update (moves), the
 * sum of the weights, added by an upsert that returns the new count and
 * the move, and per group the number of values moved by those that
 * appeared minus those that disappeared (__medallion_dd<j>, read by
 * state_delta_sql).  Each CTE comes after ",\n": the list follows the
 * CTE __medallion_terms.
 */
static void
append_distinct_ctes(StringInfo sql, MatviewAnalysis *analysis, bool moves)
{
	int			k = analysis->ngroup_columns;
	char	   *keys = SqlNumberedColumns("group_", k, NULL);
	char	   *terms_keys = SqlNumberedColumns("c", k, NULL);
	const char *rows = moves ? "pg_catalog.sum(w)::pg_catalog.int8" : "pg_catalog.count(*)";
	ListCell   *cell;

	foreach(cell, analysis->running->distinct_tables)
	{
		int			j = foreach_current_index(cell) + 1;
		int			c = k + analysis->running->naggs + j;

		appendStringInfo(sql,
						 ",\n__medallion_v%d AS (INSERT INTO %s AS __medallion_t (%s, value, m, last)\n"
						 "  SELECT %s, c%d, %s, %s FROM __medallion_terms\n"
						 "   WHERE c%d IS NOT NULL GROUP BY %s, c%d",
						 j, (char *) lfirst(cell), keys,
						 terms_keys, c, rows, moves ? rows : "0",
						 c, terms_keys, c);
		if (!moves)
		{
			appendStringInfoChar(sql, ')');
			continue;
		}
		appendStringInfo(sql,
						 "\n  ON CONFLICT (%s, value) DO UPDATE SET"
						 " m = __medallion_t.m OPERATOR(pg_catalog.+) EXCLUDED.m, last = EXCLUDED.m\n"
						 "  RETURNING %s, m, last),\n"
						 "__medallion_dd%d AS (SELECT %s, pg_catalog.sum(CASE"
						 " WHEN m OPERATOR(pg_catalog.>) 0 AND m OPERATOR(pg_catalog.-) last OPERATOR(pg_catalog.<=) 0 THEN 1"
						 " WHEN m OPERATOR(pg_catalog.<=) 0 AND m OPERATOR(pg_catalog.-) last OPERATOR(pg_catalog.>) 0 THEN -1"
						 " ELSE 0 END)::pg_catalog.int8 AS d FROM __medallion_v%d GROUP BY %s)",
						 keys, keys, j, keys, j, keys);
	}
}

/*
 * MatviewRunningRecompute: see matview_internal.h.  The state from the
 * bounded query, then the target from the state.
 */
void
MatviewRunningRecompute(MatviewAnalysis *analysis, const char *target,
						const char *target_columns, const char *state_table,
						FlowResult *result)
{
	uint64		inserted;
	const char *terms = MatviewStateTermSql(analysis);
	StringInfoData sql;
	ListCell   *cell;

	SpiEmptyTable(RelidFromQualifiedName(state_table, false));
	initStringInfo(&sql);
	if (analysis->running->ndistinct > 0)
	{
		/* the bounded query read once, for the state and the value tables */
		foreach(cell, analysis->running->distinct_tables)
			SpiEmptyTable(RelidFromQualifiedName(lfirst(cell), false));
		appendStringInfo(&sql, "WITH __medallion_terms AS MATERIALIZED (\n%s\n)", terms);
		append_distinct_ctes(&sql, analysis, false);
		appendStringInfoChar(&sql, '\n');
		terms = "SELECT * FROM __medallion_terms";
	}
	appendStringInfo(&sql, "INSERT INTO %s (%s)\n%s", state_table,
					 state_columns(analysis, NULL),
					 state_delta_sql(analysis, terms, true));
	SpiExecute(sql.data, 0, NULL, NULL, NULL, SPI_OK_INSERT);
	inserted = SpiExecute(psprintf("INSERT INTO %s (%s) %s", target, target_columns,
								   rows_from_state_sql(analysis, state_table)),
						  0, NULL, NULL, NULL, SPI_OK_INSERT);
	result->rows_written += inserted;
	result->rows_read += inserted;
	result->changed = true;
}

/*
 * MatviewRunningDeltaSql: see matview_internal.h.  One statement moves the
 * state of the touched groups (an upsert returning their new values) and
 * replaces their rows in the target.
 */
char *
MatviewRunningDeltaSql(MatviewAnalysis *analysis, const char *target,
					   const char *target_columns, const char *state_table,
					   int *eager_term_count)
{
	StringInfoData sql;
	StringInfoData moves;
	StringInfoData target_keys;
	StringInfoData eager_terms;
	const char *terms;
	char	   *delta;
	int			neager = 0;
	int			i;

	initStringInfo(&moves);
	appendStringInfoString(&moves, "n_rows = __medallion_t.n_rows OPERATOR(pg_catalog.+) EXCLUDED.n_rows");
	for (i = 1; i <= analysis->running->naggs; i++)
	{
		int			j;

		for (j = 0; j < running_counter_count(analysis->running, i); j++)
			appendStringInfo(&moves,
							 ", %s_%d = __medallion_t.%s_%d OPERATOR(pg_catalog.+) EXCLUDED.%s_%d",
							 running_counters[j], i, running_counters[j], i,
							 running_counters[j], i);
	}
	for (i = 1; i <= analysis->running->ndistinct; i++)
		appendStringInfo(&moves,
						 ", distinct_%d = __medallion_t.distinct_%d OPERATOR(pg_catalog.+) EXCLUDED.distinct_%d",
						 i, i, i);
	initStringInfo(&target_keys);
	for (i = 0; i < analysis->ngroup_columns; i++)
		appendStringInfo(&target_keys, "%s__medallion_t.%s", i > 0 ? ", " : "",
						 quote_identifier(analysis->column_names[analysis->group_columns[i]]));
	initStringInfo(&sql);
	initStringInfo(&eager_terms);
	if (analysis->running->ndistinct > 0)
	{
		terms = MatviewDeltaTermsSql(analysis, true);
		appendStringInfo(&sql, "WITH __medallion_terms AS MATERIALIZED (\n%s\n)", terms);
		append_distinct_ctes(&sql, analysis, true);
		appendStringInfoString(&sql, ",\n");
		terms = "SELECT * FROM __medallion_terms";
	}
	else
	{
		terms = analysis->outer_joins != NIL ? MatviewDeltaTermsSql(analysis, true) :
			MatviewInnerDeltaTermsSql(analysis, true, &eager_terms, &neager);
		appendStringInfoString(&sql, "WITH ");
	}
	delta = terms[0] != '\0' ? state_delta_sql(analysis, terms, false) : NULL;
	if (eager_terms.len > 0)
		delta = partials_delta_sql(analysis, delta, eager_terms.data);
	appendStringInfo(&sql,
					 "__medallion_s AS (INSERT INTO %s AS __medallion_t (%s)\n%s\n"
					 "  ON CONFLICT (%s) DO UPDATE SET %s\n"
					 "  RETURNING %s),\n",
					 state_table, state_columns(analysis, NULL), delta,
					 SqlNumberedColumns("group_", analysis->ngroup_columns, NULL), moves.data,
					 state_columns(analysis, "__medallion_t"));
	appendStringInfo(&sql,
					 "__medallion_k AS (SELECT %s FROM __medallion_s),\n"
					 "__medallion_del AS (DELETE FROM %s __medallion_t USING __medallion_k\n"
					 "  WHERE ROW(%s) OPERATOR(pg_catalog.=) __medallion_k.* RETURNING 1),\n"
					 "__medallion_ins AS (INSERT INTO %s (%s)\n%s\n RETURNING 1)\n"
					 "SELECT (SELECT pg_catalog.count(*) FROM __medallion_del),\n"
					 "       (SELECT pg_catalog.count(*) FROM __medallion_ins),\n"
					 "       (SELECT pg_catalog.count(*) FROM __medallion_s\n"
					 "         WHERE n_rows OPERATOR(pg_catalog.=) 0)",
					 SqlNumberedColumns("group_", analysis->ngroup_columns, NULL), target,
					 target_keys.data, target, target_columns,
					 rows_from_state_sql(analysis, "__medallion_s"));
	*eager_term_count = neager;
	return sql.data;
}

/* MatviewRunningValueTables: see matview_internal.h. */
List *
MatviewRunningValueTables(MatviewAnalysis *analysis)
{
	return analysis->running != NULL ? analysis->running->distinct_tables : NIL;
}

/*
 * MatviewRunningApply: see matview_internal.h.  Runs the statement of
 * MatviewRunningDeltaSql; then the emptied groups leave the state (found
 * by a partial index).
 */
void
MatviewRunningApply(MatviewAnalysis *analysis, const char *sql,
					const char *state_table, FlowResult *result)
{
	ListCell   *cell;

	MatviewRunDelta(analysis, sql, result);
	/* the groups whose rows dropped to 0 leave the state, if there are any */
	if (SpiGetInt64(0, 3, NULL) > 0)
		SpiExecute(psprintf("DELETE FROM %s WHERE n_rows OPERATOR(pg_catalog.=) 0",
							state_table),
				   0, NULL, NULL, NULL, SPI_OK_DELETE);
	foreach(cell, analysis->running->distinct_tables)
		SpiExecute(psprintf("DELETE FROM %s WHERE m OPERATOR(pg_catalog.=) 0",
							(char *) lfirst(cell)),
				   0, NULL, NULL, NULL, SPI_OK_DELETE);
}
