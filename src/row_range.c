/*-------------------------------------------------------------------------
 *
 * row_range.c
 *	  medallion.row_id_in_range(row_id, after, up_to): the range of a delta,
 *	  with a planner support function that knows the range's size.
 *
 * A delta is the rows of a change feed (or bronze table, or capture log)
 * numbered after the position an update last read: the newest rows, always
 * past the column's histogram, which the last ANALYZE took before they
 * existed.  For "_row_id > after AND _row_id <= up_to" the planner then
 * estimates a row or two where there are a thousand, and plans nested
 * loops that rescan the other side of a join once per delta row (a 12-row
 * lookup table scanned 1,500 times; two deltas joined by rescanning one).
 *
 * Row ids are numbered from a sequence, so the range holds at most
 * up_to - after rows, and nearly that many: the support function gives the
 * planner that estimate (SupportRequestSelectivity) and turns the call
 * into the two comparisons a btree index on the row id reads
 * (SupportRequestIndexCondition), so the rows are still found by one index
 * range scan.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/row_range.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/stratnum.h"
#include "catalog/pg_opfamily_d.h"
#include "catalog/pg_type_d.h"
#include "fmgr.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "nodes/supportnodes.h"
#include "optimizer/optimizer.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/selfuncs.h"

#include "row_range.h"
#include "version.h"

PG_FUNCTION_INFO_V1(medallion_row_id_in_range);
PG_FUNCTION_INFO_V1(medallion_row_id_in_range_support);

/* What the planner assumes of a range whose bounds are not known yet. */
#define UNKNOWN_RANGE_SELECTIVITY 0.005

char *
RowRangeConditionSql(const char *column, const char *after, const char *up_to)
{
	return psprintf("medallion.row_id_in_range(%s, %s, %s)",
					column, after, up_to);
}

/* row_id_in_range(row_id, after, up_to): after < row_id <= up_to */
Datum
medallion_row_id_in_range(PG_FUNCTION_ARGS)
{
	VERSION_CHECK_CATALOG();
	int64		row_id = PG_GETARG_INT64(0);

	PG_RETURN_BOOL(row_id > PG_GETARG_INT64(1) && row_id <= PG_GETARG_INT64(2));
}

/*
 * A bound as a constant, folding the parameters of a custom plan; false
 * when it is not known at planning time.
 */
static bool
range_bound(PlannerInfo *root, Node *argument, int64 *bound)
{
	Node	   *value = estimate_expression_value(root, argument);

	if (!IsA(value, Const) || ((Const *) value)->constisnull ||
		((Const *) value)->consttype != INT8OID)
		return false;
	*bound = DatumGetInt64(((Const *) value)->constvalue);
	return true;
}

/*
 * The fraction of the table's rows in the range: its size over the rows
 * the planner expects the table to hold now (its last count, scaled to the
 * pages it has today, so that rows added since count).
 */
static Selectivity
range_selectivity(SupportRequestSelectivity *request)
{
	Node	   *row_id = linitial(request->args);
	VariableStatData variable;
	double		tuples = 0;
	int64		after;
	int64		up_to;
	Selectivity selectivity;

	if (!range_bound(request->root, lsecond(request->args), &after) ||
		!range_bound(request->root, lthird(request->args), &up_to))
		return UNKNOWN_RANGE_SELECTIVITY;
	examine_variable(request->root, row_id, request->varRelid, &variable);
	if (variable.rel != NULL)
		tuples = variable.rel->tuples;
	ReleaseVariableStats(variable);
	if (up_to <= after)
		return 0.0;
	if (tuples < 1)
		return UNKNOWN_RANGE_SELECTIVITY;
	selectivity = ((double) up_to - (double) after) / tuples;
	CLAMP_PROBABILITY(selectivity);
	return selectivity;
}

/* "row_id OP bound" with the integer btree operator of the strategy. */
static Expr *
row_id_comparison(Node *row_id, int16 strategy, Node *bound)
{
	Oid			operator = get_opfamily_member(INTEGER_BTREE_FAM_OID,
											   INT8OID, INT8OID, strategy);
	OpExpr	   *comparison;

	if (!OidIsValid(operator))
		elog(ERROR, "missing operator %d(%u,%u) in opfamily %u",
			 strategy, INT8OID, INT8OID, INTEGER_BTREE_FAM_OID);
	comparison = (OpExpr *) make_opclause(operator, BOOLOID, false,
										  (Expr *) copyObject(row_id),
										  (Expr *) copyObject(bound),
										  InvalidOid, InvalidOid);
	set_opfuncid(comparison);
	return (Expr *) comparison;
}

/*
 * The index conditions equal to the call, for a btree index of integers
 * whose column is the row id: row_id > after AND row_id <= up_to (exact,
 * so the call itself need not be checked again).
 */
static List *
range_index_conditions(SupportRequestIndexCondition *request)
{
	FuncExpr   *call = (FuncExpr *) request->node;
	Node	   *after;
	Node	   *up_to;

	if (!IsA(call, FuncExpr) || list_length(call->args) != 3 ||
		request->indexarg != 0 ||
		request->opfamily != INTEGER_BTREE_FAM_OID)
		return NIL;
	after = lsecond(call->args);
	up_to = lthird(call->args);
	if (!is_pseudo_constant_for_index(request->root, after, request->index) ||
		!is_pseudo_constant_for_index(request->root, up_to, request->index))
		return NIL;
	request->lossy = false;
	return list_make2(row_id_comparison(linitial(call->args),
										BTGreaterStrategyNumber, after),
					  row_id_comparison(linitial(call->args),
										BTLessEqualStrategyNumber, up_to));
}

/* The planner support function of row_id_in_range. */
Datum
medallion_row_id_in_range_support(PG_FUNCTION_ARGS)
{
	VERSION_CHECK_CATALOG();
	Node	   *request = (Node *) PG_GETARG_POINTER(0);

	if (IsA(request, SupportRequestSelectivity))
	{
		SupportRequestSelectivity *selectivity_request = (SupportRequestSelectivity *) request;

		if (selectivity_request->is_join)
			PG_RETURN_POINTER(NULL);
		selectivity_request->selectivity = range_selectivity(selectivity_request);
		PG_RETURN_POINTER(selectivity_request);
	}
	if (IsA(request, SupportRequestIndexCondition))
	{
		List	   *conditions = range_index_conditions((SupportRequestIndexCondition *) request);

		if (conditions != NIL)
			PG_RETURN_POINTER(conditions);
	}
	PG_RETURN_POINTER(NULL);
}
