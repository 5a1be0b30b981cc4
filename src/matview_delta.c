/*-------------------------------------------------------------------------
 *
 * matview_delta.c
 *	  The SQL that keeps a materialized view by signed deltas, made by
 *	  rewriting the view's analysed query tree and deparsing it.
 *
 * A view maintained by deltas is a join of n table references R1..Rn
 * (inner joins, WHERE, projection).  Each reference's source gives, for an
 * update, its new state Ri (the table as of the source's ceiling) and its
 * signed delta dRi (rows removed, sign -1, and added, sign +1).  By
 * inclusion-exclusion,
 *
 *	 Q(R1+dR1, ..., Rn+dRn) - Q(R1, ..., Rn)
 *	   = sum over non-empty S of (-1)^(|S|+1) Q(Ri := dRi for i in S,
 *	                                            Rj := Rj new for j not in S)
 *
 * (for two: dR x S + R x dS - dR x dS, all with the new states), where a
 * row of a term weighs the product of its delta rows' signs.  Every term is
 * the view's own query with some references replaced by a subquery over
 * the delta (which carries a __medallion_sign column) and the others by the
 * bounded state; summing the weights of equal rows gives the view's net
 * change as a bag.  Grouped views take the group keys of the terms' rows
 * instead: those groups are recomputed.  A reference becomes a subquery
 * whose columns are the table's attributes in order (a dropped one as a
 * NULL placeholder), so the query's Vars keep their meaning.  Left outer
 * joins split into inner, NULL-padded and semi-joined parts, each kept by
 * these terms (matview_outer.c).
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/matview_delta.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_type.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "parser/parsetree.h"
#include "port/pg_bitutils.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/ruleutils.h"

#include "matview_internal.h"
#include "row_range.h"
#include "sql_names.h"
#include "user_sql.h"

#define SIGN_COLUMN "__medallion_sign"

/* NULL typed (and collated) as the attribute, named as it. */
static void
append_null_attribute(StringInfo list, Form_pg_attribute attr)
{
	appendStringInfo(list, "NULL::%s",
					 format_type_extended(attr->atttypid, attr->atttypmod,
										  FORMAT_TYPE_TYPEMOD_GIVEN |
										  FORMAT_TYPE_FORCE_QUALIFY));
	if (OidIsValid(attr->attcollation) &&
		attr->attcollation != get_typcollation(attr->atttypid))
		appendStringInfo(list, " COLLATE %s",
						 generate_collation_name(attr->attcollation));
	appendStringInfo(list, " AS %s", quote_identifier(NameStr(attr->attname)));
}

/*
 * The table's attributes in order, a dropped one as a placeholder; with
 * as_nulls, NULLs typed and named as the attributes (a reference whose
 * columns must all read NULL, see matview_outer.c).
 */
static char *
attribute_list(Oid relid, bool as_nulls, int *natts)
{
	Relation	rel = relation_open(relid, AccessShareLock);
	TupleDesc	desc = RelationGetDescr(rel);
	StringInfoData list;
	int			i;

	initStringInfo(&list);
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute attr = TupleDescAttr(desc, i);

		if (i > 0)
			appendStringInfoString(&list, ", ");
		if (attr->attisdropped)
			appendStringInfo(&list, "NULL::pg_catalog.int4 AS __medallion_dropped_%d",
							 i + 1);
		else if (as_nulls)
			append_null_attribute(&list, attr);
		else
			appendStringInfoString(&list, quote_identifier(NameStr(attr->attname)));
	}
	*natts = desc->natts;
	relation_close(rel, NoLock);
	return list.data;
}

/* Analyse SQL text medallion made (a source's state or delta). */
static Query *
analyze_internal(const char *sql)
{
	List	   *raw = UserSqlRawParse(sql);
	TupleDesc	desc;

	if (list_length(raw) != 1)
		elog(ERROR, "internal query is not one statement: %s", sql);
	return UserSqlAnalyzeQuery(linitial_node(RawStmt, raw), sql, 0, NULL,
							   NULL, &desc);
}

/*
 * The subquery standing for a source: its delta (rows in the source's
 * (position, ceiling], with their sign), or its bounded state (NULL when
 * the table itself is its state).
 *
 * The delta's range is a call of medallion.row_id_in_range, which the
 * planner estimates at the range's size (row_range.c): the range always
 * lies past the statistics of the feed's last ANALYZE, where
 * "_row_id > a AND _row_id <= b" reads as a row or two.  That estimate is
 * capped by the planner's count of the feed's rows, which is as stale as
 * its pg_class entry: a feed last counted when it held its reset marker
 * alone is taken for a row per page until autovacuum counts it again.
 * So in a term that joins two deltas or more, each delta is materialized
 * (delta_alone false): were both taken for a row or two, the planner would
 * nest loops over them, scanning one delta again for every row of the
 * other (20 ms of a 35 ms update for 40 customer and 1,500 order changes);
 * a materialized delta is read once, and a rescan reads memory.  A term
 * with one delta keeps it inline, where the term's filters reach the feed.
 */
static Query *
source_subquery(MatviewSource *source, bool delta, bool delta_alone, int *natts)
{
	char	   *columns = attribute_list(source->relid, false, natts);
	char	   *range;
	char	   *sql;

	if (!delta)
	{
		if (source->kind != MATVIEW_SOURCE_APPEND_ONLY)
			return NULL;
		return analyze_internal(psprintf("SELECT %s FROM %s WHERE _row_id OPERATOR(pg_catalog.<=) " INT64_FORMAT,
										 columns, source->name,
										 source->ceiling));
	}
	range = RowRangeConditionSql(quote_identifier(source->delta_id_column),
								 source->position, source->ceiling);
	if (source->delta_sign_column == NULL)
		sql = psprintf("SELECT %s, 1::pg_catalog.int8 AS " SIGN_COLUMN
					   " FROM %s WHERE %s",
					   columns, source->delta_relation, range);
	else
		/* a change feed (and a capture log) names the columns as the table */
		sql = psprintf("SELECT %s, %s::pg_catalog.int8 AS " SIGN_COLUMN
					   " FROM %s WHERE %s AND %s OPERATOR(pg_catalog.<>) 0",
					   columns, quote_identifier(source->delta_sign_column),
					   source->delta_relation, range,
					   quote_identifier(source->delta_sign_column));
	if (!delta_alone)
		sql = psprintf("WITH __medallion_delta AS MATERIALIZED (%s)"
					   " SELECT * FROM __medallion_delta", sql);
	return analyze_internal(sql);
}

/* Make a table reference of the query read a subquery instead. */
static void
replace_reference(Query *query, int rtindex, Query *subquery)
{
	RangeTblEntry *rte = rt_fetch(rtindex, query->rtable);
	List	   *colnames = NIL;
	ListCell   *cell;

	foreach(cell, subquery->targetList)
		colnames = lappend(colnames, makeString(pstrdup(((TargetEntry *) lfirst(cell))->resname)));
	if (rte->alias == NULL)
		rte->alias = makeAlias(rte->eref->aliasname, NIL);
	rte->eref = makeAlias(rte->eref->aliasname, colnames);
	rte->rtekind = RTE_SUBQUERY;
	rte->subquery = subquery;
	rte->relid = InvalidOid;
	rte->relkind = 0;
	rte->rellockmode = 0;
	rte->tablesample = NULL;
	rte->inh = false;
	rte->requiredPerms = 0;
	rte->checkAsUser = InvalidOid;
	rte->selectedCols = NULL;
	rte->insertedCols = NULL;
	rte->updatedCols = NULL;
	rte->extraUpdatedCols = NULL;
	rte->security_barrier = false;
}

/* Replace the references of the mask by deltas, the others by states. */
static Query *
query_for_term(MatviewAnalysis *analysis, uint32 mask, List **sign_vars)
{
	Query	   *query = copyObject(analysis->query);
	int			rtindex;
	int			reference = 0;

	*sign_vars = NIL;
	for (rtindex = 1; rtindex <= list_length(query->rtable); rtindex++)
	{
		int			index = analysis->rte_source[rtindex];
		bool		delta;
		int			natts;
		Query	   *subquery;

		if (index < 0)
			continue;
		delta = (mask & (1U << reference++)) != 0;
		subquery = source_subquery(list_nth(analysis->sources, index), delta,
								   pg_popcount32(mask) < 2, &natts);
		if (subquery == NULL)
			continue;
		replace_reference(query, rtindex, subquery);
		if (delta)
			*sign_vars = lappend(*sign_vars,
								 makeVar(rtindex, natts + 1, INT8OID, -1,
										 InvalidOid, 0));
	}
	return query;
}

/*
 * The target list of a term: the view's columns, or for grouped views the
 * group keys (and the aggregates' arguments when kept by running values),
 * then the signs.  ORDER BY and aggregation go.
 */
static void
term_target_list(MatviewAnalysis *analysis, Query *query, List *sign_vars)
{
	List	   *targets = NIL;
	ListCell   *cell;
	int			column = 0;
	int			resno = 0;

	foreach(cell, query->targetList)
	{
		TargetEntry *tle = lfirst(cell);
		bool		keep = !tle->resjunk;

		if (keep && analysis->grouped)
		{
			int			i;

			keep = false;
			for (i = 0; i < analysis->ngroup_columns; i++)
				keep |= analysis->group_columns[i] == column;
		}
		if (!tle->resjunk)
			column++;
		if (keep)
		{
			resno++;
			targets = lappend(targets,
							  makeTargetEntry(copyObject(tle->expr), resno,
											  psprintf("c%d", resno), false));
		}
	}
	foreach(cell, analysis->running_args)
	{
		resno++;
		targets = lappend(targets,
						  makeTargetEntry(copyObject(lfirst(cell)), resno,
										  psprintf("c%d", resno), false));
	}
	foreach(cell, sign_vars)
	{
		resno++;
		targets = lappend(targets,
						  makeTargetEntry(lfirst(cell), resno,
										  psprintf("s%d", resno), false));
	}
	query->targetList = targets;
	query->sortClause = NIL;
	query->groupClause = NIL;
	query->havingQual = NULL;
	query->hasAggs = false;
}

/*
 * MatviewAppendDeltaTerm: append a term (its references already replaced)
 * to the UNION ALL of terms: its rows with weight sign times the product of
 * its delta rows' signs.
 */
void
MatviewAppendDeltaTerm(StringInfo sql, MatviewAnalysis *analysis,
					   Query *term, List *sign_vars, int sign, bool group_keys)
{
	int			ncolumns = group_keys ?
		analysis->ngroup_columns + list_length(analysis->running_args) :
		analysis->ncolumns;
	StringInfoData weight;
	int			i;

	term_target_list(analysis, term, sign_vars);
	initStringInfo(&weight);
	appendStringInfoString(&weight, sign > 0 ? "1" : "-1");
	for (i = 1; i <= list_length(sign_vars); i++)
		appendStringInfo(&weight, " OPERATOR(pg_catalog.*) __t.s%d", i);
	appendStringInfo(sql, "%sSELECT %s, %s AS w FROM (%s) __t(%s",
					 sql->len > 0 ? "\nUNION ALL\n" : "",
					 SqlNumberedColumns("c", ncolumns, "__t"), weight.data,
					 pg_get_querydef(term, false),
					 SqlNumberedColumns("c", ncolumns, NULL));
	for (i = 1; i <= list_length(sign_vars); i++)
		appendStringInfo(sql, ", s%d", i);
	appendStringInfoChar(sql, ')');
}

/*
 * The references (bits in the order of query_for_term's masks) whose
 * source's delta has no rows (its position at its ceiling).  A term that
 * reads one adds nothing: a lookup table nobody edited costs its terms
 * nothing.
 */
static uint32
empty_delta_references(MatviewAnalysis *analysis)
{
	uint32		empty = 0;
	int			rtindex;
	int			reference = 0;

	for (rtindex = 1; rtindex <= list_length(analysis->query->rtable); rtindex++)
	{
		int			index = analysis->rte_source[rtindex];
		MatviewSource *source;

		if (index < 0)
			continue;
		source = list_nth(analysis->sources, index);
		if (source->has_position && source->position >= source->ceiling)
			empty |= 1U << reference;
		reference++;
	}
	return empty;
}

/*
 * MatviewInnerDeltaTermsSql: MatviewDeltaTermsSql of a view without left
 * outer joins: rows (c1..cn, w) whose weights w, summed per row, are the
 * view's net change; with group_keys, c1..ck are the group keys of every
 * row that changed.
 */
char *
MatviewInnerDeltaTermsSql(MatviewAnalysis *analysis, bool group_keys)
{
	StringInfoData sql;
	uint32		empty = empty_delta_references(analysis);
	uint32		mask;

	Assert(group_keys == analysis->grouped);
	initStringInfo(&sql);
	for (mask = 1; mask < (1U << analysis->nreferences); mask++)
	{
		List	   *sign_vars;
		Query	   *term;

		if ((mask & empty) != 0)
			continue;
		term = query_for_term(analysis, mask, &sign_vars);

		MatviewAppendDeltaTerm(&sql, analysis, term, sign_vars,
							   list_length(sign_vars) % 2 == 1 ? 1 : -1,
							   group_keys);
	}
	return sql.data;
}

/* MatviewBoundedQuerySql: the view's query over the sources' states. */
char *
MatviewBoundedQuerySql(MatviewAnalysis *analysis)
{
	List	   *sign_vars;

	return pg_get_querydef(query_for_term(analysis, 0, &sign_vars), false);
}

/*
 * MatviewStateTermSql: the rows (c1..ck group keys, then the aggregates'
 * arguments) of a view kept by running values, over the sources' states.
 */
char *
MatviewStateTermSql(MatviewAnalysis *analysis)
{
	List	   *sign_vars;
	Query	   *term = query_for_term(analysis, 0, &sign_vars);

	term_target_list(analysis, term, sign_vars);
	return pg_get_querydef(term, false);
}

/*
 * MatviewTouchedGroupsQuerySql: the view's query restricted to the groups
 * whose keys are the rows of the CTE groups_name (columns c1..ck): the
 * CTE joins the query, its whole row equal (NULLs equal) to the row of the
 * group expressions, a hashable condition.
 */
char *
MatviewTouchedGroupsQuerySql(MatviewAnalysis *analysis, const char *groups_name)
{
	List	   *sign_vars;
	Query	   *query = query_for_term(analysis, 0, &sign_vars);
	RangeTblEntry *rte = makeNode(RangeTblEntry);
	RowExpr    *row = makeNode(RowExpr);
	RangeTblRef *ref = makeNode(RangeTblRef);
	List	   *colnames = NIL;
	OpExpr	   *equal;
	int			i;

	for (i = 0; i < analysis->ngroup_columns; i++)
	{
		TargetEntry *tle = NULL;
		ListCell   *cell;
		int			column = 0;

		foreach(cell, query->targetList)
		{
			if (((TargetEntry *) lfirst(cell))->resjunk)
				continue;
			if (column++ == analysis->group_columns[i])
				tle = lfirst(cell);
		}
		row->args = lappend(row->args, copyObject(tle->expr));
		colnames = lappend(colnames, makeString(psprintf("c%d", i + 1)));
		rte->coltypes = lappend_oid(rte->coltypes, exprType((Node *) tle->expr));
		rte->coltypmods = lappend_int(rte->coltypmods, exprTypmod((Node *) tle->expr));
		rte->colcollations = lappend_oid(rte->colcollations,
										 exprCollation((Node *) tle->expr));
	}
	row->row_typeid = RECORDOID;
	row->row_format = COERCE_EXPLICIT_CALL;
	row->colnames = colnames;
	row->location = -1;

	rte->rtekind = RTE_CTE;
	rte->ctename = pstrdup(groups_name);
	rte->ctelevelsup = 0;
	rte->eref = makeAlias(groups_name, colnames);
	rte->inFromCl = true;
	query->rtable = lappend(query->rtable, rte);
	ref->rtindex = list_length(query->rtable);
	query->jointree->fromlist = lappend(query->jointree->fromlist, ref);

	equal = (OpExpr *) make_opclause(RECORD_EQ_OP, BOOLOID, false,
									 (Expr *) row,
									 (Expr *) makeVar(ref->rtindex, InvalidAttrNumber,
													  RECORDOID, -1, InvalidOid, 0),
									 InvalidOid, InvalidOid);
	equal->opfuncid = F_RECORD_EQ;
	query->jointree->quals = make_and_qual(query->jointree->quals,
										   (Node *) equal);
	return pg_get_querydef(query, false);
}

/*
 * Entry points for the terms of left outer joins (matview_outer.c), which
 * read the same sources the same way.
 */
Query *
MatviewSourceSubquery(MatviewSource *source, bool delta, int *natts)
{
	return source_subquery(source, delta, true, natts);
}

void
MatviewReplaceReference(Query *query, int rtindex, Query *subquery)
{
	replace_reference(query, rtindex, subquery);
}

Query *
MatviewAnalyzeInternal(const char *sql)
{
	return analyze_internal(sql);
}

char *
MatviewNullColumns(Oid relid, int *natts)
{
	return attribute_list(relid, true, natts);
}
