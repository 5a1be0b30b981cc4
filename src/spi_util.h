/*-------------------------------------------------------------------------
 *
 * spi_util.h
 *	  Small helpers around SPI: parameterised statements, their results, and
 *	  fixed catalog statements run as the extension owner with a pinned
 *	  search_path.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/spi_util.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef MEDALLION_SPI_UTIL_H
#define MEDALLION_SPI_UTIL_H

#include "postgres.h"

#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "nodes/pg_list.h"


/*
 * Run one statement through SPI with parameters (types/values/nulls as for
 * SPI_execute_with_args; nulls may be NULL).  The caller must be connected
 * to SPI.  expected_result is the SPI_OK_* code the statement must return.  Returns
 * SPI_processed.  Results stay in SPI_tuptable until the next call.
 */
extern uint64 SpiExecute(const char *sql, int nargs, Oid *argtypes,
						 Datum *values, const char *nulls,
						 int expected_result);

/*
 * The same for one of medallion's fixed statements (its text a constant,
 * or one of a few, values passed as parameters): in a background worker,
 * its plan is kept across transactions (at most 64 statements); elsewhere
 * SpiExecute.
 */
extern uint64 SpiExecuteKept(const char *sql, int nargs, Oid *argtypes,
							 Datum *values, const char *nulls,
							 int expected_result);

/*
 * Raise an error unless result (of an SPI call running sql) is
 * expected_result; returns SPI_processed.
 */
extern uint64 SpiCheckResult(int result, int expected_result, const char *sql);

/*
 * Same, but run as the owner of the medallion extension, for fixed,
 * schema-qualified statements on medallion's own tables only, with
 * search_path pinned to MEDALLION_SAFE_SEARCH_PATH.  Never pass
 * user-supplied SQL here, nor a statement that reads or writes a table that
 * a role other than the extension owner owns (its triggers, rules, index
 * and default expressions would run with the owner's rights).
 */
extern uint64 SpiExecuteAsExtensionOwner(const char *sql, int nargs,
										 Oid *argtypes, Datum *values,
										 const char *nulls,
										 int expected_result);

/*
 * Run sql through SPI as role, with search_path pinned to pg_catalog,
 * pg_temp, adding extra_security_context (e.g. SECURITY_RESTRICTED_OPERATION)
 * to the session's; SpiExecuteAsExtensionOwner is this for the extension's
 * owner.
 */
extern uint64 SpiExecuteAsRole(Oid role, int extra_security_context,
							   const char *sql, int nargs, Oid *argtypes,
							   Datum *values, const char *nulls,
							   int expected_result);

/*
 * The search_path of every statement that runs with more rights than its
 * caller, and of medallion's background workers outside a pipeline owner's
 * context.  Functions and operators are never looked up in pg_temp.
 */
#define MEDALLION_SAFE_SEARCH_PATH "pg_catalog, pg_temp"

/*
 * Empty a table in the current transaction without waiting for another
 * session's lock on it, nor making later ones queue: TRUNCATE when nobody
 * holds a lock on it at this moment (ACCESS EXCLUSIVE, held until the
 * transaction ends), else DELETE, which readers (a BI query, pg_dump) and
 * VACUUM do not block.  Runs as the current user.  True when it truncated.
 */
extern bool SpiEmptyTable(Oid relid);

/*
 * Pin search_path to MEDALLION_SAFE_SEARCH_PATH in a new GUC nest level;
 * returns the level, to be restored with AtEOXact_GUC(false, level).
 */
extern int	PinSafeSearchPath(void);

/*
 * Set a setting (as SET LOCAL would, but for the current GUC nest level):
 * AtEOXact_GUC of that level, or of an enclosing one, restores it.
 */
extern void SetSettingInNestLevel(const char *name, const char *value);

/* Value of column attnum (1-based) of row 0 of SPI_tuptable, or NULL. */
extern char *SpiGetText(uint64 row, int attnum);
extern int64 SpiGetInt64(uint64 row, int attnum, bool *isnull);
extern Datum SpiGetDatum(uint64 row, int attnum, bool *isnull);

/* Owner of the medallion extension. */
extern Oid	ExtensionOwner(void);

/* The OID of the medallion schema. */
extern Oid	MedallionSchemaOid(void);

#endif							/* MEDALLION_SPI_UTIL_H */
