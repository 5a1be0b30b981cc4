/*-------------------------------------------------------------------------
 *
 * statement_cache.c
 *	  Statements medallion generates, kept parsed across the updates of a
 *	  long-lived pipeline worker.
 *
 * A materialized view's update runs one statement of its own making (the
 * delta, matview_delta.c), whose text is the same at every update of the
 * same shape once the sources' ranges are parameters.  A worker of
 * continuous mode, which runs it again every few seconds, keeps it parsed
 * and planned, the way pg_ivm keeps its maintenance plans per view.
 *
 * A kept statement is planned once per plan class, a key its caller gives
 * with each call (the deltas' sizes and the sizes of the relations they
 * are read from, rounded to powers of two), and its
 * plan reused by the later calls of the class.  The plan is a generic one
 * (CURSOR_OPT_GENERIC_PLAN: the parameters stay parameters in it), but
 * made with the values of the call that makes it for the planner's
 * estimates: the worker's planner hook hands them to the planner as
 * parameters to estimate with, not to fold (no PARAM_FLAG_CONST), the way
 * PostgreSQL estimates a custom plan's.  So a thousand changes are planned
 * as a thousand (row_range.c's estimate of a range reads its bounds), and a
 * backlog of a million gets a plan of its own, not the thousand's.
 * Planning was 0.6-1.4 ms of the 1M-order benchmark's region view update
 * (7 ms); parsing and analysis another 0.7 ms.
 *
 * PostgreSQL's plan cache keeps a kept statement valid: DDL on anything it
 * reads, an ANALYZE of it, a changed search_path or a function replaced
 * makes it analyse the text again or plan it again (and fail as the text
 * would).  Statements are kept per current user (a pipeline's statements
 * run as its owner) and plan class, at most STATEMENT_CACHE_SIZE of them.
 * When every place is taken, the least recently used statement gives its
 * place only if it is stale (not run during the last
 * STATEMENT_CACHE_STALE_CALLS calls: its view was dropped, changed shape,
 * or its deltas changed size); else the new statement runs once.  A
 * pipeline of more views than places so keeps the statements of as many
 * as fit, instead of evicting each before its turn comes again.
 * Other backends (run_pipeline's worker, a direct call) run a statement
 * once, where keeping it would cost more than it saves.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/statement_cache.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/params.h"
#include "nodes/parsenodes.h"
#include "optimizer/planner.h"
#include "utils/memutils.h"
#include "utils/plancache.h"

#include "spi_util.h"
#include "statement_cache.h"

typedef struct KeptStatement
{
	char	   *sql;			/* in TopMemoryContext; NULL: a free entry */
	char	   *plan_class;		/* in TopMemoryContext */
	Oid			user_id;		/* who prepared it */
	SPIPlanPtr	plan;			/* kept (SPI_keepplan) */
	uint64		last_use;
} KeptStatement;

static bool cache_enabled = false;
static KeptStatement kept_statements[STATEMENT_CACHE_SIZE];
static uint64 use_count = 0;

/* The values a kept statement is being planned with, else NULL. */
static ParamListInfo planning_parameters = NULL;
static planner_hook_type previous_planner_hook = NULL;

/*
 * The worker's planner hook: a kept statement's generic plan is made with
 * the values of the call that makes it, for estimates only.
 */
static PlannedStmt *
statement_cache_planner(Query *parse, const char *query_string,
						int cursor_options, ParamListInfo bound_parameters)
{
	if (planning_parameters != NULL && bound_parameters == NULL)
		bound_parameters = planning_parameters;
	if (previous_planner_hook != NULL)
		return previous_planner_hook(parse, query_string, cursor_options,
									 bound_parameters);
	return standard_planner(parse, query_string, cursor_options,
							bound_parameters);
}

/* StatementCacheEnable: see statement_cache.h. */
void
StatementCacheEnable(void)
{
	if (cache_enabled)
		return;
	cache_enabled = true;
	previous_planner_hook = planner_hook;
	planner_hook = statement_cache_planner;
}

/* StatementCacheEnabled: see statement_cache.h. */
bool
StatementCacheEnabled(void)
{
	return cache_enabled;
}

static KeptStatement *
find_kept_statement(Oid user_id, const char *sql, const char *plan_class)
{
	int			i;

	for (i = 0; i < STATEMENT_CACHE_SIZE; i++)
	{
		KeptStatement *entry = &kept_statements[i];

		if (entry->sql != NULL && entry->user_id == user_id &&
			strcmp(entry->plan_class, plan_class) == 0 &&
			strcmp(entry->sql, sql) == 0)
			return entry;
	}
	return NULL;
}

/*
 * A free entry: an unused one, else the least recently used if it is
 * stale, given back; NULL when every entry is in use.
 */
static KeptStatement *
free_kept_statement(void)
{
	KeptStatement *oldest = &kept_statements[0];
	int			i;

	for (i = 0; i < STATEMENT_CACHE_SIZE; i++)
	{
		KeptStatement *entry = &kept_statements[i];

		if (entry->sql == NULL)
			return entry;
		if (entry->last_use < oldest->last_use)
			oldest = entry;
	}
	if (oldest->last_use + STATEMENT_CACHE_STALE_CALLS > use_count)
		return NULL;
	SPI_freeplan(oldest->plan);
	pfree(oldest->sql);
	pfree(oldest->plan_class);
	oldest->sql = NULL;
	return oldest;
}

/*
 * Prepare sql for a generic plan (made at its first run) and keep it for
 * the current user and plan class; NULL when there is no place for it.
 */
static KeptStatement *
keep_statement(Oid user_id, const char *sql, const char *plan_class,
			   int nargs, Oid *argtypes)
{
	KeptStatement *entry = free_kept_statement();
	SPIPlanPtr	plan;
	char	   *kept_sql;

	if (entry == NULL)
		return NULL;
	plan = SPI_prepare_cursor(sql, nargs, argtypes, CURSOR_OPT_GENERIC_PLAN);
	if (plan == NULL)
		elog(ERROR, "could not prepare \"%s\": %s", sql,
			 SPI_result_code_string(SPI_result));
	kept_sql = MemoryContextStrdup(TopMemoryContext, sql);
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "could not keep the statement \"%s\"", sql);
	entry->sql = kept_sql;
	entry->plan_class = MemoryContextStrdup(TopMemoryContext, plan_class);
	entry->user_id = user_id;
	entry->plan = plan;
	return entry;
}

/*
 * The number of plans made for a kept statement so far (its plan source's
 * generation): a call that leaves it unchanged reused the kept plan.
 */
static int
plans_made(KeptStatement *entry)
{
	return ((CachedPlanSource *) linitial(SPI_plan_get_plan_sources(entry->plan)))->generation;
}

/*
 * Make the kept statement's generic plan, unless it has a valid one, with
 * the call's values to estimate with (see the header).
 */
static void
plan_kept_statement(KeptStatement *entry, int nargs, Oid *argtypes,
					Datum *values)
{
	ParamListInfo parameters = makeParamList(nargs);
	CachedPlan *plan;
	int			i;

	for (i = 0; i < nargs; i++)
	{
		parameters->params[i].value = values[i];
		parameters->params[i].isnull = false;
		parameters->params[i].pflags = 0;	/* estimate with, never fold */
		parameters->params[i].ptype = argtypes[i];
	}
	planning_parameters = parameters;
	PG_TRY();
	{
		plan = SPI_plan_get_cached_plan(entry->plan);
	}
	PG_FINALLY();
	{
		planning_parameters = NULL;
	}
	PG_END_TRY();
	if (plan == NULL)
		elog(ERROR, "could not plan the kept statement \"%s\"", entry->sql);
	ReleaseCachedPlan(plan, CurrentResourceOwner);
}

/* StatementCacheExecute: see statement_cache.h. */
uint64
StatementCacheExecute(const char *sql, const char *plan_class, int nargs,
					  Oid *argtypes, Datum *values, int expected_result,
					  StatementUse *use)
{
	Oid			user_id = GetUserId();
	KeptStatement *entry;
	int			plans_before;
	int			result;

	if (use != NULL)
		*use = STATEMENT_RUN_ONCE;
	if (!cache_enabled)
		return SpiExecute(sql, nargs, argtypes, values, NULL, expected_result);

	use_count++;
	entry = find_kept_statement(user_id, sql, plan_class);
	if (entry == NULL)
		entry = keep_statement(user_id, sql, plan_class, nargs, argtypes);
	if (entry == NULL)
		return SpiExecute(sql, nargs, argtypes, values, NULL, expected_result);
	entry->last_use = use_count;
	plans_before = plans_made(entry);
	plan_kept_statement(entry, nargs, argtypes, values);
	if (use != NULL)
		*use = plans_made(entry) == plans_before ?
			STATEMENT_KEPT_PLAN_REUSED : STATEMENT_KEPT_PLANNED;
	result = SPI_execute_plan(entry->plan, values, NULL, false, 0);
	return SpiCheckResult(result, expected_result, sql);
}
