/*-------------------------------------------------------------------------
 *
 * silver_create.c
 *	  create_silver: checking a silver flow's query as the caller, creating
 *	  its target, dedup index and quarantine table, and registering it.
 *
 * The query is checked the way every update will run it: parsed and
 * analyzed as the caller under the pipeline's search_path, with its source
 * reference spliced (silver_query.c).  The target's columns are the
 * query's output columns.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/silver_create.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "nodes/nodeFuncs.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "utils/typcache.h"

#include "catalog.h"
#include "flow_create.h"
#include "flow_definition.h"
#include "silver_internal.h"
#include "spi_util.h"
#include "sql_names.h"
#include "user_sql.h"
#include "version.h"

PG_FUNCTION_INFO_V1(medallion_create_silver);

/* The arguments of create_silver besides the pipeline and the target. */
typedef struct SilverArguments
{
	char	   *query;
	List	   *dedup_keys;		/* column names (char *) */
	bool		quarantine;
} SilverArguments;

/* Error context while checking a new flow's query. */
static void
silver_create_error_callback(void *arg)
{
	errcontext("checking the query of %s", (const char *) arg);
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
	const char *what = NULL;
	int			source_refs = 0;
	Oid			other = InvalidOid;	/* another pipeline table read, if any */
	ListCell   *cell;

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

	/* the references to the source and to other pipeline tables */
	foreach(cell, UserSqlRelationEntries(wrapper))
	{
		RangeTblEntry *entry = lfirst(cell);

		if (entry->relid == source)
			source_refs++;
		else if (list_member_oid(pipeline_tables, entry->relid))
			other = entry->relid;
	}
	if (source_refs != 1)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("query of a silver flow reads table %s more than once",
						CatalogQualifiedRelationName(source)),
				 errdetail("A view or a subquery also reads the table."),
				 errhint("Read the source table once, directly in the query.")));
	if (OidIsValid(other))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("query of a silver flow reads more than one pipeline table"),
				 errdetail("It also reads %s, through a view.",
						   CatalogQualifiedRelationName(other)),
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
					 errhint("The dedup_keys argument names output columns of the query, exactly as they are spelled there.")));
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
 * The dedup_keys argument as a list of names: one-dimensional, without
 * nulls or repeated names.
 */
static List *
silver_dedup_keys_argument(ArrayType *array)
{
	List	   *dedup_keys = NIL;
	Datum	   *elems;
	bool	   *nulls;
	int			nelems;
	int			i;
	ListCell   *cell;

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
	return dedup_keys;
}

/* The pipeline's tables: its flows' targets and sources. */
static List *
silver_pipeline_tables(PipelineDesc *pipeline)
{
	List	   *pipeline_tables = NIL;
	ListCell   *cell;

	foreach(cell, CatalogGetFlows(pipeline->pipeline_id))
	{
		FlowDesc   *flow = lfirst(cell);

		pipeline_tables = list_append_unique_oid(pipeline_tables,
												 flow->target_relid);
		if (OidIsValid(flow->source_relid))
			pipeline_tables = list_append_unique_oid(pipeline_tables,
													 flow->source_relid);
	}
	return pipeline_tables;
}

/*
 * Analyze the spliced query wrapped as "SELECT * FROM (...) AS target
 * LIMIT 0", as the caller: the wrapper's output columns are the target's.
 */
static Query *
silver_analyze_spliced(const char *spliced, const char *relation_name,
					   TupleDesc *desc, char **analyzed_sql)
{
	Oid			param_types[2] = {INT8OID, INT8OID};
	char	   *sql;
	List	   *raw;

	sql = *analyzed_sql = psprintf("SELECT * FROM %s AS %s LIMIT 0",
				   UserSqlPlaceQuery(spliced), quote_identifier(relation_name));
	raw = UserSqlRawParse(sql);
	if (list_length(raw) != 1)
		elog(ERROR, "spliced silver query is not a single statement");
	return UserSqlAnalyzeQuery(linitial_node(RawStmt, raw), sql, 2,
							   param_types, SilverRowRangeParams(0, 0), desc);
}

/* SilverCheckQuery: see silver_internal.h. */
void
SilverCheckQuery(PipelineDesc *pipeline, const char *flow_label,
				 const char *alias, const char *query,
				 SilverQueryCheck *check)
{
	List	   *pipeline_tables = silver_pipeline_tables(pipeline);
	ErrorContextCallback errcallback;
	int			nest_level;
	RawStmt    *stmt;
	SilverRefWalk walk;
	RangeVar   *source_rv;
	Query	   *wrapper;
	char	   *analyzed_sql;

	errcallback.callback = silver_create_error_callback;
	errcallback.arg = unconstify(char *, flow_label);
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;

	nest_level = UserSqlSettingsEnter(pipeline->search_path);
	stmt = SilverParseQuery(query, &walk);
	check->source = SilverChooseSource(&walk, pipeline, pipeline_tables);
	source_rv = linitial(SilverRefsTo(&walk, check->source));
	if (list_member_ptr(walk.sampled, source_rv))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("query of a silver flow cannot use TABLESAMPLE on its source table")));
	check->source_name = CatalogQualifiedRelationName(check->source);
	wrapper = silver_analyze_spliced(SilverSplice(query, stmt, source_rv,
												  check->source_name),
									 alias, &check->desc, &analyzed_sql);
	silver_check_analyzed(wrapper, check->source,
						  list_append_unique_oid(pipeline_tables,
												 check->source));
	check->column_comments = SilverColumnComments(analyzed_sql, wrapper,
												  check->desc);
	UserSqlSettingsLeave(nest_level);
	error_context_stack = errcallback.previous;
}

/*
 * CREATE TABLE for the target or the quarantine table: _row_id, the
 * query's columns, and for the quarantine table the names of the violated
 * expectations.
 */
static char *
silver_table_sql(const char *table_name, TupleDesc desc, bool quarantine)
{
	StringInfoData sql;

	initStringInfo(&sql);
	appendStringInfo(&sql,
					 "CREATE TABLE %s (\n  _row_id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
					 table_name);
	silver_append_column_defs(&sql, desc);
	if (quarantine)
		appendStringInfoString(&sql, ",\n  _violated_expectations pg_catalog.text[]");
	appendStringInfoString(&sql, "\n)");
	return sql.data;
}

/* The index on the dedup keys that answers the EXISTS of each update. */
static char *
silver_index_sql(const char *target_name, List *dedup_keys)
{
	StringInfoData sql;
	ListCell   *cell;

	initStringInfo(&sql);
	appendStringInfo(&sql, "CREATE INDEX ON %s (", target_name);
	foreach(cell, dedup_keys)
	{
		if (cell != list_head(dedup_keys))
			appendStringInfoString(&sql, ", ");
		appendStringInfoString(&sql, UserSqlColumnName(lfirst(cell)));
	}
	appendStringInfoChar(&sql, ')');
	return sql.data;
}

/* The stored definition: the query text, the dedup keys, quarantine. */
static Jsonb *
silver_definition_build(const SilverArguments *arguments)
{
	FlowDefinitionBuilder builder;

	FlowDefinitionBegin(&builder);
	FlowDefinitionPutString(&builder, "query", arguments->query);
	if (arguments->dedup_keys == NIL)
		FlowDefinitionPutNull(&builder, "dedup_keys");
	else
		FlowDefinitionPutStringList(&builder, "dedup_keys",
									arguments->dedup_keys);
	FlowDefinitionPutBool(&builder, "quarantine", arguments->quarantine);
	return FlowDefinitionEnd(&builder);
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
	SilverArguments arguments;
	SilverQueryCheck check;
	FlowCreate	create;
	char	   *quarantine_name = NULL;

	arguments.query = SqlTextArgument(fcinfo, 2, "query");
	arguments.dedup_keys = PG_ARGISNULL(3) ? NIL :
		silver_dedup_keys_argument(PG_GETARG_ARRAYTYPE_P(3));
	arguments.quarantine = PG_ARGISNULL(4) ? false : PG_GETARG_BOOL(4);

	FlowCreateBegin(&create, FLOW_TYPE_SILVER, pipeline_name, target_table,
					FlowCreateReplaceArgument(fcinfo, 5));
	if (arguments.quarantine)
		quarantine_name = FlowCreateCompanion(&create, SILVER_QUARANTINE_SUFFIX,
											  "quarantine table", NULL);
	SilverCheckQuery(create.pipeline,
					 psprintf("silver flow \"%s\"", create.target_name),
					 create.relation_name, arguments.query, &check);
	silver_check_columns(check.desc, arguments.dedup_keys,
						 arguments.quarantine);

	FlowCreateTable(&create, silver_table_sql(create.target_name, check.desc,
											  false));
	SilverCommentColumns(create.target_name, check.desc, check.column_comments,
						 false);
	if (arguments.dedup_keys != NIL)
		FlowCreateExecute(silver_index_sql(create.target_name,
										   arguments.dedup_keys));
	if (arguments.quarantine)
	{
		FlowCreateCompanionTable(&create, quarantine_name,
								 silver_table_sql(quarantine_name, check.desc,
												  true));
		SilverCommentColumns(quarantine_name, check.desc, check.column_comments,
							 true);
		FlowCreateComment(quarantine_name, psprintf("Quarantine of medallion silver table %s: the rows a drop expectation kept out of it, with every expectation each violated (_violated_expectations)",
													create.target_name));
	}
	else
		FlowCreateDropCompanion(&create, SILVER_QUARANTINE_SUFFIX);
	FlowCreateRegister(&create, FLOW_TYPE_SILVER, check.source,
					   check.source_name, silver_definition_build(&arguments));
	PG_RETURN_VOID();
}
