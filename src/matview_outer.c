/*-------------------------------------------------------------------------
 *
 * matview_outer.c
 *	  Left outer equi-joins in materialized views kept by signed deltas:
 *	  which left joins qualify, and the delta terms of a view that has them.
 *
 * A left join A LEFT JOIN B ON theta qualifies when B is one table
 * reference and theta is a conjunction of equalities left = right (right
 * reading only B, left not reading B, the operator an equality of the
 * right side type's default operator family), conditions on B alone
 * (p(B)) and conditions not reading B (r(A)); at least one equality.
 * Write B' = the rows of B satisfying p, D(B) = DISTINCT the right sides of
 * the equalities over B' (non-NULL: a NULL key matches nothing).  Then, as
 * signed bags,
 *
 *	 A LEFT JOIN B  =  A JOIN B ON theta                     (inner)
 *	                +  A x {one row of NULLs for B}          (pad)
 *	                -  A JOIN D(B) ON keys AND r(A), B NULL  (semi)
 *
 * because every row of A appears once in pad, and once in semi exactly
 * when it has a match (D's rows are distinct under the operators'
 * equality), so pad - semi is the NULL-padded rows of A without a match.
 * Every other operator of the query (inner joins, WHERE, projection, the
 * left joins enclosing this one on their left side) is linear over signed
 * bags, so with k left joins the view is the signed sum over the 3^k
 * choices of a mode per join (semi counts -1), each choice an inner join
 * query over the table references left, B replaced by a NULL row (pad) or
 * by D(B) with B's columns NULL (semi).  Each choice is kept by the
 * inclusion-exclusion terms of matview_delta.c; D(B) is a reference like
 * the others, with
 *
 *	 state:  D(B_new)
 *	 delta:  for each key k among the rows of dB' (non-NULL):
 *	         sign = [n_new(k) > 0] - [n_new(k) - sum of dB' signs of k > 0]
 *
 * where n_new(k) counts the rows of B'_new with key k, so that
 * n_old(k) = n_new(k) - (the signed count of dB' rows with key k), from
 * B_old = B_new - dB.  For one left join, inclusion-exclusion over A and
 * D gives d(A JOIN D) = dA JOIN D_new + A_new JOIN dD - dA JOIN dD
 * = dA JOIN D_new + A_old JOIN dD (A_old = A_new - dA), so the padded
 * part changes by
 *
 *	 dA - dA JOIN D_new - A_old JOIN dD
 *	   = (dA anti-joined to B'_new)
 *	     - (A_old rows whose key found its first match)
 *	     + (A_old rows whose key lost its last match),
 *
 * all NULL-padded: a new row of A without a match enters padded, a key
 * going from no matching row to some takes its padded rows out (while the
 * inner part puts the joined rows in), and the reverse.  A NULL key of A
 * never matches D: such rows stay padded.  (A left join whose padded rows
 * WHERE rejects is made an inner join first, matview_analyze.c.)
 *
 * The terms are built by rewriting the analysed query tree: table
 * references replaced by subqueries (matview_delta.c), each left join made
 * an inner join with the mode's condition; join alias Vars are flattened
 * and USING replaced by its ON condition, so that the deparsed query does
 * not depend on the merged columns of USING.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/matview_outer.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "access/stratnum.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_type.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "parser/parsetree.h"
#include "rewrite/rewriteManip.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/ruleutils.h"
#include "utils/syscache.h"
#include "utils/typcache.h"

#include "matview_internal.h"
#include "sql_names.h"

/* Most delta terms a view with left outer joins may have. */
#define MATVIEW_MAX_OUTER_TERMS	128

/* One left outer join kept by deltas. */
typedef struct OuterJoin
{
	int			join_rtindex;	/* the join's own range table entry */
	int			rtindex;		/* its right side, one table reference */
	List	   *keys;			/* OpExpr *: an equality of the two sides */
	List	   *key_sides;		/* int: the argument (0, 1) reading B */
	List	   *right_quals;	/* conditions on the right side alone */
	List	   *left_quals;		/* conditions not reading the right side */
	int			natts;			/* the right side table's attributes */
} OuterJoin;

/* What a term makes of a left join (see the header comment). */
typedef enum OuterMode
{
	OUTER_INNER,
	OUTER_PAD,
	OUTER_SEMI
} OuterMode;

static char *
position_text(Node *quals)
{
	int			location = exprLocation(quals);

	return location >= 0 ? psprintf(" at position %d", location + 1) : "";
}

/*
 * Which argument of an equality reads the right side (rtindex) alone while
 * the other does not read it, or -1.  The operator must be an equality of
 * the right side type's default operator family, so that keys distinct for
 * DISTINCT are never equal for the join.
 */
static int
key_side(Node *conjunct, int rtindex)
{
	OpExpr	   *op = (OpExpr *) conjunct;
	int			side;

	if (!IsA(conjunct, OpExpr) || list_length(op->args) != 2)
		return -1;
	for (side = 0; side < 2; side++)
	{
		Node	   *right = list_nth(op->args, side);
		Bitmapset  *right_varnos = pull_varnos(NULL, right);
		TypeCacheEntry *entry;

		if (bms_membership(right_varnos) != BMS_SINGLETON ||
			!bms_is_member(rtindex, right_varnos) ||
			bms_is_member(rtindex, pull_varnos(NULL, list_nth(op->args, 1 - side))))
			continue;
		entry = lookup_type_cache(exprType(right),
								  TYPECACHE_BTREE_OPFAMILY | TYPECACHE_HASH_OPFAMILY |
								  TYPECACHE_CMP_PROC | TYPECACHE_HASH_PROC);
		if (!OidIsValid(entry->cmp_proc) || !OidIsValid(entry->hash_proc))
			return -1;
		if ((OidIsValid(entry->btree_opf) &&
			 get_op_opfamily_strategy(op->opno, entry->btree_opf) == BTEqualStrategyNumber) ||
			(OidIsValid(entry->hash_opf) &&
			 get_op_opfamily_strategy(op->opno, entry->hash_opf) == HTEqualStrategyNumber))
			return side;
		return -1;
	}
	return -1;
}

static int
relation_natts(Oid relid)
{
	Relation	rel = relation_open(relid, AccessShareLock);
	int			natts = RelationGetNumberOfAttributes(rel);

	relation_close(rel, NoLock);
	return natts;
}

/*
 * Does the query read a whole row or a system column of range table entry
 * rtindex?  Such a Var of a padded or semi-joined right side cannot read
 * NULL from the subquery that replaces it (a row of NULLs is not a NULL
 * row; the subquery has no system columns).
 */
static bool
whole_row_walker(Node *node, int *rtindex)
{
	if (node == NULL)
		return false;
	if (IsA(node, Var))
		return ((Var *) node)->varno == *rtindex &&
			((Var *) node)->varlevelsup == 0 &&
			((Var *) node)->varattno <= 0;
	if (IsA(node, Query))
		return false;			/* subqueries fall back on their own */
	return expression_tree_walker(node, whole_row_walker, (void *) rtindex);
}

/*
 * MatviewOuterJoinReason: why a left join (at where, " at position N")
 * cannot be kept by deltas, or NULL after recording it in the analysis.
 */
char *
MatviewOuterJoinReason(Query *query, JoinExpr *join, const char *where,
					   MatviewAnalysis *analysis)
{
	OuterJoin  *outer;
	ListCell   *cell;

	if (!IsA(join->rarg, RangeTblRef))
		return psprintf("left outer join%s whose right side is a join", where);
	if (join->alias != NULL || join->join_using_alias != NULL)
		return psprintf("left outer join%s with an alias", where);
	outer = palloc0(sizeof(OuterJoin));
	outer->join_rtindex = join->rtindex;
	outer->rtindex = ((RangeTblRef *) join->rarg)->rtindex;
	if (rt_fetch(outer->rtindex, query->rtable)->rtekind != RTE_RELATION)
		return NULL;			/* the reason is given for the reference */
	outer->natts = relation_natts(rt_fetch(outer->rtindex, query->rtable)->relid);
	if (query_tree_walker(query, whole_row_walker, (void *) &outer->rtindex,
						  QTW_IGNORE_RANGE_TABLE))
		return psprintf("left outer join%s whose right side is read as a whole row or by a system column",
						where);
	foreach(cell, make_ands_implicit((Expr *) join->quals))
	{
		Node	   *conjunct = lfirst(cell);
		Bitmapset  *varnos = pull_varnos(NULL, conjunct);
		int			side;

		if (!bms_is_member(outer->rtindex, varnos))
			outer->left_quals = lappend(outer->left_quals, conjunct);
		else if (bms_membership(varnos) == BMS_SINGLETON)
			outer->right_quals = lappend(outer->right_quals, conjunct);
		else if ((side = key_side(conjunct, outer->rtindex)) >= 0)
		{
			outer->keys = lappend(outer->keys, conjunct);
			outer->key_sides = lappend_int(outer->key_sides, side);
		}
		else
			return psprintf("left outer join%s: a condition%s is not an equality between the two sides",
							where, position_text(conjunct));
	}
	if (outer->keys == NIL)
		return psprintf("left outer join%s without an equality between the two sides",
						where);
	analysis->outer_joins = lappend(analysis->outer_joins, outer);
	return NULL;
}

/* The left join whose right side (or, by_join, itself) is rtindex, or -1. */
static int
outer_join_index(MatviewAnalysis *analysis, int rtindex, bool by_join)
{
	ListCell   *cell;

	foreach(cell, analysis->outer_joins)
	{
		OuterJoin  *outer = lfirst(cell);

		if ((by_join ? outer->join_rtindex : outer->rtindex) == rtindex)
			return foreach_current_index(cell);
	}
	return -1;
}

/* The modes of a choice numbered 0 .. 3^k - 1; the number of pads. */
static int
choice_modes(int choice, int njoins, OuterMode *modes, int *sign)
{
	int			npad = 0;
	int			j;

	*sign = 1;
	for (j = 0; j < njoins; j++)
	{
		modes[j] = (OuterMode) (choice % 3);
		choice /= 3;
		if (modes[j] == OUTER_PAD)
			npad++;
		else if (modes[j] == OUTER_SEMI)
			*sign = -*sign;
	}
	return npad;
}

static int
choice_count(int njoins)
{
	int			count = 1;

	while (njoins-- > 0)
		count *= 3;
	return count;
}

/*
 * MatviewOuterTermsReason: after the references are known, why the view's
 * left joins cannot be kept by deltas (too many terms), or NULL.
 */
char *
MatviewOuterTermsReason(MatviewAnalysis *analysis)
{
	int			njoins = list_length(analysis->outer_joins);
	OuterMode  *modes = palloc(sizeof(OuterMode) * (njoins + 1));
	int64		terms = 0;
	int			choice;
	ListCell   *cell;

	foreach(cell, analysis->outer_joins)
	{
		if (analysis->rte_source[((OuterJoin *) lfirst(cell))->rtindex] < 0)
			return pstrdup("the right side of a left outer join is not a table");
	}
	for (choice = 0; choice < choice_count(njoins); choice++)
	{
		int			sign;
		int			npad = choice_modes(choice, njoins, modes, &sign);

		terms += (INT64CONST(1) << (analysis->nreferences - npad)) - 1;
	}
	if (terms > MATVIEW_MAX_OUTER_TERMS)
		return psprintf("%d left outer joins over %d table references need " INT64_FORMAT " delta terms (at most %d)",
						njoins, analysis->nreferences, terms,
						MATVIEW_MAX_OUTER_TERMS);
	return NULL;
}

/* A Var's syntactic referent is itself (the query has one entry). */
static bool
own_referent_walker(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, Var))
	{
		((Var *) node)->varnosyn = ((Var *) node)->varno;
		((Var *) node)->varattnosyn = ((Var *) node)->varattno;
		return false;
	}
	return expression_tree_walker(node, own_referent_walker, context);
}

/*
 * The non-NULL keys of B' (__medallion_k1..m), from B's state or, with
 * delta, from its signed delta (then with __medallion_sign): the query
 * tree of the right side alone, deparsed.
 */
static char *
keys_query_sql(MatviewAnalysis *analysis, OuterJoin *outer, bool delta)
{
	Query	   *query = makeNode(Query);
	MatviewSource *source = list_nth(analysis->sources,
									 analysis->rte_source[outer->rtindex]);
	List	   *quals = copyObject(outer->right_quals);
	ListCell   *key;
	ListCell   *side;
	Query	   *subquery;
	int			natts;

	query->commandType = CMD_SELECT;
	query->querySource = QSRC_ORIGINAL;
	query->canSetTag = true;
	query->rtable = list_make1(copyObject(rt_fetch(outer->rtindex,
												   analysis->query->rtable)));
	forboth(key, outer->keys, side, outer->key_sides)
	{
		Expr	   *expr = copyObject(list_nth(((OpExpr *) lfirst(key))->args,
											   lfirst_int(side)));
		NullTest   *test = makeNode(NullTest);
		int			resno = list_length(query->targetList) + 1;

		test->arg = copyObject(expr);
		test->nulltesttype = IS_NOT_NULL;
		test->location = -1;
		quals = lappend(quals, test);
		query->targetList = lappend(query->targetList,
									makeTargetEntry(expr, resno,
													psprintf("__medallion_k%d", resno),
													false));
	}
	ChangeVarNodes((Node *) quals, outer->rtindex, 1, 0);
	ChangeVarNodes((Node *) query->targetList, outer->rtindex, 1, 0);
	query->jointree = makeFromExpr(list_make1(makeNode(RangeTblRef)),
								   (Node *) make_ands_explicit(quals));
	((RangeTblRef *) linitial(query->jointree->fromlist))->rtindex = 1;
	(void) own_referent_walker((Node *) query->jointree, NULL);
	(void) own_referent_walker((Node *) query->targetList, NULL);

	subquery = MatviewSourceSubquery(source, delta, &natts);
	if (subquery != NULL)
		MatviewReplaceReference(query, 1, subquery);
	if (delta)
		query->targetList = lappend(query->targetList,
									makeTargetEntry((Expr *) makeVar(1, natts + 1, INT8OID, -1, InvalidOid, 0),
													list_length(query->targetList) + 1,
													"__medallion_sign", false));
	return pg_get_querydef(query, false);
}

/* "prefix.__medallion_k1, ..., prefix.__medallion_km" */
static char *
key_columns(int nkeys, const char *prefix)
{
	return SqlNumberedColumns("__medallion_k", nkeys, prefix);
}

/*
 * "left.__medallion_k1 = right.__medallion_k1 AND ...", each with the
 * default equality of the key's type (the one DISTINCT and GROUP BY use),
 * schema-qualified.
 */
static char *
keys_equal(OuterJoin *outer, const char *left, const char *right)
{
	StringInfoData list;
	ListCell   *key;
	ListCell   *side;

	initStringInfo(&list);
	forboth(key, outer->keys, side, outer->key_sides)
	{
		Node	   *expr = list_nth(((OpExpr *) lfirst(key))->args, lfirst_int(side));
		Oid			opno = lookup_type_cache(exprType(expr), TYPECACHE_EQ_OPR)->eq_opr;
		HeapTuple	tuple = SearchSysCache1(OPEROID, ObjectIdGetDatum(opno));
		Form_pg_operator form;
		int			i = foreach_current_index(key) + 1;

		if (!HeapTupleIsValid(tuple))
			elog(ERROR, "cache lookup failed for operator %u", opno);
		form = (Form_pg_operator) GETSTRUCT(tuple);
		appendStringInfo(&list, "%s%s.__medallion_k%d OPERATOR(%s.%s) %s.__medallion_k%d",
						 i > 1 ? " AND " : "", left, i,
						 quote_identifier(get_namespace_name(form->oprnamespace)),
						 NameStr(form->oprname), right, i);
		ReleaseSysCache(tuple);
	}
	return list.data;
}

/*
 * D(B) as a reference replacing B: B's columns as NULLs, then the keys,
 * then (delta) the sign; its column count before the sign in *ncolumns.
 * The delta's sign per key is [n_new > 0] - [n_new - d > 0] (header).
 */
static Query *
keys_subquery(MatviewAnalysis *analysis, OuterJoin *outer,
			  MatviewSource *source, bool delta, int *ncolumns)
{
	int			nkeys = list_length(outer->keys);
	int			natts;
	char	   *nulls = MatviewNullColumns(source->relid, &natts);
	char	   *state = keys_query_sql(analysis, outer, false);

	*ncolumns = natts + nkeys;
	if (!delta)
		return MatviewAnalyzeInternal(psprintf("SELECT %s, %s FROM (SELECT DISTINCT %s FROM (%s) __k) __d",
											   nulls, key_columns(nkeys, "__d"),
											   key_columns(nkeys, "__k"), state));
	return MatviewAnalyzeInternal(psprintf("SELECT %s, %s, __d.s AS __medallion_sign FROM (\n"
										   "  SELECT %s, ((__x.n OPERATOR(pg_catalog.>) 0)::pg_catalog.int4\n"
										   "    OPERATOR(pg_catalog.-) ((__x.n OPERATOR(pg_catalog.-) __x.d) OPERATOR(pg_catalog.>) 0)::pg_catalog.int4)::pg_catalog.int8 AS s\n"
										   "  FROM (SELECT %s, pg_catalog.sum(__y.__medallion_sign)::pg_catalog.int8 AS d,\n"
										   "          (SELECT pg_catalog.count(*) FROM (%s) __n WHERE %s) AS n\n"
										   "        FROM (%s) __y GROUP BY %s) __x) __d\n"
										   " WHERE __d.s OPERATOR(pg_catalog.<>) 0",
										   nulls, key_columns(nkeys, "__d"),
										   key_columns(nkeys, "__x"),
										   key_columns(nkeys, "__y"),
										   state, keys_equal(outer, "__n", "__y"),
										   keys_query_sql(analysis, outer, true),
										   key_columns(nkeys, "__y")));
}

/*
 * The condition of a left join in semi mode: its equalities with the right
 * side read from D's key columns (after B's natts columns), and its
 * conditions not reading B.
 */
static Node *
semi_quals(OuterJoin *outer, int natts)
{
	List	   *quals = NIL;
	ListCell   *key;
	ListCell   *side;

	forboth(key, outer->keys, side, outer->key_sides)
	{
		OpExpr	   *op = copyObject(lfirst(key));
		ListCell   *arg = list_nth_cell(op->args, lfirst_int(side));
		Node	   *right = lfirst(arg);

		lfirst(arg) = makeVar(outer->rtindex, natts + list_length(quals) + 1,
							  exprType(right), exprTypmod(right),
							  exprCollation(right), 0);
		quals = lappend(quals, op);
	}
	return (Node *) make_ands_explicit(list_concat(quals,
												   copyObject(outer->left_quals)));
}

/* Make the left joins inner joins with their mode's condition; no USING. */
static void
rewrite_joins(Node *node, MatviewAnalysis *analysis, OuterMode *modes)
{
	ListCell   *cell;

	if (IsA(node, FromExpr))
	{
		foreach(cell, ((FromExpr *) node)->fromlist)
			rewrite_joins(lfirst(cell), analysis, modes);
	}
	else if (IsA(node, JoinExpr))
	{
		JoinExpr   *join = (JoinExpr *) node;
		int			j = outer_join_index(analysis, join->rtindex, true);

		join->usingClause = NIL;
		join->join_using_alias = NULL;
		if (j >= 0)
		{
			OuterJoin  *outer = list_nth(analysis->outer_joins, j);

			join->jointype = JOIN_INNER;
			if (modes[j] == OUTER_PAD)
				join->quals = NULL;
			else if (modes[j] == OUTER_SEMI)
				join->quals = semi_quals(outer, outer->natts);
		}
		rewrite_joins(join->larg, analysis, modes);
		rewrite_joins(join->rarg, analysis, modes);
	}
}

/*
 * The query of one term: each reference by its delta (in mask, counting
 * the references a pad leaves) or its state, a padded right side by a row
 * of NULLs, a semi right side by D(B); the left joins rewritten.
 */
static Query *
outer_term_query(MatviewAnalysis *analysis, OuterMode *modes, uint32 mask,
				 List **sign_vars)
{
	Query	   *query = copyObject(analysis->query);
	int			reference = 0;
	int			rtindex;

	*sign_vars = NIL;
	for (rtindex = 1; rtindex <= list_length(query->rtable); rtindex++)
	{
		int			index = analysis->rte_source[rtindex];
		int			j = outer_join_index(analysis, rtindex, false);
		OuterMode	mode = j >= 0 ? modes[j] : OUTER_INNER;
		MatviewSource *source;
		Query	   *subquery;
		int			ncolumns;
		bool		delta;

		if (index < 0)
			continue;
		source = list_nth(analysis->sources, index);
		if (mode == OUTER_PAD)
		{
			MatviewReplaceReference(query, rtindex,
									MatviewAnalyzeInternal(psprintf("SELECT %s",
																	MatviewNullColumns(source->relid, &ncolumns))));
			continue;
		}
		delta = (mask & (1U << reference++)) != 0;
		if (mode == OUTER_SEMI)
			subquery = keys_subquery(analysis, list_nth(analysis->outer_joins, j),
									 source, delta, &ncolumns);
		else
			subquery = MatviewSourceSubquery(source, delta, &ncolumns);
		if (subquery != NULL)
			MatviewReplaceReference(query, rtindex, subquery);
		if (delta)
			*sign_vars = lappend(*sign_vars,
								 makeVar(rtindex, ncolumns + 1, INT8OID, -1,
										 InvalidOid, 0));
	}
	rewrite_joins((Node *) query->jointree, analysis, modes);
	query->targetList = (List *) flatten_join_alias_vars(query, (Node *) query->targetList);
	query->jointree = (FromExpr *) flatten_join_alias_vars(query, (Node *) query->jointree);
	query->havingQual = flatten_join_alias_vars(query, query->havingQual);
	return query;
}

/*
 * MatviewDeltaTermsSql: rows (c1..cn, w) whose weights w, summed per row,
 * are the view's net change; with group_keys, c1..ck are the group keys of
 * every row that changed.  With left outer joins: over every choice of
 * modes, the inclusion-exclusion terms of its references, weighted by the
 * choice's sign; else those of matview_delta.c.
 */
char *
MatviewDeltaTermsSql(MatviewAnalysis *analysis, bool group_keys)
{
	int			njoins = list_length(analysis->outer_joins);
	OuterMode  *modes = palloc(sizeof(OuterMode) * (njoins + 1));
	StringInfoData sql;
	int			choice;

	if (njoins == 0)
		return MatviewInnerDeltaTermsSql(analysis, group_keys, NULL, NULL);
	initStringInfo(&sql);
	for (choice = 0; choice < choice_count(njoins); choice++)
	{
		int			sign;
		int			nreferences = analysis->nreferences -
			choice_modes(choice, njoins, modes, &sign);
		uint32		mask;

		for (mask = 1; mask < (1U << nreferences); mask++)
		{
			List	   *sign_vars;
			Query	   *term = outer_term_query(analysis, modes, mask, &sign_vars);

			MatviewAppendDeltaTerm(&sql, analysis, term, sign_vars,
								   list_length(sign_vars) % 2 == 1 ? sign : -sign,
								   group_keys);
		}
	}
	return sql.data;
}
