/*-------------------------------------------------------------------------
 *
 * user_sql.h
 *	  User SQL text: validation and placement.
 *
 * Every piece of SQL text a user gives medallion (a silver query, an
 * expectation condition, the expressions of a CDC or aggregate flow, column
 * names) is checked here, and generated SQL embeds it only in the placed
 * form returned here.  The contract:
 *
 * - All parsing of user text, and every statement that embeds it, runs
 *	 under UserSqlSettingsEnter: standard_conforming_strings is on, so the
 *	 text is tokenized the same way at creation and at every update.
 *
 * - An expression (UserSqlExpression, UserSqlItem) is accepted when
 *	 "SELECT <text>\n" parses, with the core raw parser, as exactly one
 *	 statement: a plain SELECT with exactly one target, which is not "*",
 *	 has no name (unless an item may have one) and no other clause (FROM,
 *	 WHERE, GROUP BY, DISTINCT, INTO, ...), and contains no parameter ($1)
 *	 and no data-modifying statement.  So the text is one expression on its
 *	 own, balanced: "x) OR (true" fails to parse, "1 FROM t" has a FROM
 *	 clause, "x; DROP TABLE t" is two statements.  Comments and whitespace
 *	 may surround it.  Empty text is refused.  Refusals are
 *	 ERRCODE_SYNTAX_ERROR (or INVALID_PARAMETER_VALUE for empty text, or
 *	 FEATURE_NOT_SUPPORTED for parameters and data-modifying statements),
 *	 "<what> must be one SQL expression", with what is wrong in the detail.
 *
 * - Its placed form is "(<expression>\n)": the expression alone (without
 *	 any "AS name"), in parentheses, with a newline that ends a trailing
 *	 "--" comment.  The placed form is parsed again and must give the same
 *	 tree, so it evaluates as the one expression that was checked, wherever
 *	 it is put: next to operators, in a target list, in a WHERE clause.
 *
 * - A query (UserSqlQuery) must parse as exactly one SELECT statement, with
 *	 no INTO, no FOR UPDATE/SHARE, no data-modifying statement (in WITH or
 *	 anywhere) and no parameter; it is placed as "(\n<query>\n)".
 *
 * - A column name is resolved by the caller against the columns it names
 *	 (exactly, or as SQL reads an identifier), and placed as a quoted
 *	 identifier (UserSqlColumnName).
 *
 * Texts are stored in the catalog as the user wrote them and checked again
 * each time they are loaded, so that a catalog row edited by hand cannot
 * splice SQL into a statement either.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/user_sql.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef MEDALLION_USER_SQL_H
#define MEDALLION_USER_SQL_H

#include "postgres.h"

#include "access/tupdesc.h"
#include "nodes/params.h"
#include "nodes/parsenodes.h"
#include "nodes/pg_list.h"

/* One "expression [AS name]" item, checked and split. */
typedef struct UserSqlItemText
{
	char	   *text;			/* the expression as written, without its name */
	char	   *name;			/* the name after AS (as the parser reads
								 * it), or NULL */
	char	   *sql;			/* the placed form: "(<text>\n)" */
} UserSqlItemText;

/*
 * Enter the settings under which user SQL is parsed and run: always
 * standard_conforming_strings = on and, when given, the search_path.
 * Returns the GUC nest level for UserSqlSettingsLeave, which restores both.
 */
extern int	UserSqlSettingsEnter(const char *search_path);
extern void UserSqlSettingsLeave(int nest_level);

/*
 * Check that text is one SQL expression (see the contract above) and
 * return its placed form, "(<text>\n)".  what names the argument in
 * messages ("apply_as_deletes", "expectation condition").
 */
extern char *UserSqlExpression(const char *text, const char *what);

/* The same for "expression [[AS] name]"; the name is split off. */
extern UserSqlItemText *UserSqlItem(const char *text, const char *what);

/*
 * Check that text is one SELECT statement (see the contract above) and
 * return its raw statement.  what names it in messages ("query of a silver
 * flow").
 */
extern RawStmt *UserSqlQuery(const char *text, const char *what);

/* "(\n<query>\n)", for a text UserSqlQuery accepted. */
extern char *UserSqlPlaceQuery(const char *query);

/* A column name (resolved by the caller), quoted as an identifier. */
extern const char *UserSqlColumnName(const char *name);

/* Error context callback: report syntax error positions against arg (SQL). */
extern void UserSqlErrorCallback(void *arg);

/* raw_parser() with error positions reported against sql. */
extern List *UserSqlRawParse(const char *sql);

/*
 * Analyze, rewrite and plan one SELECT and check the current user's
 * permissions without running it; returns the rewritten Query and a copy of
 * its result row type.
 */
extern Query *UserSqlAnalyzeQuery(RawStmt *raw_stmt, const char *sql,
								  int nparams, Oid *param_types,
								  ParamListInfo params,
								  TupleDesc *result_desc);

/*
 * Analyze and rewrite one SELECT and check the current user's permissions
 * on every table it reads, without planning it: for a query already
 * validated by UserSqlAnalyzeQuery when it was given, analysed again at
 * each use, and for SQL medallion made (check_permissions false: the
 * statement it becomes is checked when it runs).
 */
extern Query *UserSqlAnalyzeOnly(RawStmt *raw_stmt, const char *sql,
								 int nparams, Oid *param_types,
								 bool check_permissions);

/*
 * The relation entries (RTE_RELATION) of a query and of every query inside
 * it (subqueries, CTEs, sublinks, expanded views), in walk order.
 */
extern List *UserSqlRelationEntries(Query *query);

#endif							/* MEDALLION_USER_SQL_H */
