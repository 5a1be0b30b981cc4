/*-------------------------------------------------------------------------
 *
 * matview_groups.c
 *	  Grouped materialized views kept by running values: per group, the
 *	  number of rows and each aggregate's running count and sum, in a state
 *	  table, moved by the weighted values of the signed delta terms.
 *
 * A grouped view whose every output column is a group key or one of
 * count(*), count(x), sum(x) or avg(x) (x of an exact type: int2, int4,
 * int8, numeric; no DISTINCT, FILTER, ORDER BY in the aggregate, no
 * HAVING) needs no recomputation of the groups a change touches: the delta
 * terms (matview_delta.c) give each changed row with its weight w (+1
 * added, -1 removed, or a product of signs) and the aggregates' arguments,
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
 * -Infinity exactly when PostgreSQL's sum and avg give it.  min, max,
 * count(DISTINCT), float arguments and HAVING keep the recomputation of
 * the touched groups (matview_apply.c).
 *
 * The state table is made at the view's first recompute (and recorded in
 * the flow's definition, "group_state" and "state_tables"), filled by every
 * recompute from the sources' bounded states.
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

/* What an output column of a view kept by running values is. */
typedef enum RunningKind
{
	RUNNING_KEY,				/* a group key */
	RUNNING_ROWS,				/* count(*) */
	RUNNING_COUNT,				/* count(x) */
	RUNNING_SUM,				/* sum(x) */
	RUNNING_AVG					/* avg(x) */
} RunningKind;

struct MatviewRunning
{
	RunningKind *kind;			/* per output column */
	int		   *item;			/* per output column: key or aggregate index */
	Oid		   *sum_type;		/* per aggregate: its running sum's type */
	bool	   *special;		/* per aggregate: counts NaN and infinities */
	int			naggs;			/* aggregates with an argument */
};

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

/* Can the group keys be the unique (btree) key of the state table? */
static bool
group_keys_sortable(MatviewAnalysis *analysis)
{
	ListCell   *cell;

	foreach(cell, analysis->query->groupClause)
	{
		SortGroupClause *clause = lfirst(cell);
		TargetEntry *tle = get_sortgroupclause_tle(clause, analysis->query->targetList);
		TypeCacheEntry *type = lookup_type_cache(exprType((Node *) tle->expr),
												 TYPECACHE_BTREE_OPFAMILY);

		if (!OidIsValid(type->btree_opf))
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
			if (kind != RUNNING_ROWS)
			{
				Expr	   *arg = linitial_node(TargetEntry,
												((Aggref *) tle->expr)->args)->expr;

				running->sum_type[running->naggs] = sum_type;
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
	analysis->running_args = args;
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
	StringInfoData keys;
	int			k = analysis->ngroup_columns;
	int			i;

	initStringInfo(&keys);
	for (i = 1; i <= k; i++)
		appendStringInfo(&keys, "%sc%d", i > 1 ? ", " : "", i);
	initStringInfo(&sql);
	appendStringInfo(&sql, "SELECT %s,\n  %s", keys.data, weight);
	for (i = 1; i <= analysis->running->naggs; i++)
	{
		int			c = k + i;

		if (unit_weights)
			appendStringInfo(&sql, ",\n  pg_catalog.count(c%d)", c);
		else
			appendStringInfo(&sql, ",\n  COALESCE(pg_catalog.sum(w) FILTER (WHERE c%d IS NOT NULL), 0)",
							 c);
		if (!analysis->running->special[i - 1])
			appendStringInfo(&sql, ",\n  COALESCE(pg_catalog.sum(%sc%d), 0)", times, c);
		else
			appendStringInfo(&sql,
							 ",\n  COALESCE(pg_catalog.sum(%sc%d) FILTER (WHERE c%d"
							 " NOT IN ('NaN', 'Infinity', '-Infinity')), 0)"
							 ",\n  COALESCE(%s FILTER (WHERE c%d OPERATOR(pg_catalog.=) 'NaN'), 0)"
							 ",\n  COALESCE(%s FILTER (WHERE c%d OPERATOR(pg_catalog.=) 'Infinity'), 0)"
							 ",\n  COALESCE(%s FILTER (WHERE c%d OPERATOR(pg_catalog.=) '-Infinity'), 0)",
							 times, c, c, weight, c, weight, c, weight, c);
	}
	/* OFFSET 0: each argument computed once per row, not once per use */
	appendStringInfo(&sql, "\n FROM (\n%s\n OFFSET 0) __medallion_u GROUP BY %s",
					 terms, keys.data);
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

/* CREATE TABLE of the state table: group keys typed as the view's. */
static char *
state_table_create_sql(MatviewAnalysis *analysis, const char *name)
{
	StringInfoData sql;
	int			i;

	initStringInfo(&sql);
	appendStringInfo(&sql, "CREATE TABLE %s (", name);
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
		appendStringInfoString(&sql, "\n  ");
		SqlAppendColumnDefinition(&sql, psprintf("group_%d", i + 1),
								  exprType((Node *) tle->expr),
								  exprTypmod((Node *) tle->expr),
								  exprCollation((Node *) tle->expr));
		appendStringInfoChar(&sql, ',');
	}
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
	appendStringInfoString(&sql, "\n)");
	return sql.data;
}

/* The group keys' column names, group_1, ... */
static char *
state_key_columns(int ngroups)
{
	StringInfoData list;
	int			i;

	initStringInfo(&list);
	for (i = 1; i <= ngroups; i++)
		appendStringInfo(&list, "%sgroup_%d", i > 1 ? ", " : "", i);
	return list.data;
}

/*
 * Create the state table of a view, its unique key and an index of the
 * emptied groups, and record it in the flow's definition.
 */
static char *
state_table_create(FlowDesc *flow, MatviewAnalysis *analysis, Oid owner)
{
	char	   *relname;
	char	   *name = StateTableName(get_rel_namespace(flow->target_relid),
									  get_rel_name(flow->target_relid),
									  GROUP_STATE_SUFFIX, "group state", &relname);
	Oid			relid;
	Oid			types[3] = {INT4OID, TEXTOID, TEXTOID};
	Datum		values[3];

	relid = StateTableCreate(relname, state_table_create_sql(analysis, name),
							 owner, flow->target_relid);
	StateTableCreateIndex(psprintf("CREATE UNIQUE INDEX ON %s (%s) NULLS NOT DISTINCT",
								   name, state_key_columns(analysis->ngroup_columns)));
	StateTableCreateIndex(psprintf("CREATE INDEX ON %s (n_rows) WHERE n_rows OPERATOR(pg_catalog.=) 0",
								   name));
	name = CatalogQualifiedRelationName(relid);
	values[0] = Int32GetDatum(flow->flow_id);
	values[1] = CStringGetTextDatum(name);
	values[2] = CStringGetTextDatum(state_columns(analysis, NULL));
	SpiExecuteAsExtensionOwner("UPDATE medallion.flow"
							   " SET definition = definition OPERATOR(pg_catalog.||)"
							   " pg_catalog.jsonb_build_object('" GROUP_STATE_KEY "', $2,"
							   "   '" GROUP_STATE_LAYOUT_KEY "', $3,"
							   "   '" STATE_TABLES_KEY "',"
							   "   (COALESCE(definition OPERATOR(pg_catalog.->) '" STATE_TABLES_KEY "',"
							   "             '[]'::pg_catalog.jsonb) OPERATOR(pg_catalog.-) $2)"
							   "   OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_array($2))"
							   " WHERE flow_id OPERATOR(pg_catalog.=) $1",
							   3, types, values, NULL, SPI_OK_UPDATE);
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
	Oid			relid = name ? RelidFromQualifiedName(name, true) : InvalidOid;

	if (!OidIsValid(relid) || !list_member_oid(StateTablesOfFlow(flow), relid))
		return create ? state_table_create(flow, analysis, owner) : NULL;
	if (layout != NULL && strcmp(layout, state_columns(analysis, NULL)) == 0)
		return CatalogQualifiedRelationName(relid);
	if (!create)
		return NULL;
	SpiExecute(psprintf("DROP TABLE %s", CatalogQualifiedRelationName(relid)),
			   0, NULL, NULL, NULL, SPI_OK_UTILITY);
	return state_table_create(flow, analysis, owner);
}

/* Run a statement returning rows deleted and inserted; count them. */
static void
run_counted(const char *sql, FlowResult *result)
{
	SpiExecute(sql, 0, NULL, NULL, NULL, SPI_OK_SELECT);
	result->rows_written += SpiGetInt64(0, 1, NULL) + SpiGetInt64(0, 2, NULL);
	result->changed = result->rows_written > 0;
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

	SpiExecute(psprintf("TRUNCATE %s", state_table), 0, NULL, NULL, NULL,
			   SPI_OK_UTILITY);
	SpiExecute(psprintf("INSERT INTO %s (%s)\n%s", state_table,
						state_columns(analysis, NULL),
						state_delta_sql(analysis, MatviewStateTermSql(analysis), true)),
			   0, NULL, NULL, NULL, SPI_OK_INSERT);
	SpiExecute(psprintf("TRUNCATE %s", target), 0, NULL, NULL, NULL,
			   SPI_OK_UTILITY);
	inserted = SpiExecute(psprintf("INSERT INTO %s (%s) %s", target, target_columns,
								   rows_from_state_sql(analysis, state_table)),
						  0, NULL, NULL, NULL, SPI_OK_INSERT);
	result->rows_written += inserted;
	result->rows_read += inserted;
	result->changed = true;
}

/*
 * MatviewRunningApply: see matview_internal.h.  One statement moves the
 * state of the touched groups (an upsert returning their new values) and
 * replaces their rows in the target; then the emptied groups leave the
 * state (found by a partial index).
 */
void
MatviewRunningApply(MatviewAnalysis *analysis, const char *target,
					const char *target_columns, const char *state_table,
					FlowResult *result)
{
	StringInfoData sql;
	StringInfoData moves;
	StringInfoData target_keys;
	int			i;

	initStringInfo(&moves);
	appendStringInfoString(&moves, "n_rows = __medallion_t.n_rows OPERATOR(pg_catalog.+) EXCLUDED.n_rows");
	for (i = 1; i <= analysis->running->naggs; i++)
	{
		static const char *const counters[] = {"count", "sum", "nan", "pinf", "ninf"};
		int			j;

		for (j = 0; j < (analysis->running->special[i - 1] ? 5 : 2); j++)
			appendStringInfo(&moves,
							 ", %s_%d = __medallion_t.%s_%d OPERATOR(pg_catalog.+) EXCLUDED.%s_%d",
							 counters[j], i, counters[j], i, counters[j], i);
	}
	initStringInfo(&target_keys);
	for (i = 0; i < analysis->ngroup_columns; i++)
		appendStringInfo(&target_keys, "%s__medallion_t.%s", i > 0 ? ", " : "",
						 quote_identifier(analysis->column_names[analysis->group_columns[i]]));
	initStringInfo(&sql);
	appendStringInfo(&sql,
					 "WITH __medallion_s AS (INSERT INTO %s AS __medallion_t (%s)\n%s\n"
					 "  ON CONFLICT (%s) DO UPDATE SET %s\n"
					 "  RETURNING %s),\n",
					 state_table, state_columns(analysis, NULL),
					 state_delta_sql(analysis, MatviewDeltaTermsSql(analysis, true), false),
					 state_key_columns(analysis->ngroup_columns), moves.data,
					 state_columns(analysis, "__medallion_t"));
	appendStringInfo(&sql,
					 "__medallion_k AS (SELECT %s FROM __medallion_s),\n"
					 "__medallion_del AS (DELETE FROM %s __medallion_t USING __medallion_k\n"
					 "  WHERE ROW(%s) OPERATOR(pg_catalog.=) __medallion_k.* RETURNING 1),\n"
					 "__medallion_ins AS (INSERT INTO %s (%s)\n%s\n RETURNING 1)\n"
					 "SELECT (SELECT pg_catalog.count(*) FROM __medallion_del),\n"
					 "       (SELECT pg_catalog.count(*) FROM __medallion_ins)",
					 state_key_columns(analysis->ngroup_columns), target,
					 target_keys.data, target, target_columns,
					 rows_from_state_sql(analysis, "__medallion_s"));
	run_counted(sql.data, result);
	SpiExecute(psprintf("DELETE FROM %s WHERE n_rows OPERATOR(pg_catalog.=) 0",
						state_table),
			   0, NULL, NULL, NULL, SPI_OK_DELETE);
}
