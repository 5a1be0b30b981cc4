/*-------------------------------------------------------------------------
 *
 * user_sql.c
 *	  User SQL text: validation and placement.
 *
 * medallion builds SQL statements around text its users give: silver
 * queries, expectation conditions, the sequence and conditions of CDC flows,
 * the items and filter of aggregate flows.  This file is the one place that
 * decides what such a text may be and how it is put into a statement; the
 * contract is in user_sql.h.  The point of checking a text on its own
 * ("SELECT <text>\n"), and not only inside the parentheses it is placed in,
 * is that "x) OR (true" is balanced inside "(...)" but not alone: placed
 * next to another condition ("(x) OR (true) AND ...") it would change the
 * meaning of the statement around it.
 *
 * The generic helpers for parsing and analysing user SQL (the settings it
 * is parsed under, syntax error positions, analysis with permission checks)
 * live here too.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/user_sql.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/keywords.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "parser/parser.h"
#include "parser/scanner.h"
#include "parser/scansup.h"
#include "parser/gram.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/snapmgr.h"

#include "spi_util.h"
#include "user_sql.h"

/* What an expression is parsed as, before and after placement. */
#define USER_SQL_PROBE		"SELECT "
#define USER_SQL_PROBE_LEN	7

/* For the error context of parsing one argument's text. */
typedef struct UserSqlParseArg
{
	const char *sql;			/* the statement parsed */
	const char *what;			/* the argument, for the context line */
	const char *shape;			/* what else it may have, or "" */
} UserSqlParseArg;

/* What a raw-tree walk of user text found. */
typedef struct UserSqlWalk
{
	bool		modifying;		/* INSERT, UPDATE, DELETE or MERGE */
	bool		params;			/* $n */
	bool		into;			/* SELECT INTO */
	bool		locking;		/* FOR UPDATE / SHARE */
} UserSqlWalk;

/*
 * Settings and helpers for parsing user SQL
 */

/*
 * Enter the GUC settings under which medallion parses user SQL: always
 * standard_conforming_strings = on, so that a text is tokenized the same
 * way at creation and at every update whatever the session had set, and
 * optionally the pipeline's stored search_path, so that names resolve at
 * creation as they will when the flow runs.  Returns the GUC nest level to
 * pass to UserSqlSettingsLeave.
 */
int
UserSqlSettingsEnter(const char *search_path)
{
	int			nest_level = NewGUCNestLevel();

	SetSettingInNestLevel("standard_conforming_strings", "on");
	if (search_path != NULL)
		SetSettingInNestLevel("search_path", search_path);
	return nest_level;
}

void
UserSqlSettingsLeave(int nest_level)
{
	AtEOXact_GUC(true, nest_level);
}

/*
 * Error context callback for SQL text that medallion parses or analyzes
 * itself: turn a syntax error position into an "internal query" position,
 * so that the client shows the caret under the right text rather than
 * under the caller's statement (as SQL-language functions do).
 */
void
UserSqlErrorCallback(void *arg)
{
	const char *sql = (const char *) arg;
	int			position = geterrposition();

	if (position > 0)
	{
		errposition(0);
		internalerrposition(position);
		internalerrquery(sql);
	}
}

/*
 * Push an error context callback that reports error positions against sql
 * (UserSqlErrorCallback); the caller pops it by restoring
 * error_context_stack to callback->previous.
 */
static void
report_errors_against(ErrorContextCallback *callback, const char *sql)
{
	callback->callback = UserSqlErrorCallback;
	callback->arg = (void *) sql;
	callback->previous = error_context_stack;
	error_context_stack = callback;
}

/* raw_parser() with positions of syntax errors reported against sql. */
List *
UserSqlRawParse(const char *sql)
{
	ErrorContextCallback errcallback;
	List	   *raw;

	report_errors_against(&errcallback, sql);

	raw = raw_parser(sql, RAW_PARSE_DEFAULT);

	error_context_stack = errcallback.previous;
	return raw;
}

/* UserSqlRelationEntries' walker: collects into *entries. */
static bool
relation_entries_walker(Node *node, List **entries)
{
	if (node == NULL)
		return false;
	if (IsA(node, RangeTblEntry))
	{
		RangeTblEntry *rte = (RangeTblEntry *) node;

		if (rte->rtekind == RTE_RELATION)
			*entries = lappend(*entries, rte);
		return false;
	}
	if (IsA(node, Query))
		return query_tree_walker((Query *) node, relation_entries_walker,
								 (void *) entries, QTW_EXAMINE_RTES_BEFORE);
	return expression_tree_walker(node, relation_entries_walker,
								  (void *) entries);
}

/* UserSqlRelationEntries: see user_sql.h. */
List *
UserSqlRelationEntries(Query *query)
{
	List	   *entries = NIL;

	(void) relation_entries_walker((Node *) query, &entries);
	return entries;
}

/*
 * Analyze and rewrite one statement as the current user: the one Query it
 * becomes.  The caller reports errors against sql and holds a snapshot.
 */
static Query *
analyze_and_rewrite(RawStmt *raw_stmt, const char *sql, int nparams,
					Oid *param_types)
{
	List	   *queries = pg_analyze_and_rewrite_fixedparams(raw_stmt, sql,
															 param_types,
															 nparams, NULL);

	if (list_length(queries) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("rules that turn a query into several queries are not supported here")));
	return linitial_node(Query, queries);
}

/*
 * UserSqlAnalyzeOnly: see user_sql.h.  Planning a query costs about what
 * analysing it does; a materialized view's update analyses its query and
 * the half-dozen subqueries its delta terms are made of, and planned each
 * of them only to throw the plan away.  The permission check is the one
 * the executor makes at its start (ExecCheckRTPerms), on the rewritten
 * query's tables (views expanded, so a view is checked as its owner).
 */
Query *
UserSqlAnalyzeOnly(RawStmt *raw_stmt, const char *sql, int nparams,
				   Oid *param_types, bool check_permissions)
{
	ErrorContextCallback errcallback;
	Query	   *query;

	report_errors_against(&errcallback, sql);
	PushActiveSnapshot(GetTransactionSnapshot());
	query = analyze_and_rewrite(raw_stmt, sql, nparams, param_types);
	PopActiveSnapshot();
	error_context_stack = errcallback.previous;

	if (check_permissions)
		(void) ExecCheckRTPerms(UserSqlRelationEntries(query), true);
	return query;
}

/*
 * Analyze, rewrite and plan one SELECT as the current user, and check that
 * the current user may run it (by starting its executor in EXPLAIN-only
 * mode, which checks permissions and runs nothing).  Returns the rewritten
 * Query; *result_desc gets a copy of its result row type.  The caller has
 * checked that sql is a single SELECT (raw_stmt).
 */
Query *
UserSqlAnalyzeQuery(RawStmt *raw_stmt, const char *sql, int nparams,
					Oid *param_types, ParamListInfo params,
					TupleDesc *result_desc)
{
	ErrorContextCallback errcallback;
	List	   *plans;
	Query	   *query;
	QueryDesc  *query_desc;

	report_errors_against(&errcallback, sql);

	PushActiveSnapshot(GetTransactionSnapshot());
	query = analyze_and_rewrite(raw_stmt, sql, nparams, param_types);
	plans = pg_plan_queries(list_make1(copyObject(query)), sql, 0, params);
	query_desc = CreateQueryDesc(linitial_node(PlannedStmt, plans), sql,
								 GetActiveSnapshot(), InvalidSnapshot,
								 None_Receiver, params, NULL, 0);
	ExecutorStart(query_desc, EXEC_FLAG_EXPLAIN_ONLY);
	*result_desc = CreateTupleDescCopy(query_desc->tupDesc);
	ExecutorEnd(query_desc);
	FreeQueryDesc(query_desc);

	PopActiveSnapshot();
	error_context_stack = errcallback.previous;

	return query;
}

/*
 * Checking texts
 */

static void
user_sql_parse_error_callback(void *arg)
{
	UserSqlParseArg *parse = (UserSqlParseArg *) arg;

	UserSqlErrorCallback((void *) parse->sql);
	errcontext("%s must be one SQL expression%s", parse->what, parse->shape);
}

/* Parse a probe built around an argument's text; errors name the argument. */
static List *
user_sql_parse_probe(const char *sql, const char *what, const char *shape)
{
	ErrorContextCallback errcallback;
	UserSqlParseArg parse;
	List	   *raw;

	parse.sql = sql;
	parse.what = what;
	parse.shape = shape;
	errcallback.callback = user_sql_parse_error_callback;
	errcallback.arg = (void *) &parse;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;

	raw = raw_parser(sql, RAW_PARSE_DEFAULT);

	error_context_stack = errcallback.previous;
	return raw;
}

/*
 * Collect, anywhere in a raw tree, what the checks refuse: data-modifying
 * statements and parameters (every text), INTO and locking (queries).
 */
static bool
user_sql_walker(Node *node, void *context)
{
	UserSqlWalk *walk = (UserSqlWalk *) context;

	if (node == NULL)
		return false;
	if (IsA(node, InsertStmt) || IsA(node, UpdateStmt) ||
		IsA(node, DeleteStmt) || IsA(node, MergeStmt))
		walk->modifying = true;
	else if (IsA(node, ParamRef))
		walk->params = true;
	else if (IsA(node, SelectStmt))
	{
		SelectStmt *select = (SelectStmt *) node;

		if (select->intoClause != NULL)
			walk->into = true;
		if (select->lockingClause != NIL)
			walk->locking = true;
	}
	return raw_expression_tree_walker(node, user_sql_walker, context);
}

/*
 * Refuse data-modifying statements and parameters anywhere in a text: the
 * first could write from a statement medallion runs for another purpose,
 * the second would take the values of medallion's own parameters.
 */
static void
user_sql_check_walk(UserSqlWalk *walk, const char *what)
{
	if (walk->modifying)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("%s cannot contain data-modifying statements", what)));
	if (walk->params)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("%s cannot use parameters such as $1", what)));
}

/* Is text empty, or only whitespace? */
static bool
user_sql_is_blank(const char *text)
{
	for (; *text != '\0'; text++)
	{
		if (!scanner_isspace(*text))
			return false;
	}
	return true;
}

/*
 * Why raw (the parse of "SELECT <text>\n") is not one expression, or NULL
 * when it is: exactly one statement, not followed by a semicolon, a plain
 * SELECT of exactly one target that is not "*", and no other clause.  The
 * target is returned in *target; its name is the caller's business.
 */
static const char *
user_sql_not_one_expression(List *raw, ResTarget **target)
{
	RawStmt    *stmt;
	SelectStmt *select;
	ResTarget  *rt;

	if (list_length(raw) != 1)
		return "The text holds more than one statement.";
	stmt = linitial_node(RawStmt, raw);
	if (stmt->stmt_len != 0)
		return "The text holds a semicolon.";
	if (!IsA(stmt->stmt, SelectStmt))
		return "The text is not an expression.";
	select = (SelectStmt *) stmt->stmt;
	if (select->op != SETOP_NONE)
		return "The text continues with UNION, INTERSECT or EXCEPT.";
	if (list_length(select->targetList) != 1)
		return "The text holds several comma-separated expressions.";
	if (select->distinctClause != NIL ||
		select->intoClause != NULL ||
		select->fromClause != NIL ||
		select->whereClause != NULL ||
		select->groupClause != NIL ||
		select->groupDistinct ||
		select->havingClause != NULL ||
		select->windowClause != NIL ||
		select->valuesLists != NIL ||
		select->sortClause != NIL ||
		select->limitOffset != NULL ||
		select->limitCount != NULL ||
		select->lockingClause != NIL ||
		select->withClause != NULL)
		return "The text has a clause besides the expression, such as FROM, WHERE, GROUP BY, ORDER BY, LIMIT or INTO.";
	rt = linitial_node(ResTarget, select->targetList);
	if (rt->val == NULL || rt->indirection != NIL)
		return "The text is not an expression.";
	if (IsA(rt->val, ColumnRef) &&
		IsA(llast(((ColumnRef *) rt->val)->fields), A_Star))
		return "\"*\" is not an expression.";
	*target = rt;
	return NULL;
}

/*
 * The text of an item without its name: the item is "SELECT <item>\n" in
 * probe, and its name is its last token, with an AS before it, if any (found
 * with the core scanner, which skips comments as the parser does).
 */
static char *
user_sql_strip_name(const char *probe)
{
	core_yy_extra_type yyextra;
	core_yyscan_t scanner;
	core_YYSTYPE yylval;
	YYLTYPE		yylloc = 0;
	int			token;
	int			last_start = -1;
	int			prev_start = -1;
	int			prev_token = 0;
	int			last_token = 0;
	int			end;

	scanner = scanner_init(probe, &yyextra, &ScanKeywords, ScanKeywordTokens);
	while ((token = core_yylex(&yylval, &yylloc, scanner)) != 0)
	{
		prev_start = last_start;
		prev_token = last_token;
		last_start = yylloc;
		last_token = token;
	}
	scanner_finish(scanner);

	end = (prev_token == AS) ? prev_start : last_start;
	while (end > USER_SQL_PROBE_LEN && scanner_isspace(probe[end - 1]))
		end--;
	return pnstrdup(probe + USER_SQL_PROBE_LEN, end - USER_SQL_PROBE_LEN);
}

/*
 * The heart of the contract (see user_sql.h): check text as one
 * expression, optionally named, and place it.  The placed form is parsed
 * again and must give the same expression, unnamed: that proves that the
 * text without its name is exactly the expression, and that it keeps its
 * meaning in parentheses.
 */
static UserSqlItemText *
user_sql_check(const char *text, const char *what, bool allow_name)
{
	UserSqlItemText *item = palloc0(sizeof(UserSqlItemText));
	const char *shape = allow_name ?
		", optionally followed by AS and a name" : "";
	char	   *probe;
	const char *reason;
	ResTarget  *target = NULL;
	ResTarget  *placed = NULL;
	UserSqlWalk walk;

	if (user_sql_is_blank(text))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be empty", what)));

	probe = psprintf(USER_SQL_PROBE "%s\n", text);
	reason = user_sql_not_one_expression(user_sql_parse_probe(probe, what,
															  shape),
										 &target);
	if (reason != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_SYNTAX_ERROR),
				 errmsg("%s must be one SQL expression%s", what, shape),
				 errdetail_internal("%s", reason)));
	if (target->name != NULL && !allow_name)
		ereport(ERROR,
				(errcode(ERRCODE_SYNTAX_ERROR),
				 errmsg("%s must be one SQL expression%s", what, shape),
				 errdetail("The text names its value with AS.")));
	memset(&walk, 0, sizeof(walk));
	(void) user_sql_walker(target->val, &walk);
	user_sql_check_walk(&walk, what);

	item->text = target->name != NULL ? user_sql_strip_name(probe) :
		pstrdup(text);
	item->name = target->name != NULL ? pstrdup(target->name) : NULL;
	item->sql = psprintf("(%s\n)", item->text);

	probe = psprintf(USER_SQL_PROBE "%s", item->sql);
	if (user_sql_not_one_expression(user_sql_parse_probe(probe, what, shape),
									&placed) != NULL ||
		placed->name != NULL || !equal(placed->val, target->val))
	{
		if (item->name != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_SYNTAX_ERROR),
					 errmsg("could not separate the expression of %s from its name",
							what),
					 errhint("Write the item as \"expression AS name\", with a plain name.")));
		ereport(ERROR,
				(errcode(ERRCODE_SYNTAX_ERROR),
				 errmsg("%s must be one SQL expression%s", what, shape),
				 errdetail("The text means something else in parentheses.")));
	}
	return item;
}

char *
UserSqlExpression(const char *text, const char *what)
{
	return user_sql_check(text, what, false)->sql;
}

UserSqlItemText *
UserSqlItem(const char *text, const char *what)
{
	return user_sql_check(text, what, true);
}

/*
 * Check a whole query.  Syntax errors are reported against the query
 * itself, which is parsed as it is written.
 */
RawStmt *
UserSqlQuery(const char *text, const char *what)
{
	List	   *raw;
	RawStmt    *stmt;
	UserSqlWalk walk;

	raw = UserSqlRawParse(text);
	if (list_length(raw) != 1 ||
		!IsA(linitial_node(RawStmt, raw)->stmt, SelectStmt))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a single SELECT statement", what)));
	stmt = linitial_node(RawStmt, raw);
	if (stmt->stmt_len != 0)
		ereport(ERROR,
				(errcode(ERRCODE_SYNTAX_ERROR),
				 errmsg("%s must be a single SELECT statement", what),
				 errdetail("The text holds a semicolon."),
				 errhint("Leave out the semicolon at the end.")));

	memset(&walk, 0, sizeof(walk));
	(void) user_sql_walker(stmt->stmt, &walk);
	if (walk.into)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("%s cannot use SELECT INTO", what)));
	if (walk.locking)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("%s cannot use FOR UPDATE or FOR SHARE", what)));
	user_sql_check_walk(&walk, what);
	return stmt;
}

char *
UserSqlPlaceQuery(const char *query)
{
	return psprintf("(\n%s\n)", query);
}

/*
 * A column name is placed quoted, so any name is safe to place.  Names
 * reach this point resolved against a relation or a query's columns, so an
 * impossible name is an internal error.
 */
const char *
UserSqlColumnName(const char *name)
{
	if (name[0] == '\0' || strlen(name) >= NAMEDATALEN)
		elog(ERROR, "invalid column name \"%s\"", name);
	return quote_identifier(name);
}
