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
#include "common/hashfn.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/memutils.h"
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

/*
 * The fixed statements whose plans a medallion background worker keeps:
 * at most KEPT_STATEMENTS_MAX, found by their text and argument types;
 * when the list is full, every plan is freed and it starts over (unless a
 * kept statement is running: the new one then runs once).
 */
#define KEPT_STATEMENTS_MAX 64

typedef struct KeptStatement
{
	uint32		text_hash;
	char	   *sql;
	int			nargs;
	Oid		   *argtypes;
	SPIPlanPtr	plan;
} KeptStatement;

static KeptStatement kept_statements[KEPT_STATEMENTS_MAX];
static int	kept_statement_count = 0;
static MemoryContext kept_statement_context = NULL;

/*
 * Kept statements running now: one may run another (a trigger of a catalog
 * table, say), and none may be freed while one runs.
 */
static int	kept_statements_running = 0;

/* Forget every kept statement (the list is full). */
static void
kept_statements_reset(void)
{
	int			i;

	for (i = 0; i < kept_statement_count; i++)
		SPI_freeplan(kept_statements[i].plan);
	kept_statement_count = 0;
	MemoryContextReset(kept_statement_context);
}

/* The kept statement of sql with these arguments, or NULL. */
static KeptStatement *
kept_statement_find(const char *sql, uint32 text_hash, int nargs,
					const Oid *argtypes)
{
	int			i;

	for (i = 0; i < kept_statement_count; i++)
	{
		KeptStatement *kept = &kept_statements[i];

		if (kept->text_hash == text_hash && kept->nargs == nargs &&
			(nargs == 0 || memcmp(kept->argtypes, argtypes, nargs * sizeof(Oid)) == 0) &&
			strcmp(kept->sql, sql) == 0)
			return kept;
	}
	return NULL;
}

/*
 * Plan sql, keep the plan, and remember it; the list emptied when full.
 * NULL when the list is full while a kept statement runs.
 */
static KeptStatement *
kept_statement_add(const char *sql, uint32 text_hash, int nargs,
				   Oid *argtypes)
{
	SPIPlanPtr	plan;
	KeptStatement *kept;
	MemoryContext caller_context;

	if (kept_statement_count == KEPT_STATEMENTS_MAX)
	{
		if (kept_statements_running > 0)
			return NULL;
		kept_statements_reset();
	}
	plan = SPI_prepare_cursor(sql, nargs, argtypes, CURSOR_OPT_PARALLEL_OK);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed for \"%s\": %s",
			 sql, SPI_result_code_string(SPI_result));
	if (kept_statement_context == NULL)
		kept_statement_context = AllocSetContextCreate(TopMemoryContext,
													   "medallion kept statements",
													   ALLOCSET_SMALL_SIZES);
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "SPI_keepplan failed");
	caller_context = MemoryContextSwitchTo(kept_statement_context);
	kept = &kept_statements[kept_statement_count++];
	kept->text_hash = text_hash;
	kept->sql = pstrdup(sql);
	kept->nargs = nargs;
	kept->argtypes = nargs > 0 ? palloc(nargs * sizeof(Oid)) : NULL;
	if (nargs > 0)
		memcpy(kept->argtypes, argtypes, nargs * sizeof(Oid));
	kept->plan = plan;
	MemoryContextSwitchTo(caller_context);
	return kept;
}

/* Run a kept plan, counted as running while it runs. */
static int
kept_statement_run(SPIPlanPtr plan, Datum *values, const char *nulls)
{
	volatile int result = 0;

	kept_statements_running++;
	PG_TRY();
	{
		result = SPI_execute_plan(plan, values, nulls, false, 0);
	}
	PG_FINALLY();
	{
		kept_statements_running--;
	}
	PG_END_TRY();
	return result;
}

/*
 * SpiExecuteKept: see spi_util.h.  A continuous pipeline's worker runs the
 * same few catalog statements for every flow at every update (lock the
 * flow's row, read a feed's reset markers, save the flow's state, write its
 * event); parsing and planning each again cost about a tenth of a
 * millisecond, a tenth of a small view's update.  PostgreSQL's plan cache
 * makes a kept plan again when what it was made from changes (a table
 * altered or dropped, a function replaced, another search_path), and
 * checks the rights at each execution, as for PL/pgSQL's statements.  In a
 * client's backend nothing is kept: its statements run once per call.
 */
uint64
SpiExecuteKept(const char *sql, int nargs, Oid *argtypes, Datum *values,
			   const char *nulls, int expected_result)
{
	uint32		text_hash;
	KeptStatement *kept;

	if (!IsBackgroundWorker)
		return SpiExecute(sql, nargs, argtypes, values, nulls,
						  expected_result);
	text_hash = hash_bytes((const unsigned char *) sql, strlen(sql));
	kept = kept_statement_find(sql, text_hash, nargs, argtypes);
	if (kept == NULL)
		kept = kept_statement_add(sql, text_hash, nargs, argtypes);
	if (kept == NULL)
		return SpiExecute(sql, nargs, argtypes, values, nulls,
						  expected_result);
	return SpiCheckResult(kept_statement_run(kept->plan, values, nulls),
						  expected_result, sql);
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
		processed = expected_result == SPI_OK_UTILITY ?
			SpiExecute(sql, nargs, argtypes, values, nulls, expected_result) :
			SpiExecuteKept(sql, nargs, argtypes, values, nulls, expected_result);
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
