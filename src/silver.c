/*-------------------------------------------------------------------------
 *
 * silver.c
 *	  Silver flows: a user's SELECT over one pipeline table, fed only the
 *	  source rows that arrived since the last update, with expectations,
 *	  deduplication and an optional quarantine table.
 *
 * Reading only the new rows.  The user's query names the pipeline table (the
 * "source") like any table.  Each update parses the query text again, finds
 * the source's table reference, and replaces its text by
 *
 *	 (SELECT * FROM <source> WHERE _row_id > $1 AND _row_id <= $2
 *	  ORDER BY _row_id) AS <the user's alias, or the table's name>
 *
 * so that the query sees exactly the rows of the update's range, read by an
 * index range scan on the source's primary key, in arrival order.  The
 * query is parsed with the pipeline's search_path and
 * standard_conforming_strings = on both at creation and at each update, so
 * the same text resolves and tokenizes the same way each time.  A query
 * that cannot be handled so (several pipeline tables, the source twice or
 * through a view, aggregates, DISTINCT, LIMIT, set operations, FOR UPDATE,
 * TABLESAMPLE or ONLY on the source) is rejected when the flow is created.
 *
 * Evaluating.  The spliced query is wrapped as
 *
 *	 SELECT t.*, (<condition 1>\n), ..., EXISTS (<key in target>)
 *	 FROM (<spliced query>\n) AS t
 *
 * and run once, straight through the executor, into a DestReceiver that
 * counts expectations, drops, deduplicates and writes each row with the
 * bulk inserter as it arrives: nothing is materialised and each row is
 * handled in a short-lived memory context.  The query is never run in
 * parallel mode, since the receiver writes while the executor runs.
 *
 * Deduplication (dedup_keys) happens after expectations: only rows that
 * survive them are candidates, and of several rows with equal keys the
 * first the query produces is kept (the source is read in _row_id order,
 * so that is the earliest arrival unless the query reorders rows).  A row
 * is a duplicate when a row with equal keys is in the target already (the
 * EXISTS column, answered by a btree index on the keys) or was kept earlier
 * in the same update (a hash table here, with the types' own hash and
 * equality functions).  A row whose keys include a NULL is never a
 * duplicate, as with UNIQUE constraints.
 *
 * Everything happens in the transaction of FlowApplyIncremental, in the
 * pipeline owner's security context; an error anywhere (a fail
 * expectation, a bad cast) aborts it, so nothing of the batch is written
 * and the watermark does not move.
 *
 * The family: silver_create.c (create_silver), silver_query.c (finding and
 * splicing the source reference, used by both) and this file (applying a
 * batch: the receiver, deduplication, the quarantine).
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/silver.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "storage/bufmgr.h"
#include "tcop/dest.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/typcache.h"

#include "bulk_insert.h"
#include "catalog.h"
#include "expectations.h"
#include "flow.h"
#include "flow_definition.h"
#include "silver.h"
#include "silver_internal.h"
#include "spi_util.h"
#include "sql_names.h"
#include "user_sql.h"

/* Rows handled between two resets of the per-row memory context. */
#define SILVER_ROWS_PER_RESET		1024

/* A silver flow's definition (medallion.flow.definition). */
typedef struct SilverDefinition
{
	char	   *query;
	List	   *dedup_keys;		/* column names (char *) */
	bool		quarantine;
} SilverDefinition;

/* How the key columns of dedup_keys are hashed and compared. */
typedef struct SilverKeyInfo
{
	int			attno;			/* 0-based column of the result row */
	Oid			type;
	Oid			collation;
	int16		typlen;
	bool		typbyval;
	bool		use_text;		/* no hash support: compare output text */
	FmgrInfo	hash_finfo;
	FmgrInfo	eq_finfo;
	FmgrInfo	out_finfo;
} SilverKeyInfo;

/* Entry of the in-update hash table of kept keys. */
typedef struct SilverDedupEntry
{
	Datum	   *key;			/* one datum per key column */
	uint32		hash;
	char		status;
} SilverDedupEntry;

struct SilverApplyState;
static uint32 silver_key_hash(struct SilverApplyState *state, Datum *key);
static bool silver_key_equal(struct SilverApplyState *state, Datum *a,
							 Datum *b);

#define SH_PREFIX				silver_dedup
#define SH_ELEMENT_TYPE			SilverDedupEntry
#define SH_KEY_TYPE				Datum *
#define SH_KEY					key
#define SH_HASH_KEY(tb, k)		silver_key_hash((struct SilverApplyState *) (tb)->private_data, k)
#define SH_EQUAL(tb, a, b)		silver_key_equal((struct SilverApplyState *) (tb)->private_data, a, b)
#define SH_STORE_HASH
#define SH_GET_HASH(tb, a)		((a)->hash)
#define SH_SCOPE				static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

/*
 * The state of one apply; it is the DestReceiver the flow's query sends its
 * rows to.
 */
typedef struct SilverApplyState
{
	DestReceiver pub;			/* must be first */

	FlowDesc   *flow;
	bool		quarantine;
	ExpectationSet *expectations;

	/* layout of a result row: query columns, conditions, EXISTS */
	int			ncolumns;
	int			exists_attno;	/* -1 when there are no dedup keys */

	/* dedup */
	int			nkeys;
	SilverKeyInfo *keys;
	silver_dedup_hash *seen;
	Datum	   *probe;			/* scratch key for lookups */
	MemoryContext key_context;	/* kept keys */

	/* writing */
	BulkInserter *target;
	int		   *target_map;		/* query column -> target attribute index */
	Datum	   *target_values;
	bool	   *target_nulls;
	int			target_natts;
	BulkInserter *quarantine_inserter;	/* opened at the first drop */
	int		   *quarantine_map;
	int			quarantine_violated;	/* attribute index of the text[] */
	Datum	   *quarantine_values;
	bool	   *quarantine_nulls;
	int			quarantine_natts;

	MemoryContext apply_context;
	MemoryContext row_context;
	int			rows_since_reset;

	/* counters */
	int64		rows_read;
	int64		rows_written;
	int64		expectation_dropped;
	int64		dedup_dropped;
	int64		quarantined;
} SilverApplyState;

/* For the error context of an apply. */
typedef struct SilverApplyErrorArg
{
	const char *kind;			/* "silver" or "append" */
	const char *flow_name;
	int64		low;
	int64		high;
} SilverApplyErrorArg;


/* Read a silver flow's stored definition. */
static void
silver_definition_load(FlowDesc *flow, SilverDefinition *def)
{
	def->query = FlowDefinitionString(flow, "query", true);
	def->dedup_keys = FlowDefinitionStringList(flow, "dedup_keys", false);
	def->quarantine = FlowDefinitionBool(flow, "quarantine", false);
}

/*
 * Deduplication
 */

/*
 * The hash of a key of the in-update table, combined over its columns with
 * each type's own hash function (the output text's hash for types that
 * have none), so that equal keys hash equally as silver_key_equal sees them.
 */
static uint32
silver_key_hash(SilverApplyState *state, Datum *key)
{
	uint32		hash = 0;
	int			i;

	for (i = 0; i < state->nkeys; i++)
	{
		SilverKeyInfo *info = &state->keys[i];
		uint32		h;

		if (info->use_text)
		{
			char	   *text = OutputFunctionCall(&info->out_finfo, key[i]);

			h = hash_bytes((const unsigned char *) text, strlen(text));
			pfree(text);
		}
		else
			h = DatumGetUInt32(FunctionCall1Coll(&info->hash_finfo,
												 info->collation, key[i]));
		hash = hash_combine(hash, h);
	}
	return hash;
}

/* Are two keys equal, column by column, by each type's own equality? */
static bool
silver_key_equal(SilverApplyState *state, Datum *a, Datum *b)
{
	int			i;

	for (i = 0; i < state->nkeys; i++)
	{
		SilverKeyInfo *info = &state->keys[i];

		if (info->use_text)
		{
			char	   *ta = OutputFunctionCall(&info->out_finfo, a[i]);
			char	   *tb = OutputFunctionCall(&info->out_finfo, b[i]);
			bool		equal = strcmp(ta, tb) == 0;

			pfree(ta);
			pfree(tb);
			if (!equal)
				return false;
		}
		else if (!DatumGetBool(FunctionCall2Coll(&info->eq_finfo,
												 info->collation,
												 a[i], b[i])))
			return false;
	}
	return true;
}

/*
 * Is this row (which survived the expectations) a duplicate?  If not, its
 * keys are remembered so that later rows of the update with equal keys
 * are.  Rows with a NULL key are never duplicates.
 */
static bool
silver_is_duplicate(SilverApplyState *state, Datum *values, bool *isnull)
{
	SilverDedupEntry *entry;
	bool		found;
	int			i;

	for (i = 0; i < state->nkeys; i++)
	{
		if (isnull[state->keys[i].attno])
			return false;
		state->probe[i] = values[state->keys[i].attno];
	}

	if (!isnull[state->exists_attno] &&
		DatumGetBool(values[state->exists_attno]))
		return true;

	entry = silver_dedup_insert(state->seen, state->probe, &found);
	if (found)
		return true;

	/* keep a copy of the keys for the rest of the update */
	entry->key = MemoryContextAlloc(state->key_context,
									sizeof(Datum) * state->nkeys);
	for (i = 0; i < state->nkeys; i++)
	{
		SilverKeyInfo *info = &state->keys[i];
		MemoryContext old = MemoryContextSwitchTo(state->key_context);

		entry->key[i] = datumCopy(state->probe[i], info->typbyval,
								  info->typlen);
		MemoryContextSwitchTo(old);
	}
	return false;
}

/*
 * The receiver
 */

/*
 * Map the query's columns to the live columns of rel after _row_id (other
 * than skip_name, when given) by name, checking that their types match:
 * the target was created from the query, but either could have been
 * altered since, and a replaced flow's new columns come last in the table
 * whatever their place in the query.
 */
static int *
silver_map_columns(SilverApplyState *state, Relation rel, TupleDesc query_desc,
				   const char *skip_name, int *skip_index)
{
	TupleDesc	desc = RelationGetDescr(rel);
	int		   *map = palloc(sizeof(int) * Max(state->ncolumns, 1));
	int			live = 0;
	int			skip = -1;
	int			next;
	int			i;

	for (i = 1; i < desc->natts; i++)
	{
		Form_pg_attribute attr = TupleDescAttr(desc, i);

		if (attr->attisdropped)
			continue;
		if (skip_name != NULL && strcmp(NameStr(attr->attname), skip_name) == 0)
			skip = i;
		else
			live++;
	}
	if (skip_index != NULL)
		*skip_index = skip;
	for (next = 0; next < state->ncolumns; next++)
	{
		Form_pg_attribute qattr = TupleDescAttr(query_desc, next);
		Form_pg_attribute attr = NULL;

		for (i = 1; i < desc->natts; i++)
		{
			attr = TupleDescAttr(desc, i);
			if (!attr->attisdropped && i != skip &&
				strcmp(NameStr(attr->attname), NameStr(qattr->attname)) == 0)
				break;
		}
		if (i >= desc->natts)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("query of silver flow \"%s\" no longer matches table %s",
							state->flow->flow_name,
							CatalogQualifiedRelationName(RelationGetRelid(rel))),
					 errdetail("The table has no column \"%s\".",
							   NameStr(qattr->attname)),
					 errhint("Replace the flow with medallion.create_silver(..., replace => true), or alter the table back.")));
		if (attr->atttypid != qattr->atttypid ||
			(attr->atttypmod >= 0 && attr->atttypmod != qattr->atttypmod))
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("query of silver flow \"%s\" no longer matches table %s",
							state->flow->flow_name,
							CatalogQualifiedRelationName(RelationGetRelid(rel))),
					 errdetail("Column %d of the query has type %s, but column \"%s\" of the table has type %s.",
							   next + 1,
							   format_type_with_typemod(qattr->atttypid, qattr->atttypmod),
							   NameStr(attr->attname),
							   format_type_with_typemod(attr->atttypid, attr->atttypmod)),
					 errhint("Recreate the flow, or alter the table back.")));
		map[next] = i;
	}
	if (live != state->ncolumns)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("table %s has more columns than the query of silver flow \"%s\"",
						CatalogQualifiedRelationName(RelationGetRelid(rel)),
						state->flow->flow_name)));
	return map;
}

/*
 * The receiver's start: map the query's columns to the target's, checking
 * that they still match, and set up the dedup keys' functions and table.
 */
static void
silver_receive_startup(DestReceiver *self, int operation, TupleDesc typeinfo)
{
	SilverApplyState *state = (SilverApplyState *) self;
	MemoryContext old = MemoryContextSwitchTo(state->apply_context);
	Relation	rel = BulkInsertRelation(state->target);
	int			i;

	state->ncolumns = typeinfo->natts - state->expectations->count -
		(state->nkeys > 0 ? 1 : 0);
	state->target_map = silver_map_columns(state, rel, typeinfo, NULL, NULL);
	state->target_natts = RelationGetDescr(rel)->natts;
	state->target_values = palloc0(sizeof(Datum) * state->target_natts);
	state->target_nulls = palloc(sizeof(bool) * state->target_natts);
	for (i = 0; i < state->target_natts; i++)
		state->target_nulls[i] = true;	/* dropped columns stay NULL */
	state->target_nulls[0] = false;		/* _row_id: filled by the inserter */

	if (state->nkeys > 0)
	{
		state->exists_attno = typeinfo->natts - 1;
		for (i = 0; i < state->nkeys; i++)
		{
			SilverKeyInfo *info = &state->keys[i];
			Form_pg_attribute attr = TupleDescAttr(typeinfo, info->attno);
			TypeCacheEntry *typentry;

			info->type = attr->atttypid;
			info->collation = attr->attcollation;
			get_typlenbyval(info->type, &info->typlen, &info->typbyval);
			typentry = lookup_type_cache(info->type,
										 TYPECACHE_EQ_OPR_FINFO |
										 TYPECACHE_HASH_PROC_FINFO);
			if (OidIsValid(typentry->hash_proc_finfo.fn_oid) &&
				OidIsValid(typentry->eq_opr_finfo.fn_oid))
			{
				fmgr_info_copy(&info->hash_finfo, &typentry->hash_proc_finfo,
							   state->apply_context);
				fmgr_info_copy(&info->eq_finfo, &typentry->eq_opr_finfo,
							   state->apply_context);
			}
			else
			{
				Oid			output_func;
				bool		is_varlena;

				info->use_text = true;
				getTypeOutputInfo(info->type, &output_func, &is_varlena);
				fmgr_info_cxt(output_func, &info->out_finfo,
							  state->apply_context);
			}
		}
		state->probe = palloc(sizeof(Datum) * state->nkeys);
		state->key_context = AllocSetContextCreate(state->apply_context,
												   "medallion silver keys",
												   ALLOCSET_DEFAULT_SIZES);
		state->seen = silver_dedup_create(state->apply_context, 1024, state);
	}

	MemoryContextSwitchTo(old);
}

/* Open the quarantine table at the first dropped row. */
static void
silver_open_quarantine(SilverApplyState *state, TupleDesc typeinfo)
{
	MemoryContext old = MemoryContextSwitchTo(state->apply_context);
	Relation	target = BulkInsertRelation(state->target);
	char	   *name = SilverQuarantineName(RelationGetRelationName(target));
	Oid			relid = get_relname_relid(name, RelationGetNamespace(target));
	Relation	rel;
	int			i;

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("quarantine table \"%s\" of silver flow \"%s\" does not exist",
						name, state->flow->flow_name),
				 errhint("Create it again with the target's columns and a last column \"_violated_expectations text[]\".")));

	state->quarantine_inserter = BulkInsertBegin(relid, true);
	rel = BulkInsertRelation(state->quarantine_inserter);
	state->quarantine_map = silver_map_columns(state, rel, typeinfo,
											   SILVER_VIOLATED_COLUMN,
											   &state->quarantine_violated);
	if (state->quarantine_violated < 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("quarantine table \"%s\" has no column \"%s\"",
						name, SILVER_VIOLATED_COLUMN)));
	state->quarantine_natts = RelationGetDescr(rel)->natts;
	state->quarantine_values = palloc0(sizeof(Datum) * state->quarantine_natts);
	state->quarantine_nulls = palloc(sizeof(bool) * state->quarantine_natts);
	for (i = 0; i < state->quarantine_natts; i++)
		state->quarantine_nulls[i] = true;
	state->quarantine_nulls[0] = false;
	MemoryContextSwitchTo(old);
}

/*
 * One result row: count its expectations, drop it (to the quarantine table
 * when the flow has one) or fail, drop it as a duplicate, or write it to
 * the target.  Per-row memory is reset every SILVER_ROWS_PER_RESET rows.
 */
static bool
silver_receive_slot(TupleTableSlot *slot, DestReceiver *self)
{
	SilverApplyState *state = (SilverApplyState *) self;
	ExpectationSet *expectations = state->expectations;
	ExpectationRowResult check;
	MemoryContext old;
	Datum	   *values;
	bool	   *isnull;
	int			i;

	if (++state->rows_since_reset >= SILVER_ROWS_PER_RESET)
	{
		MemoryContextReset(state->row_context);
		state->rows_since_reset = 0;
	}
	old = MemoryContextSwitchTo(state->row_context);

	slot_getallattrs(slot);
	values = slot->tts_values;
	isnull = slot->tts_isnull;
	state->rows_read++;

	ExpectationsCheckRow(expectations, values + state->ncolumns,
						 isnull + state->ncolumns, &check);

	if (check.first_fail >= 0)
		ExpectationReportFailure(&expectations->items[check.first_fail],
								 state->flow->flow_name,
								 BulkInsertRelation(state->target),
								 ExpectationDescribeRow(slot->tts_tupleDescriptor,
														state->ncolumns,
														values, isnull));

	if (check.drop)
	{
		state->expectation_dropped++;
		if (state->quarantine)
		{
			if (state->quarantine_inserter == NULL)
				silver_open_quarantine(state, slot->tts_tupleDescriptor);
			for (i = 0; i < state->ncolumns; i++)
			{
				state->quarantine_values[state->quarantine_map[i]] = values[i];
				state->quarantine_nulls[state->quarantine_map[i]] = isnull[i];
			}
			state->quarantine_values[state->quarantine_violated] =
				ExpectationsViolatedArray(expectations,
										  values + state->ncolumns,
										  isnull + state->ncolumns);
			state->quarantine_nulls[state->quarantine_violated] = false;
			(void) BulkInsertRow(state->quarantine_inserter,
								 state->quarantine_values,
								 state->quarantine_nulls);
			state->quarantined++;
		}
	}
	else if (state->nkeys > 0 && silver_is_duplicate(state, values, isnull))
		state->dedup_dropped++;
	else
	{
		for (i = 0; i < state->ncolumns; i++)
		{
			state->target_values[state->target_map[i]] = values[i];
			state->target_nulls[state->target_map[i]] = isnull[i];
		}
		(void) BulkInsertRow(state->target, state->target_values,
							 state->target_nulls);
		state->rows_written++;
	}

	MemoryContextSwitchTo(old);
	return true;
}

static void
silver_receive_shutdown(DestReceiver *self)
{
}

static void
silver_receive_destroy(DestReceiver *self)
{
}

/*
 * Applying a batch
 */

/* Error context of an apply: the flow and the source rows of the batch. */
static void
silver_apply_error_callback(void *arg)
{
	SilverApplyErrorArg *info = (SilverApplyErrorArg *) arg;

	errcontext("%s flow \"%s\", source rows with _row_id from %lld to %lld",
			   info->kind, info->flow_name, (long long) info->low + 1,
			   (long long) info->high);
}

/*
 * The dedup column of the apply's query: is a row with the row's keys in
 * the target already?  Fills the state's key descriptions.
 */
static char *
silver_dedup_column(SilverApplyState *state, SilverDefinition *def,
					Relation target, const char *alias)
{
	const char *dedup_alias = "__medallion_dedup";
	StringInfoData exists;
	ListCell   *cell;
	int			i;

	if (strcmp(RelationGetRelationName(target), dedup_alias) == 0)
		dedup_alias = "__medallion_dedup_2";
	initStringInfo(&exists);
	appendStringInfo(&exists, "EXISTS (SELECT 1 FROM %s AS %s WHERE ",
					 CatalogQualifiedRelationName(RelationGetRelid(target)),
					 dedup_alias);
	state->nkeys = list_length(def->dedup_keys);
	state->keys = palloc0(sizeof(SilverKeyInfo) * state->nkeys);
	i = 0;
	foreach(cell, def->dedup_keys)
	{
		const char *key = UserSqlColumnName(lfirst(cell));
		AttrNumber	attnum = get_attnum(RelationGetRelid(target),
										lfirst(cell));
		Oid			type;
		TypeCacheEntry *typentry;

		if (attnum == InvalidAttrNumber)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("dedup key \"%s\" is not a column of table %s",
							(char *) lfirst(cell),
							CatalogQualifiedRelationName(RelationGetRelid(target)))));
		type = get_atttype(RelationGetRelid(target), attnum);
		typentry = lookup_type_cache(type, TYPECACHE_EQ_OPR);
		if (!OidIsValid(typentry->eq_opr))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_FUNCTION),
					 errmsg("could not identify an equality operator for type %s",
							format_type_be(type))));
		if (i > 0)
			appendStringInfoString(&exists, " AND ");
		appendStringInfo(&exists, "%s.%s %s %s.%s",
						 dedup_alias, key,
						 SqlOperatorName(typentry->eq_opr),
						 alias, key);
		i++;
	}
	appendStringInfoChar(&exists, ')');

	/*
	 * A target with no page at all (a full refresh truncated it, or the
	 * first run) holds no key: no row needs looking up, the whole input is
	 * deduplicated by the hash table alone.
	 */
	return RelationGetNumberOfBlocks(target) == 0 ? "false" : exists.data;
}

/*
 * Build the query an update runs: the user's query with the source spliced
 * (see the file header), one column per expectation, and the EXISTS column
 * of the dedup keys.  Sets up state->keys.
 */
static char *
silver_build_query(SilverApplyState *state, SilverDefinition *def,
				   Relation target)
{
	SilverRefWalk walk;
	RawStmt    *stmt;
	List	   *refs;
	char	   *spliced;
	const char *alias = quote_identifier(RelationGetRelationName(target));
	StringInfoData sql;

	stmt = SilverParseQuery(def->query, &walk);
	refs = SilverRefsTo(&walk, state->flow->source_relid);
	if (list_length(refs) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("query of silver flow \"%s\" no longer reads its source table %s",
						state->flow->flow_name,
						CatalogQualifiedRelationName(state->flow->source_relid)),
				 errhint("The source table may have been renamed or moved, or the pipeline's search_path finds another table first.")));
	spliced = SilverSplice(def->query, stmt, linitial(refs),
							CatalogQualifiedRelationName(state->flow->source_relid));

	initStringInfo(&sql);
	appendStringInfo(&sql, "SELECT %s.*", alias);
	ExpectationsAppendColumns(state->expectations, &sql);

	if (def->dedup_keys != NIL)
		appendStringInfo(&sql, ",\n  %s",
						 silver_dedup_column(state, def, target, alias));

	/*
	 * OFFSET 0 keeps the user's query a subquery of its own: were it pulled
	 * up, each condition naming a column would evaluate that column's
	 * expression (a cast, say) once more per row.
	 */
	appendStringInfo(&sql, "\nFROM (SELECT * FROM %s AS %s OFFSET 0) AS %s",
					 UserSqlPlaceQuery(spliced), alias, alias);
	return sql.data;
}

/*
 * The positions of the dedup keys in the result row, by name among the
 * columns of the analyzed query (the user's columns come first).
 */
static void
silver_find_key_columns(SilverApplyState *state, SilverDefinition *def,
						Query *query)
{
	ListCell   *cell;
	int			i = 0;

	foreach(cell, def->dedup_keys)
	{
		ListCell   *tcell;
		int			attno = 0;

		state->keys[i].attno = -1;
		foreach(tcell, query->targetList)
		{
			TargetEntry *tle = lfirst_node(TargetEntry, tcell);

			if (tle->resname != NULL &&
				strcmp(tle->resname, (char *) lfirst(cell)) == 0)
			{
				state->keys[i].attno = attno;
				break;
			}
			attno++;
		}
		if (state->keys[i].attno < 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("dedup key \"%s\" is not a column of the query of silver flow \"%s\"",
							(char *) lfirst(cell), state->flow->flow_name)));
		i++;
	}
}

/*
 * The per-apply settings, saved and restored by UserSqlSettingsLeave with
 * the returned nest level: the pipeline's search_path and the settings of
 * user SQL, and two planner settings for the spliced query.
 */
static int
silver_apply_settings_enter(void)
{
	int			nest_level = UserSqlSettingsEnter(NULL);

	/*
	 * No JIT: the planner's cost of the query is dominated by its estimate
	 * of the dedup lookups, and compiling costs more than it saves on the
	 * simple expressions of a silver query.
	 */
	SetSettingInNestLevel("jit", "off");

	/*
	 * The source must be read in _row_id order, which its primary key
	 * gives for free.  Without statistics (a bronze table that has just
	 * been loaded and not analyzed yet) the planner underestimates the
	 * range and sorts it instead, which for a large batch spills to disk;
	 * disabling sorts makes it take the ordered index scan.  Sorts the
	 * user's query needs still happen.
	 */
	SetSettingInNestLevel("enable_sort", "off");
	return nest_level;
}

/*
 * A new apply state, the DestReceiver of the flow's query, allocated in
 * apply_context (which the caller deletes when the apply ends).
 */
static SilverApplyState *
silver_apply_state_create(FlowDesc *flow, MemoryContext apply_context)
{
	SilverApplyState *state = palloc0(sizeof(SilverApplyState));

	state->pub.receiveSlot = silver_receive_slot;
	state->pub.rStartup = silver_receive_startup;
	state->pub.rShutdown = silver_receive_shutdown;
	state->pub.rDestroy = silver_receive_destroy;
	state->pub.mydest = DestNone;
	state->flow = flow;
	state->exists_attno = -1;
	state->apply_context = apply_context;
	state->row_context = AllocSetContextCreate(apply_context,
											   "medallion silver row",
											   ALLOCSET_DEFAULT_SIZES);
	return state;
}

/*
 * Plan and run the apply's query (sql, over the row range in params)
 * straight through the executor into the state's receiver.
 */
static void
silver_run_query(SilverApplyState *state, SilverDefinition *def,
				 const char *sql, ParamListInfo params)
{
	Oid			param_types[2] = {INT8OID, INT8OID};
	List	   *raw;
	List	   *queries;
	List	   *plans;
	QueryDesc  *query_desc;

	raw = UserSqlRawParse(sql);
	if (list_length(raw) != 1)
		elog(ERROR, "silver query is not a single statement");

	/*
	 * A new snapshot, taken after FlowApplyIncremental waited for the
	 * source's writers, sees every source row up to the ceiling.  Rows this
	 * apply inserts get the current command id and stay invisible to it, so
	 * the EXISTS column sees only rows of earlier updates.
	 */
	CommandCounterIncrement();
	PushActiveSnapshot(GetTransactionSnapshot());

	queries = pg_analyze_and_rewrite_fixedparams(linitial_node(RawStmt, raw),
												 sql, param_types, 2, NULL);
	if (list_length(queries) != 1)
		elog(ERROR, "silver query was rewritten into several queries");

	if (def->dedup_keys != NIL)
		silver_find_key_columns(state, def, linitial_node(Query, queries));

	/* no CURSOR_OPT_PARALLEL_OK: the receiver writes while the query runs */
	plans = pg_plan_queries(queries, sql, 0, params);

	query_desc = CreateQueryDesc(linitial_node(PlannedStmt, plans), sql,
								 GetActiveSnapshot(), InvalidSnapshot,
								 (DestReceiver *) state, params, NULL, 0);
	ExecutorStart(query_desc, 0);
	ExecutorRun(query_desc, ForwardScanDirection, 0, true);
	ExecutorFinish(query_desc);
	ExecutorEnd(query_desc);
	FreeQueryDesc(query_desc);
	PopActiveSnapshot();
}

/* Add the apply's counters to the flow's result and its event details. */
static void
silver_apply_report(SilverApplyState *state, FlowResult *result)
{
	result->rows_read += state->rows_read;
	result->rows_written += state->rows_written;
	result->rows_dropped += state->expectation_dropped + state->dedup_dropped;
	if (state->rows_written > 0)
		result->changed = true;

	FlowResultDetail(result);
	ExpectationsAppendMetrics(state->expectations, &result->details);
	appendStringInfo(&result->details,
					 ", \"expectation_dropped\": " INT64_FORMAT
					 ", \"dedup_dropped\": " INT64_FORMAT,
					 state->expectation_dropped, state->dedup_dropped);
	if (state->quarantine)
		appendStringInfo(&result->details,
						 ", \"quarantined\": " INT64_FORMAT,
						 state->quarantined);
}

/*
 * Apply a batch with the given definition; the expectations are those of
 * flow expectations_flow_id.  Everything is allocated in one memory
 * context, deleted at the end; on error the transaction's abort frees it.
 */
static void
silver_apply_definition(FlowDesc *flow, SilverDefinition *def,
						int32 expectations_flow_id, int64 low, int64 high,
						FlowResult *result)
{
	MemoryContext apply_context;
	MemoryContext old;
	SilverApplyState *state;
	SilverApplyErrorArg error_arg;
	ErrorContextCallback errcallback;
	int			nest_level;
	char	   *sql;

	apply_context = AllocSetContextCreate(CurrentMemoryContext,
										  "medallion silver apply",
										  ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(apply_context);

	error_arg.kind = CatalogFlowTypeName(flow->type);
	error_arg.flow_name = flow->flow_name;
	error_arg.low = low;
	error_arg.high = high;
	errcallback.callback = silver_apply_error_callback;
	errcallback.arg = &error_arg;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;

	nest_level = silver_apply_settings_enter();
	state = silver_apply_state_create(flow, apply_context);
	state->quarantine = def->quarantine;
	state->expectations = ExpectationsLoad(expectations_flow_id);

	/* the target stays open (RowExclusiveLock) until BulkInsertEnd */
	state->target = BulkInsertBegin(flow->target_relid, true);
	BulkInsertDeferIndexes(state->target);
	sql = silver_build_query(state, def, BulkInsertRelation(state->target));
	silver_run_query(state, def, sql, SilverRowRangeParams(low, high));

	if (state->quarantine_inserter != NULL)
		(void) BulkInsertEnd(state->quarantine_inserter);
	(void) BulkInsertEnd(state->target);

	UserSqlSettingsLeave(nest_level);
	error_context_stack = errcallback.previous;

	silver_apply_report(state, result);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(apply_context);
}

/* SilverApply: see silver.h. */
void
SilverApply(FlowContext *context, FlowDesc *flow, int64 low, int64 high,
			FlowResult *result)
{
	SilverDefinition def;

	silver_definition_load(flow, &def);
	silver_apply_definition(flow, &def, flow->flow_id, low, high, result);
}

/*
 * SilverApplyInto: see silver_internal.h.  The target's own silver flow, if
 * it has one, gives the dedup keys, the quarantine and the expectations.
 */
void
SilverApplyInto(FlowDesc *flow, const char *query, int64 low, int64 high,
				FlowResult *result)
{
	SilverDefinition def;
	FlowDesc   *target_flow = CatalogGetFlowByTarget(flow->target_relid, false);
	int32		expectations_flow_id = flow->flow_id;

	memset(&def, 0, sizeof(def));
	if (target_flow->type == FLOW_TYPE_SILVER)
	{
		silver_definition_load(target_flow, &def);
		expectations_flow_id = target_flow->flow_id;
	}
	def.query = unconstify(char *, query);
	silver_apply_definition(flow, &def, expectations_flow_id, low, high,
							result);
}

/*
 * SilverReset: a full refresh empties the quarantine table along with the
 * target (which the update truncates itself).
 */
void
SilverReset(FlowDesc *flow)
{
	SilverDefinition def;
	char	   *name;
	Oid			relid;

	silver_definition_load(flow, &def);
	if (!def.quarantine)
		return;

	name = SilverQuarantineName(get_rel_name(flow->target_relid));
	relid = get_relname_relid(name, get_rel_namespace(flow->target_relid));
	if (!OidIsValid(relid))
		return;

	SPI_connect();
	SpiExecute(psprintf("TRUNCATE %s", CatalogQualifiedRelationName(relid)),
			   0, NULL, NULL, NULL, SPI_OK_UTILITY);
	SPI_finish();
}

