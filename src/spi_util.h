/*-------------------------------------------------------------------------
 *
 * spi_util.h
 *	  Small helpers around SPI: parameterised statements, running fixed
 *	  catalog statements as the extension owner, and identifier quoting.
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
 * The search_path of every statement that runs with more rights than its
 * caller, and of medallion's background workers outside a pipeline owner's
 * context.  Functions and operators are never looked up in pg_temp.
 */
#define MEDALLION_SAFE_SEARCH_PATH "pg_catalog, pg_temp"

/*
 * Pin search_path to MEDALLION_SAFE_SEARCH_PATH in a new GUC nest level;
 * returns the level, to be restored with AtEOXact_GUC(false, level).
 */
extern int	PinSafeSearchPath(void);

/* Value of column attnum (1-based) of row 0 of SPI_tuptable, or NULL. */
extern char *SpiGetText(uint64 row, int attnum);
extern int64 SpiGetInt64(uint64 row, int attnum, bool *isnull);
extern Datum SpiGetDatum(uint64 row, int attnum, bool *isnull);

/* Owner of the medallion extension. */
extern Oid	ExtensionOwner(void);

/* The OID of the medallion schema. */
extern Oid	MedallionSchemaOid(void);

/*
 * Resolve a user-given table name (possibly schema-qualified, quoted as in
 * SQL) for creating a new table: returns the namespace and the relation
 * name, erroring if the name is invalid.
 */
extern void ResolveNewTableName(const char *table_name, Oid *namespace_oid,
								char **relation_name);

/*
 * A text argument of a SQL-callable function as a C string; NULL is an
 * error ("<argname> must not be null").
 */
extern char *SqlTextArgument(FunctionCallInfo fcinfo, int argno,
							 const char *argname);

/* "OPERATOR(schema.name)" for an operator, whatever the search_path. */
extern char *SqlOperatorName(Oid opno);

/* "schema.table" with both parts quoted as needed. */
extern char *QuoteQualifiedName(Oid namespace_oid, const char *relation_name);

/* " COLLATE schema.name", or "" for no collation. */
extern char *SqlCollateClause(Oid collation);

/*
 * Append a column definition "name type [COLLATE c]" to sql, the type
 * schema-qualified with its typmod; the collation only when it is not the
 * type's default.
 */
extern void SqlAppendColumnDefinition(StringInfo sql, const char *name,
									  Oid type, int32 typmod, Oid collation);

/*
 * <base><suffix>, the name of a relation medallion creates beside a user's
 * table in the same schema; errors when it is too long or exists already.
 */
extern char *CompanionRelationName(Oid namespace_oid, const char *base,
								   const char *suffix, const char *what);

/* The relation a (possibly qualified, quoted) name denotes, as SQL reads it. */
extern Oid	RelidFromQualifiedName(const char *name, bool missing_ok);

/* Members of a JSON object being built: ", "key": ..." (NULL is null). */
extern void JsonAppendText(StringInfo json, const char *key, const char *value);
extern void JsonAppendTextList(StringInfo json, const char *key, List *list);

#endif							/* MEDALLION_SPI_UTIL_H */
