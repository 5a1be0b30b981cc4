/*-------------------------------------------------------------------------
 *
 * cdc.c
 *	  Gold AUTO CDC flows: create_auto_cdc_flow(), auto_cdc_apply(), and the
 *	  incremental apply of change events into an SCD type 1 or type 2
 *	  target with the semantics of Databricks AUTO CDC INTO.
 *
 * Semantics (the README documents these)
 * --------------------------------------
 * - Every source row is one change event.  It is a truncate when
 *   apply_as_truncates is true for it, else a delete when apply_as_deletes
 *   is true, else an upsert (a NULL condition counts as false).  Its
 *   sequence is sequence_by evaluated on the row; a NULL sequence, or a NULL
 *   key in an upsert or delete, is a data error (not-null violation) that
 *   fails the whole apply: nothing of the batch is written.
 * - The target is defined as if every event of the source up to the
 *   flow's watermark were sorted by sequence and applied in that order, so
 *   it never depends on arrival order or on how events were split into
 *   batches.  Per key and sequence value only one event counts: a delete
 *   wins over upserts, and among upserts the one with the highest source
 *   _row_id (the one that arrived last) wins.
 * - SCD type 1: a key's row holds the values of its last event when that
 *   is an upsert, and does not exist when it is a delete.  The source event
 *   log itself is the tombstone store, so a late event older than a delete
 *   never resurrects the key, while a newer upsert re-inserts it; tombstones
 *   never expire.  A truncate at sequence t removes every key whose last
 *   event is at or before t: events at or before the highest truncate are
 *   ignored, later ones apply.
 * - SCD type 2: consecutive upserts of a key form one version (a "run")
 *   while they are equal, null-safely, on every tracked column
 *   (track_history_column_list, or every kept column but
 *   track_history_except_column_list; by default every kept non-key
 *   column).  A version carries the values of its run's latest event,
 *   __start_at is the sequence of the run's first event, and __end_at the
 *   sequence of the next event (the next run's start, or a delete), NULL for
 *   the current version.  So late events split or extend closed versions, a
 *   delete closes the version current at its sequence and adds no row, and
 *   an upsert after a delete opens a new version.  Truncates are rejected
 *   for SCD type 2 when the flow is created.
 * - ignore_null_updates: a NULL column of an upsert takes the value the
 *   column had after the previous event of the key, back to the last delete
 *   (or truncate); after a delete the key starts from nothing.
 * - Tracked columns whose type has no equality operator (json, xml, ...)
 *   are compared by their text form.
 *
 * How an apply works
 * ------------------
 * Pipeline sources are append-only logs with an increasing _row_id, and
 * create_auto_cdc_flow indexes the source on the keys.  An apply of the
 * events with low < _row_id <= high runs one query (cdc_events_sql) that
 * returns, sorted by key and sequence, the events and target rows it needs,
 * walks them in C (CdcRunner) deriving the key's rows, then deletes the
 * rows it replaces (by ctid) and bulk-inserts the derived ones.  The keys of
 * the batch are of two kinds:
 * - "fast" keys, whose new events are all later than every event applied
 *   before (flow_state keeps the highest sequence applied, binary-encoded):
 *   the key's current row (SCD1) or current version (SCD2) stands for its
 *   whole history, and the new events follow it.  Closing an SCD2 version
 *   without changing it is an in-place update of __end_at (SCD2 targets
 *   have fillfactor 90, so it is a HOT update).  This is the in-order case,
 *   and costs what a hand-written close-and-insert costs.
 * - "slow" keys (late events): all their events are read from the source
 *   (key index) and their rows derived again; for SCD2 only the versions
 *   that end at or after the key's earliest new event are replaced, the
 *   older ones cannot change.
 * Every key is looked up by index, one at a time, so the cost of an apply
 * grows with the keys it touches and their histories, not with the size of
 * the target.  The first apply (and the one after a full refresh), and an
 * SCD1 batch holding a truncate, derive the whole target from the source in
 * one sorted pass.  The result equals a from-scratch recompute by
 * construction; t/050_cdc_property.pl checks it under random arrival
 * orders and batch splits.
 *
 * Other decisions: column names given as text are matched exactly, else
 * like SQL identifiers (folded to lower case unless double-quoted); the
 * target has the keys and kept columns in source order (never _row_id),
 * primary key (keys) for SCD1 and (keys, __start_at) for SCD2, and a view
 * <target>_current; sequence_by and the conditions must be deterministic
 * row-level expressions (no volatile functions, aggregates, subqueries);
 * sequence_by needs a btree ordering, and apply_as_truncates a sequence type
 * whose binary form is stable (built-in scalar types, enums); triggers and
 * row-level security on the target are refused (rows are bulk-inserted).
 *
 * User SQL (sequence_by and the conditions) is checked to be one SQL
 * expression and placed into the generated statements by user_sql.c, when
 * the flow is created and at each apply, and analysed against the source;
 * column names are quoted.
 * Applies run in the pipeline owner's context (FlowApplyIncremental).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/transam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_am.h"
#include "catalog/pg_class.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_index.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "parser/analyze.h"
#include "parser/parse_func.h"
#include "parser/parser.h"
#include "parser/scansup.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/rel.h"
#include "utils/regproc.h"
#include "utils/ruleutils.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"
#include "utils/typcache.h"

#include "bulk_insert.h"
#include "catalog.h"
#include "cdc.h"
#include "change_feed.h"
#include "flow.h"
#include "flow_definition.h"
#include "spi_util.h"
#include "user_sql.h"
#include "version.h"

PG_FUNCTION_INFO_V1(medallion_create_auto_cdc_flow);
PG_FUNCTION_INFO_V1(medallion_auto_cdc_apply);

#define CDC_VIEW_SUFFIX "_current"

/* What an apply needs to know about a flow (from its definition). */
typedef struct CdcSpec
{
	char	   *flow_name;
	Oid			source_relid;
	char	   *source_name;	/* schema-qualified and quoted */
	Oid			target_relid;
	char	   *target_name;	/* schema-qualified and quoted */
	int			scd_type;		/* 1 or 2 */
	List	   *keys;			/* char *: key column names */
	List	   *columns;		/* char *: kept non-key column names */
	bool	   *tracked;		/* per column: opens a new version (SCD2) */
	char	   *sequence_by;	/* as the user wrote it */
	char	   *deletes;		/* apply_as_deletes, or NULL */
	char	   *truncates;		/* apply_as_truncates, or NULL */
	char	   *seq_sql;		/* the same, placed (user_sql.h) */
	char	   *deletes_sql;
	char	   *truncates_sql;
	bool		ignore_null_updates;
	Oid			seq_type;		/* type of sequence_by */
	int32		seq_typmod;
	Oid			seq_basetype;	/* seq_type without domains */
	Oid			seq_collation;
	bool		seq_storable;	/* can flow_state keep sequence values? */
	bool		seq_has_min;	/* is there a min() aggregate for it? */
	char	   *keys_alias;		/* an alias no source/target name equals */
} CdcSpec;

/*
 * Sequence values kept in flow_state between applies: the highest
 * sequence applied (any event) and the highest truncate applied.
 */
typedef struct CdcState
{
	bool		has_max;
	Datum		max_seq;
	bool		has_truncate;
	Datum		truncate_seq;
} CdcState;

/* How the keys of a batch are applied (see the file header). */
typedef enum CdcMode
{
	CDC_MODE_BY_MAX,			/* fast iff all new events > max_seq */
	CDC_MODE_ALL_SLOW,			/* max_seq unknown: re-derive every key */
	CDC_MODE_FULL				/* derive the whole target from the source:
								 * nothing applied yet, or an SCD1 batch with
								 * a truncate */
} CdcMode;

/* For error positions inside the SQL built around user expressions. */
typedef struct CdcParseContext
{
	const char *argname;
	const char *query;
} CdcParseContext;

static void
cdc_parse_error_callback(void *arg)
{
	CdcParseContext *ctx = (CdcParseContext *) arg;
	int			position = geterrposition();

	if (position > 0)
	{
		errposition(0);
		internalerrposition(position);
		internalerrquery(ctx->query);
	}
	errcontext("auto CDC flow argument %s", ctx->argname);
}

/*
 * Analyse an expression (placed by user_sql.c) over the source table and
 * return it.  The
 * expression must be deterministic and row-local: no aggregates, window
 * functions, set-returning functions, subqueries or volatile functions,
 * so that a recompute from the source gives the same result as the
 * incremental applies did.
 */
static Node *
cdc_analyze_expression(const char *argname, const char *placed,
					   const char *source_name)
{
	char	   *sql = psprintf("SELECT %s FROM %s", placed, source_name);
	ErrorContextCallback callback;
	CdcParseContext ctx;
	List	   *raw;
	Query	   *query;
	Node	   *expr;

	ctx.argname = argname;
	ctx.query = sql;
	callback.callback = cdc_parse_error_callback;
	callback.arg = &ctx;
	callback.previous = error_context_stack;
	error_context_stack = &callback;
	raw = raw_parser(sql, RAW_PARSE_DEFAULT);
	query = parse_analyze_fixedparams(linitial_node(RawStmt, raw), sql,
									  NULL, 0, NULL);
	error_context_stack = callback.previous;

	if (query->hasAggs || query->hasWindowFuncs || query->hasTargetSRFs ||
		query->hasSubLinks)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("%s must not contain aggregates, window functions, set-returning functions or subqueries",
						argname),
				 errdetail("It is evaluated on each source row on its own.")));
	expr = (Node *) linitial_node(TargetEntry, query->targetList)->expr;
	if (contain_volatile_functions(expr))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("%s must not call volatile functions", argname),
				 errdetail("A recompute from the source must give the same result.")));
	return expr;
}

/* Analyse a placed condition (apply_as_deletes, apply_as_truncates). */
static void
cdc_check_condition(const char *argname, const char *placed,
					const char *source_name)
{
	Node	   *expr = cdc_analyze_expression(argname, placed, source_name);

	if (exprType(expr) != BOOLOID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("%s must be a boolean expression, not type %s",
						argname, format_type_be(exprType(expr))),
				 errhint("Write a condition such as $$operation = 'DELETE'$$.")));
}

/*
 * Can sequence values of this type be kept in flow_state?  They are kept
 * in their binary send format, which must not embed OIDs of user objects
 * (a dump and restore would change them): base types whose element type,
 * if any, is built in, and enums.
 */
static bool
cdc_type_storable(Oid basetype)
{
	HeapTuple	tuple;
	Form_pg_type form;
	bool		storable;

	tuple = SearchSysCache1(TYPEOID, ObjectIdGetDatum(basetype));
	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for type %u", basetype);
	form = (Form_pg_type) GETSTRUCT(tuple);
	storable = (form->typtype == TYPTYPE_BASE ||
				form->typtype == TYPTYPE_ENUM) &&
		OidIsValid(form->typsend) && OidIsValid(form->typreceive) &&
		(!OidIsValid(form->typelem) || form->typelem < FirstNormalObjectId);
	ReleaseSysCache(tuple);
	return storable;
}

/* Does pg_catalog.min() take this type (to find where late events start)? */
static bool
cdc_type_has_min(Oid type)
{
	Oid			funcid;
	Oid			rettype;
	bool		retset;
	int			nvargs;
	Oid			vatype;
	Oid		   *true_typeids;

	return func_get_detail(list_make2(makeString("pg_catalog"),
									  makeString("min")),
						   NIL, NIL, 1, &type, false, false, false,
						   &funcid, &rettype, &retset, &nvargs, &vatype,
						   &true_typeids, NULL) == FUNCDETAIL_AGGREGATE;
}

/*
 * Analyse sequence_by and fill in its type.  It must have a btree
 * ordering: events are sorted and compared by it.
 */
static void
cdc_resolve_sequence(CdcSpec *spec)
{
	Node	   *expr = cdc_analyze_expression("sequence_by", spec->seq_sql,
											  spec->source_name);
	TypeCacheEntry *typentry;

	spec->seq_type = exprType(expr);
	spec->seq_typmod = exprTypmod(expr);
	spec->seq_collation = exprCollation(expr);
	spec->seq_basetype = getBaseType(spec->seq_type);
	if (get_typtype(spec->seq_type) == TYPTYPE_PSEUDO)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("sequence_by cannot be of type %s",
						format_type_be(spec->seq_type)),
				 errhint("__start_at and __end_at take the type of sequence_by; to sequence by several values, cast a ROW() to a composite type.")));
	typentry = lookup_type_cache(spec->seq_basetype, TYPECACHE_CMP_PROC);
	if (!OidIsValid(typentry->cmp_proc))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("sequence_by of type %s has no btree ordering",
						format_type_be(spec->seq_type)),
				 errhint("Sequence by a column or expression of a sortable type, such as a number or a timestamp.")));
	spec->seq_storable = cdc_type_storable(spec->seq_basetype);
	spec->seq_has_min = cdc_type_has_min(spec->seq_type);
}

/*
 * The placed forms of the flow's expressions (user_sql.h), checked again
 * wherever they come from: the arguments or the stored definition.
 */
static void
cdc_place_expressions(CdcSpec *spec)
{
	spec->seq_sql = UserSqlExpression(spec->sequence_by, "sequence_by");
	if (spec->deletes != NULL)
		spec->deletes_sql = UserSqlExpression(spec->deletes,
											  "apply_as_deletes");
	if (spec->truncates != NULL)
		spec->truncates_sql = UserSqlExpression(spec->truncates,
												"apply_as_truncates");
}

/* An alias for the touched-keys relation that no user relation has. */
static char *
cdc_keys_alias(Oid source_relid, Oid target_relid)
{
	char	   *source = get_rel_name(source_relid);
	char	   *target = get_rel_name(target_relid);
	int			n = 0;

	for (;;)
	{
		char	   *alias = n == 0 ? pstrdup("__cdc_keys") :
			psprintf("__cdc_keys_%d", n);

		if ((source == NULL || strcmp(alias, source) != 0) &&
			(target == NULL || strcmp(alias, target) != 0))
			return alias;
		n++;
	}
}

/* ---- column names ---------------------------------------------------- */

static bool
cdc_list_has(List *names, const char *name)
{
	ListCell   *cell;

	foreach(cell, names)
	{
		if (strcmp((char *) lfirst(cell), name) == 0)
			return true;
	}
	return false;
}

static AttrNumber
cdc_find_attribute(TupleDesc desc, const char *name)
{
	int			i;

	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute attr = TupleDescAttr(desc, i);

		if (!attr->attisdropped && strcmp(NameStr(attr->attname), name) == 0)
			return attr->attnum;
	}
	return InvalidAttrNumber;
}

/*
 * Resolve a column name given as text: the exact name first; else, like an
 * identifier in SQL, the name between double quotes when it is quoted, or
 * the name folded to lower case when it is not.  So 'userId' finds a column
 * created as userId (that is, userid), and '"userId"' one created as
 * "userId".
 */
static char *
cdc_resolve_column(Relation rel, const char *name, const char *argname)
{
	TupleDesc	desc = RelationGetDescr(rel);
	AttrNumber	attnum = cdc_find_attribute(desc, name);
	size_t		len = strlen(name);

	if (attnum == InvalidAttrNumber && len >= 2 &&
		name[0] == '"' && name[len - 1] == '"')
	{
		StringInfoData unquoted;
		size_t		i;

		initStringInfo(&unquoted);
		for (i = 1; i < len - 1; i++)
		{
			appendStringInfoChar(&unquoted, name[i]);
			if (name[i] == '"' && name[i + 1] == '"')
				i++;
		}
		attnum = cdc_find_attribute(desc, unquoted.data);
	}
	else if (attnum == InvalidAttrNumber)
		attnum = cdc_find_attribute(desc,
									downcase_identifier(name, len, false, false));

	if (attnum == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of relation \"%s\" does not exist",
						name, RelationGetRelationName(rel)),
				 errdetail("%s names columns of the source table.", argname)));
	return pstrdup(NameStr(TupleDescAttr(desc, attnum - 1)->attname));
}

/*
 * A text[] argument as a list of resolved column names; NIL when the
 * argument is NULL (*given tells NULL from empty).  Duplicates and NULL
 * elements are errors.
 */
static List *
cdc_column_array_arg(FunctionCallInfo fcinfo, int argno, const char *argname,
					 Relation rel, bool *given)
{
	ArrayType  *array;
	Datum	   *elements;
	bool	   *nulls;
	int			count;
	int			i;
	List	   *names = NIL;

	*given = !PG_ARGISNULL(argno);
	if (!*given)
		return NIL;
	array = PG_GETARG_ARRAYTYPE_P(argno);
	deconstruct_array(array, TEXTOID, -1, false, TYPALIGN_INT,
					  &elements, &nulls, &count);
	for (i = 0; i < count; i++)
	{
		char	   *name;

		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s must not contain nulls", argname)));
		name = cdc_resolve_column(rel, TextDatumGetCString(elements[i]),
								  argname);
		if (cdc_list_has(names, name))
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_COLUMN),
					 errmsg("column \"%s\" appears more than once in %s",
							name, argname)));
		names = lappend(names, name);
	}
	return names;
}

/* ---- SQL text helpers ------------------------------------------------ */

/* "__k1, __k2, ..." */
static void
append_numbered(StringInfo buf, const char *prefix, int count)
{
	int			i;

	for (i = 1; i <= count; i++)
		appendStringInfo(buf, "%s%s%d", i > 1 ? ", " : "", prefix, i);
}

/* "<qual>"a", <qual>"b", ..." */
static void
append_names(StringInfo buf, List *names, const char *qual)
{
	ListCell   *cell;

	foreach(cell, names)
		appendStringInfo(buf, "%s%s%s",
						 foreach_current_index(cell) > 0 ? ", " : "",
						 qual ? qual : "",
						 UserSqlColumnName((char *) lfirst(cell)));
}

/* ", "a" AS __k1, "b" AS __k2, ..." */
static void
append_names_as_numbered(StringInfo buf, List *names, const char *prefix)
{
	ListCell   *cell;

	foreach(cell, names)
		appendStringInfo(buf, ", %s AS %s%d",
						 UserSqlColumnName((char *) lfirst(cell)), prefix,
						 foreach_current_index(cell) + 1);
}

/* "c"1" = <alias>.__k1 AND ..." */
static void
append_key_match(StringInfo buf, CdcSpec *spec)
{
	ListCell   *cell;

	foreach(cell, spec->keys)
		appendStringInfo(buf, "%s%s = %s.__k%d",
						 foreach_current_index(cell) > 0 ? " AND " : "",
						 UserSqlColumnName((char *) lfirst(cell)),
						 spec->keys_alias, foreach_current_index(cell) + 1);
}

/* A parameter of the sequence type, with the collation of sequence_by. */
static char *
cdc_seq_param(CdcSpec *spec, int paramno)
{
	if (OidIsValid(spec->seq_collation) &&
		spec->seq_collation != DEFAULT_COLLATION_OID)
		return psprintf("($%d COLLATE %s)", paramno,
						generate_collation_name(spec->seq_collation));
	return psprintf("$%d", paramno);
}

/* "NOT COALESCE(<truncates>, false)", or "true" */
static char *
cdc_not_truncate(CdcSpec *spec)
{
	if (spec->truncates == NULL)
		return "true";
	return psprintf("NOT COALESCE(%s, false)", spec->truncates_sql);
}

/*
 * "SELECT _row_id AS __rid, "k" AS __k1, ..., "c" AS __c1, ..., (seq) AS
 * __seq, (is delete) AS __del FROM source": the events, with internal
 * names only, so that user column names never meet ours.  User expressions
 * are evaluated here, where only the source is in scope.
 */
static void
append_source_events(StringInfo buf, CdcSpec *spec)
{
	appendStringInfoString(buf, "SELECT _row_id AS __rid");
	append_names_as_numbered(buf, spec->keys, "__k");
	append_names_as_numbered(buf, spec->columns, "__c");
	appendStringInfo(buf, ", %s AS __seq, ", spec->seq_sql);
	if (spec->deletes != NULL)
		appendStringInfo(buf, "COALESCE(%s, false) AS __del", spec->deletes_sql);
	else
		appendStringInfoString(buf, "false AS __del");
	appendStringInfo(buf, " FROM %s", spec->source_name);
}

/*
 * When the flow has truncates: the batch's size, and its highest truncate
 * if it has one (a truncate with a NULL sequence first, to be reported).
 */
static char *
cdc_truncate_check_sql(CdcSpec *spec)
{
	return psprintf("SELECT __tr, __seq, __rid, __n FROM ("
					"SELECT %s AS __seq, _row_id AS __rid,"
					" COALESCE(%s, false) AS __tr, count(*) OVER () AS __n"
					" FROM %s WHERE _row_id > $1 AND _row_id <= $2 OFFSET 0) __t"
					" ORDER BY __tr DESC, __seq DESC NULLS FIRST LIMIT 1",
					spec->seq_sql, spec->truncates_sql, spec->source_name);
}

/* Columns of the events query, after __kind, __ctid, __rid. */
#define CDC_EV_KIND 0
#define CDC_EV_CTID 1
#define CDC_EV_RID 2
#define CDC_EV_KEYS 3

/* Kinds of rows of the events query. */
#define CDC_KIND_CURRENT 0		/* a fast key's current row: its history */
#define CDC_KIND_REPLACED 1		/* a slow key's row: replaced, not an event */
#define CDC_KIND_EVENT 2		/* a change event of the source */
#define CDC_KIND_INVALID 3		/* a new event with a NULL key or sequence */

/*
 * The query that feeds an apply (parameters: $1 low, $2 high (int8), $3
 * the highest sequence applied before, $4 the highest truncate, both of the
 * sequence type and NULL when unknown).  It returns, sorted by key, then
 * sequence, deletes first, latest arrival first:
 *	 - the events of the batch with a NULL key or sequence (the walk stops
 *	   at the first one, and the apply fails)
 *	 - for keys whose new events are all later than anything applied before
 *	   ("fast"): their current row or version, as the history the new events
 *	   build on, and their new events
 *	 - for the other keys ("slow"): their rows in the target that may change
 *	   (to be replaced), and all their events in the source, read through
 *	   the source's key index
 * Target rows come with their ctid.  In CDC_MODE_FULL (the first apply, or
 * a truncate in the batch of an SCD1 flow) it returns every event, after
 * the highest truncate if any.
 *
 * The touched keys (__bk) are looked up one by one (LATERAL ... OFFSET 0)
 * so that the cost stays proportional to the keys of the batch whatever
 * the planner thinks of the sizes involved.
 */
static char *
cdc_events_sql(CdcSpec *spec, CdcMode mode, bool truncate_known)
{
	StringInfoData sql;
	StringInfoData keys;
	int			nkeys = list_length(spec->keys);
	const char *alias = spec->keys_alias;
	char	   *seq_type_name = format_type_extended(spec->seq_type,
													 spec->seq_typmod,
													 FORMAT_TYPE_TYPEMOD_GIVEN |
													 FORMAT_TYPE_FORCE_QUALIFY);
	ListCell   *cell;

	initStringInfo(&keys);
	append_numbered(&keys, "__k", nkeys);
	initStringInfo(&sql);

	if (mode == CDC_MODE_FULL)
	{
		/* invalid new events: a NULL key or sequence */
		appendStringInfo(&sql, "SELECT * FROM (SELECT %d AS __kind,"
						 " NULL::pg_catalog.tid AS __ctid, __i.*,"
						 " NULL::%s AS __from FROM (",
						 CDC_KIND_INVALID, seq_type_name);
		append_source_events(&sql, spec);
		appendStringInfo(&sql, " WHERE _row_id > $1 AND _row_id <= $2 AND %s"
						 " AND (%s IS NULL",
						 cdc_not_truncate(spec), spec->seq_sql);
		foreach(cell, spec->keys)
			appendStringInfo(&sql, " OR %s IS NULL",
							 UserSqlColumnName((char *) lfirst(cell)));
		appendStringInfoString(&sql, ") OFFSET 0) __i UNION ALL ");

		/* every event, after the highest truncate */
		appendStringInfo(&sql, "SELECT %d, NULL::pg_catalog.tid, __a.*,"
						 " NULL::%s FROM (", CDC_KIND_EVENT, seq_type_name);
		append_source_events(&sql, spec);
		appendStringInfo(&sql, " WHERE _row_id <= $2 AND %s",
						 cdc_not_truncate(spec));
		if (truncate_known)
			appendStringInfo(&sql, " AND %s > %s", spec->seq_sql,
							 cdc_seq_param(spec, 4));
		appendStringInfo(&sql, " OFFSET 0) __a) __e ORDER BY %s, __seq%s,"
						 " __del DESC, __rid DESC",
						 keys.data, spec->scd_type == 1 ? " NULLS FIRST" : "");
		return sql.data;
	}

	/*
	 * __bk: the keys of the batch; whether they are fast; where their new
	 * events start (__from, SCD2); an event of theirs with a NULL sequence
	 * (__bad), or any (__any).
	 */
	appendStringInfo(&sql, "WITH __bk AS MATERIALIZED (SELECT %s, ",
					 keys.data);
	if (mode == CDC_MODE_BY_MAX)
		appendStringInfo(&sql, "NOT bool_or(__seq <= %s)",
						 cdc_seq_param(spec, 3));
	else
		appendStringInfoString(&sql, "false");
	appendStringInfoString(&sql, " AS __fast, ");
	if (spec->seq_has_min && spec->scd_type == 2)
		appendStringInfoString(&sql, "min(__seq)");
	else
		appendStringInfo(&sql, "NULL::%s", seq_type_name);
	appendStringInfoString(&sql, " AS __from, min(__rid) AS __any,"
						   " min(__rid) FILTER (WHERE __seq IS NULL) AS __bad"
						   " FROM (SELECT _row_id AS __rid");
	append_names_as_numbered(&sql, spec->keys, "__k");
	appendStringInfo(&sql, ", %s AS __seq FROM %s"
					 " WHERE _row_id > $1 AND _row_id <= $2 AND %s"
					 " OFFSET 0) __b GROUP BY %s) ",
					 spec->seq_sql, spec->source_name,
					 cdc_not_truncate(spec), keys.data);

	/* invalid new events: a NULL key or sequence */
	appendStringInfo(&sql, "SELECT * FROM (SELECT %d AS __kind,"
					 " NULL::pg_catalog.tid AS __ctid,"
					 " COALESCE(__bad, __any) AS __rid, %s",
					 CDC_KIND_INVALID, keys.data);
	foreach(cell, spec->columns)
	{
		Oid			type = get_atttype(spec->source_relid,
									   get_attnum(spec->source_relid,
												  (char *) lfirst(cell)));

		appendStringInfo(&sql, ", NULL::%s", format_type_be_qualified(type));
	}
	appendStringInfo(&sql, ", NULL::%s AS __seq, false AS __del,"
					 " __from FROM __bk WHERE __bad IS NOT NULL",
					 seq_type_name);
	foreach(cell, spec->keys)
		appendStringInfo(&sql, " OR __k%d IS NULL",
						 foreach_current_index(cell) + 1);
	appendStringInfoString(&sql, " UNION ALL ");

	{
		/* rows of the target: current rows of fast keys, rows of slow keys */
		appendStringInfo(&sql,
						 "SELECT CASE WHEN %s.__fast THEN %d ELSE %d END,"
						 " __x.* FROM __bk %s CROSS JOIN LATERAL ("
						 "SELECT ctid, 0::pg_catalog.int8",
						 alias, CDC_KIND_CURRENT, CDC_KIND_REPLACED, alias);
		append_names_as_numbered(&sql, spec->keys, "__k");
		append_names_as_numbered(&sql, spec->columns, "__c");
		if (spec->scd_type == 2)
			appendStringInfoString(&sql, ", __start_at");
		else
			appendStringInfo(&sql, ", NULL::%s", seq_type_name);
		appendStringInfo(&sql, ", false, %s.__from FROM %s WHERE ",
						 alias, spec->target_name);
		append_key_match(&sql, spec);

		/*
		 * SCD2: of a fast key, its current version; of a slow key, the
		 * versions that end at or after its first new event (the others
		 * cannot change), or all of them when that is not known.
		 */
		if (spec->scd_type == 2)
			appendStringInfo(&sql,
							 " AND (__end_at IS NULL OR NOT %s.__fast AND"
							 " (%s.__from IS NULL OR __end_at >= %s.__from))",
							 alias, alias, alias);
		appendStringInfoString(&sql, " OFFSET 0) __x UNION ALL ");

		/* new events of fast keys */
		appendStringInfo(&sql, "SELECT %d, NULL::pg_catalog.tid, __s.*,"
						 " NULL::%s FROM (", CDC_KIND_EVENT, seq_type_name);
		append_source_events(&sql, spec);
		appendStringInfo(&sql, " WHERE _row_id > $1 AND _row_id <= $2 AND %s"
						 " AND (", cdc_not_truncate(spec));
		append_names(&sql, spec->keys, NULL);
		appendStringInfo(&sql, ") IN (SELECT %s FROM __bk WHERE __fast)"
						 " OFFSET 0) __s UNION ALL ", keys.data);

		/* all events of slow keys */
		appendStringInfo(&sql, "SELECT %d, NULL::pg_catalog.tid, __y.*,"
						 " %s.__from FROM __bk %s CROSS JOIN LATERAL (",
						 CDC_KIND_EVENT, alias, alias);
		append_source_events(&sql, spec);
		appendStringInfoString(&sql, " WHERE ");
		append_key_match(&sql, spec);
		appendStringInfo(&sql, " AND _row_id <= $2 AND %s",
						 cdc_not_truncate(spec));
		if (truncate_known)
			appendStringInfo(&sql, " AND %s > %s", spec->seq_sql,
							 cdc_seq_param(spec, 4));
		appendStringInfo(&sql, " OFFSET 0) __y WHERE NOT %s.__fast", alias);
	}

	appendStringInfo(&sql, ") __e ORDER BY %s, __seq%s, __del DESC, __rid DESC",
					 keys.data, spec->scd_type == 1 ? " NULLS FIRST" : "");
	return sql.data;
}

/* ---- flow_state ------------------------------------------------------ */

static int
cdc_compare(CdcSpec *spec, Datum a, Datum b)
{
	TypeCacheEntry *typentry = lookup_type_cache(spec->seq_basetype,
												 TYPECACHE_CMP_PROC_FINFO);

	return DatumGetInt32(FunctionCall2Coll(&typentry->cmp_proc_finfo,
										   spec->seq_collation, a, b));
}

static char *
cdc_state_get_string(Jsonb *state, const char *key)
{
	JsonbValue *value;

	if (state == NULL || !JB_ROOT_IS_OBJECT(state))
		return NULL;
	value = getKeyJsonValueFromContainer(&state->root, key, strlen(key), NULL);
	if (value == NULL || value->type != jbvString)
		return NULL;
	return pnstrdup(value->val.string.val, value->val.string.len);
}

static Datum
cdc_decode_seq(CdcSpec *spec, const char *hex)
{
	size_t		hexlen = strlen(hex);
	StringInfoData buf;
	Oid			receive;
	Oid			ioparam;

	getTypeBinaryInputInfo(spec->seq_basetype, &receive, &ioparam);
	initStringInfo(&buf);
	enlargeStringInfo(&buf, hexlen / 2 + 1);
	buf.len = (int) hex_decode(hex, hexlen, buf.data);
	buf.data[buf.len] = '\0';
	return OidReceiveFunctionCall(receive, &buf, ioparam, -1);
}

static char *
cdc_encode_seq(CdcSpec *spec, Datum value)
{
	Oid			send;
	bool		isvarlena;
	bytea	   *bytes;
	size_t		len;
	char	   *hex;

	getTypeBinaryOutputInfo(spec->seq_basetype, &send, &isvarlena);
	bytes = OidSendFunctionCall(send, value);
	len = VARSIZE(bytes) - VARHDRSZ;
	hex = palloc(len * 2 + 1);
	hex[hex_encode(VARDATA(bytes), len, hex)] = '\0';
	return hex;
}

/*
 * Read the sequence values kept in flow_state.  They are ignored when they
 * were written for another sequence type (the source changed).
 */
static void
cdc_state_read(CdcSpec *spec, Jsonb *state, CdcState *out)
{
	char	   *type_name = cdc_state_get_string(state, "seq_type");
	char	   *max_seq = cdc_state_get_string(state, "max_seq");
	char	   *truncate_seq = cdc_state_get_string(state, "truncate_seq");

	memset(out, 0, sizeof(CdcState));
	if (!spec->seq_storable || type_name == NULL ||
		strcmp(type_name, format_type_be(spec->seq_basetype)) != 0)
		return;
	if (max_seq != NULL)
	{
		out->max_seq = cdc_decode_seq(spec, max_seq);
		out->has_max = true;
	}
	if (truncate_seq != NULL)
	{
		out->truncate_seq = cdc_decode_seq(spec, truncate_seq);
		out->has_truncate = true;
	}
}

static Jsonb *
cdc_state_build(CdcSpec *spec, CdcState *state)
{
	StringInfoData json;

	initStringInfo(&json);
	appendStringInfoString(&json, "{\"seq_type\": ");
	escape_json(&json, format_type_be(spec->seq_basetype));
	if (state->has_max)
		appendStringInfo(&json, ", \"max_seq\": \"%s\"",
						 cdc_encode_seq(spec, state->max_seq));
	if (state->has_truncate)
		appendStringInfo(&json, ", \"truncate_seq\": \"%s\"",
						 cdc_encode_seq(spec, state->truncate_seq));
	appendStringInfoChar(&json, '}');
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in,
											  CStringGetDatum(json.data)));
}

/* Raise *current to value if it is higher; true when it changed. */
static bool
cdc_raise(CdcSpec *spec, bool *has, Datum *current, Datum value)
{
	if (*has && cdc_compare(spec, value, *current) <= 0)
		return false;
	*has = true;
	*current = value;
	return true;
}

/* ---- definition ------------------------------------------------------ */

int
CdcFlowScdType(const FlowDesc *flow)
{
	int64		scd_type = FlowDefinitionInt(flow, "stored_as_scd_type", 2);

	if (scd_type != 1 && scd_type != 2)
		FlowDefinitionCorrupted(flow->flow_name, "stored_as_scd_type");
	return (int) scd_type;
}

List *
CdcFlowKeys(const FlowDesc *flow)
{
	List	   *keys = FlowDefinitionStringList(flow, "keys", true);

	if (keys == NIL)
		FlowDefinitionCorrupted(flow->flow_name, "keys");
	return keys;
}

/*
 * Build the spec of a flow from its definition.  Must run in the pipeline
 * owner's context, where the expressions are analysed as at creation.
 */
static CdcSpec *
cdc_load_spec(FlowDesc *flow)
{
	CdcSpec    *spec = palloc0(sizeof(CdcSpec));
	List	   *tracked;
	ListCell   *cell;
	int			ncols;

	spec->flow_name = flow->flow_name;
	spec->source_relid = flow->source_relid;
	spec->target_relid = flow->target_relid;
	FlowCheckSourceExists(flow, spec->source_relid);
	spec->source_name = CatalogQualifiedRelationName(spec->source_relid);
	spec->target_name = CatalogQualifiedRelationName(spec->target_relid);

	spec->scd_type = CdcFlowScdType(flow);
	spec->ignore_null_updates = FlowDefinitionBool(flow, "ignore_null_updates",
												   false);
	spec->keys = CdcFlowKeys(flow);
	spec->columns = FlowDefinitionStringList(flow, "columns", false);
	tracked = FlowDefinitionStringList(flow, "tracked_columns", false);
	spec->sequence_by = FlowDefinitionString(flow, "sequence_by", true);
	spec->deletes = FlowDefinitionString(flow, "apply_as_deletes", false);
	spec->truncates = FlowDefinitionString(flow, "apply_as_truncates", false);
	cdc_place_expressions(spec);

	ncols = list_length(spec->columns);
	spec->tracked = palloc0(sizeof(bool) * (ncols + 1));
	foreach(cell, spec->columns)
	{
		char	   *name = (char *) lfirst(cell);
		int			i = foreach_current_index(cell);
		AttrNumber	attnum = get_attnum(spec->source_relid, name);

		if (attnum == InvalidAttrNumber)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("column \"%s\" of relation \"%s\" does not exist",
							name, get_rel_name(spec->source_relid)),
					 errdetail("Flow \"%s\" keeps this column of its source.",
							   flow->flow_name)));
		spec->tracked[i] = cdc_list_has(tracked, name);
	}
	spec->keys_alias = cdc_keys_alias(spec->source_relid, spec->target_relid);
	cdc_resolve_sequence(spec);
	return spec;
}

/* ---- apply ----------------------------------------------------------- */

/*
 * The state of an apply while it walks the sorted events (see
 * cdc_events_sql): the key being derived, its last event, the version open
 * (SCD2), and where the derived rows and the rows they replace go.
 */
typedef struct CdcRunner
{
	CdcSpec    *spec;
	int			nkeys;
	int			ncols;
	int64		low;

	/* comparison support, per key / column / the sequence */
	FmgrInfo  **key_cmp;
	Oid		   *key_collation;
	FmgrInfo  **col_eq;			/* NULL: compare the text forms */
	Oid		   *col_output;
	Oid		   *col_collation;
	FmgrInfo   *seq_cmp;
	Oid			seq_collation;
	int16	   *key_len;
	bool	   *key_byval;
	int16	   *col_len;
	bool	   *col_byval;
	int16		seq_len;
	bool		seq_byval;

	/* the key being derived (copied into key_context) */
	MemoryContext key_context;
	bool		has_key;
	Datum	   *key;
	bool		key_has_history;	/* read its events applied before */
	bool		has_from;		/* SCD2 slow key: versions ending before */
	Datum		from;			/* from are kept, not derived again */

	/* its last event, kept in one of two contexts used in turn */
	MemoryContext event_context[2];
	int			event_slot;
	bool		has_last;
	bool		last_del;
	bool		last_seq_null;
	Datum		last_seq;
	Datum	   *last_values;
	bool	   *last_nulls;

	/* SCD2: the open version starts at open_start (in open_context) */
	MemoryContext open_context;
	bool		open;
	Datum		open_start;

	/*
	 * SCD2, fast key: its current version (at current_ctid) opens the key's
	 * history.  While its run has no later event, closing it only sets
	 * __end_at, which is done in place (a HOT update) rather than by
	 * deleting and inserting the row.
	 */
	bool		has_current;
	bool		current_untouched;
	ItemPointerData current_ctid;

	/* output: rows for the target, and the ctids of the rows they replace */
	Tuplestorestate *output;
	TupleDesc	target_desc;
	int		   *target_map;		/* per target column, see CDC_MAP_* */
	Datum	   *out_values;
	bool	   *out_nulls;
	ItemPointerData *replaced;
	int			nreplaced;
	int			replaced_size;
	ItemPointerData *closed;	/* current versions to close in place */
	Datum	   *closed_at;		/* ... with this __end_at */
	int			nclosed;
	int			closed_size;
	MemoryContext closed_context;

	/*
	 * An invalid event stops the walk; the error is raised once the query
	 * is over, so that it does not come with the query's text as context.
	 */
	bool		invalid;
	int64		invalid_rid;
	int			invalid_key;	/* the NULL key column, or -1: NULL sequence */
	char	   *mismatch;		/* a target column of another type */
	Oid			mismatch_type;
	Oid			mismatch_derived;

	/* counters */
	int64		rows_read;
	int64		keys;
	int64		keys_recomputed;
	bool		has_batch_max;
	Datum		batch_max;		/* highest sequence of the batch */
	MemoryContext max_context;
} CdcRunner;

/* target_map values below 0; >= 0 is a key, CDC_MAP_COLUMN + j column j */
#define CDC_MAP_NONE (-1)
#define CDC_MAP_START (-2)
#define CDC_MAP_END (-3)
#define CDC_MAP_COLUMN 10000

static bool
cdc_seq_equal(CdcRunner *runner, bool null1, Datum seq1, bool null2,
			  Datum seq2)
{
	if (null1 || null2)
		return null1 && null2;
	return DatumGetInt32(FunctionCall2Coll(runner->seq_cmp,
										   runner->seq_collation,
										   seq1, seq2)) == 0;
}

/* Null-safe equality of the tracked columns of the event and the last one. */
static bool
cdc_tracked_equal(CdcRunner *runner, Datum *values, bool *nulls)
{
	int			j;

	for (j = 0; j < runner->ncols; j++)
	{
		if (!runner->spec->tracked[j])
			continue;
		if (nulls[j] || runner->last_nulls[j])
		{
			if (nulls[j] != runner->last_nulls[j])
				return false;
			continue;
		}
		if (runner->col_eq[j] != NULL)
		{
			if (!DatumGetBool(FunctionCall2Coll(runner->col_eq[j],
												runner->col_collation[j],
												values[j],
												runner->last_values[j])))
				return false;
		}
		else if (strcmp(OidOutputFunctionCall(runner->col_output[j], values[j]),
						OidOutputFunctionCall(runner->col_output[j],
											  runner->last_values[j])) != 0)
			return false;
	}
	return true;
}

/* Queue a row for the target: the key, the last event's values. */
static void
cdc_emit(CdcRunner *runner, bool has_start, Datum start, bool has_end,
		 Datum end)
{
	int			i;

	for (i = 0; i < runner->target_desc->natts; i++)
	{
		int			map = runner->target_map[i];

		runner->out_nulls[i] = false;
		if (map == CDC_MAP_START)
		{
			runner->out_values[i] = start;
			runner->out_nulls[i] = !has_start;
		}
		else if (map == CDC_MAP_END)
		{
			runner->out_values[i] = end;
			runner->out_nulls[i] = !has_end;
		}
		else if (map >= CDC_MAP_COLUMN)
		{
			runner->out_values[i] = runner->last_values[map - CDC_MAP_COLUMN];
			runner->out_nulls[i] = runner->last_nulls[map - CDC_MAP_COLUMN];
		}
		else if (map >= 0)
			runner->out_values[i] = runner->key[map];
		else
		{
			runner->out_values[i] = (Datum) 0;
			runner->out_nulls[i] = true;
		}
	}
	tuplestore_putvalues(runner->output, runner->target_desc,
						 runner->out_values, runner->out_nulls);
}

/* The key is complete: emit what is left open. */
static void
cdc_finish_key(CdcRunner *runner)
{
	if (!runner->has_key || !runner->has_last)
		return;
	if (runner->spec->scd_type == 1)
	{
		if (!runner->last_del)
			cdc_emit(runner, false, (Datum) 0, false, (Datum) 0);
	}
	else if (runner->open &&
			 !(runner->has_current && runner->current_untouched))
		cdc_emit(runner, true, runner->open_start, false, (Datum) 0);
	if (runner->key_has_history)
		runner->keys_recomputed++;
}

static void
cdc_start_key(CdcRunner *runner, Datum *key)
{
	MemoryContext old;
	int			i;

	cdc_finish_key(runner);
	MemoryContextReset(runner->key_context);
	old = MemoryContextSwitchTo(runner->key_context);
	for (i = 0; i < runner->nkeys; i++)
		runner->key[i] = datumCopy(key[i], runner->key_byval[i],
								   runner->key_len[i]);
	MemoryContextSwitchTo(old);
	runner->has_key = true;
	runner->key_has_history = false;
	runner->has_from = false;
	runner->has_current = false;
	runner->has_last = false;
	runner->open = false;
	runner->keys++;
}

static bool
cdc_same_key(CdcRunner *runner, Datum *key)
{
	int			i;

	if (!runner->has_key)
		return false;
	for (i = 0; i < runner->nkeys; i++)
	{
		if (DatumGetInt32(FunctionCall2Coll(runner->key_cmp[i],
											runner->key_collation[i],
											key[i], runner->key[i])) != 0)
			return false;
	}
	return true;
}

static void
cdc_remember_replaced(CdcRunner *runner, Datum ctid)
{
	if (runner->nreplaced == runner->replaced_size)
	{
		runner->replaced_size *= 2;
		runner->replaced = repalloc(runner->replaced,
									sizeof(ItemPointerData) * runner->replaced_size);
	}
	ItemPointerCopy((ItemPointer) DatumGetPointer(ctid),
					&runner->replaced[runner->nreplaced++]);
}

/* The current version's run goes on: it is replaced, not closed in place. */
static void
cdc_current_touched(CdcRunner *runner)
{
	if (runner->current_untouched)
	{
		cdc_remember_replaced(runner, PointerGetDatum(&runner->current_ctid));
		runner->current_untouched = false;
	}
}

/* Close the untouched current version in place at end. */
static void
cdc_close_current(CdcRunner *runner, Datum end)
{
	MemoryContext old;

	if (runner->nclosed == runner->closed_size)
	{
		runner->closed_size *= 2;
		runner->closed = repalloc(runner->closed,
								  sizeof(ItemPointerData) * runner->closed_size);
		runner->closed_at = repalloc(runner->closed_at,
									 sizeof(Datum) * runner->closed_size);
	}
	runner->closed[runner->nclosed] = runner->current_ctid;
	old = MemoryContextSwitchTo(runner->closed_context);
	runner->closed_at[runner->nclosed] = datumCopy(end, runner->seq_byval,
												   runner->seq_len);
	MemoryContextSwitchTo(old);
	runner->nclosed++;
}

/*
 * Apply one event (the first of its key and sequence value, the one that
 * counts) to the key's state; values/nulls are its kept columns.
 */
static void
cdc_event(CdcRunner *runner, bool del, bool seq_null, Datum seq,
		  Datum *values, bool *nulls)
{
	MemoryContext context;
	MemoryContext old;
	bool		continues_run = false;
	int			j;

	if (runner->spec->ignore_null_updates && !del && runner->has_last &&
		!runner->last_del)
	{
		for (j = 0; j < runner->ncols; j++)
		{
			if (nulls[j] && !runner->last_nulls[j])
			{
				values[j] = runner->last_values[j];
				nulls[j] = false;
			}
		}
	}

	if (runner->spec->scd_type == 2)
	{
		if (!del && runner->open)
			continues_run = cdc_tracked_equal(runner, values, nulls);
		if (runner->open && !continues_run)
		{
			if (runner->has_current && runner->current_untouched)
				cdc_close_current(runner, seq);
			else if (!runner->has_from ||
					 DatumGetInt32(FunctionCall2Coll(runner->seq_cmp,
													 runner->seq_collation,
													 seq, runner->from)) >= 0)
				cdc_emit(runner, true, runner->open_start, true, seq);
			runner->open = false;
			runner->has_current = false;
		}
		else if (runner->open && runner->has_current)
			cdc_current_touched(runner);
		if (!del && !runner->open)
		{
			MemoryContextReset(runner->open_context);
			old = MemoryContextSwitchTo(runner->open_context);
			runner->open_start = datumCopy(seq, runner->seq_byval,
										   runner->seq_len);
			MemoryContextSwitchTo(old);
			runner->open = true;
		}
	}

	/* this event becomes the last one, copied into the other context */
	runner->event_slot = 1 - runner->event_slot;
	context = runner->event_context[runner->event_slot];
	MemoryContextReset(context);
	old = MemoryContextSwitchTo(context);
	for (j = 0; j < runner->ncols; j++)
	{
		runner->last_nulls[j] = nulls[j];
		runner->last_values[j] = nulls[j] ? (Datum) 0 :
			datumCopy(values[j], runner->col_byval[j], runner->col_len[j]);
	}
	runner->last_seq_null = seq_null;
	runner->last_seq = seq_null ? (Datum) 0 :
		datumCopy(seq, runner->seq_byval, runner->seq_len);
	MemoryContextSwitchTo(old);
	runner->last_del = del;
	runner->has_last = true;
}

/*
 * Set up comparison support and the map of the target's columns, from the
 * events query's result descriptor; the target's columns must have the
 * types the source gives.
 */
static void
cdc_runner_init(CdcRunner *runner, CdcSpec *spec, TupleDesc events,
				Relation target, int64 low)
{
	int			i;

	runner->spec = spec;
	runner->nkeys = list_length(spec->keys);
	runner->ncols = list_length(spec->columns);
	runner->low = low;
	runner->key_cmp = palloc0(sizeof(FmgrInfo *) * runner->nkeys);
	runner->key_collation = palloc0(sizeof(Oid) * runner->nkeys);
	runner->key_len = palloc0(sizeof(int16) * runner->nkeys);
	runner->key_byval = palloc0(sizeof(bool) * runner->nkeys);
	runner->key = palloc0(sizeof(Datum) * runner->nkeys);
	runner->col_eq = palloc0(sizeof(FmgrInfo *) * (runner->ncols + 1));
	runner->col_output = palloc0(sizeof(Oid) * (runner->ncols + 1));
	runner->col_collation = palloc0(sizeof(Oid) * (runner->ncols + 1));
	runner->col_len = palloc0(sizeof(int16) * (runner->ncols + 1));
	runner->col_byval = palloc0(sizeof(bool) * (runner->ncols + 1));
	runner->last_values = palloc0(sizeof(Datum) * (runner->ncols + 1));
	runner->last_nulls = palloc0(sizeof(bool) * (runner->ncols + 1));

	for (i = 0; i < runner->nkeys; i++)
	{
		Form_pg_attribute attr = TupleDescAttr(events, CDC_EV_KEYS + i);
		TypeCacheEntry *typentry = lookup_type_cache(getBaseType(attr->atttypid),
													 TYPECACHE_CMP_PROC_FINFO);

		runner->key_cmp[i] = &typentry->cmp_proc_finfo;
		runner->key_collation[i] = attr->attcollation;
		runner->key_len[i] = attr->attlen;
		runner->key_byval[i] = attr->attbyval;
	}
	for (i = 0; i < runner->ncols; i++)
	{
		Form_pg_attribute attr = TupleDescAttr(events,
											   CDC_EV_KEYS + runner->nkeys + i);
		TypeCacheEntry *typentry = lookup_type_cache(getBaseType(attr->atttypid),
													 TYPECACHE_EQ_OPR_FINFO);
		bool		isvarlena;

		runner->col_eq[i] = OidIsValid(typentry->eq_opr_finfo.fn_oid) ?
			&typentry->eq_opr_finfo : NULL;
		getTypeOutputInfo(attr->atttypid, &runner->col_output[i], &isvarlena);
		runner->col_collation[i] = attr->attcollation;
		runner->col_len[i] = attr->attlen;
		runner->col_byval[i] = attr->attbyval;
	}
	{
		Form_pg_attribute attr = TupleDescAttr(events,
											   CDC_EV_KEYS + runner->nkeys +
											   runner->ncols);
		TypeCacheEntry *typentry = lookup_type_cache(spec->seq_basetype,
													 TYPECACHE_CMP_PROC_FINFO);

		runner->seq_cmp = &typentry->cmp_proc_finfo;
		runner->seq_collation = spec->seq_collation;
		runner->seq_len = attr->attlen;
		runner->seq_byval = attr->attbyval;
	}

	/* the target's columns, by name */
	runner->target_desc = CreateTupleDescCopy(RelationGetDescr(target));
	runner->target_map = palloc(sizeof(int) * runner->target_desc->natts);
	for (i = 0; i < runner->target_desc->natts; i++)
	{
		Form_pg_attribute attr = TupleDescAttr(runner->target_desc, i);
		const char *name = NameStr(attr->attname);
		int			map = CDC_MAP_NONE;
		int			position = -1;
		ListCell   *cell;

		if (attr->attisdropped)
		{
			runner->target_map[i] = CDC_MAP_NONE;
			continue;
		}
		foreach(cell, spec->keys)
			if (strcmp((char *) lfirst(cell), name) == 0)
				map = position = foreach_current_index(cell);
		foreach(cell, spec->columns)
			if (strcmp((char *) lfirst(cell), name) == 0)
			{
				map = CDC_MAP_COLUMN + foreach_current_index(cell);
				position = runner->nkeys + foreach_current_index(cell);
			}
		if (spec->scd_type == 2 && strcmp(name, "__start_at") == 0)
		{
			map = CDC_MAP_START;
			position = runner->nkeys + runner->ncols;
		}
		if (spec->scd_type == 2 && strcmp(name, "__end_at") == 0)
		{
			map = CDC_MAP_END;
			position = runner->nkeys + runner->ncols;
		}
		if (position >= 0 && runner->mismatch == NULL &&
			TupleDescAttr(events, CDC_EV_KEYS + position)->atttypid != attr->atttypid)
		{
			runner->mismatch = pstrdup(name);
			runner->mismatch_type = attr->atttypid;
			runner->mismatch_derived =
				TupleDescAttr(events, CDC_EV_KEYS + position)->atttypid;
			runner->invalid = true; /* stop at once */
		}
		runner->target_map[i] = map;
	}
	runner->out_values = palloc(sizeof(Datum) * runner->target_desc->natts);
	runner->out_nulls = palloc(sizeof(bool) * runner->target_desc->natts);

	runner->key_context = AllocSetContextCreate(CurrentMemoryContext,
												"auto CDC key",
												ALLOCSET_SMALL_SIZES);
	runner->event_context[0] = AllocSetContextCreate(CurrentMemoryContext,
													 "auto CDC event",
													 ALLOCSET_SMALL_SIZES);
	runner->event_context[1] = AllocSetContextCreate(CurrentMemoryContext,
													 "auto CDC event",
													 ALLOCSET_SMALL_SIZES);
	runner->open_context = AllocSetContextCreate(CurrentMemoryContext,
												 "auto CDC version",
												 ALLOCSET_SMALL_SIZES);
	runner->max_context = AllocSetContextCreate(CurrentMemoryContext,
												"auto CDC sequence",
												ALLOCSET_SMALL_SIZES);
	runner->output = tuplestore_begin_heap(false, false, work_mem);
	runner->replaced_size = 1024;
	runner->replaced = palloc(sizeof(ItemPointerData) * runner->replaced_size);
	runner->closed_size = 1024;
	runner->closed = palloc(sizeof(ItemPointerData) * runner->closed_size);
	runner->closed_at = palloc(sizeof(Datum) * runner->closed_size);
	runner->closed_context = AllocSetContextCreate(CurrentMemoryContext,
												   "auto CDC closed versions",
												   ALLOCSET_DEFAULT_SIZES);
}

/* One row of the events query. */
static void
cdc_runner_row(CdcRunner *runner, Datum *row, bool *isnull)
{
	CdcSpec    *spec = runner->spec;
	int			kind = DatumGetInt32(row[CDC_EV_KIND]);
	int64		rid = DatumGetInt64(row[CDC_EV_RID]);
	Datum	   *key = &row[CDC_EV_KEYS];
	Datum	   *values = &row[CDC_EV_KEYS + runner->nkeys];
	bool	   *nulls = &isnull[CDC_EV_KEYS + runner->nkeys];
	int			seq_at = CDC_EV_KEYS + runner->nkeys + runner->ncols;
	bool		seq_null = isnull[seq_at];
	Datum		seq = row[seq_at];
	bool		del = DatumGetBool(row[seq_at + 1]);
	int			from_at = seq_at + 2;
	int			i;

	if (kind == CDC_KIND_INVALID || (kind == CDC_KIND_EVENT && seq_null))
	{
		runner->invalid = true;
		runner->invalid_rid = rid;
		runner->invalid_key = -1;
		for (i = 0; i < runner->nkeys; i++)
		{
			if (isnull[CDC_EV_KEYS + i])
			{
				runner->invalid_key = i;
				break;
			}
		}
		return;
	}

	if (!cdc_same_key(runner, key))
		cdc_start_key(runner, key);
	if (kind == CDC_KIND_CURRENT && spec->scd_type == 2)
	{
		ItemPointerCopy((ItemPointer) DatumGetPointer(row[CDC_EV_CTID]),
						&runner->current_ctid);
		runner->has_current = true;
		runner->current_untouched = true;
	}
	else if (kind == CDC_KIND_CURRENT || kind == CDC_KIND_REPLACED)
		cdc_remember_replaced(runner, row[CDC_EV_CTID]);
	if (!runner->has_from && !isnull[from_at])
	{
		MemoryContext old = MemoryContextSwitchTo(runner->key_context);

		runner->from = datumCopy(row[from_at], runner->seq_byval,
								 runner->seq_len);
		runner->has_from = true;
		MemoryContextSwitchTo(old);
	}
	if (kind == CDC_KIND_REPLACED)
		return;

	if (kind == CDC_KIND_EVENT)
	{
		if (rid > runner->low)
		{
			runner->rows_read++;
			if (!runner->has_batch_max ||
				DatumGetInt32(FunctionCall2Coll(runner->seq_cmp,
												runner->seq_collation,
												seq, runner->batch_max)) > 0)
			{
				MemoryContext old;

				MemoryContextReset(runner->max_context);
				old = MemoryContextSwitchTo(runner->max_context);
				runner->batch_max = datumCopy(seq, runner->seq_byval,
											  runner->seq_len);
				MemoryContextSwitchTo(old);
				runner->has_batch_max = true;
			}
		}
		else
			runner->key_has_history = true;
	}

	/* one event per key and sequence value: the first in this order */
	if (runner->has_last &&
		cdc_seq_equal(runner, seq_null, seq, runner->last_seq_null,
					  runner->last_seq))
		return;
	cdc_event(runner, del, seq_null, seq, values, nulls);
}

/*
 * The events query's rows go straight to the runner, without being copied
 * into an SPI tuple table first.
 */
typedef struct CdcReceiver
{
	DestReceiver pub;
	CdcRunner  *runner;
	CdcSpec    *spec;
	Relation	target;
	int64		low;
	MemoryContext context;		/* for the runner: outlives the query */
} CdcReceiver;

static void
cdc_receiver_startup(DestReceiver *self, int operation, TupleDesc typeinfo)
{
	CdcReceiver *receiver = (CdcReceiver *) self;
	MemoryContext old = MemoryContextSwitchTo(receiver->context);

	cdc_runner_init(receiver->runner, receiver->spec, typeinfo,
					receiver->target, receiver->low);
	MemoryContextSwitchTo(old);
}

static bool
cdc_receiver_slot(TupleTableSlot *slot, DestReceiver *self)
{
	CdcReceiver *receiver = (CdcReceiver *) self;

	slot_getallattrs(slot);
	cdc_runner_row(receiver->runner, slot->tts_values, slot->tts_isnull);
	return !receiver->runner->invalid;	/* false stops the query */
}

static void
cdc_receiver_shutdown(DestReceiver *self)
{
}

static void
cdc_receiver_destroy(DestReceiver *self)
{
}

static bool
cdc_target_is_empty(CdcSpec *spec)
{
	SpiExecute(psprintf("SELECT 1 FROM %s LIMIT 1", spec->target_name), 0,
			   NULL, NULL, NULL, SPI_OK_SELECT);
	return SPI_processed == 0;
}

/*
 * CdcApply: see cdc.h and the file header.  Runs in the pipeline owner's
 * context, inside FlowApplyIncremental's transaction, which holds the
 * flow's catalog row lock.
 */
void
CdcApply(FlowContext *context, FlowDesc *flow, int64 low, int64 high,
		 FlowResult *result)
{
	FlowDesc   *current;
	CdcSpec    *spec;
	CdcState	state;
	CdcState	new_state;
	CdcMode		mode;
	CdcRunner	runner;
	Oid			types[4];
	Datum		values[4];
	char		nulls[4] = {' ', ' ', 'n', 'n'};
	bool		batch_has_truncate = false;
	Datum		batch_truncate = (Datum) 0;
	int64		batch_rows = -1;
	int64		deleted;
	int64		inserted = 0;
	int64		closed = 0;
	int16		typlen;
	bool		typbyval;
	bool		state_changed = false;
	bool		isnull;
	int			guc_nest_level;
	Relation	target;
	CdcReceiver receiver;
	SPIExecuteOptions options;
	ParamListInfo params;
	int			result_code;
	int			i;
	ChangeFeed *feed;
	char	   *sql;

	SPI_connect();

	/*
	 * The statements below touch a few rows per key, but the planner cannot
	 * know how few keys a batch has, and its estimates would often trigger
	 * JIT compilation, which then costs more than the statement itself.
	 */
	guc_nest_level = UserSqlSettingsEnter(NULL);
	(void) set_config_option("jit", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);

	/*
	 * flow_state as of now: the caller's copy was read before it locked the
	 * flow's row, and an apply that committed meanwhile moved it on.
	 */
	current = CatalogGetFlowById(flow->flow_id);
	spec = cdc_load_spec(current);
	cdc_state_read(spec, current->flow_state, &state);
	get_typlenbyval(spec->seq_basetype, &typlen, &typbyval);

	types[0] = INT8OID;
	types[1] = INT8OID;
	types[2] = spec->seq_basetype;
	types[3] = spec->seq_basetype;
	values[0] = Int64GetDatum(low);
	values[1] = Int64GetDatum(high);
	values[2] = (Datum) 0;
	values[3] = (Datum) 0;

	/* truncates in the batch? */
	if (spec->truncates != NULL)
	{
		SpiExecute(cdc_truncate_check_sql(spec), 2, types, values, NULL,
				   SPI_OK_SELECT);
		batch_rows = 0;
		if (SPI_processed > 0)
		{
			bool		is_truncate = DatumGetBool(SpiGetDatum(0, 1, &isnull));
			Datum		seq = SpiGetDatum(0, 2, &isnull);

			batch_rows = SpiGetInt64(0, 4, NULL);
			if (is_truncate && isnull)
				ereport(ERROR,
						(errcode(ERRCODE_NOT_NULL_VIOLATION),
						 errmsg("null sequence value in change event of flow \"%s\"",
								spec->flow_name),
						 errdetail("sequence_by (%s) is null for the truncate with _row_id " INT64_FORMAT " of %s.",
								   spec->sequence_by, SpiGetInt64(0, 3, NULL),
								   spec->source_name)));
			if (is_truncate)
			{
				batch_has_truncate = true;
				batch_truncate = datumCopy(seq, typbyval, typlen);
			}
		}
		if (batch_rows == 0)
		{
			AtEOXact_GUC(true, guc_nest_level);
			SPI_finish();
			return;
		}
	}

	/* how to apply the keys of this batch */
	new_state = state;
	if (batch_has_truncate)
	{
		state_changed |= cdc_raise(spec, &new_state.has_max,
								   &new_state.max_seq, batch_truncate);
		state_changed |= cdc_raise(spec, &new_state.has_truncate,
								   &new_state.truncate_seq, batch_truncate);
		mode = CDC_MODE_FULL;
		values[3] = new_state.truncate_seq;
		nulls[3] = ' ';
	}
	else
	{
		if (low == 0 && cdc_target_is_empty(spec))
			mode = CDC_MODE_FULL;	/* the first apply, or after a refresh */
		else if (state.has_max)
		{
			mode = CDC_MODE_BY_MAX;
			values[2] = state.max_seq;
			nulls[2] = ' ';
		}
		else
			mode = CDC_MODE_ALL_SLOW;
		if (state.has_truncate)
		{
			values[3] = state.truncate_seq;
			nulls[3] = ' ';
		}
	}

	/* walk the events, deriving the target rows */
	target = table_open(spec->target_relid, RowExclusiveLock);
	memset(&runner, 0, sizeof(runner));
	memset(&receiver, 0, sizeof(receiver));
	receiver.pub.receiveSlot = cdc_receiver_slot;
	receiver.pub.rStartup = cdc_receiver_startup;
	receiver.pub.rShutdown = cdc_receiver_shutdown;
	receiver.pub.rDestroy = cdc_receiver_destroy;
	receiver.pub.mydest = DestNone;
	receiver.runner = &runner;
	receiver.spec = spec;
	receiver.target = target;
	receiver.low = low;
	receiver.context = CurrentMemoryContext;
	params = makeParamList(4);
	for (i = 0; i < 4; i++)
	{
		params->params[i].value = values[i];
		params->params[i].isnull = nulls[i] == 'n';
		params->params[i].pflags = PARAM_FLAG_CONST;
		params->params[i].ptype = types[i];
	}
	params->numParams = 4;
	memset(&options, 0, sizeof(options));
	options.params = params;
	options.read_only = false;
	options.dest = (DestReceiver *) &receiver;
	result_code = SPI_execute_extended(cdc_events_sql(spec, mode,
													  spec->truncates != NULL &&
													  nulls[3] == ' '),
									   &options);
	/* with a DestNone receiver of our own, SPI says SPI_OK_UTILITY */
	if (result_code != SPI_OK_SELECT && result_code != SPI_OK_UTILITY)
		elog(ERROR, "unexpected SPI result %s for the events of flow \"%s\"",
			 SPI_result_code_string(result_code), spec->flow_name);
	if (runner.spec == NULL)
		elog(ERROR, "the events query of flow \"%s\" returned no description",
			 spec->flow_name);
	if (runner.mismatch != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("column \"%s\" of table %s has type %s, but flow \"%s\" derives type %s",
						runner.mismatch, spec->target_name,
						format_type_be(runner.mismatch_type), spec->flow_name,
						format_type_be(runner.mismatch_derived)),
				 errhint("Recreate the flow, or restore the column's type.")));
	if (runner.invalid && runner.invalid_key < 0)
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("null sequence value in change event of flow \"%s\"",
						spec->flow_name),
				 errdetail("sequence_by (%s) is null for the row with _row_id " INT64_FORMAT " of %s.",
						   spec->sequence_by, runner.invalid_rid,
						   spec->source_name),
				 errhint("Every change event needs a sequence value: filter such rows out upstream, or use coalesce() in sequence_by.")));
	if (runner.invalid)
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("null value in key column \"%s\" of change event of flow \"%s\"",
						(char *) list_nth(spec->keys, runner.invalid_key),
						spec->flow_name),
				 errdetail("The row with _row_id " INT64_FORMAT " of %s has a null key.",
						   runner.invalid_rid, spec->source_name)));
	cdc_finish_key(&runner);

	/*
	 * replace: delete the rows derived again, insert the derived rows, and
	 * tell the change feed (when an aggregate flow reads it) what changed
	 */
	feed = ChangeFeedBegin(current, spec->target_relid,
						   mode == CDC_MODE_FULL);
	if (mode == CDC_MODE_FULL)
	{
		deleted = (int64) SpiExecute(psprintf("DELETE FROM %s",
											  spec->target_name),
									 0, NULL, NULL, NULL, SPI_OK_DELETE);
		if (feed != NULL)
			ChangeFeedReset(feed);
	}
	else if (runner.nreplaced > 0)
	{
		Oid			tid_array_type = TIDARRAYOID;
		Datum		tids[1];
		Datum	   *elements = palloc(sizeof(Datum) * runner.nreplaced);
		int			nest_level;

		for (i = 0; i < runner.nreplaced; i++)
			elements[i] = PointerGetDatum(&runner.replaced[i]);
		tids[0] = PointerGetDatum(construct_array(elements, runner.nreplaced,
												  TIDOID, sizeof(ItemPointerData),
												  false, TYPALIGN_SHORT));

		/*
		 * Found by ctid, whatever the planner estimates: a sequential scan
		 * would make the cost grow with the target.
		 */
		nest_level = NewGUCNestLevel();
		(void) set_config_option("enable_seqscan", "off", PGC_USERSET,
								 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0,
								 false);
		sql = psprintf("DELETE FROM %s WHERE ctid"
					   " OPERATOR(pg_catalog.=) ANY ($1)",
					   spec->target_name);
		if (feed != NULL)
			deleted = (int64) SpiExecute(ChangeFeedCaptureSql(feed, sql, false),
										 1, &tid_array_type, tids, NULL,
										 SPI_OK_INSERT);
		else
			deleted = (int64) SpiExecute(sql, 1, &tid_array_type, tids, NULL,
										 SPI_OK_DELETE);
		AtEOXact_GUC(true, nest_level);
	}
	else
		deleted = 0;

	if (runner.nclosed > 0)
	{
		Oid			update_types[2] = {TIDARRAYOID,
		get_array_type(spec->seq_basetype)};
		Datum		update_values[2];
		Datum	   *elements = palloc(sizeof(Datum) * runner.nclosed);
		int			nest_level;
		int16		seq_len;
		bool		seq_byval;
		char		seq_align;

		/*
		 * Current versions closed without change: only __end_at is set, in
		 * place, found by ctid like the deleted rows.
		 */
		get_typlenbyvalalign(spec->seq_basetype, &seq_len, &seq_byval,
							 &seq_align);
		for (i = 0; i < runner.nclosed; i++)
			elements[i] = PointerGetDatum(&runner.closed[i]);
		update_values[0] = PointerGetDatum(construct_array(elements,
														   runner.nclosed,
														   TIDOID,
														   sizeof(ItemPointerData),
														   false,
														   TYPALIGN_SHORT));
		update_values[1] = PointerGetDatum(construct_array(runner.closed_at,
														   runner.nclosed,
														   spec->seq_basetype,
														   seq_len, seq_byval,
														   seq_align));
		nest_level = NewGUCNestLevel();
		(void) set_config_option("enable_seqscan", "off", PGC_USERSET,
								 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0,
								 false);
		sql = psprintf("UPDATE %s AS __medallion_t SET __end_at = __u.__end"
					   " FROM ROWS FROM (pg_catalog.unnest($1),"
					   " pg_catalog.unnest($2))"
					   " AS __u(__tid, __end)"
					   " WHERE __medallion_t.ctid OPERATOR(pg_catalog.=) __u.__tid",
					   spec->target_name);
		if (feed != NULL)
			closed = (int64) SpiExecute(ChangeFeedCaptureSql(feed, sql, true),
										2, update_types, update_values, NULL,
										SPI_OK_INSERT) / 2;
		else
			closed = (int64) SpiExecute(sql, 2, update_types, update_values,
										NULL, SPI_OK_UPDATE);
		AtEOXact_GUC(true, nest_level);
	}
	if (tuplestore_tuple_count(runner.output) > 0)
	{
		BulkInserter *inserter = BulkInsertBegin(spec->target_relid, false);
		TupleTableSlot *slot = MakeSingleTupleTableSlot(runner.target_desc,
														&TTSOpsMinimalTuple);

		while (tuplestore_gettupleslot(runner.output, true, false, slot))
		{
			slot_getallattrs(slot);
			BulkInsertRow(inserter, slot->tts_values, slot->tts_isnull);
			if (feed != NULL && mode != CDC_MODE_FULL)
				ChangeFeedAddRow(feed, slot->tts_values, slot->tts_isnull);
		}
		ExecDropSingleTupleTableSlot(slot);
		inserted = BulkInsertEnd(inserter);
		CommandCounterIncrement();
	}
	if (feed != NULL)
		ChangeFeedEnd(feed);
	tuplestore_end(runner.output);
	table_close(target, NoLock);

	/* the state after this batch */
	if (runner.has_batch_max)
		state_changed |= cdc_raise(spec, &new_state.has_max,
								   &new_state.max_seq, runner.batch_max);
	if (state_changed && spec->seq_storable)
		CatalogSetFlowState(flow->flow_id, cdc_state_build(spec, &new_state));

	result->rows_read += batch_rows >= 0 ? batch_rows : runner.rows_read;
	result->rows_written += inserted + closed;
	if (deleted > 0 || inserted > 0 || closed > 0)
		result->changed = true;
	if (result->details.len > 0)
		appendStringInfoString(&result->details, ", ");
	appendStringInfo(&result->details,
					 "\"cdc\": {\"scd_type\": %d, \"rows_inserted\": " INT64_FORMAT
					 ", \"rows_deleted\": " INT64_FORMAT
					 ", \"versions_closed\": " INT64_FORMAT,
					 spec->scd_type, inserted, deleted, closed);
	if (mode == CDC_MODE_FULL)
		appendStringInfoString(&result->details, ", \"full_recompute\": true}");
	else
		appendStringInfo(&result->details,
						 ", \"keys\": " INT64_FORMAT
						 ", \"keys_recomputed\": " INT64_FORMAT "}",
						 runner.keys, runner.keys_recomputed);
	AtEOXact_GUC(true, guc_nest_level);
	SPI_finish();
}

/*
 * CdcReset: a full refresh empties the target and the watermark; the
 * sequence values kept in flow_state go with them.
 */
void
CdcReset(FlowDesc *flow)
{
	CatalogSetFlowState(flow->flow_id,
						DatumGetJsonbP(DirectFunctionCall1(jsonb_in,
														   CStringGetDatum("{}"))));
}

/* ---- create_auto_cdc_flow ------------------------------------------- */

static char *
cdc_text_arg(FunctionCallInfo fcinfo, int argno, const char *argname,
			 bool required)
{
	char	   *value;

	if (PG_ARGISNULL(argno))
	{
		if (required)
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s must not be null", argname)));
		return NULL;
	}
	value = text_to_cstring(PG_GETARG_TEXT_PP(argno));
	if (required && value[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be empty", argname)));
	return value;
}

static Oid
cdc_relation_am(Oid relid)
{
	HeapTuple	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Oid			am;

	if (!HeapTupleIsValid(tuple))
		return InvalidOid;
	am = ((Form_pg_class) GETSTRUCT(tuple))->relam;
	ReleaseSysCache(tuple);
	return am;
}

/* Is there a valid, plain btree index on the source leading with the keys? */
static bool
cdc_source_has_key_index(Relation rel, List *key_attnums)
{
	List	   *indexes = RelationGetIndexList(rel);
	ListCell   *cell;
	bool		found = false;

	foreach(cell, indexes)
	{
		Oid			index_oid = lfirst_oid(cell);
		HeapTuple	tuple;
		Form_pg_index index;
		int			nkeys = list_length(key_attnums);
		int			i;
		bool		match;

		tuple = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(index_oid));
		if (!HeapTupleIsValid(tuple))
			continue;
		index = (Form_pg_index) GETSTRUCT(tuple);
		match = index->indisvalid && index->indnkeyatts >= nkeys &&
			heap_attisnull(tuple, Anum_pg_index_indpred, NULL) &&
			cdc_relation_am(index_oid) == BTREE_AM_OID;
		for (i = 0; match && i < nkeys; i++)
			match = list_member_int(key_attnums, index->indkey.values[i]);
		ReleaseSysCache(tuple);
		if (match)
		{
			found = true;
			break;
		}
	}
	list_free(indexes);
	return found;
}

/* The definition stored in medallion.flow, as JSON text. */
/* A list member, null when the list was not given. */
static void
append_json_list(StringInfo json, const char *key, List *names, bool given)
{
	if (given)
		JsonAppendTextList(json, key, names);
	else
		JsonAppendText(json, key, NULL);
}

Datum
medallion_create_auto_cdc_flow(PG_FUNCTION_ARGS)
{
	VERSION_CHECK_CATALOG();
	char	   *pipeline_name = cdc_text_arg(fcinfo, 0, "pipeline_name", true);
	char	   *target_table = cdc_text_arg(fcinfo, 1, "target_table", true);
	char	   *source_table = cdc_text_arg(fcinfo, 2, "source_table", true);
	char	   *sequence_by = cdc_text_arg(fcinfo, 4, "sequence_by", true);
	int			scd_type;
	char	   *deletes = cdc_text_arg(fcinfo, 6, "apply_as_deletes", false);
	char	   *truncates = cdc_text_arg(fcinfo, 7, "apply_as_truncates", false);
	bool		ignore_null_updates = PG_ARGISNULL(12) ? false : PG_GETARG_BOOL(12);
	PipelineDesc *pipeline;
	RangeVar   *source_rv;
	Oid			source_relid;
	char	   *source_name;
	Oid			target_namespace;
	char	   *target_relname;
	char	   *target_name;
	char	   *view_name;
	Oid			target_relid;
	Relation	rel;
	TupleDesc	desc;
	List	   *keys;
	List	   *column_list;
	List	   *except_list;
	List	   *track_list;
	List	   *track_except_list;
	bool		keys_given;
	bool		column_list_given;
	bool		except_given;
	bool		track_given;
	bool		track_except_given;
	List	   *key_attnums = NIL;
	bool		has_key_index;
	List	   *target_columns = NIL;	/* keys and kept, in source order */
	List	   *columns = NIL;	/* kept non-key columns */
	List	   *tracked = NIL;
	CdcSpec		spec;
	OwnerContext owner;
	int			nest_level;
	StringInfoData sql;
	StringInfoData json;
	ListCell   *cell;
	int			i;

	if (PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("keys must not be null")));
	scd_type = PG_ARGISNULL(5) ? 2 : PG_GETARG_INT32(5);
	if (scd_type != 1 && scd_type != 2)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid stored_as_scd_type: %d", scd_type),
				 errhint("Use 1 (keep the latest row per key) or 2 (keep history).")));
	if (scd_type == 2 && truncates != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("apply_as_truncates is not supported for SCD type 2"),
				 errdetail("A truncate cannot be spliced into history."),
				 errhint("Use stored_as_scd_type => 1, or leave apply_as_truncates out.")));
	if (scd_type == 1 && !(PG_ARGISNULL(10) && PG_ARGISNULL(11)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("track_history_column_list and track_history_except_column_list apply to SCD type 2 only")));
	if (!PG_ARGISNULL(8) && !PG_ARGISNULL(9))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("column_list and except_column_list cannot both be given")));
	if (!PG_ARGISNULL(10) && !PG_ARGISNULL(11))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("track_history_column_list and track_history_except_column_list cannot both be given")));

	pipeline = CatalogGetPipeline(pipeline_name, false);
	CatalogCheckPipelineOwner(pipeline);

	/* the source, as the caller names it */
	source_rv = makeRangeVarFromNameList(stringToQualifiedNameList(source_table));
	source_relid = RangeVarGetRelid(source_rv, AccessShareLock, false);
	if (get_rel_relkind(source_relid) != RELKIND_RELATION)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a table", source_table),
				 errdetail("The source of an auto CDC flow is a pipeline table.")));
	(void) FlowRowIdSequence(source_relid);
	source_name = CatalogQualifiedRelationName(source_relid);

	/* the target and its view */
	ResolveNewTableName(target_table, &target_namespace, &target_relname);
	view_name = CompanionRelationName(target_namespace, target_relname,
									  CDC_VIEW_SUFFIX, "view of current versions");
	target_name = QuoteQualifiedName(target_namespace, target_relname);

	/* columns */
	rel = relation_open(source_relid, AccessShareLock);
	desc = RelationGetDescr(rel);
	keys = cdc_column_array_arg(fcinfo, 3, "keys", rel, &keys_given);
	column_list = cdc_column_array_arg(fcinfo, 8, "column_list", rel,
									   &column_list_given);
	except_list = cdc_column_array_arg(fcinfo, 9, "except_column_list", rel,
									   &except_given);
	track_list = cdc_column_array_arg(fcinfo, 10, "track_history_column_list",
									  rel, &track_given);
	track_except_list = cdc_column_array_arg(fcinfo, 11,
											 "track_history_except_column_list",
											 rel, &track_except_given);
	if (keys == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("keys must name at least one column")));
	foreach(cell, keys)
	{
		char	   *key = (char *) lfirst(cell);

		if (strcmp(key, "_row_id") == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("column \"_row_id\" cannot be a key"),
					 errdetail("_row_id is the source's arrival order, unique per event.")));
		if (cdc_list_has(except_list, key))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("key column \"%s\" cannot be left out by except_column_list",
							key)));
		key_attnums = lappend_int(key_attnums,
								  cdc_find_attribute(desc, key));
	}
	if (cdc_list_has(column_list, "_row_id"))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("column \"_row_id\" of the source cannot be kept"),
				 errdetail("The target has no _row_id; the source's arrival order is never copied.")));

	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute attr = TupleDescAttr(desc, i);
		char	   *name = NameStr(attr->attname);
		bool		is_key = cdc_list_has(keys, name);

		if (attr->attisdropped || strcmp(name, "_row_id") == 0)
			continue;
		if (!is_key &&
			(column_list_given ? !cdc_list_has(column_list, name) :
			 cdc_list_has(except_list, name)))
			continue;
		if (scd_type == 2 &&
			(strcmp(name, "__start_at") == 0 || strcmp(name, "__end_at") == 0))
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_COLUMN),
					 errmsg("source column \"%s\" conflicts with the SCD type 2 column of the same name",
							name),
					 errhint("Leave it out with except_column_list, or rename it upstream.")));
		target_columns = lappend(target_columns, pstrdup(name));
		if (!is_key)
			columns = lappend(columns, pstrdup(name));
	}

	/* tracked columns: kept non-key columns only */
	foreach(cell, track_given ? track_list : track_except_list)
	{
		char	   *name = (char *) lfirst(cell);

		if (!cdc_list_has(columns, name))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("column \"%s\" in %s is not a kept non-key column",
							name, track_given ? "track_history_column_list" :
							"track_history_except_column_list"),
					 errdetail("History is tracked on the columns the target keeps, other than the keys.")));
	}
	if (scd_type == 2)
	{
		foreach(cell, columns)
		{
			char	   *name = (char *) lfirst(cell);

			if (track_given ? cdc_list_has(track_list, name) :
				!cdc_list_has(track_except_list, name))
				tracked = lappend(tracked, name);
		}
	}

	foreach(cell, keys)
	{
		Oid			type = get_atttype(source_relid,
									   cdc_find_attribute(desc, (char *) lfirst(cell)));
		TypeCacheEntry *typentry = lookup_type_cache(getBaseType(type),
													 TYPECACHE_CMP_PROC);

		if (!OidIsValid(typentry->cmp_proc))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_FUNCTION),
					 errmsg("key column \"%s\" of type %s has no btree ordering",
							(char *) lfirst(cell), format_type_be(type)),
					 errdetail("Keys are indexed and matched with \"=\".")));
	}
	has_key_index = cdc_source_has_key_index(rel, key_attnums);
	/* keep the lock, but no reference: CREATE INDEX checks for those */
	relation_close(rel, NoLock);

	/*
	 * Validate the expressions, and create the target, its view and the
	 * source's key index, as the pipeline owner with the pipeline's
	 * search_path: as the applies will run.
	 */
	memset(&spec, 0, sizeof(spec));
	spec.source_relid = source_relid;
	spec.source_name = source_name;
	spec.sequence_by = sequence_by;
	spec.deletes = deletes;
	spec.truncates = truncates;

	FlowEnterOwnerContext(pipeline, &owner);
	nest_level = UserSqlSettingsEnter(NULL);
	cdc_place_expressions(&spec);
	cdc_resolve_sequence(&spec);
	if (deletes != NULL)
		cdc_check_condition("apply_as_deletes", spec.deletes_sql,
							source_name);
	if (truncates != NULL)
	{
		cdc_check_condition("apply_as_truncates", spec.truncates_sql,
							source_name);
		if (!spec.seq_storable)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("apply_as_truncates is not supported with sequence_by of type %s",
							format_type_be(spec.seq_type)),
					 errhint("Sequence by a built-in scalar type, such as a number or a timestamp.")));
	}
	SPI_connect();
	initStringInfo(&sql);
	/*
	 * SCD2 targets leave room in their pages, so that closing a version
	 * (setting __end_at, which no index covers) is a HOT update.
	 */
	appendStringInfo(&sql, "CREATE TABLE %s%s AS SELECT ", target_name,
					 scd_type == 2 ? " WITH (fillfactor = 90)" : "");
	append_names(&sql, target_columns, NULL);
	if (scd_type == 2)
		appendStringInfo(&sql, ", %s AS __start_at, %s AS __end_at",
						 spec.seq_sql, spec.seq_sql);
	appendStringInfo(&sql, " FROM %s WITH NO DATA", source_name);
	SpiExecute(sql.data, 0, NULL, NULL, NULL, SPI_OK_UTILITY);

	resetStringInfo(&sql);
	appendStringInfo(&sql, "ALTER TABLE %s ADD PRIMARY KEY (", target_name);
	append_names(&sql, keys, NULL);
	appendStringInfoString(&sql, scd_type == 2 ? ", __start_at)" : ")");
	SpiExecute(sql.data, 0, NULL, NULL, NULL, SPI_OK_UTILITY);

	resetStringInfo(&sql);
	appendStringInfo(&sql, "CREATE VIEW %s AS SELECT ",
					 QuoteQualifiedName(target_namespace, view_name));
	append_names(&sql, target_columns, NULL);
	if (scd_type == 2)
		appendStringInfo(&sql, ", __start_at FROM %s WHERE __end_at IS NULL",
						 target_name);
	else
		appendStringInfo(&sql, " FROM %s", target_name);
	SpiExecute(sql.data, 0, NULL, NULL, NULL, SPI_OK_UTILITY);

	if (!has_key_index)
	{
		resetStringInfo(&sql);
		appendStringInfo(&sql, "CREATE INDEX ON %s (", source_name);
		append_names(&sql, keys, NULL);
		appendStringInfoChar(&sql, ')');
		SpiExecute(sql.data, 0, NULL, NULL, NULL, SPI_OK_UTILITY);
	}
	SPI_finish();
	UserSqlSettingsLeave(nest_level);
	FlowLeaveOwnerContext(&owner);

	target_relid = get_relname_relid(target_relname, target_namespace);
	if (!OidIsValid(target_relid))
		elog(ERROR, "could not find the new table %s", target_name);

	/* the definition: the arguments, and what they resolved to */
	initStringInfo(&json);
	appendStringInfoString(&json, "{\"stored_as_scd_type\": ");
	appendStringInfo(&json, "%d", scd_type);
	append_json_list(&json, "keys", keys, true);
	JsonAppendText(&json, "sequence_by", sequence_by);
	JsonAppendText(&json, "apply_as_deletes", deletes);
	JsonAppendText(&json, "apply_as_truncates", truncates);
	append_json_list(&json, "column_list", column_list, column_list_given);
	append_json_list(&json, "except_column_list", except_list, except_given);
	append_json_list(&json, "track_history_column_list", track_list,
					 track_given);
	append_json_list(&json, "track_history_except_column_list",
					 track_except_list, track_except_given);
	appendStringInfo(&json, ", \"ignore_null_updates\": %s",
					 ignore_null_updates ? "true" : "false");
	append_json_list(&json, "columns", columns, true);
	append_json_list(&json, "tracked_columns", tracked, scd_type == 2);
	appendStringInfoChar(&json, '}');

	CatalogCreateFlow(pipeline, FLOW_TYPE_AUTO_CDC, target_relid, source_relid,
					  source_name,
					  DatumGetJsonbP(DirectFunctionCall1(jsonb_in,
														 CStringGetDatum(json.data))));
	PG_RETURN_VOID();
}

/* ---- auto_cdc_apply -------------------------------------------------- */

Datum
medallion_auto_cdc_apply(PG_FUNCTION_ARGS)
{
	VERSION_CHECK_CATALOG();
	Oid			target_relid = PG_GETARG_OID(0);
	FlowDesc   *flow;
	PipelineDesc *pipeline;
	FlowContext context;
	FlowResult	result;
	TimestampTz start;

	flow = CatalogGetFlowByTarget(target_relid, true);
	if (flow == NULL || flow->type != FLOW_TYPE_AUTO_CDC)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("table %s is not the target of an auto CDC flow",
						CatalogQualifiedRelationName(target_relid))));
	pipeline = CatalogGetPipelineById(flow->pipeline_id, false);
	CatalogCheckPipelineOwner(pipeline);

	memset(&context, 0, sizeof(context));
	context.pipeline = pipeline;
	context.update_id = CatalogNextUpdateId();
	context.full_refresh = false;
	FlowResultInit(&result);

	start = GetCurrentTimestamp();
	FlowApplyIncremental(&context, flow, CdcApply, &result);

	/* reported like a flow of an update, marked as a direct apply */
	if (result.details.len > 0)
		appendStringInfoString(&result.details, ", ");
	appendStringInfoString(&result.details, "\"direct\": true");
	EventLogWrite(pipeline, context.update_id, flow->flow_name,
				  "flow_progress", "INFO", "flow completed",
				  FlowProgressDetails(flow, &result,
									  GetCurrentTimestamp() - start,
									  "COMPLETED"));

	PG_RETURN_INT64(result.rows_read);
}
