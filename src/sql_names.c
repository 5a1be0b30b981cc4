/*-------------------------------------------------------------------------
 *
 * sql_names.c
 *	  Names in the SQL text medallion builds: new tables resolved as CREATE
 *	  TABLE would, names quoted and qualified, operators, collations and
 *	  column definitions written so that no search_path can change what
 *	  they mean, and text arguments of SQL-callable functions.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/sql_names.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_operator.h"
#include "commands/dbcommands.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/syscache.h"
#include "access/htup_details.h"

#include "sql_names.h"

/*
 * ResolveTableName parses a possibly qualified, possibly quoted table name
 * the way CREATE TABLE would.
 */
void
ResolveTableName(const char *table_name, Oid *namespace_oid,
				 char **relation_name)
{
	List	   *names;
	RangeVar   *range_var;

	if (table_name == NULL || table_name[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_NAME),
				 errmsg("table name must not be empty")));

	names = stringToQualifiedNameList(table_name);
	range_var = makeRangeVarFromNameList(names);
	if (range_var->catalogname != NULL &&
		strcmp(range_var->catalogname, get_database_name(MyDatabaseId)) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cross-database references are not implemented: %s",
						table_name)));
	*namespace_oid = RangeVarGetCreationNamespace(range_var);
	*relation_name = range_var->relname;
}

/* ResolveTableName, checking that the table does not exist. */
void
ResolveNewTableName(const char *table_name, Oid *namespace_oid,
					char **relation_name)
{
	ResolveTableName(table_name, namespace_oid, relation_name);
	if (OidIsValid(get_relname_relid(*relation_name, *namespace_oid)))
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_TABLE),
				 errmsg("relation \"%s\" already exists",
						QuoteQualifiedName(*namespace_oid, *relation_name)),
				 errhint("Flows create their target table; choose a new name or drop the table.")));
}

char *
QuoteQualifiedName(Oid namespace_oid, const char *relation_name)
{
	return quote_qualified_identifier(get_namespace_name(namespace_oid),
									  relation_name);
}

char *
SqlTextArgument(FunctionCallInfo fcinfo, int argno, const char *argname)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", argname)));
	return text_to_cstring(PG_GETARG_TEXT_PP(argno));
}

char *
SqlOperatorName(Oid opno)
{
	HeapTuple	tuple;
	Form_pg_operator operator_form;
	char	   *result;

	tuple = SearchSysCache1(OPEROID, ObjectIdGetDatum(opno));
	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for operator %u", opno);
	operator_form = (Form_pg_operator) GETSTRUCT(tuple);
	result = psprintf("OPERATOR(%s.%s)",
					  quote_identifier(get_namespace_name(operator_form->oprnamespace)),
					  NameStr(operator_form->oprname));
	ReleaseSysCache(tuple);
	return result;
}

/* SqlNumberedColumns: see sql_names.h. */
char *
SqlNumberedColumns(const char *prefix, int n, const char *qualifier)
{
	StringInfoData list;
	int			i;

	initStringInfo(&list);
	for (i = 1; i <= n; i++)
		appendStringInfo(&list, "%s%s%s%s%d", i > 1 ? ", " : "",
						 qualifier ? qualifier : "", qualifier ? "." : "",
						 prefix, i);
	return list.data;
}

/* " COLLATE schema.name", or "" for no collation. */
char *
SqlCollateClause(Oid collation)
{
	HeapTuple	tuple;
	Form_pg_collation coll;
	char	   *result;

	if (!OidIsValid(collation))
		return "";
	tuple = SearchSysCache1(COLLOID, ObjectIdGetDatum(collation));
	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for collation %u", collation);
	coll = (Form_pg_collation) GETSTRUCT(tuple);
	result = psprintf(" COLLATE %s",
					  quote_qualified_identifier(get_namespace_name(coll->collnamespace),
												 NameStr(coll->collname)));
	ReleaseSysCache(tuple);
	return result;
}

/* A column definition "name type [COLLATE c]", schema-qualified. */
void
SqlAppendColumnDefinition(StringInfo sql, const char *name, Oid type,
						  int32 typmod, Oid collation)
{
	appendStringInfo(sql, "%s %s", quote_identifier(name),
					 format_type_extended(type, typmod,
										  FORMAT_TYPE_TYPEMOD_GIVEN |
										  FORMAT_TYPE_FORCE_QUALIFY));
	if (OidIsValid(collation) && collation != get_typcollation(type))
		appendStringInfoString(sql, SqlCollateClause(collation));
}

/*
 * The name of a relation medallion creates beside a user's table (its
 * quarantine table, change feed, state tables, view of current versions):
 * <base><suffix> in the same schema.  It must fit in NAMEDATALEN, where
 * PostgreSQL would silently truncate it, and must not exist yet.  what
 * says what the relation is, for the messages.
 */
char *
CompanionRelationName(Oid namespace_oid, const char *base, const char *suffix,
					  const char *what)
{
	char	   *name = psprintf("%s%s", base, suffix);

	if (strlen(name) >= NAMEDATALEN)
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("table name \"%s\" is too long", base),
				 errdetail("Its %s would be named \"%s\", which does not fit in %d bytes.",
						   what, name, NAMEDATALEN - 1)));
	if (OidIsValid(get_relname_relid(name, namespace_oid)))
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_TABLE),
				 errmsg("relation \"%s\" already exists",
						QuoteQualifiedName(namespace_oid, name)),
				 errdetail("This is the name medallion gives to the %s of table \"%s\".",
						   what, base)));
	return name;
}

/* The relation a (possibly qualified, quoted) name denotes, as SQL reads it. */
Oid
RelidFromQualifiedName(const char *name, bool missing_ok)
{
	return RangeVarGetRelid(makeRangeVarFromNameList(stringToQualifiedNameList(name)),
							NoLock, missing_ok);
}
