/*-------------------------------------------------------------------------
 *
 * sql_names.h
 *	  Names in the SQL text medallion builds (see sql_names.c).
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/sql_names.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef MEDALLION_SQL_NAMES_H
#define MEDALLION_SQL_NAMES_H

#include "postgres.h"

#include "fmgr.h"
#include "lib/stringinfo.h"

/*
 * Resolve a user-given table name (possibly schema-qualified, quoted as in
 * SQL) as CREATE TABLE would: returns the namespace and the relation name,
 * erroring if the name is invalid.  ResolveNewTableName also errors when
 * the table exists.
 */
extern void ResolveTableName(const char *table_name, Oid *namespace_oid,
							 char **relation_name);
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
 * Generated column names "<prefix>1, ..., <prefix>n", each qualified by
 * qualifier when it is not NULL ("q.<prefix>1, ...").
 */
extern char *SqlNumberedColumns(const char *prefix, int n,
								const char *qualifier);

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

#endif							/* MEDALLION_SQL_NAMES_H */
