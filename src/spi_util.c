/*-------------------------------------------------------------------------
 *
 * spi_util.c
 *	  Small helpers around SPI: parameterised statements, running fixed
 *	  catalog statements as the extension owner, identifier quoting and
 *	  name resolution.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "access/genam.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_operator.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/parsenodes.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/regproc.h"

#include "medallion.h"
#include "spi_util.h"

uint64
SpiExecute(const char *sql, int nargs, Oid *argtypes, Datum *values,
		   const char *nulls, int expected_result)
{
	int			result;

	result = SPI_execute_with_args(sql, nargs, argtypes, values, nulls,
								   false, 0);
	if (result != expected_result)
		elog(ERROR, "unexpected SPI result %s for \"%s\"",
			 SPI_result_code_string(result), sql);
	return SPI_processed;
}

/*
 * SpiExecuteAsExtensionOwner runs a fixed catalog statement with the rights
 * of the extension's owner (usually a superuser) on behalf of a caller who
 * has none on medallion's tables.  Whatever the caller's search_path is, the
 * statement runs with search_path pinned to "pg_catalog, pg_temp" for its
 * duration: PostgreSQL never looks up functions or operators in pg_temp, so
 * no operator, function or cast that the caller created can be reached from
 * it (the escalation this closes: a role's own "=" operator, found first on
 * its search_path, executed with the owner's rights).  Its text names every
 * relation schema-qualified as well, so pg_temp cannot shadow a table.
 * Every other path that changes rights is listed in the README, section
 * "Security", "What runs as whom".
 */
uint64
SpiExecuteAsExtensionOwner(const char *sql, int nargs, Oid *argtypes,
						   Datum *values, const char *nulls,
						   int expected_result)
{
	Oid			saved_user;
	int			saved_security_context;
	int			guc_nest_level;
	volatile uint64 processed = 0;

	GetUserIdAndSecContext(&saved_user, &saved_security_context);
	guc_nest_level = PinSafeSearchPath();
	SetUserIdAndSecContext(ExtensionOwner(),
						   saved_security_context |
						   SECURITY_LOCAL_USERID_CHANGE);
	PG_TRY();
	{
		processed = SpiExecute(sql, nargs, argtypes, values, nulls,
							   expected_result);
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(saved_user, saved_security_context);
		AtEOXact_GUC(false, guc_nest_level);
	}
	PG_END_TRY();
	return processed;
}

/*
 * PinSafeSearchPath sets search_path to "pg_catalog, pg_temp" in a new GUC
 * nest level, the way PostgreSQL's own maintenance commands protect
 * themselves; the caller restores it with AtEOXact_GUC(false, level).
 */
int
PinSafeSearchPath(void)
{
	int			guc_nest_level = NewGUCNestLevel();

	(void) set_config_option("search_path", MEDALLION_SAFE_SEARCH_PATH,
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	return guc_nest_level;
}

char *
SpiGetText(uint64 row, int attnum)
{
	return SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc,
						attnum);
}

Datum
SpiGetDatum(uint64 row, int attnum, bool *isnull)
{
	return SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc,
						 attnum, isnull);
}

int64
SpiGetInt64(uint64 row, int attnum, bool *isnull)
{
	bool		null;
	Datum		value = SpiGetDatum(row, attnum, &null);
	Oid			type = SPI_gettypeid(SPI_tuptable->tupdesc, attnum);

	if (isnull)
		*isnull = null;
	if (null)
		return 0;
	switch (type)
	{
		case INT8OID:
			return DatumGetInt64(value);
		case INT4OID:
			return DatumGetInt32(value);
		case INT2OID:
			return DatumGetInt16(value);
		default:
			elog(ERROR, "column %d is not an integer", attnum);
	}
	return 0;
}

/*
 * ExtensionOwner reads pg_extension directly, so that it works for any
 * caller, whatever its privileges.
 */
Oid
ExtensionOwner(void)
{
	Relation	relation;
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tuple;
	Oid			owner = InvalidOid;

	relation = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber,
				F_NAMEEQ, CStringGetDatum(MEDALLION_EXTENSION_NAME));
	scan = systable_beginscan(relation, ExtensionNameIndexId, true, NULL, 1,
							  &key);
	tuple = systable_getnext(scan);
	if (HeapTupleIsValid(tuple))
		owner = ((Form_pg_extension) GETSTRUCT(tuple))->extowner;
	systable_endscan(scan);
	table_close(relation, AccessShareLock);

	if (!OidIsValid(owner))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("extension \"%s\" is not installed in this database",
						MEDALLION_EXTENSION_NAME),
				 errhint("Run CREATE EXTENSION medallion.")));
	return owner;
}

Oid
MedallionSchemaOid(void)
{
	return get_namespace_oid(MEDALLION_SCHEMA_NAME, false);
}

/*
 * ResolveNewTableName parses a possibly qualified, possibly quoted table
 * name the way CREATE TABLE would and checks that the table does not exist.
 */
void
ResolveNewTableName(const char *table_name, Oid *namespace_oid,
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

/* Append ", "key": value" to a JSON object being built; NULL is null. */
void
JsonAppendText(StringInfo json, const char *key, const char *value)
{
	appendStringInfo(json, ", \"%s\": ", key);
	if (value == NULL)
		appendStringInfoString(json, "null");
	else
		escape_json(json, value);
}

/* Append ", "key": [strings]" to a JSON object being built. */
void
JsonAppendTextList(StringInfo json, const char *key, List *list)
{
	ListCell   *cell;

	appendStringInfo(json, ", \"%s\": [", key);
	foreach(cell, list)
	{
		if (foreach_current_index(cell) > 0)
			appendStringInfoString(json, ", ");
		escape_json(json, (char *) lfirst(cell));
	}
	appendStringInfoChar(json, ']');
}
