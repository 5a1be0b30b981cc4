/*-------------------------------------------------------------------------
 *
 * matview_analyze.c
 *	  What a materialized view's query reads, and whether it can be kept
 *	  equal to its query by signed deltas.
 *
 * The query is analysed (and rewritten) as the pipeline owner with the
 * pipeline's search_path.  Every table it reads is a source, classified by
 * how its changes can be read (matview_internal.h).  The query can be kept
 * by deltas when it is a join of tables (inner joins, left outer
 * equi-joins of one table, left joins whose NULL-padded rows WHERE
 * rejects as inner joins, WHERE, projections),
 * optionally grouped with the groups' keys in its output; anything else
 * gets a specific reason, with the position in the query where there is
 * one ("window function rank() at position 42"), and the view is
 * recomputed in full.  The first reason found is the one reported.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/matview_analyze.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "access/sysattr.h"
#include "catalog/pg_class.h"
#include "catalog/pg_proc.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/clauses.h"
#include "optimizer/optimizer.h"
#include "optimizer/tlist.h"
#include "parser/parsetree.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/rel.h"
#include "utils/lsyscache.h"
#include "utils/typcache.h"

#include "capture.h"
#include "flow_definition.h"
#include "matview_internal.h"
#include "user_sql.h"

/* A reason found while walking expressions. */
typedef struct ReasonWalk
{
	char	   *reason;
	Oid			funcid;			/* set by the function checker */
} ReasonWalk;

const char *
MatviewSourceKindName(MatviewSourceKind kind)
{
	switch (kind)
	{
		case MATVIEW_SOURCE_APPEND_ONLY:
			return "append_only";
		case MATVIEW_SOURCE_CHANGE_FEED:
			return "change_feed";
		case MATVIEW_SOURCE_PLAIN:
			return "plain";
	}
	return "plain";
}

/*
 * MatviewPlainSourceDelta: a plain table is read by deltas through change
 * capture (src/capture.h) when the pipeline owner may capture it; the
 * reason why not (the owner may not create triggers on it, it is
 * partitioned, unlogged, ...) becomes the view's fallback reason.  The
 * apply reads the delta from the log CaptureBegin names, like a change
 * feed (matview_apply.c).
 */
bool
MatviewPlainSourceDelta(const PipelineDesc *pipeline, MatviewSource *source,
						char **reason)
{
	return CaptureAvailable(source->relid, pipeline->owner, reason);
}

static void
set_reason(MatviewAnalysis *analysis, char *reason)
{
	if (analysis->reason == NULL)
		analysis->reason = reason;
}

static char *
at_position(int location)
{
	return location >= 0 ? psprintf(" at position %d", location + 1) : "";
}

/* Record the first non-immutable function of a node. */
static bool
mutable_checker(Oid funcid, void *context)
{
	ReasonWalk *walk = (ReasonWalk *) context;

	if (func_volatile(funcid) == PROVOLATILE_IMMUTABLE)
		return false;
	walk->funcid = funcid;
	return true;
}

/*
 * The first volatile or stable function, window function or subquery of
 * an expression tree: each makes deltas disagree with a recompute (the
 * function's result changes between updates; a window or a subquery looks
 * at rows the delta does not carry).
 */
static bool
reason_walker(Node *node, ReasonWalk *walk)
{
	if (node == NULL || walk->reason != NULL)
		return false;
	if (IsA(node, WindowFunc))
	{
		walk->reason = psprintf("window function %s()%s",
								get_func_name(((WindowFunc *) node)->winfnoid),
								at_position(exprLocation(node)));
		return true;
	}
	if (IsA(node, SubLink))
	{
		walk->reason = psprintf("subquery in an expression%s",
								at_position(exprLocation(node)));
		return true;
	}
	if (check_functions_in_node(node, mutable_checker, walk))
	{
		walk->reason = psprintf("%s function %s()%s",
								func_volatile(walk->funcid) == PROVOLATILE_VOLATILE ?
								"volatile" : "stable",
								get_func_name(walk->funcid),
								at_position(exprLocation(node)));
		return true;
	}
	return expression_tree_walker(node, reason_walker, (void *) walk);
}

/* Reasons of the query's own clauses, before its expressions. */
static void
analyze_clauses(Query *query, MatviewAnalysis *analysis)
{
	if (query->setOperations != NULL)
	{
		SetOperationStmt *setop = (SetOperationStmt *) query->setOperations;

		set_reason(analysis, psprintf("set operation %s",
									  setop->op == SETOP_UNION ? "UNION" :
									  setop->op == SETOP_INTERSECT ? "INTERSECT" :
									  "EXCEPT"));
	}
	if (query->cteList != NIL)
		set_reason(analysis, pstrdup("WITH query"));
	if (query->hasDistinctOn)
	{
		SortGroupClause *first = linitial(query->distinctClause);
		TargetEntry *tle = get_sortgroupclause_tle(first, query->targetList);

		set_reason(analysis, psprintf("DISTINCT ON%s",
									  at_position(exprLocation((Node *) tle->expr))));
	}
	else if (query->distinctClause != NIL)
		set_reason(analysis, pstrdup("DISTINCT"));
	if (query->limitCount != NULL)
		set_reason(analysis, psprintf("LIMIT%s",
									  at_position(exprLocation(query->limitCount))));
	if (query->limitOffset != NULL)
		set_reason(analysis, psprintf("OFFSET%s",
									  at_position(exprLocation(query->limitOffset))));
	if (query->groupingSets != NIL)
		set_reason(analysis, pstrdup("GROUPING SETS, ROLLUP or CUBE"));
	if (query->hasTargetSRFs)
		set_reason(analysis, pstrdup("set-returning function in the select list"));
	if (query->rowMarks != NIL)
		set_reason(analysis, pstrdup("FOR UPDATE or FOR SHARE"));
	if (query->hasAggs && query->groupClause == NIL)
		set_reason(analysis, pstrdup("aggregate without GROUP BY (one group: recomputing it is the full recompute)"));
}

/* The position of the first token of a raw FROM item, or -1. */
static int
raw_from_location(Node *node)
{
	if (IsA(node, JoinExpr))
		return raw_from_location(((JoinExpr *) node)->larg);
	if (IsA(node, RangeVar))
		return ((RangeVar *) node)->location;
	return -1;
}

/*
 * The positions of the joins of the raw FROM clause, in the order
 * analyze_join_node meets them (a join, its left, its right): where its
 * right side starts (join trees keep no position after analysis).
 */
static void
raw_join_positions(Node *node, List **positions)
{
	if (IsA(node, JoinExpr))
	{
		JoinExpr   *join = (JoinExpr *) node;

		*positions = lappend_int(*positions, raw_from_location(join->rarg));
		raw_join_positions(join->larg, positions);
		raw_join_positions(join->rarg, positions);
	}
}

/*
 * Does the WHERE clause reject the NULL-padded rows of a left join whose
 * right side is one table (a strict condition on its columns)?  Then the
 * join is an inner join, as the planner would reduce it.
 */
static bool
where_rejects_padding(Query *query, JoinExpr *join)
{
	return IsA(join->rarg, RangeTblRef) &&
		bms_is_member(((RangeTblRef *) join->rarg)->rtindex,
					  find_nonnullable_rels(query->jointree->quals));
}

/*
 * Reasons of the FROM clause: only tables, joined by inner joins and the
 * left outer joins matview_outer.c keeps.  positions: raw_join_positions,
 * *next the index of this join among them.
 */
static void
analyze_join_node(Query *query, Node *node, MatviewAnalysis *analysis,
				  List *positions, int *next)
{
	if (IsA(node, JoinExpr))
	{
		JoinExpr   *join = (JoinExpr *) node;
		int			index = (*next)++;
		char	   *where = at_position(index < list_length(positions) ?
										list_nth_int(positions, index) : -1);
		char	   *reason = NULL;

		if (join->jointype == JOIN_LEFT && where_rejects_padding(query, join))
		{
			join->jointype = JOIN_INNER;
			rt_fetch(join->rtindex, query->rtable)->jointype = JOIN_INNER;
		}
		else if (join->jointype == JOIN_LEFT)
			reason = MatviewOuterJoinReason(query, join, where, analysis);
		else if (join->jointype == JOIN_RIGHT)
			reason = psprintf("right outer join%s", where);
		else if (join->jointype == JOIN_FULL)
			reason = psprintf("full outer join%s", where);
		if (reason != NULL)
			set_reason(analysis, reason);
		analyze_join_node(query, join->larg, analysis, positions, next);
		analyze_join_node(query, join->rarg, analysis, positions, next);
	}
	else if (IsA(node, RangeTblRef))
	{
		RangeTblEntry *rte = rt_fetch(((RangeTblRef *) node)->rtindex,
									  query->rtable);

		if (rte->rtekind == RTE_SUBQUERY)
			set_reason(analysis, psprintf("subquery or view %s in FROM",
										  quote_identifier(rte->eref->aliasname)));
		else if (rte->rtekind == RTE_FUNCTION)
			set_reason(analysis, pstrdup("function in FROM"));
		else if (rte->rtekind == RTE_VALUES)
			set_reason(analysis, pstrdup("VALUES in FROM"));
		else if (rte->rtekind != RTE_RELATION)
			set_reason(analysis, pstrdup("unsupported item in FROM"));
		else if (rte->relkind != RELKIND_RELATION)
			set_reason(analysis, psprintf("%s is not a plain table",
										  quote_identifier(rte->eref->aliasname)));
	}
}

/* The source of a table, added to the analysis when new; its index. */
static int
analysis_source(const PipelineDesc *pipeline, MatviewAnalysis *analysis,
				Oid relid)
{
	ListCell   *cell;
	MatviewSource *source;
	FlowDesc   *flow;
	char	   *reason = NULL;

	foreach(cell, analysis->sources)
	{
		if (((MatviewSource *) lfirst(cell))->relid == relid)
			return foreach_current_index(cell);
	}
	source = palloc0(sizeof(MatviewSource));
	source->relid = relid;
	source->name = CatalogQualifiedRelationName(relid);
	source->kind = MATVIEW_SOURCE_PLAIN;
	flow = CatalogGetFlowByTarget(relid, true);
	if (flow != NULL && flow->pipeline_id == pipeline->pipeline_id)
	{
		if (flow->type == FLOW_TYPE_AUTO_CDC)
		{
			source->kind = MATVIEW_SOURCE_CHANGE_FEED;
			source->cdc_flow = flow;
		}
		else if (flow->type == FLOW_TYPE_BRONZE || flow->type == FLOW_TYPE_SILVER)
			source->kind = MATVIEW_SOURCE_APPEND_ONLY;
		else
			reason = psprintf("table %s is the target of a %s flow, whose changes are not tracked",
							  source->name, flow->flow_type);
	}
	else if (!MatviewPlainSourceDelta(pipeline, source, &reason))
		Assert(reason != NULL);
	source->reason = reason;
	analysis->sources = lappend(analysis->sources, source);
	return list_length(analysis->sources) - 1;
}


/* Output columns, and the range table entries that read sources. */
static void
analyze_references(const PipelineDesc *pipeline, MatviewAnalysis *analysis)
{
	Query	   *query = analysis->query;
	ListCell   *cell;
	int			rtindex = 0;

	analysis->rte_source = palloc0(sizeof(int) * (list_length(query->rtable) + 1));
	foreach(cell, query->rtable)
	{
		RangeTblEntry *rte = lfirst(cell);

		analysis->rte_source[++rtindex] = -1;
		if (rte->rtekind == RTE_RELATION && rte->relkind == RELKIND_RELATION)
		{
			int			index = analysis_source(pipeline, analysis, rte->relid);
			MatviewSource *source = list_nth(analysis->sources, index);

			analysis->rte_source[rtindex] = index;
			analysis->nreferences++;
			if (source->reason != NULL)
				set_reason(analysis, source->reason);
		}
	}
	if (analysis->nreferences > MATVIEW_MAX_REFERENCES)
		set_reason(analysis, psprintf("more than %d table references",
									  MATVIEW_MAX_REFERENCES));

	analysis->column_names = palloc0(sizeof(char *) *
									 (list_length(query->targetList) + 1));
	foreach(cell, query->targetList)
	{
		TargetEntry *tle = lfirst(cell);

		if (!tle->resjunk)
			analysis->column_names[analysis->ncolumns++] = pstrdup(tle->resname);
	}
}

/*
 * Can rows of this type be matched as a bag (hashed and sorted, NULLs
 * equal)?  The view's rows, or its groups' keys, are matched that way.
 */
static void
check_matchable(MatviewAnalysis *analysis, TargetEntry *tle)
{
	Oid			type = exprType((Node *) tle->expr);
	TypeCacheEntry *entry = lookup_type_cache(type, TYPECACHE_EQ_OPR |
											  TYPECACHE_CMP_PROC |
											  TYPECACHE_HASH_PROC);

	if (!OidIsValid(entry->eq_opr) || !OidIsValid(entry->cmp_proc) ||
		!OidIsValid(entry->hash_proc))
		set_reason(analysis, psprintf("column %s of type %s cannot be compared for equality by hashing and sorting",
									  quote_identifier(tle->resname),
									  format_type_be(type)));
}

/* Grouped queries: every group key is an output column. */
static void
analyze_groups(MatviewAnalysis *analysis)
{
	Query	   *query = analysis->query;
	ListCell   *cell;

	analysis->grouped = true;
	analysis->group_columns = palloc0(sizeof(int) * list_length(query->groupClause));
	foreach(cell, query->groupClause)
	{
		SortGroupClause *clause = lfirst(cell);
		ListCell   *tcell;
		int			column = 0;
		bool		found = false;

		foreach(tcell, query->targetList)
		{
			TargetEntry *tle = lfirst(tcell);

			if (tle->resjunk)
				continue;
			if (tle->ressortgroupref == clause->tleSortGroupRef)
			{
				analysis->group_columns[analysis->ngroup_columns++] = column;
				check_matchable(analysis, tle);
				found = true;
				break;
			}
			column++;
		}
		if (!found)
			set_reason(analysis, pstrdup("a GROUP BY expression is not in the select list"));
	}
}

/*
 * MatviewAnalyze: analyse query_text as the current user (the caller runs
 * it as the pipeline owner under UserSqlSettingsEnter).  A query not yet
 * validated (at creation) is planned as well, which finds what only the
 * planner rejects; one validated (at each update) is analysed and its
 * permissions checked, not planned: its plan would be thrown away.
 */
void
MatviewAnalyze(const PipelineDesc *pipeline, const char *query_text,
			   bool validated, MatviewAnalysis *analysis)
{
	RawStmt    *raw = UserSqlQuery(query_text, "query of a materialized view");
	TupleDesc	desc;
	ReasonWalk	walk = {0};
	ListCell   *cell;
	List	   *positions = NIL;
	int			next_join = 0;

	memset(analysis, 0, sizeof(MatviewAnalysis));
	/* before the analysis, which turns the raw join tree into its own */
	foreach(cell, ((SelectStmt *) raw->stmt)->fromClause)
		raw_join_positions(lfirst(cell), &positions);
	analysis->query = validated ? UserSqlAnalyzeOnly(raw, query_text, 0, NULL, true) :
		UserSqlAnalyzeQuery(raw, query_text, 0, NULL, NULL, &desc);
	/* every table the query reads, at any depth (the flow's inputs) */
	foreach(cell, UserSqlRelationEntries(analysis->query))
	{
		RangeTblEntry *rte = lfirst(cell);

		if (rte->relkind == RELKIND_RELATION)
			(void) analysis_source(pipeline, analysis, rte->relid);
	}

	analyze_clauses(analysis->query, analysis);
	foreach(cell, analysis->query->jointree->fromlist)
		analyze_join_node(analysis->query, lfirst(cell), analysis, positions,
						  &next_join);
	analyze_references(pipeline, analysis);
	if (analysis->outer_joins != NIL && analysis->reason == NULL)
		set_reason(analysis, MatviewOuterTermsReason(analysis));
	(void) query_tree_walker(analysis->query, reason_walker, (void *) &walk,
							 QTW_IGNORE_RANGE_TABLE);
	if (walk.reason != NULL)
		set_reason(analysis, walk.reason);
	if (analysis->query->groupClause != NIL)
		analyze_groups(analysis);
	else
	{
		foreach(cell, analysis->query->targetList)
		{
			if (!((TargetEntry *) lfirst(cell))->resjunk)
				check_matchable(analysis, lfirst(cell));
		}
	}
	if (analysis->nreferences == 0)
		set_reason(analysis, pstrdup("the query reads no table"));
	analysis->incremental = analysis->reason == NULL;
}

/* One source's entry of MatviewSourceColumnsJson. */
static void
append_source_columns(StringInfo json, MatviewSource *source,
					  Bitmapset *selected)
{
	Relation	rel = relation_open(source->relid, AccessShareLock);
	TupleDesc	desc = RelationGetDescr(rel);
	bool		whole_row = bms_is_member(0 - FirstLowInvalidHeapAttributeNumber,
										  selected);
	bool		first = true;
	int			i;

	escape_json(json, source->name);
	appendStringInfoString(json, ": [");
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute attr = TupleDescAttr(desc, i);

		if (attr->attisdropped ||
			!(whole_row || bms_is_member(attr->attnum - FirstLowInvalidHeapAttributeNumber,
										 selected)))
			continue;
		appendStringInfo(json, "%s{\"attnum\": %d, \"name\": ", first ? "" : ", ",
						 attr->attnum);
		escape_json(json, NameStr(attr->attname));
		appendStringInfoString(json, ", \"type\": ");
		escape_json(json, format_type_extended(attr->atttypid, -1,
											   FORMAT_TYPE_FORCE_QUALIFY));
		appendStringInfo(json, ", \"typmod\": %d}", attr->atttypmod);
		first = false;
	}
	appendStringInfoChar(json, ']');
	relation_close(rel, AccessShareLock);
}

/*
 * MatviewSourceColumnsJson: the columns each source's references select
 * (selectedCols of the analysed query, at any depth; a whole-row reference
 * selects them all).
 */
char *
MatviewSourceColumnsJson(MatviewAnalysis *analysis)
{
	Bitmapset **columns = palloc0(sizeof(Bitmapset *) *
								  (list_length(analysis->sources) + 1));
	StringInfoData json;
	ListCell   *cell;

	/* the columns every reference to a source selects, at any depth */
	foreach(cell, UserSqlRelationEntries(analysis->query))
	{
		RangeTblEntry *rte = lfirst(cell);
		ListCell   *source;

		if (rte->relkind != RELKIND_RELATION)
			continue;
		foreach(source, analysis->sources)
		{
			if (((MatviewSource *) lfirst(source))->relid == rte->relid)
				columns[foreach_current_index(source)] =
					bms_add_members(columns[foreach_current_index(source)],
									rte->selectedCols);
		}
	}
	initStringInfo(&json);
	appendStringInfoChar(&json, '{');
	foreach(cell, analysis->sources)
	{
		if (foreach_current_index(cell) > 0)
			appendStringInfoString(&json, ", ");
		append_source_columns(&json, lfirst(cell),
							  columns[foreach_current_index(cell)]);
	}
	appendStringInfoChar(&json, '}');
	return json.data;
}
