/*-------------------------------------------------------------------------
 *
 * matview_delta.c
 *	  The SQL that keeps a materialized view by signed deltas, made by
 *	  rewriting the view's analysed query tree and deparsing it.
 *
 * A view maintained by deltas is a join of n table references R1..Rn
 * (inner joins, WHERE, projection).  Each reference's source gives, for an
 * update, its new state Ri (the table as of the source's ceiling), its
 * signed delta dRi (rows removed, sign -1, and added, sign +1) and so its
 * old state Ri - dRi.  Changing the references one at a time, in an order
 * p1..pn, telescopes the view's change into n terms:
 *
 *	 Q(new states) - Q(old states)
 *	   = sum over k of Q(Rp1..Rp(k-1) new, dRpk, Rp(k+1)..Rpn old)
 *
 * (for two: dR x S_old + R_new x dS), where a row of a term weighs the
 * product of its signed rows' signs.  Every term is the view's own query
 * with its references replaced by subqueries: the delta (which carries a
 * __medallion_sign column), the bounded new state, or the old state (an
 * append-only source's rows up to its position; for another, the table
 * with sign 1 and its delta with signs negated, as one UNION ALL).
 * Summing the weights of equal rows gives the view's net change as a bag.
 * Grouped views take the group keys of the terms' rows instead: those
 * groups are recomputed.  A reference becomes a subquery whose columns
 * are the table's attributes in order (a dropped one as a NULL
 * placeholder), so the query's Vars keep their meaning.
 *
 * The order puts the largest delta first: its term joins it to the other
 * references' old states, each a table plus a small delta, and the terms
 * of the small deltas join them to the new state of the large one, a
 * table.  (Inclusion-exclusion over the new states, which this replaced,
 * needs 2^n - 1 terms, and its terms joining two deltas were planned from
 * two row estimates at once, a nested loop rescanning one delta per row
 * of the other when both were taken for a row or two.)  Left outer joins
 * split into inner, NULL-padded and semi-joined parts, each kept by
 * inclusion-exclusion terms (matview_outer.c).
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/matview_delta.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/nbtree.h"
#include "access/relation.h"
#include "catalog/pg_am.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "executor/spi.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "parser/parsetree.h"
#include "port/pg_bitutils.h"
#include "storage/bufmgr.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/ruleutils.h"
#include "utils/typcache.h"

#include "matview_internal.h"
#include "row_range.h"
#include "spi_util.h"
#include "sql_names.h"
#include "statement_cache.h"
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

#define MAX_DELTA_PARAMETERS (2 * MATVIEW_MAX_REFERENCES)

/*
 * The types of the parameters a delta may name (MatviewParameterizeRanges):
 * a position and a ceiling per source, every one int8.
 */
static Oid *
delta_parameter_types(void)
{
	static Oid	types[MAX_DELTA_PARAMETERS];

	if (types[0] != INT8OID)
	{
		int			i;

		for (i = 0; i < MAX_DELTA_PARAMETERS; i++)
			types[i] = INT8OID;
	}
	return types;
}

/*
 * Analyse SQL text medallion made (a source's state or delta), to be
 * deparsed into a statement: permissions are checked when that runs.  The
 * text may name the sources' ranges as parameters.
 */
static Query *
analyze_internal(const char *sql)
{
	List	   *raw = UserSqlRawParse(sql);

	if (list_length(raw) != 1)
		elog(ERROR, "internal query is not one statement: %s", sql);
	return UserSqlAnalyzeOnly(linitial_node(RawStmt, raw), sql,
							  MAX_DELTA_PARAMETERS, delta_parameter_types(),
							  false);
}

/* A source's position (or ceiling) as SQL text: a number or a parameter. */
static char *
range_bound_sql(MatviewSource *source, bool ceiling)
{
	if (source->first_parameter > 0)
		return psprintf("$%d", source->first_parameter + (ceiling ? 1 : 0));
	return psprintf(INT64_FORMAT, ceiling ? source->ceiling : source->position);
}

/* MatviewDeltaRows: see matview_internal.h. */
int64
MatviewDeltaRows(const MatviewSource *source)
{
	return Max(source->ceiling - source->position, 0);
}

/*
 * MatviewParameterizeRanges: see matview_internal.h.
 */
void
MatviewParameterizeRanges(MatviewAnalysis *analysis)
{
	ListCell   *cell;
	int			n = 0;

	Assert(2 * list_length(analysis->sources) <= MAX_DELTA_PARAMETERS);
	analysis->parameter_values = palloc(sizeof(Datum) * 2 *
										list_length(analysis->sources));
	foreach(cell, analysis->sources)
	{
		MatviewSource *source = lfirst(cell);

		source->first_parameter = n + 1;
		analysis->parameter_values[n++] = Int64GetDatum(source->position);
		analysis->parameter_values[n++] = Int64GetDatum(source->ceiling);
	}
	analysis->nparameters = n;
}

/*
 * Deltas of fewer rows than this are planned alike: a plan made for one
 * row serves fifteen.
 */
#define DELTA_SIZE_CLASS_MIN_ROWS 16
/* A delta's relation counts its size in the plan class from 1 MB. */
#define DELTA_RELATION_CLASS_MIN_BLOCKS 128

/*
 * The size class of the relation a source's delta is read from: 0 below
 * 1 MB, then one more each time it doubles.  A change feed grows from
 * empty to 8 MB between two trims (change_feed.c), a bronze table for
 * ever, a capture log until vacuum reclaims what its readers pruned: a
 * plan made when the range was all of a small relation (a sequential scan)
 * is not the one for the same range of a relation eight times larger (its
 * _row_id index).
 */
static int
delta_relation_size_class(const MatviewSource *source)
{
	Relation	relation;
	BlockNumber blocks;

	if (!OidIsValid(source->delta_relid))
		return 0;
	relation = relation_open(source->delta_relid, AccessShareLock);
	blocks = RelationGetNumberOfBlocks(relation);
	relation_close(relation, NoLock);
	if (blocks < DELTA_RELATION_CLASS_MIN_BLOCKS)
		return 0;
	return pg_leftmost_one_pos32(blocks / DELTA_RELATION_CLASS_MIN_BLOCKS) + 1;
}

/*
 * The plan class of the delta statement (statement_cache.h): per source,
 * the size of its range rounded down to a power of two and the size class
 * of the relation the range is read from, so that a kept plan is reused
 * while both stay within a factor of two, and a backlog, or a feed grown
 * since, gets a plan of its own.
 */
static char *
delta_plan_class(MatviewAnalysis *analysis)
{
	StringInfoData plan_class;
	ListCell   *cell;

	initStringInfo(&plan_class);
	foreach(cell, analysis->sources)
	{
		MatviewSource *source = lfirst(cell);
		int64		rows = MatviewDeltaRows(source);
		int			size_class = 0;

		if (rows >= DELTA_SIZE_CLASS_MIN_ROWS)
			size_class = pg_leftmost_one_pos64((uint64) rows);
		else if (rows > 0)
			size_class = 1;
		appendStringInfo(&plan_class, "%s%d:%d", plan_class.len > 0 ? "," : "",
						 size_class, delta_relation_size_class(source));
	}
	return plan_class.data;
}

/*
 * MatviewRunDelta: see matview_internal.h.
 */
void
MatviewRunDelta(MatviewAnalysis *analysis, const char *sql, FlowResult *result)
{
	StatementCacheExecute(sql, delta_plan_class(analysis),
						  analysis->nparameters, delta_parameter_types(),
						  analysis->parameter_values, SPI_OK_SELECT,
						  &analysis->statement_use);
	result->rows_written += SpiGetInt64(0, 1, NULL) + SpiGetInt64(0, 2, NULL);
	result->changed = result->rows_written > 0;
}

/* How a term reads a table reference. */
typedef enum ReferenceRole
{
	REFERENCE_NEW_STATE,
	REFERENCE_DELTA,
	REFERENCE_OLD_STATE
} ReferenceRole;

/*
 * The FROM and WHERE of a source's delta: its rows in (position, ceiling],
 * and for a change feed or capture log those with a sign (not a reset
 * marker).
 *
 * The range is a call of medallion.row_id_in_range, which the planner
 * estimates at the range's size (row_range.c): the range always lies past
 * the statistics of the feed's last ANALYZE, where
 * "_row_id > a AND _row_id <= b" reads as a row or two.
 */
static char *
delta_from_sql(MatviewSource *source)
{
	char	   *range = RowRangeConditionSql(quote_identifier(source->delta_id_column),
											 range_bound_sql(source, false),
											 range_bound_sql(source, true));

	if (source->delta_sign_column == NULL)
		return psprintf("FROM %s WHERE %s", source->delta_relation, range);
	return psprintf("FROM %s WHERE %s AND %s OPERATOR(pg_catalog.<>) 0",
					source->delta_relation, range,
					quote_identifier(source->delta_sign_column));
}

/*
 * The SELECT of a source's delta: its columns (a change feed and a capture
 * log name them as the table) and their sign, negated for an old state.
 */
static char *
delta_select_sql(MatviewSource *source, const char *columns, bool negate)
{
	if (source->delta_sign_column == NULL)
		return psprintf("SELECT %s, %s::pg_catalog.int8 AS " SIGN_COLUMN " %s",
						columns, negate ? "-1" : "1", delta_from_sql(source));
	return psprintf("SELECT %s, %s%s::pg_catalog.int8 AS " SIGN_COLUMN " %s",
					columns, negate ? "OPERATOR(pg_catalog.-) " : "",
					quote_identifier(source->delta_sign_column),
					delta_from_sql(source));
}

/*
 * For a value (SQL text) of a type whose equal values may look different
 * (numeric 1.0 and 1.00, float 0 and -0, 'a' and 'A' in a case-insensitive
 * collation), an SQL expression that tells such values apart, to group by
 * beside the value; NULL when equal values look the same.  Equal values look
 * the same when the type's btree equality is image equality
 * (BTEQUALIMAGE_PROC: integers, text in a deterministic collation, ...)
 * or for a numeric with a scale (every value rounded to it).  Else: a
 * numeric's scale (1.0 = 1.00), a float's text when it is zero (0 = -0),
 * and for any other type its text in the "C" collation (text in a
 * nondeterministic collation, arrays of those, ...).
 */
static char *
distinguishing_sql(const char *value, Oid type, int32 typmod, Oid collation)
{
	Oid			opclass = GetDefaultOpClass(type, BTREE_AM_OID);

	if (type == NUMERICOID)
		return typmod >= 0 ? NULL : psprintf("pg_catalog.scale(%s)", value);
	if (type == FLOAT4OID || type == FLOAT8OID)
		return psprintf("CASE WHEN %s OPERATOR(pg_catalog.=) '0' THEN %s::pg_catalog.text END",
						value, value);
	if (OidIsValid(opclass))
	{
		Oid			input = get_opclass_input_type(opclass);
		Oid			proc = get_opfamily_proc(get_opclass_family(opclass),
											 input, input, BTEQUALIMAGE_PROC);

		if (OidIsValid(proc) &&
			DatumGetBool(OidFunctionCall1Coll(proc, collation,
											  ObjectIdGetDatum(input))))
			return NULL;
	}
	return psprintf("%s::pg_catalog.text COLLATE pg_catalog.\"C\"", value);
}

/*
 * MatviewAppendGroupColumn: see matview_internal.h.
 */
void
MatviewAppendGroupColumn(StringInfo list, const char *value, Oid type,
						 int32 typmod, Oid collation)
{
	char	   *distinguishing = distinguishing_sql(value, type, typmod, collation);

	appendStringInfo(list, "%s%s", list->len > 0 ? ", " : "", value);
	if (distinguishing != NULL)
		appendStringInfo(list, ", %s", distinguishing);
}

/*
 * The delta of a signed source (change feed, capture log) reduced to the
 * net change of the columns the reference reads (read: attribute numbers
 * offset by FirstLowInvalidHeapAttributeNumber), the others NULL: rows
 * equal in those columns are one row whose sign is the sum of theirs, and
 * rows whose signs cancel out are gone.  An SCD type 2 version change the
 * view cannot see (its status, say) is a removed and an added row equal in
 * every column the view reads: 1,000 of a 1,500-row order delta the terms
 * would otherwise join.  Rows are equal when every read column is: by its
 * type's equality, and by what tells equal values apart when they may look
 * different (distinguishing_sql), so that a row kept for another
 * never shows another value.  NULL when it cannot be: a whole-row
 * reference, no column read, or a column without an equality.
 */
static char *
net_delta_select_sql(MatviewSource *source, Bitmapset *read, bool negate)
{
	Relation	rel;
	TupleDesc	desc;
	StringInfoData columns;
	StringInfoData group;
	int			i;

	if (source->delta_sign_column == NULL || bms_is_empty(read) ||
		bms_is_member(0 - FirstLowInvalidHeapAttributeNumber, read))
		return NULL;
	rel = relation_open(source->relid, AccessShareLock);
	desc = RelationGetDescr(rel);
	initStringInfo(&columns);
	initStringInfo(&group);
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute attr = TupleDescAttr(desc, i);
		const char *name = quote_identifier(NameStr(attr->attname));

		if (i > 0)
			appendStringInfoString(&columns, ", ");
		if (attr->attisdropped)
			appendStringInfo(&columns, "NULL::pg_catalog.int4 AS __medallion_dropped_%d",
							 i + 1);
		else if (!bms_is_member(attr->attnum - FirstLowInvalidHeapAttributeNumber, read))
			append_null_attribute(&columns, attr);
		else if (!OidIsValid(lookup_type_cache(attr->atttypid,
											   TYPECACHE_EQ_OPR)->eq_opr))
		{
			relation_close(rel, AccessShareLock);
			return NULL;
		}
		else
		{
			appendStringInfoString(&columns, name);
			MatviewAppendGroupColumn(&group, name, attr->atttypid,
									 attr->atttypmod, attr->attcollation);
		}
	}
	relation_close(rel, AccessShareLock);
	return psprintf("SELECT %s, %spg_catalog.sum(%s)::pg_catalog.int8 AS " SIGN_COLUMN
					" %s GROUP BY %s HAVING pg_catalog.sum(%s) OPERATOR(pg_catalog.<>) 0",
					columns.data, negate ? "OPERATOR(pg_catalog.-) " : "",
					quote_identifier(source->delta_sign_column),
					delta_from_sql(source), group.data,
					quote_identifier(source->delta_sign_column));
}

/*
 * The subquery standing for a source in a term: its delta, its bounded
 * new state (NULL when the table itself is that state), or its old state
 * (see the header); a delta reduced to the columns read (read, see
 * net_delta_select_sql) when it can be.  *signed_rows says whether its
 * last column is a sign.
 */
static Query *
source_subquery(MatviewSource *source, ReferenceRole role, Bitmapset *read,
				int *natts, bool *signed_rows)
{
	char	   *columns = attribute_list(source->relid, false, natts);
	char	   *delta;

	*signed_rows = role != REFERENCE_NEW_STATE;
	if (role == REFERENCE_NEW_STATE || (role == REFERENCE_OLD_STATE &&
										source->kind == MATVIEW_SOURCE_APPEND_ONLY))
	{
		*signed_rows = false;
		if (source->kind != MATVIEW_SOURCE_APPEND_ONLY)
			return NULL;
		return analyze_internal(psprintf("SELECT %s FROM %s WHERE _row_id OPERATOR(pg_catalog.<=) %s",
										 columns, source->name,
										 range_bound_sql(source,
														 role != REFERENCE_OLD_STATE)));
	}
	delta = net_delta_select_sql(source, read, role == REFERENCE_OLD_STATE);
	if (delta == NULL)
		delta = delta_select_sql(source, columns, role == REFERENCE_OLD_STATE);
	if (role == REFERENCE_DELTA)
		return analyze_internal(delta);
	return analyze_internal(psprintf("SELECT %s, 1::pg_catalog.int8 AS " SIGN_COLUMN
									 " FROM %s UNION ALL %s",
									 columns, source->name, delta));
}

/* Make a table reference of the query read a subquery instead. */
static void
replace_reference(Query *query, int rtindex, Query *subquery)
{
	RangeTblEntry *rte = rt_fetch(rtindex, query->rtable);
	List	   *colnames = NIL;
	ListCell   *cell;

	foreach(cell, subquery->targetList)
	{
		TargetEntry *tle = lfirst(cell);

		/* not a GROUP BY expression only, see net_delta_select_sql */
		if (!tle->resjunk)
			colnames = lappend(colnames, makeString(pstrdup(tle->resname)));
	}
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

/*
 * The view's query with each table reference read as roles[its number]
 * says (references numbered in range table order); all new states when
 * roles is NULL.  The sign Vars of the signed references, into sign_vars.
 */
static Query *
query_for_term(MatviewAnalysis *analysis, const ReferenceRole *roles,
			   List **sign_vars)
{
	Query	   *query = copyObject(analysis->query);
	int			rtindex;
	int			reference = 0;

	*sign_vars = NIL;
	for (rtindex = 1; rtindex <= list_length(query->rtable); rtindex++)
	{
		int			index = analysis->rte_source[rtindex];
		ReferenceRole role;
		int			natts;
		bool		signed_rows;
		Query	   *subquery;

		if (index < 0)
			continue;
		role = roles != NULL ? roles[reference] : REFERENCE_NEW_STATE;
		reference++;
		subquery = source_subquery(list_nth(analysis->sources, index), role,
								   rt_fetch(rtindex, analysis->query->rtable)->selectedCols,
								   &natts, &signed_rows);
		if (subquery == NULL)
			continue;
		replace_reference(query, rtindex, subquery);
		if (signed_rows)
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

/* expose_joined_tables' walker: name each column by its table. */
static bool
name_columns_by_table(Node *node, Query *query)
{
	if (node == NULL || IsA(node, Query))
		return false;
	if (IsA(node, Var) && ((Var *) node)->varlevelsup == 0 &&
		rt_fetch(((Var *) node)->varno, query->rtable)->rtekind != RTE_JOIN)
	{
		Var		   *var = (Var *) node;

		var->varnosyn = var->varno;
		var->varattnosyn = var->varattno;
		return false;
	}
	return expression_tree_walker(node, name_columns_by_table, query);
}

/* Drop the aliases of the joins of a jointree. */
static void
drop_join_aliases(Node *node, Query *query)
{
	ListCell   *cell;

	if (node == NULL)
		return;
	if (IsA(node, FromExpr))
		foreach(cell, ((FromExpr *) node)->fromlist)
			drop_join_aliases(lfirst(cell), query);
	else if (IsA(node, JoinExpr))
	{
		JoinExpr   *join = (JoinExpr *) node;
		RangeTblEntry *rte = rt_fetch(join->rtindex, query->rtable);

		join->alias = NULL;
		join->join_using_alias = NULL;
		rte->alias = NULL;
		rte->join_using_alias = NULL;
		drop_join_aliases(join->larg, query);
		drop_join_aliases(join->rarg, query);
	}
}

/*
 * A term reads the sign columns of its signed references, which no join
 * exposes: a table inside an aliased join, "(facts f JOIN customers c
 * USING (customer_id)) j", cannot be named outside it.  So the term's
 * joins lose their aliases and every column is named by its table (the
 * Vars' syntactic referents, which the deparser prefers, become their
 * tables).
 */
static void
expose_joined_tables(Query *query)
{
	drop_join_aliases((Node *) query->jointree, query);
	query_tree_walker(query, name_columns_by_table, query,
					  QTW_IGNORE_RT_SUBQUERIES);
}

/*
 * MatviewSignProductSql: the weight of a term's row, sign (1 or -1) times
 * its signed references' signs, columns __t.s1 .. __t.s<nsigns>.
 */
char *
MatviewSignProductSql(int sign, int nsigns)
{
	StringInfoData weight;
	int			i;

	initStringInfo(&weight);
	appendStringInfoString(&weight, sign > 0 ? "1" : "-1");
	for (i = 1; i <= nsigns; i++)
		appendStringInfo(&weight, " OPERATOR(pg_catalog.*) __t.s%d", i);
	return weight.data;
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
	int			i;

	term_target_list(analysis, term, sign_vars);
	expose_joined_tables(term);
	appendStringInfo(sql, "%sSELECT %s, %s AS w FROM (%s) __t(%s",
					 sql->len > 0 ? "\nUNION ALL\n" : "",
					 SqlNumberedColumns("c", ncolumns, "__t"),
					 MatviewSignProductSql(sign, list_length(sign_vars)),
					 pg_get_querydef(term, false),
					 SqlNumberedColumns("c", ncolumns, NULL));
	for (i = 1; i <= list_length(sign_vars); i++)
		appendStringInfo(sql, ", s%d", i);
	appendStringInfoChar(sql, ')');
}

/*
 * The number of changes in each reference's delta (its source's range),
 * references numbered as in query_for_term.  An empty delta changes
 * nothing: its term is left out and its old state is its new state, so a
 * lookup table nobody edited costs the terms nothing.
 */
static int64 *
reference_delta_sizes(MatviewAnalysis *analysis)
{
	int64	   *sizes = palloc0(sizeof(int64) * (analysis->nreferences + 1));
	int			rtindex;
	int			reference = 0;

	for (rtindex = 1; rtindex <= list_length(analysis->query->rtable); rtindex++)
	{
		int			index = analysis->rte_source[rtindex];
		MatviewSource *source;

		if (index < 0)
			continue;
		source = list_nth(analysis->sources, index);
		sizes[reference++] = MatviewDeltaRows(source);
	}
	return sizes;
}

/*
 * MatviewInnerDeltaTermsSql: MatviewDeltaTermsSql of a view without left
 * outer joins: rows (c1..cn, w) whose weights w, summed per row, are the
 * view's net change; with group_keys, c1..ck are the group keys of every
 * row that changed.  The telescoping terms of the header, the references
 * changed in the order of their deltas' sizes, largest first (ties in
 * reference order).  With eager_terms, a grouped view kept by running
 * values appends there, instead, the terms matview_eager.c can aggregate
 * eagerly (rows of group keys and weighted partials), counted in *neager.
 */
char *
MatviewInnerDeltaTermsSql(MatviewAnalysis *analysis, bool group_keys,
						  StringInfo eager_terms, int *neager)
{
	int			n = analysis->nreferences;
	int64	   *sizes = reference_delta_sizes(analysis);
	bool	   *changed = palloc0(sizeof(bool) * (n + 1));
	ReferenceRole *roles = palloc(sizeof(ReferenceRole) * (n + 1));
	StringInfoData sql;
	int			step;

	Assert(group_keys == analysis->grouped);
	initStringInfo(&sql);
	for (step = 0; step < n; step++)
	{
		int			next = -1;
		int			reference;
		List	   *sign_vars;
		Query	   *term;

		/* the largest delta not yet changed */
		for (reference = 0; reference < n; reference++)
			if (!changed[reference] &&
				(next < 0 || sizes[reference] > sizes[next]))
				next = reference;
		if (sizes[next] == 0)
			break;
		for (reference = 0; reference < n; reference++)
			roles[reference] = reference == next ? REFERENCE_DELTA :
				changed[reference] || sizes[reference] == 0 ?
				REFERENCE_NEW_STATE : REFERENCE_OLD_STATE;
		changed[next] = true;
		term = query_for_term(analysis, roles, &sign_vars);
		if (eager_terms != NULL)
		{
			char	   *eager = MatviewEagerTermSql(analysis, term, sign_vars);

			if (eager != NULL)
			{
				appendStringInfo(eager_terms, "%s%s",
								 eager_terms->len > 0 ? "\nUNION ALL\n" : "", eager);
				(*neager)++;
				continue;
			}
		}
		MatviewAppendDeltaTerm(&sql, analysis, term, sign_vars, 1, group_keys);
	}
	return sql.data;
}

/* MatviewBoundedQuerySql: the view's query over the sources' states. */
char *
MatviewBoundedQuerySql(MatviewAnalysis *analysis)
{
	List	   *sign_vars;

	return pg_get_querydef(query_for_term(analysis, NULL, &sign_vars), false);
}

/*
 * MatviewStateTermSql: the rows (c1..ck group keys, then the aggregates'
 * arguments) of a view kept by running values, over the sources' states.
 */
char *
MatviewStateTermSql(MatviewAnalysis *analysis)
{
	List	   *sign_vars;
	Query	   *term = query_for_term(analysis, NULL, &sign_vars);

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
	Query	   *query = query_for_term(analysis, NULL, &sign_vars);
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
	bool		signed_rows;

	return source_subquery(source,
						   delta ? REFERENCE_DELTA : REFERENCE_NEW_STATE,
						   NULL, natts, &signed_rows);
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
