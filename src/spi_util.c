/*-------------------------------------------------------------------------
 *
 * spi_util.c
 *	  Small helpers around SPI: parameterised statements, their results, and
 *	  fixed catalog statements run as the extension owner with a pinned
 *	  search_path.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/spi_util.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "access/genam.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_extension.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "medallion.h"
#include "spi_util.h"

uint64
SpiExecute(const char *sql, int nargs, Oid *argtypes, Datum *values,
		   const char *nulls, int expected_result)
{
	int			result;

	result = SPI_execute_with_args(sql, nargs, argtypes, values, nulls,
								   false, 0);
	return SpiCheckResult(result, expected_result, sql);
}

/* SpiCheckResult: see spi_util.h. */
uint64
SpiCheckResult(int result, int expected_result, const char *sql)
{
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
	return SpiExecuteAsRole(ExtensionOwner(), 0, sql, nargs, argtypes,
							values, nulls, expected_result);
}

/* SpiExecuteAsRole: see spi_util.h. */
uint64
SpiExecuteAsRole(Oid role, int extra_security_context, const char *sql,
				 int nargs, Oid *argtypes, Datum *values, const char *nulls,
				 int expected_result)
{
	Oid			saved_user;
	int			saved_security_context;
	int			guc_nest_level;
	volatile uint64 processed = 0;

	GetUserIdAndSecContext(&saved_user, &saved_security_context);
	guc_nest_level = PinSafeSearchPath();
	SetUserIdAndSecContext(role,
						   saved_security_context |
						   SECURITY_LOCAL_USERID_CHANGE |
						   extra_security_context);
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

void
SetSettingInNestLevel(const char *name, const char *value)
{
	(void) set_config_option(name, value, PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
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

	SetSettingInNestLevel("search_path", MEDALLION_SAFE_SEARCH_PATH);
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
 * SpiEmptyTable: see spi_util.h.  TRUNCATE is cheaper and leaves nothing
 * for VACUUM, but requested while a long query or pg_dump reads the table
 * it would wait for it, with every later reader queued behind.
 */
bool
SpiEmptyTable(Oid relid)
{
	char	   *name = quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
												  get_rel_name(relid));

	if (ConditionalLockRelationOid(relid, AccessExclusiveLock))
	{
		SpiExecute(psprintf("TRUNCATE %s", name), 0, NULL, NULL, NULL,
				   SPI_OK_UTILITY);
		return true;
	}
	SpiExecute(psprintf("DELETE FROM %s", name), 0, NULL, NULL, NULL,
			   SPI_OK_DELETE);
	return false;
}
