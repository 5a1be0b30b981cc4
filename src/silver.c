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
 * Copyright (c) 2025, medallion contributors
 *
 * IDENTIFICATION
 *	  src/silver.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/relation.h"
#include "access/xact.h"
#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "common/keywords.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "parser/parser.h"
#include "parser/scanner.h"
#include "parser/gram.h"
#include "tcop/dest.h"
#include "tcop/tcopprot.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/typcache.h"

#include "bulk_insert.h"
#include "catalog.h"
#include "expectations.h"
#include "flow.h"
#include "silver.h"
#include "spi_util.h"
#include "user_sql.h"
#include "version.h"

PG_FUNCTION_INFO_V1(medallion_create_silver);

/* Names of columns medallion adds; a query may not produce them. */
#define SILVER_ROW_ID_COLUMN		"_row_id"
#define SILVER_VIOLATED_COLUMN		"_violated_expectations"
#define SILVER_QUARANTINE_SUFFIX	"_quarantine"

/* Rows handled between two resets of the per-row memory context. */
#define SILVER_ROWS_PER_RESET		1024

/* A silver flow's definition (medallion.flow.definition). */
typedef struct SilverDefinition
{
	char	   *query;
	List	   *dedup_keys;		/* column names (char *) */
	bool		quarantine;
} SilverDefinition;

/* What a walk over the raw parse tree of a query collects. */
typedef struct SilverRefWalk
{
	List	   *range_vars;		/* every RangeVar */
	List	   *sampled;		/* RangeVars under TABLESAMPLE */
	List	   *cte_names;		/* every CTE name */
} SilverRefWalk;

/* The source's table reference in a query, and the query with it spliced. */
typedef struct SilverSplice
{
	RangeVar   *range_var;
	char	   *spliced;		/* the statement with the reference replaced */
} SilverSplice;

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
	const char *flow_name;
	int64		low;
	int64		high;
} SilverApplyErrorArg;

/*
 * Small helpers
 */

/* Does relid have a "_row_id bigint" identity column?  (No error.) */
static bool
silver_has_row_id_identity(Oid relid)
{
	AttrNumber	attnum = get_attnum(relid, SILVER_ROW_ID_COLUMN);

	if (attnum == InvalidAttrNumber || get_atttype(relid, attnum) != INT8OID)
		return false;
	return OidIsValid(getIdentitySequence(relid, attnum, true));
}

/* The name of the quarantine table of a target, in the target's schema. */
static char *
silver_quarantine_name(const char *target_name)
{
	return psprintf("%s%s", target_name, SILVER_QUARANTINE_SUFFIX);
}
/*
 * The definition
 */

static Jsonb *
silver_definition_build(const char *query, List *dedup_keys, bool quarantine)
{
	StringInfoData json;
	ListCell   *cell;

	initStringInfo(&json);
	appendStringInfoString(&json, "{\"query\": ");
	escape_json(&json, query);
	appendStringInfoString(&json, ", \"dedup_keys\": ");
	if (dedup_keys == NIL)
		appendStringInfoString(&json, "null");
	else
	{
		appendStringInfoChar(&json, '[');
		foreach(cell, dedup_keys)
		{
			if (cell != list_head(dedup_keys))
				appendStringInfoString(&json, ", ");
			escape_json(&json, (char *) lfirst(cell));
		}
		appendStringInfoChar(&json, ']');
	}
	appendStringInfo(&json, ", \"quarantine\": %s}",
					 quarantine ? "true" : "false");

	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in,
											  CStringGetDatum(json.data)));
}

static void
silver_definition_parse(FlowDesc *flow, SilverDefinition *def)
{
	JsonbContainer *root;
	JsonbValue	value;

	memset(def, 0, sizeof(SilverDefinition));
	if (flow->definition == NULL)
		elog(ERROR, "silver flow \"%s\" has no definition", flow->flow_name);
	root = &flow->definition->root;

	if (getKeyJsonValueFromContainer(root, "query", 5, &value) == NULL ||
		value.type != jbvString)
		elog(ERROR, "silver flow \"%s\" has no query", flow->flow_name);
	def->query = pnstrdup(value.val.string.val, value.val.string.len);

	if (getKeyJsonValueFromContainer(root, "quarantine", 10, &value) != NULL &&
		value.type == jbvBool)
		def->quarantine = value.val.boolean;

	if (getKeyJsonValueFromContainer(root, "dedup_keys", 10, &value) != NULL &&
		value.type == jbvBinary)
	{
		JsonbIterator *it = JsonbIteratorInit(value.val.binary.data);
		JsonbValue	element;
		JsonbIteratorToken token;

		while ((token = JsonbIteratorNext(&it, &element, true)) != WJB_DONE)
		{
			if (token != WJB_ELEM)
				continue;
			if (element.type != jbvString)
				elog(ERROR, "invalid dedup_keys in silver flow \"%s\"",
					 flow->flow_name);
			def->dedup_keys = lappend(def->dedup_keys,
									  pnstrdup(element.val.string.val,
											   element.val.string.len));
		}
	}
}

/*
 * Finding and splicing the source reference
 */

/* Collect the table references, and the CTE names that may shadow them. */
static bool
silver_ref_walker(Node *node, SilverRefWalk *walk)
{
	if (node == NULL)
		return false;

	if (IsA(node, RangeVar))
	{
		walk->range_vars = lappend(walk->range_vars, node);
		return false;
	}
	if (IsA(node, RangeTableSample))
	{
		RangeTableSample *sample = (RangeTableSample *) node;

		if (IsA(sample->relation, RangeVar))
			walk->sampled = lappend(walk->sampled, sample->relation);
	}
	else if (IsA(node, CommonTableExpr))
	{
		CommonTableExpr *cte = (CommonTableExpr *) node;

		walk->cte_names = lappend(walk->cte_names, cte->ctename);
	}

	return raw_expression_tree_walker(node, silver_ref_walker, (void *) walk);
}

/*
 * Parse a silver query: it must be exactly one SELECT without INTO, FOR
 * UPDATE, data-modifying statements or parameters (UserSqlQuery).  Returns
 * the statement; fills walk.
 */
static RawStmt *
silver_parse_query(const char *query, SilverRefWalk *walk)
{
	RawStmt    *stmt = UserSqlQuery(query, "query of a silver flow");

	memset(walk, 0, sizeof(SilverRefWalk));
	(void) silver_ref_walker(stmt->stmt, walk);
	return stmt;
}

/* Is this an unqualified name that some CTE of the query defines? */
static bool
silver_is_cte_name(SilverRefWalk *walk, RangeVar *rv)
{
	ListCell   *cell;

	if (rv->schemaname != NULL || rv->catalogname != NULL)
		return false;
	foreach(cell, walk->cte_names)
	{
		if (strcmp((char *) lfirst(cell), rv->relname) == 0)
			return true;
	}
	return false;
}

/*
 * The references of a query to relid.  A reference whose name is also the
 * name of a CTE is ambiguous to us (we do not model CTE scopes), so it is
 * refused rather than guessed.
 */
static List *
silver_refs_to(SilverRefWalk *walk, Oid relid)
{
	List	   *refs = NIL;
	ListCell   *cell;

	foreach(cell, walk->range_vars)
	{
		RangeVar   *rv = lfirst(cell);
		Oid			ref_relid;

		ref_relid = RangeVarGetRelidExtended(rv, NoLock, RVR_MISSING_OK,
											 NULL, NULL);
		if (ref_relid != relid)
			continue;
		if (silver_is_cte_name(walk, rv))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("query of a silver flow has a WITH query named like its source table \"%s\"",
							rv->relname),
					 errhint("Rename the WITH query.")));
		refs = lappend(refs, rv);
	}
	return refs;
}

/*
 * Choose the source of a new flow among the tables a query reads: a table
 * of the pipeline (the target or the source of one of its flows); or, when
 * the query reads none, a table with a "_row_id bigint" identity column (a
 * table filled by other means, read the same way).  Exactly one such table,
 * read exactly once; other tables are static lookups.
 */
static Oid
silver_choose_source(SilverRefWalk *walk, PipelineDesc *pipeline,
					 List *pipeline_tables)
{
	List	   *flow_tables = NIL;
	List	   *row_id_tables = NIL;
	List	   *candidates;
	ListCell   *cell;
	Oid			source;

	foreach(cell, walk->range_vars)
	{
		RangeVar   *rv = lfirst(cell);
		Oid			relid;

		if (silver_is_cte_name(walk, rv))
			continue;
		relid = RangeVarGetRelidExtended(rv, NoLock, RVR_MISSING_OK,
										 NULL, NULL);
		if (!OidIsValid(relid))
			(void) RangeVarGetRelid(rv, NoLock, false); /* reports it */
		if (list_member_oid(pipeline_tables, relid))
			flow_tables = list_append_unique_oid(flow_tables, relid);
		else if (silver_has_row_id_identity(relid))
			row_id_tables = list_append_unique_oid(row_id_tables, relid);
	}

	candidates = flow_tables != NIL ? flow_tables : row_id_tables;
	if (candidates == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("query of a silver flow must read a table of pipeline \"%s\"",
						pipeline->pipeline_name),
				 errhint("Read the pipeline's bronze table, or another of its tables, in the FROM clause.")));
	if (list_length(candidates) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("query of a silver flow reads more than one table of pipeline \"%s\"",
						pipeline->pipeline_name),
				 errdetail("It reads %s and %s.",
						   CatalogQualifiedRelationName(linitial_oid(candidates)),
						   CatalogQualifiedRelationName(lsecond_oid(candidates))),
				 errhint("A silver flow reads one pipeline table; it may join only static tables.")));

	source = linitial_oid(candidates);
	if (list_length(silver_refs_to(walk, source)) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("query of a silver flow reads table %s more than once",
						CatalogQualifiedRelationName(source)),
				 errhint("Read the source table once; each update feeds that reference only the new rows.")));
	return source;
}

static bool
silver_token_is_name(int token)
{
	int			i;

	if (token == IDENT || token == UIDENT)
		return true;
	for (i = 0; i < ScanKeywords.num_keywords; i++)
	{
		if (ScanKeywordTokens[i] == token)
			return true;
	}
	return false;
}

/*
 * Replace the text of the table reference rv in the statement stmt of
 * query by a subquery that reads only the rows of (low, high] of the
 * source.  The reference's extent is found with the core scanner, which
 * handles quoted, Unicode-escaped and schema-qualified names and comments
 * between their parts; a trailing "*" (inheritance) goes too.  Returns the
 * text of the statement alone (without a trailing semicolon).
 */
static char *
silver_splice(const char *query, RawStmt *stmt, RangeVar *rv,
			  const char *source_name)
{
	core_yy_extra_type yyextra;
	core_yyscan_t scanner;
	core_YYSTYPE yylval;
	YYLTYPE		yylloc = 0;
	int			token;
	int			start = rv->location;
	int			end;
	int			stmt_start = stmt->stmt_location;
	int			stmt_end;
	StringInfoData buf;

	if (rv->inh == false)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("query of a silver flow cannot use ONLY on its source table")));

	stmt_end = stmt->stmt_len > 0 ? stmt_start + stmt->stmt_len : (int) strlen(query);

	scanner = scanner_init(query, &yyextra, &ScanKeywords, ScanKeywordTokens);

	/* advance to the first token of the reference */
	do
	{
		token = core_yylex(&yylval, &yylloc, scanner);
	} while (token != 0 && yylloc < start);
	if (token == 0 || yylloc != start || !silver_token_is_name(token))
		elog(ERROR, "could not find the source table reference in the query");

	/* consume name ( "." name )* */
	for (;;)
	{
		if (token == UIDENT)
		{
			token = core_yylex(&yylval, &yylloc, scanner);
			if (token == UESCAPE)
			{
				(void) core_yylex(&yylval, &yylloc, scanner);	/* its SCONST */
				token = core_yylex(&yylval, &yylloc, scanner);
			}
		}
		else
			token = core_yylex(&yylval, &yylloc, scanner);

		if (token != '.')
			break;
		token = core_yylex(&yylval, &yylloc, scanner);
		if (!silver_token_is_name(token))
			elog(ERROR, "unexpected token in the source table reference");
	}

	if (token == '*')
		end = yylloc + 1;
	else if (token == 0)
		end = strlen(query);
	else
		end = yylloc;
	scanner_finish(scanner);

	if (end > stmt_end)
		end = stmt_end;

	initStringInfo(&buf);
	appendBinaryStringInfo(&buf, query + stmt_start, start - stmt_start);
	appendStringInfo(&buf,
					 " (SELECT * FROM %s"
					 " WHERE _row_id OPERATOR(pg_catalog.>) $1"
					 " AND _row_id OPERATOR(pg_catalog.<=) $2"
					 " ORDER BY _row_id)",
					 source_name);
	if (rv->alias == NULL)
		appendStringInfo(&buf, " AS %s", quote_identifier(rv->relname));
	appendStringInfoChar(&buf, ' ');
	appendBinaryStringInfo(&buf, query + end, stmt_end - end);
	return buf.data;
}

/* Error context while checking a new flow's query. */
static void
silver_create_error_callback(void *arg)
{
	errcontext("checking the query of silver flow \"%s\"", (const char *) arg);
}

/* Count the references to pipeline tables in a rewritten query tree. */
typedef struct SilverRteCount
{
	Oid			source;
	List	   *pipeline_tables;
	int			source_refs;
	Oid			other;			/* another pipeline table read, if any */
} SilverRteCount;

static bool
silver_rte_walker(Node *node, SilverRteCount *count)
{
	if (node == NULL)
		return false;
	if (IsA(node, RangeTblEntry))
	{
		RangeTblEntry *rte = (RangeTblEntry *) node;

		if (rte->rtekind == RTE_RELATION)
		{
			if (rte->relid == count->source)
				count->source_refs++;
			else if (list_member_oid(count->pipeline_tables, rte->relid))
				count->other = rte->relid;
		}
		return false;
	}
	if (IsA(node, Query))
		return query_tree_walker((Query *) node, silver_rte_walker,
								 (void *) count, QTW_EXAMINE_RTES_BEFORE);
	return expression_tree_walker(node, silver_rte_walker, (void *) count);
}

/*
 * Check the analyzed spliced query of a new flow: row-by-row only, and no
 * other way to the pipeline's tables (a view reading the source, say) than
 * the one reference we feed.
 */
static void
silver_check_analyzed(Query *wrapper, Oid source, List *pipeline_tables)
{
	RangeTblEntry *rte = linitial_node(RangeTblEntry, wrapper->rtable);
	Query	   *query = rte->subquery;
	SilverRteCount count;
	const char *what = NULL;

	if (query == NULL)
		elog(ERROR, "unexpected shape of the analyzed silver query");

	if (query->hasAggs || query->groupClause != NIL ||
		query->groupingSets != NIL || query->havingQual != NULL)
		what = "aggregates or GROUP BY";
	else if (query->hasWindowFuncs)
		what = "window functions";
	else if (query->distinctClause != NIL)
		what = "DISTINCT";
	else if (query->limitCount != NULL || query->limitOffset != NULL)
		what = "LIMIT or OFFSET";
	else if (query->setOperations != NULL)
		what = "UNION, INTERSECT or EXCEPT";
	if (what != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("query of a silver flow cannot use %s", what),
				 errdetail("Each update feeds the query only the new rows of its source, so the query must handle each row on its own."),
				 errhint("Use dedup_keys to remove duplicates, and medallion.create_aggregate() for aggregates.")));

	memset(&count, 0, sizeof(count));
	count.source = source;
	count.pipeline_tables = pipeline_tables;
	(void) silver_rte_walker((Node *) wrapper, &count);
	if (count.source_refs != 1)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("query of a silver flow reads table %s more than once",
						CatalogQualifiedRelationName(source)),
				 errdetail("A view or a subquery also reads the table."),
				 errhint("Read the source table once, directly in the query.")));
	if (OidIsValid(count.other))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("query of a silver flow reads more than one pipeline table"),
				 errdetail("It also reads %s, through a view.",
						   CatalogQualifiedRelationName(count.other)),
				 errhint("A silver flow reads one pipeline table; it may join only static tables.")));
}

/*
 * Column definitions "name type [COLLATE c]" of a row type, for the target
 * and quarantine tables.  Types and collations are schema-qualified, so the
 * text means the same under any search_path.
 */
static void
silver_append_column_defs(StringInfo sql, TupleDesc desc)
{
	int			i;

	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute attr = TupleDescAttr(desc, i);

		appendStringInfo(sql, ",\n  %s %s",
						 quote_identifier(NameStr(attr->attname)),
						 format_type_extended(attr->atttypid, attr->atttypmod,
											  FORMAT_TYPE_TYPEMOD_GIVEN |
											  FORMAT_TYPE_FORCE_QUALIFY));
		if (OidIsValid(attr->attcollation) &&
			attr->attcollation != get_typcollation(attr->atttypid))
		{
			HeapTuple	tuple;
			Form_pg_collation coll;

			tuple = SearchSysCache1(COLLOID, ObjectIdGetDatum(attr->attcollation));
			if (!HeapTupleIsValid(tuple))
				elog(ERROR, "cache lookup failed for collation %u",
					 attr->attcollation);
			coll = (Form_pg_collation) GETSTRUCT(tuple);
			appendStringInfo(sql, " COLLATE %s",
							 quote_qualified_identifier(get_namespace_name(coll->collnamespace),
														NameStr(coll->collname)));
			ReleaseSysCache(tuple);
		}
	}
}

/* The 0-based column of name in desc, or -1. */
static int
silver_column_index(TupleDesc desc, const char *name)
{
	int			i;

	for (i = 0; i < desc->natts; i++)
	{
		if (strcmp(NameStr(TupleDescAttr(desc, i)->attname), name) == 0)
			return i;
	}
	return -1;
}

/* Check the output columns of a new flow's query and its dedup keys. */
static void
silver_check_columns(TupleDesc desc, List *dedup_keys, bool quarantine)
{
	int			i;
	ListCell   *cell;

	if (desc->natts == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("query of a silver flow must return at least one column")));

	for (i = 0; i < desc->natts; i++)
	{
		const char *name = NameStr(TupleDescAttr(desc, i)->attname);

		if (strcmp(name, "?column?") == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_COLUMN_DEFINITION),
					 errmsg("column %d of the query of a silver flow has no name", i + 1),
					 errhint("Name every output column with AS; the names become the columns of the target table.")));
		if (strcmp(name, SILVER_ROW_ID_COLUMN) == 0 ||
			(quarantine && strcmp(name, SILVER_VIOLATED_COLUMN) == 0))
			ereport(ERROR,
					(errcode(ERRCODE_RESERVED_NAME),
					 errmsg("column name \"%s\" is reserved for medallion", name),
					 errhint("List the source's columns explicitly instead of *, or rename the column with AS.")));
		if (silver_column_index(desc, name) != i)
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_COLUMN),
					 errmsg("column name \"%s\" appears more than once in the query of a silver flow",
							name),
					 errhint("Give each output column a distinct name with AS.")));
	}

	foreach(cell, dedup_keys)
	{
		const char *key = lfirst(cell);
		int			index = silver_column_index(desc, key);
		Oid			type;
		TypeCacheEntry *typentry;

		if (index < 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("dedup key \"%s\" is not a column of the query", key),
					 errhint("dedup_keys names output columns of the query, exactly as they are spelled there.")));
		type = TupleDescAttr(desc, index)->atttypid;
		typentry = lookup_type_cache(type, TYPECACHE_EQ_OPR |
									 TYPECACHE_BTREE_OPFAMILY);
		if (!OidIsValid(typentry->eq_opr) ||
			!OidIsValid(typentry->btree_opf))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_FUNCTION),
					 errmsg("could not identify an equality operator for type %s",
							format_type_be(type)),
					 errdetail("Dedup key \"%s\" needs a type with a default btree operator class.",
							   key)));
	}
}

/*
 * medallion.create_silver(pipeline_name text, target_table text,
 *						   query text, dedup_keys text[] DEFAULT NULL,
 *						   quarantine boolean DEFAULT false)
 *
 * Checks the query, creates the target table (as the caller, who owns it),
 * the index on the dedup keys and the quarantine table, and registers the
 * flow.  The query is checked as the caller under the pipeline's
 * search_path, which is how it will run.
 */
Datum
medallion_create_silver(PG_FUNCTION_ARGS)
{
	VERSION_CHECK_CATALOG();
	char	   *pipeline_name = SqlTextArgument(fcinfo, 0, "pipeline_name");
	char	   *target_table = SqlTextArgument(fcinfo, 1, "target_table");
	char	   *query = SqlTextArgument(fcinfo, 2, "query");
	bool		quarantine = PG_ARGISNULL(4) ? false : PG_GETARG_BOOL(4);
	List	   *dedup_keys = NIL;
	PipelineDesc *pipeline;
	List	   *pipeline_tables = NIL;
	ListCell   *cell;
	Oid			namespace_oid;
	char	   *relation_name;
	char	   *target_name;
	char	   *quarantine_name = NULL;
	int			nest_level;
	RawStmt    *stmt;
	SilverRefWalk walk;
	Oid			source;
	char	   *source_name;
	RangeVar   *source_rv;
	char	   *spliced;
	StringInfoData sql;
	List	   *raw;
	Oid			param_types[2] = {INT8OID, INT8OID};
	ParamListInfo params;
	Query	   *wrapper;
	TupleDesc	desc;
	ErrorContextCallback errcallback;
	Oid			target_relid;

	if (!PG_ARGISNULL(3))
	{
		ArrayType  *array = PG_GETARG_ARRAYTYPE_P(3);
		Datum	   *elems;
		bool	   *nulls;
		int			nelems;
		int			i;

		if (ARR_NDIM(array) > 1)
			ereport(ERROR,
					(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
					 errmsg("dedup_keys must be a one-dimensional array")));
		deconstruct_array_builtin(array, TEXTOID, &elems, &nulls, &nelems);
		for (i = 0; i < nelems; i++)
		{
			char	   *key;

			if (nulls[i])
				ereport(ERROR,
						(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						 errmsg("dedup_keys must not contain nulls")));
			key = TextDatumGetCString(elems[i]);
			foreach(cell, dedup_keys)
			{
				if (strcmp(lfirst(cell), key) == 0)
					ereport(ERROR,
							(errcode(ERRCODE_DUPLICATE_COLUMN),
							 errmsg("dedup key \"%s\" is listed more than once",
									key)));
			}
			dedup_keys = lappend(dedup_keys, key);
		}
	}

	pipeline = CatalogGetPipeline(pipeline_name, false);
	CatalogCheckPipelineOwner(pipeline);

	/* the target's name resolves like CREATE TABLE's, with our search_path */
	ResolveNewTableName(target_table, &namespace_oid, &relation_name);
	target_name = QuoteQualifiedName(namespace_oid, relation_name);
	if (quarantine)
	{
		char	   *name = CompanionRelationName(namespace_oid, relation_name,
													 SILVER_QUARANTINE_SUFFIX,
													 "quarantine table");

		quarantine_name = QuoteQualifiedName(namespace_oid, name);
	}

	/* the pipeline's tables: its flows' targets and sources */
	foreach(cell, CatalogGetFlows(pipeline->pipeline_id))
	{
		FlowDesc   *flow = lfirst(cell);

		pipeline_tables = list_append_unique_oid(pipeline_tables,
												 flow->target_relid);
		if (OidIsValid(flow->source_relid))
			pipeline_tables = list_append_unique_oid(pipeline_tables,
													 flow->source_relid);
	}

	/* check the query as the caller, the way it will run */
	errcallback.callback = silver_create_error_callback;
	errcallback.arg = target_name;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;

	nest_level = UserSqlSettingsEnter(pipeline->search_path);
	stmt = silver_parse_query(query, &walk);
	source = silver_choose_source(&walk, pipeline, pipeline_tables);
	source_rv = linitial(silver_refs_to(&walk, source));
	foreach(cell, walk.sampled)
	{
		if (lfirst(cell) == source_rv)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("query of a silver flow cannot use TABLESAMPLE on its source table")));
	}
	source_name = CatalogQualifiedRelationName(source);
	spliced = silver_splice(query, stmt, source_rv, source_name);

	initStringInfo(&sql);
	appendStringInfo(&sql, "SELECT * FROM %s AS %s LIMIT 0",
					 UserSqlPlaceQuery(spliced), quote_identifier(relation_name));
	raw = UserSqlRawParse(sql.data);
	if (list_length(raw) != 1)
		elog(ERROR, "spliced silver query is not a single statement");

	params = makeParamList(2);
	params->numParams = 2;
	params->params[0].value = Int64GetDatum(0);
	params->params[0].isnull = false;
	params->params[0].pflags = PARAM_FLAG_CONST;
	params->params[0].ptype = INT8OID;
	params->params[1] = params->params[0];

	wrapper = UserSqlAnalyzeQuery(linitial_node(RawStmt, raw), sql.data, 2,
								  param_types, params, &desc);
	silver_check_analyzed(wrapper, source,
						  list_append_unique_oid(pipeline_tables, source));
	UserSqlSettingsLeave(nest_level);
	error_context_stack = errcallback.previous;

	silver_check_columns(desc, dedup_keys, quarantine);

	/* create the tables as the caller, with fully qualified names */
	SPI_connect();
	resetStringInfo(&sql);
	appendStringInfo(&sql,
					 "CREATE TABLE %s (\n  _row_id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
					 target_name);
	silver_append_column_defs(&sql, desc);
	appendStringInfoString(&sql, "\n)");
	SpiExecute(sql.data, 0, NULL, NULL, NULL, SPI_OK_UTILITY);

	if (dedup_keys != NIL)
	{
		resetStringInfo(&sql);
		appendStringInfo(&sql, "CREATE INDEX ON %s (", target_name);
		foreach(cell, dedup_keys)
		{
			if (cell != list_head(dedup_keys))
				appendStringInfoString(&sql, ", ");
			appendStringInfoString(&sql, UserSqlColumnName(lfirst(cell)));
		}
		appendStringInfoChar(&sql, ')');
		SpiExecute(sql.data, 0, NULL, NULL, NULL, SPI_OK_UTILITY);
	}

	if (quarantine)
	{
		resetStringInfo(&sql);
		appendStringInfo(&sql,
						 "CREATE TABLE %s (\n  _row_id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
						 quarantine_name);
		silver_append_column_defs(&sql, desc);
		appendStringInfoString(&sql, ",\n  _violated_expectations pg_catalog.text[]\n)");
		SpiExecute(sql.data, 0, NULL, NULL, NULL, SPI_OK_UTILITY);
	}
	SPI_finish();

	CommandCounterIncrement();
	target_relid = get_relname_relid(relation_name, namespace_oid);
	if (!OidIsValid(target_relid))
		elog(ERROR, "could not find the new table %s", target_name);

	(void) CatalogCreateFlow(pipeline, FLOW_TYPE_SILVER, target_relid, source,
							 source_name,
							 silver_definition_build(query, dedup_keys,
													 quarantine));
	PG_RETURN_VOID();
}

/*
 * Deduplication
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
 * Map the live columns of rel after _row_id (and before skip_name, when
 * given) to the query's columns, checking that their types match: the
 * target was created from the query, but either could have been altered
 * since.
 */
static int *
silver_map_columns(SilverApplyState *state, Relation rel, TupleDesc query_desc,
				   const char *skip_name, int *skip_index)
{
	TupleDesc	desc = RelationGetDescr(rel);
	int		   *map = palloc(sizeof(int) * Max(state->ncolumns, 1));
	int			next = 0;
	int			i;

	if (skip_index != NULL)
		*skip_index = -1;
	for (i = 1; i < desc->natts; i++)
	{
		Form_pg_attribute attr = TupleDescAttr(desc, i);
		Form_pg_attribute qattr;

		if (attr->attisdropped)
			continue;
		if (skip_name != NULL && strcmp(NameStr(attr->attname), skip_name) == 0)
		{
			*skip_index = i;
			continue;
		}
		if (next >= state->ncolumns)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("table %s has more columns than the query of silver flow \"%s\"",
							CatalogQualifiedRelationName(RelationGetRelid(rel)),
							state->flow->flow_name),
					 errdetail("Column \"%s\" has no counterpart in the query.",
							   NameStr(attr->attname))));
		qattr = TupleDescAttr(query_desc, next);
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
		map[next++] = i;
	}
	if (next != state->ncolumns)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("query of silver flow \"%s\" returns more columns than table %s has",
						state->flow->flow_name,
						CatalogQualifiedRelationName(RelationGetRelid(rel)))));
	return map;
}

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
	char	   *name = silver_quarantine_name(RelationGetRelationName(target));
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

static void
silver_apply_error_callback(void *arg)
{
	SilverApplyErrorArg *info = (SilverApplyErrorArg *) arg;

	errcontext("silver flow \"%s\", source rows with _row_id from %lld to %lld",
			   info->flow_name, (long long) info->low + 1,
			   (long long) info->high);
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
	const char *dedup_alias = "__medallion_dedup";
	StringInfoData sql;
	ListCell   *cell;
	int			i;

	stmt = silver_parse_query(def->query, &walk);
	refs = silver_refs_to(&walk, state->flow->source_relid);
	if (list_length(refs) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("query of silver flow \"%s\" no longer reads its source table %s",
						state->flow->flow_name,
						CatalogQualifiedRelationName(state->flow->source_relid)),
				 errhint("The source table may have been renamed or moved, or the pipeline's search_path finds another table first.")));
	spliced = silver_splice(def->query, stmt, linitial(refs),
							CatalogQualifiedRelationName(state->flow->source_relid));

	initStringInfo(&sql);
	appendStringInfo(&sql, "SELECT %s.*", alias);
	ExpectationsAppendColumns(state->expectations, &sql);

	if (def->dedup_keys != NIL)
	{
		if (strcmp(RelationGetRelationName(target), dedup_alias) == 0)
			dedup_alias = "__medallion_dedup_2";
		appendStringInfo(&sql, ",\n  EXISTS (SELECT 1 FROM %s AS %s WHERE ",
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
				appendStringInfoString(&sql, " AND ");
			appendStringInfo(&sql, "%s.%s %s %s.%s",
							 dedup_alias, key,
							 SqlOperatorName(typentry->eq_opr),
							 alias, key);
			i++;
		}
		appendStringInfoChar(&sql, ')');
	}

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

void
SilverApply(FlowContext *context, FlowDesc *flow, int64 low, int64 high,
			FlowResult *result)
{
	MemoryContext apply_context;
	MemoryContext old;
	SilverApplyState *state;
	SilverDefinition def;
	SilverApplyErrorArg error_arg;
	ErrorContextCallback errcallback;
	int			nest_level;
	Relation	target;
	char	   *sql;
	List	   *raw;
	List	   *queries;
	List	   *plans;
	ParamListInfo params;
	Oid			param_types[2] = {INT8OID, INT8OID};
	QueryDesc  *query_desc;

	apply_context = AllocSetContextCreate(CurrentMemoryContext,
										  "medallion silver apply",
										  ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(apply_context);

	error_arg.flow_name = flow->flow_name;
	error_arg.low = low;
	error_arg.high = high;
	errcallback.callback = silver_apply_error_callback;
	errcallback.arg = &error_arg;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;

	nest_level = UserSqlSettingsEnter(NULL);

	/*
	 * No JIT: the planner's cost of the query is dominated by its estimate
	 * of the dedup lookups, and compiling costs more than it saves on the
	 * simple expressions of a silver query.
	 */
	(void) set_config_option("jit", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);

	/*
	 * The source must be read in _row_id order, which its primary key
	 * gives for free.  Without statistics (a bronze table that has just
	 * been loaded and not analyzed yet) the planner underestimates the
	 * range and sorts it instead, which for a large batch spills to disk;
	 * disabling sorts makes it take the ordered index scan.  Sorts the
	 * user's query needs still happen.
	 */
	(void) set_config_option("enable_sort", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);

	state = palloc0(sizeof(SilverApplyState));
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

	silver_definition_parse(flow, &def);
	state->quarantine = def.quarantine;
	state->expectations = ExpectationsLoad(flow->flow_id);

	/* the target stays open (RowExclusiveLock) until BulkInsertEnd */
	state->target = BulkInsertBegin(flow->target_relid, true);
	target = BulkInsertRelation(state->target);
	sql = silver_build_query(state, &def, target);

	params = makeParamList(2);
	params->numParams = 2;
	params->params[0].value = Int64GetDatum(low);
	params->params[0].isnull = false;
	params->params[0].pflags = PARAM_FLAG_CONST;
	params->params[0].ptype = INT8OID;
	params->params[1].value = Int64GetDatum(high);
	params->params[1].isnull = false;
	params->params[1].pflags = PARAM_FLAG_CONST;
	params->params[1].ptype = INT8OID;

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

	if (def.dedup_keys != NIL)
		silver_find_key_columns(state, &def, linitial_node(Query, queries));

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

	if (state->quarantine_inserter != NULL)
		(void) BulkInsertEnd(state->quarantine_inserter);
	(void) BulkInsertEnd(state->target);

	UserSqlSettingsLeave(nest_level);
	error_context_stack = errcallback.previous;

	result->rows_read += state->rows_read;
	result->rows_written += state->rows_written;
	result->rows_dropped += state->expectation_dropped + state->dedup_dropped;
	if (state->rows_written > 0)
		result->changed = true;

	if (result->details.len > 0)
		appendStringInfoString(&result->details, ", ");
	ExpectationsAppendMetrics(state->expectations, &result->details);
	appendStringInfo(&result->details,
					 ", \"expectation_dropped\": " INT64_FORMAT
					 ", \"dedup_dropped\": " INT64_FORMAT,
					 state->expectation_dropped, state->dedup_dropped);
	if (state->quarantine)
		appendStringInfo(&result->details,
						 ", \"quarantined\": " INT64_FORMAT,
						 state->quarantined);

	MemoryContextSwitchTo(old);
	MemoryContextDelete(apply_context);
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

	silver_definition_parse(flow, &def);
	if (!def.quarantine)
		return;

	name = silver_quarantine_name(get_rel_name(flow->target_relid));
	relid = get_relname_relid(name, get_rel_namespace(flow->target_relid));
	if (!OidIsValid(relid))
		return;

	SPI_connect();
	SpiExecute(psprintf("TRUNCATE %s", CatalogQualifiedRelationName(relid)),
			   0, NULL, NULL, NULL, SPI_OK_UTILITY);
	SPI_finish();
}
