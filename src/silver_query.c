/*-------------------------------------------------------------------------
 *
 * silver_query.c
 *	  Finding a silver flow's source in its query, and splicing the
 *	  reference so that the query reads only an update's new rows.
 *
 * The user's query names the source like any table.  create_silver and
 * every update parse the query text, find the source's table reference
 * among the query's RangeVars, and replace its text by a subquery over the
 * row range $1 < _row_id <= $2 (see silver.c's file header for why).
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/silver_query.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "common/keywords.h"
#include "nodes/nodeFuncs.h"
#include "parser/parser.h"
#include "parser/scanner.h"
#include "parser/gram.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "catalog.h"
#include "silver_internal.h"
#include "user_sql.h"

static bool
silver_has_row_id_identity(Oid relid)
{
	AttrNumber	attnum = get_attnum(relid, SILVER_ROW_ID_COLUMN);

	if (attnum == InvalidAttrNumber || get_atttype(relid, attnum) != INT8OID)
		return false;
	return OidIsValid(getIdentitySequence(relid, attnum, true));
}


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

/* SilverParseQuery: see silver_internal.h. */
RawStmt *
SilverParseQuery(const char *query, SilverRefWalk *walk)
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

/* SilverRefsTo: see silver_internal.h. */
List *
SilverRefsTo(SilverRefWalk *walk, Oid relid)
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

/* SilverChooseSource: see silver_internal.h. */
Oid
SilverChooseSource(SilverRefWalk *walk, PipelineDesc *pipeline,
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
	if (list_length(SilverRefsTo(walk, source)) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("query of a silver flow reads table %s more than once",
						CatalogQualifiedRelationName(source)),
				 errhint("Read the source table once; each update feeds that reference only the new rows.")));
	return source;
}

/* Can this token of the core scanner be (part of) a table name? */
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
 * SilverSplice: see silver_internal.h.  The reference's extent is found with the core scanner, which
 * handles quoted, Unicode-escaped and schema-qualified names and comments
 * between their parts; a trailing "*" (inheritance) goes too.  Returns the
 * text of the statement alone (without a trailing semicolon).
 */
char *
SilverSplice(const char *query, RawStmt *stmt, RangeVar *rv,
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

/* SilverRowRangeParams: see silver_internal.h. */
ParamListInfo
SilverRowRangeParams(int64 low, int64 high)
{
	ParamListInfo params = makeParamList(2);

	params->numParams = 2;
	params->params[0].value = Int64GetDatum(low);
	params->params[0].isnull = false;
	params->params[0].pflags = PARAM_FLAG_CONST;
	params->params[0].ptype = INT8OID;
	params->params[1] = params->params[0];
	params->params[1].value = Int64GetDatum(high);
	return params;
}

/* SilverQuarantineName: see silver_internal.h. */
char *
SilverQuarantineName(const char *target_name)
{
	return psprintf("%s%s", target_name, SILVER_QUARANTINE_SUFFIX);
}
