/*-------------------------------------------------------------------------
 *
 * matview_indexes.c
 *	  Indexes that make a materialized view's delta terms and its bag apply
 *	  cost the size of the change rather than the size of the tables.
 *
 * Join keys: the term "orders x delta(customers)" reads the changed
 * customers (a few rows) and must find their orders; without an index on
 * orders.customer_id the planner can only hash-join the whole of orders.
 * So each column of a source that an equality join condition of the view
 * compares with another reference's column gets an index, when the source
 * is a pipeline table (bronze, silver, auto CDC target) owned by the
 * pipeline's owner and no index of it starts with that column and holds
 * the columns below.  It is made as that owner (the update runs as them),
 * named by PostgreSQL's rules, and depends automatically on the view's
 * target: drop_flow and dropping the target drop it (flow_lifecycle.c drops
 * the indexes on other tables that depend on a target), and a second view
 * needing it finds it.  The index INCLUDEs the other columns the view reads
 * of the table whose size is bounded (fixed-length types, numeric with a
 * precision, varchar(n), up to INCLUDE_BYTES in all): the orders of 20
 * moved customers are then read from about 20 index pages rather than
 * from the 2,000 heap pages they lie on (an index-only scan, where the
 * visibility map says the pages are all visible; 4.2 ms of 12 were that
 * heap).  A column of unbounded size is left out: an index entry has a
 * size limit that a writer of the table must never meet.  A key that a
 * unique index holds alone gets no second index: its lookups find a row.
 *
 * Bag apply: deleting the rows of a view without a key means matching
 * whole rows.  The target gets an index on pg_catalog.hash_record(ROW(its
 * columns)) (an index of the target, the owner's, with no column added to
 * what BI tools read), and the apply looks the removed rows up by their
 * hash before comparing them whole; needs a hash function for every column
 * type, else the apply scans the target as before.  A recompute drops it
 * and makes it again once the table is filled.
 *
 * Change feeds: see MatviewEnsureFeedIndexes.
 *
 * All are made by the first update that maintains the view by deltas
 * (also for views created before), in its transaction.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/matview_indexes.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "catalog/dependency.h"
#include "catalog/index.h"
#include "catalog/pg_am.h"
#include "catalog/pg_class.h"
#include "catalog/pg_index.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "executor/spi.h"
#include "nodes/nodeFuncs.h"
#include "parser/parsetree.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/ruleutils.h"
#include "utils/syscache.h"
#include "utils/typcache.h"

#include "change_feed.h"
#include "matview_internal.h"
#include "spi_util.h"
#include "sql_names.h"
#include "state_table.h"

/* Walker state: the join key columns found, as (relid, attnum) pairs. */
typedef struct JoinKeys
{
	MatviewAnalysis *analysis;
	List	   *relids;
	List	   *attnums;
} JoinKeys;

/* The Var under binary-compatible casts, or NULL. */
static Var *
plain_var(Node *node)
{
	while (node != NULL && IsA(node, RelabelType))
		node = (Node *) ((RelabelType *) node)->arg;
	if (node == NULL || !IsA(node, Var) || ((Var *) node)->varlevelsup != 0 ||
		((Var *) node)->varattno <= 0)
		return NULL;
	return (Var *) node;
}

/* Note a join key column when its reference reads a pipeline table. */
static void
add_join_key(JoinKeys *keys, Var *var)
{
	Query	   *query = keys->analysis->query;
	int			index;
	MatviewSource *source;
	ListCell   *relid_cell;
	ListCell   *attnum_cell;

	if (var->varno < 1 || var->varno > list_length(query->rtable))
		return;
	index = keys->analysis->rte_source[var->varno];
	if (index < 0)
		return;
	source = list_nth(keys->analysis->sources, index);
	if (source->kind == MATVIEW_SOURCE_PLAIN)
		return;
	forboth(relid_cell, keys->relids, attnum_cell, keys->attnums)
	{
		if (lfirst_oid(relid_cell) == source->relid &&
			lfirst_int(attnum_cell) == var->varattno)
			return;
	}
	keys->relids = lappend_oid(keys->relids, source->relid);
	keys->attnums = lappend_int(keys->attnums, var->varattno);
}

/* Equality conditions between columns of two references. */
static bool
join_keys_walker(Node *node, JoinKeys *keys)
{
	if (node == NULL)
		return false;
	if (IsA(node, OpExpr) && list_length(((OpExpr *) node)->args) == 2)
	{
		OpExpr	   *op = (OpExpr *) node;
		Var		   *left = plain_var(linitial(op->args));
		Var		   *right = plain_var(lsecond(op->args));

		if (left != NULL && right != NULL && left->varno != right->varno &&
			(op_mergejoinable(op->opno, exprType((Node *) left)) ||
			 op_hashjoinable(op->opno, exprType((Node *) left))))
		{
			add_join_key(keys, left);
			add_join_key(keys, right);
		}
		return false;
	}
	if (IsA(node, Query) || IsA(node, SubLink))
		return false;
	return expression_tree_walker(node, join_keys_walker, (void *) keys);
}

/* A test of one index of a table (any_index). */
typedef bool (*IndexTest) (Relation index, const void *arg);

/* Does an index of relid pass the test? */
static bool
any_index(Oid relid, IndexTest test, const void *arg)
{
	Relation	rel = relation_open(relid, AccessShareLock);
	List	   *indexes = RelationGetIndexList(rel);
	ListCell   *cell;
	bool		found = false;

	relation_close(rel, NoLock);
	foreach(cell, indexes)
	{
		Relation	index = index_open(lfirst_oid(cell), AccessShareLock);

		found |= test(index, arg);
		index_close(index, AccessShareLock);
	}
	return found;
}

/* Has the index a predicate (WHERE)? */
static bool
index_is_partial(Relation index)
{
	return !heap_attisnull(index->rd_indextuple, Anum_pg_index_indpred, NULL);
}

/* index_leads_with's question about one index. */
typedef struct LeadingColumn
{
	AttrNumber	attnum;
	bool		partial;
} LeadingColumn;

static bool
index_leads_with_test(Relation index, const void *arg)
{
	const LeadingColumn *leading = arg;

	return index->rd_index->indnkeyatts > 0 &&
		index->rd_index->indkey.values[0] == leading->attnum &&
		index_is_partial(index) == leading->partial &&
		(index->rd_rel->relam == BTREE_AM_OID ||
		 index->rd_rel->relam == HASH_AM_OID);
}

/*
 * Does a btree or hash index of relid start with attnum?  Counts only
 * indexes without a predicate, or with partial only partial ones (the one
 * partial index medallion makes on a table is a change feed's, of its
 * reset markers).
 */
static bool
index_leads_with(Oid relid, AttrNumber attnum, bool partial)
{
	LeadingColumn leading = {attnum, partial};

	return any_index(relid, index_leads_with_test, &leading);
}

/* MatviewKeyIsUnique's question about one index. */
static bool
index_unique_on_test(Relation index, const void *arg)
{
	AttrNumber	attnum = *(const AttrNumber *) arg;

	return index->rd_index->indisunique && index->rd_index->indnkeyatts == 1 &&
		index->rd_index->indkey.values[0] == attnum && !index_is_partial(index);
}

/* MatviewKeyIsUnique: see matview_internal.h. */
bool
MatviewKeyIsUnique(Oid relid, AttrNumber attnum)
{
	return any_index(relid, index_unique_on_test, &attnum);
}

/* MatviewIndexLeadsWith: see matview_internal.h. */
bool
MatviewIndexLeadsWith(Oid relid, AttrNumber attnum)
{
	return index_leads_with(relid, attnum, false);
}

/*
 * Create an index as the current user and make it depend on the view's
 * target, so that the view's removal takes it along.
 */
static void
create_dependent_index(Oid relid, const char *columns_sql, const char *hint,
					   Oid target_relid)
{
	Oid			namespace_oid = get_rel_namespace(relid);
	char	   *name = ChooseRelationName(get_rel_name(relid), hint, "idx",
										  namespace_oid, false);
	ObjectAddress index;
	ObjectAddress target;

	SpiExecute(psprintf("CREATE INDEX %s ON %s (%s)", quote_identifier(name),
						CatalogQualifiedRelationName(relid), columns_sql),
			   0, NULL, NULL, NULL, SPI_OK_UTILITY);
	ObjectAddressSet(index, RelationRelationId,
					 get_relname_relid(name, namespace_oid));
	ObjectAddressSet(target, RelationRelationId, target_relid);
	recordDependencyOn(&index, &target, DEPENDENCY_AUTO);
	CommandCounterIncrement();
}

/* Most bytes the INCLUDE columns of a join key index may take. */
#define INCLUDE_BYTES	256

/*
 * The columns the view reads of a table (every reference to it), as
 * attribute numbers offset by FirstLowInvalidHeapAttributeNumber (a
 * whole-row reference reads them all).
 */
static Bitmapset *
columns_read(MatviewAnalysis *analysis, Oid relid)
{
	Bitmapset  *columns = NULL;
	int			rtindex;

	for (rtindex = 1; rtindex <= list_length(analysis->query->rtable); rtindex++)
	{
		RangeTblEntry *rte = rt_fetch(rtindex, analysis->query->rtable);

		if (analysis->rte_source[rtindex] >= 0 && rte->relid == relid)
			columns = bms_add_members(columns, rte->selectedCols);
	}
	return columns;
}

/*
 * The columns a join key index on (relid, key) includes: those the view
 * reads, of bounded size, up to INCLUDE_BYTES.
 */
static List *
include_columns(MatviewAnalysis *analysis, Oid relid, AttrNumber key)
{
	Bitmapset  *read = columns_read(analysis, relid);
	bool		whole_row = bms_is_member(0 - FirstLowInvalidHeapAttributeNumber, read);
	Relation	rel = relation_open(relid, AccessShareLock);
	TupleDesc	desc = RelationGetDescr(rel);
	List	   *attnums = NIL;
	int			bytes = 0;
	int			i;

	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute attr = TupleDescAttr(desc, i);
		int			size;

		if (attr->attisdropped || attr->attnum == key ||
			!(whole_row || bms_is_member(attr->attnum - FirstLowInvalidHeapAttributeNumber, read)))
			continue;
		size = attr->attlen > 0 ? attr->attlen :
			type_maximum_size(attr->atttypid, attr->atttypmod);
		if (size <= 0 || bytes + size > INCLUDE_BYTES)
			continue;
		bytes += size;
		attnums = lappend_int(attnums, attr->attnum);
	}
	relation_close(rel, AccessShareLock);
	return attnums;
}

/* index_covers' question about one index. */
typedef struct CoveredColumns
{
	AttrNumber	key;
	List	   *attnums;
} CoveredColumns;

static bool
index_covers_test(Relation index, const void *arg)
{
	const CoveredColumns *covered = arg;
	int2vector *columns = &index->rd_index->indkey;
	bool		covers;
	ListCell   *cell;

	if (index->rd_index->indnkeyatts == 0 || columns->values[0] != covered->key ||
		index_is_partial(index))
		return false;
	if (index_unique_on_test(index, &covered->key))
		return true;
	covers = index->rd_rel->relam == BTREE_AM_OID;
	foreach(cell, covered->attnums)
	{
		int			i;
		bool		held = false;

		for (i = 0; i < index->rd_index->indnatts; i++)
			held |= columns->values[i] == lfirst_int(cell);
		covers &= held;
	}
	return covers;
}

/*
 * Has relid a btree index without predicate that starts with key and
 * holds every column of attnums?  Or a unique one on key alone: a lookup
 * finds a row at most, and a second index for it would cost every writer
 * more than it saves the view.
 */
static bool
index_covers(Oid relid, AttrNumber key, List *attnums)
{
	CoveredColumns covered = {key, attnums};

	return any_index(relid, index_covers_test, &covered);
}

/*
 * MatviewEnsureJoinIndexes: see matview_internal.h.  Only tables the
 * owner owns: an index on somebody else's table is not the view's to make.
 */
void
MatviewEnsureJoinIndexes(MatviewAnalysis *analysis, Oid owner, Oid target_relid)
{
	JoinKeys	keys = {analysis, NIL, NIL};
	ListCell   *relid_cell;
	ListCell   *attnum_cell;

	if (analysis->nreferences < 2)
		return;
	join_keys_walker((Node *) analysis->query->jointree, &keys);
	forboth(relid_cell, keys.relids, attnum_cell, keys.attnums)
	{
		Oid			relid = lfirst_oid(relid_cell);
		AttrNumber	attnum = lfirst_int(attnum_cell);
		HeapTuple	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
		bool		owned;
		List	   *included;
		StringInfoData columns;
		ListCell   *cell;

		if (!HeapTupleIsValid(tuple))
			continue;
		owned = ((Form_pg_class) GETSTRUCT(tuple))->relowner == owner &&
			((Form_pg_class) GETSTRUCT(tuple))->relkind == RELKIND_RELATION;
		ReleaseSysCache(tuple);
		if (!owned)
			continue;
		included = include_columns(analysis, relid, attnum);
		if (index_covers(relid, attnum, included) ||
			(included == NIL && index_leads_with(relid, attnum, false)))
			continue;
		initStringInfo(&columns);
		appendStringInfoString(&columns,
							   quote_identifier(get_attname(relid, attnum, false)));
		foreach(cell, included)
			appendStringInfo(&columns, "%s%s",
							 foreach_current_index(cell) == 0 ? ") INCLUDE (" : ", ",
							 quote_identifier(get_attname(relid, lfirst_int(cell), false)));
		create_dependent_index(relid, columns.data,
							   get_attname(relid, attnum, false), target_relid);
	}
}

/*
 * MatviewEnsureFeedIndexes: see matview_internal.h.  A change feed made
 * before 0.2.0 has no index (those made since get theirs with the feed,
 * change_feed.c); its statistics lag behind its newest rows, so the planner takes
 * the delta (position, ceiling] for one row and nests loops over it.  With
 * an index on _row_id the planner reads the actual end of the range from
 * it (and the delta is read by a range scan).  A second, partial index
 * holds only the feed's reset markers (sign 0, one per derivation of the
 * target), so that each update's check for one in its delta
 * (matview_apply.c) is one probe, not a scan of the delta's range (0.3 ms
 * for 2,000 rows, per feed and view).
 */
void
MatviewEnsureFeedIndexes(MatviewAnalysis *analysis)
{
	ListCell   *cell;

	foreach(cell, analysis->sources)
	{
		MatviewSource *source = lfirst(cell);
		AttrNumber	attnum;

		if (source->kind != MATVIEW_SOURCE_CHANGE_FEED ||
			!OidIsValid(source->feed_relid))
			continue;
		attnum = get_attnum(source->feed_relid, source->delta_id_column);
		if (attnum == InvalidAttrNumber)
			continue;
		ChangeFeedCreateIndexes(source->delta_relation,
								!index_leads_with(source->feed_relid, attnum, false),
								!index_leads_with(source->feed_relid, attnum, true));
	}
}

/* The target's columns as ROW(q.a, q.b, ...), q optional. */
char *
MatviewRowHashSql(MatviewAnalysis *analysis, const char *qualifier)
{
	StringInfoData sql;
	int			i;

	initStringInfo(&sql);
	appendStringInfoString(&sql, "pg_catalog.hash_record(ROW(");
	for (i = 0; i < analysis->ncolumns; i++)
		appendStringInfo(&sql, "%s%s%s%s", i > 0 ? ", " : "",
						 qualifier ? qualifier : "", qualifier ? "." : "",
						 quote_identifier(analysis->column_names[i]));
	appendStringInfoString(&sql, "))");
	return sql.data;
}

/* The target's row hash index, or InvalidOid. */
static Oid
row_hash_index(Oid target_relid)
{
	Relation	rel = relation_open(target_relid, AccessShareLock);
	List	   *indexes = RelationGetIndexList(rel);
	ListCell   *cell;

	relation_close(rel, NoLock);
	foreach(cell, indexes)
	{
		if (strstr(pg_get_indexdef_string(lfirst_oid(cell)), "hash_record(ROW(") != NULL)
			return lfirst_oid(cell);
	}
	return InvalidOid;
}

/*
 * MatviewDropRowHashIndex: see matview_internal.h.  Filling a table and
 * then indexing it costs less than maintaining the index row by row.
 */
void
MatviewDropRowHashIndex(Oid target_relid)
{
	Oid			index = row_hash_index(target_relid);

	if (OidIsValid(index))
		SpiExecute(psprintf("DROP INDEX %s", CatalogQualifiedRelationName(index)),
				   0, NULL, NULL, NULL, SPI_OK_UTILITY);
}

/*
 * MatviewEnsureRowHashIndex: see matview_internal.h.  The index is found
 * by its expression (pg_get_indexdef), whatever its name.
 */
bool
MatviewEnsureRowHashIndex(MatviewAnalysis *analysis, Oid target_relid)
{
	Relation	rel = relation_open(target_relid, AccessShareLock);
	TupleDesc	desc = RelationGetDescr(rel);
	bool		hashable = true;
	int			i;

	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute attr = TupleDescAttr(desc, i);

		if (!attr->attisdropped &&
			!OidIsValid(lookup_type_cache(attr->atttypid,
										  TYPECACHE_HASH_PROC)->hash_proc))
			hashable = false;
	}
	relation_close(rel, NoLock);
	if (!hashable)
		return false;
	if (OidIsValid(row_hash_index(target_relid)))
		return true;
	SpiExecute(psprintf("CREATE INDEX ON %s ((%s))",
						CatalogQualifiedRelationName(target_relid),
						MatviewRowHashSql(analysis, NULL)),
			   0, NULL, NULL, NULL, SPI_OK_UTILITY);
	return true;
}
