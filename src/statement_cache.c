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
 * and analysed, the way pg_ivm keeps its maintenance plans per view: 0.7 ms
 * of the 8 ms the 1M-order benchmark's region view spends in its statement.  A kept statement is planned again at every
 * call (CURSOR_OPT_CUSTOM_PLAN): the planner sees the ranges' values, and a
 * backlog of a million rows is not read with the plan of a thousand.
 *
 * PostgreSQL's plan cache keeps a kept statement valid: DDL on anything it
 * reads, a changed search_path or a function replaced makes it analyse the
 * text again (and fail as the text would).  Statements are kept per
 * current user (a pipeline's statements run as its owner), at most
 * STATEMENT_CACHE_SIZE of them.  When every place is taken, the least
 * recently used statement gives its place only if it is stale (not run
 * during the last STATEMENT_CACHE_STALE_CALLS calls: its view was dropped
 * or changed shape); else the new statement runs once.  A pipeline of more
 * views than places so keeps the statements of as many as fit, instead of
 * evicting each before its turn comes again.
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
#include "nodes/parsenodes.h"
#include "utils/memutils.h"

#include "spi_util.h"
#include "statement_cache.h"

typedef struct KeptStatement
{
	char	   *sql;			/* in TopMemoryContext; NULL: a free entry */
	Oid			user_id;		/* who prepared it */
	SPIPlanPtr	plan;			/* kept (SPI_keepplan) */
	uint64		last_use;
} KeptStatement;

static bool cache_enabled = false;
static KeptStatement kept_statements[STATEMENT_CACHE_SIZE];
static uint64 use_count = 0;

/* StatementCacheEnable: see statement_cache.h. */
void
StatementCacheEnable(void)
{
	cache_enabled = true;
}

static KeptStatement *
find_kept_statement(Oid user_id, const char *sql)
{
	int			i;

	for (i = 0; i < STATEMENT_CACHE_SIZE; i++)
	{
		KeptStatement *entry = &kept_statements[i];

		if (entry->sql != NULL && entry->user_id == user_id &&
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
	oldest->sql = NULL;
	return oldest;
}

/*
 * Prepare sql for custom plans and keep it for the current user; NULL when
 * there is no place for it.
 */
static KeptStatement *
keep_statement(Oid user_id, const char *sql, int nargs, Oid *argtypes)
{
	KeptStatement *entry = free_kept_statement();
	SPIPlanPtr	plan;
	char	   *kept_sql;

	if (entry == NULL)
		return NULL;
	plan = SPI_prepare_cursor(sql, nargs, argtypes, CURSOR_OPT_CUSTOM_PLAN);
	if (plan == NULL)
		elog(ERROR, "could not prepare \"%s\": %s", sql,
			 SPI_result_code_string(SPI_result));
	kept_sql = MemoryContextStrdup(TopMemoryContext, sql);
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "could not keep the statement \"%s\"", sql);
	entry->sql = kept_sql;
	entry->user_id = user_id;
	entry->plan = plan;
	return entry;
}

/* StatementCacheExecute: see statement_cache.h. */
uint64
StatementCacheExecute(const char *sql, int nargs, Oid *argtypes,
					  Datum *values, int expected_result, bool *reused)
{
	Oid			user_id = GetUserId();
	KeptStatement *entry;
	int			result;

	if (reused != NULL)
		*reused = false;
	if (!cache_enabled)
		return SpiExecute(sql, nargs, argtypes, values, NULL, expected_result);

	use_count++;
	entry = find_kept_statement(user_id, sql);
	if (entry != NULL && reused != NULL)
		*reused = true;
	if (entry == NULL)
		entry = keep_statement(user_id, sql, nargs, argtypes);
	if (entry == NULL)
		return SpiExecute(sql, nargs, argtypes, values, NULL, expected_result);
	entry->last_use = use_count;
	result = SPI_execute_plan(entry->plan, values, NULL, false, 0);
	return SpiCheckResult(result, expected_result, sql);
}
