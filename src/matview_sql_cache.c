/*-------------------------------------------------------------------------
 *
 * matview_sql_cache.c
 *	  The texts of the views' delta statements, kept by a continuous
 *	  pipeline's worker per view and update shape.
 *
 * Building a view's delta statement (matview_delta.c and the files it
 * calls) analyses a subquery per source and term and deparses the result:
 * 0.35-0.8 ms of the 1M-order benchmark's region view update in the
 * continuous worker, which builds the same text at every update of the
 * same shape.  The worker that keeps the statements (statement_cache.c)
 * keeps their texts as well, under a key made of everything the text is
 * built from apart from the catalogs (matview_apply.c's shape key: the
 * view, its query, owner and search_path, its target and state tables, the
 * relations its deltas are read from, and the order of the sources' deltas
 * by size with the empty ones).
 *
 * What the text reads from the catalogs is covered two ways.  A text is
 * dropped when a relation it was built from changes (a relcache
 * invalidation: DDL, an index made or dropped, an ANALYZE), and every text
 * when a function, operator, cast, collation, schema or operator class
 * changes anywhere.  And a text is taken out of the cache while its update
 * runs and given back only when the update's statement succeeded: a text
 * that no longer runs (a type it names renamed, say) fails one update and
 * is built again from the catalogs at the next.  (Types are left out of
 * the invalidations: every CREATE TABLE makes one.)
 *
 * At most MATVIEW_SQL_CACHE_SIZE texts; when full, the least recently used
 * gives its place.  Taking returns a copy: an invalidation may free the
 * kept text at any catalog access.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/matview_sql_cache.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "nodes/pg_list.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

#include "matview_internal.h"
#include "statement_cache.h"

#define MATVIEW_SQL_CACHE_SIZE	STATEMENT_CACHE_SIZE

typedef struct KeptDeltaSql
{
	char	   *key;			/* NULL: a free entry */
	char	   *sql;			/* NULL while taken */
	int			eager_term_count;
	Oid		   *relids;			/* the relations it is built from */
	int			nrelids;
	uint64		last_use;
} KeptDeltaSql;

static KeptDeltaSql kept_texts[MATVIEW_SQL_CACHE_SIZE];
static uint64 takes = 0;
static bool callbacks_registered = false;

static void
forget_text(KeptDeltaSql *entry)
{
	if (entry->key == NULL)
		return;
	pfree(entry->key);
	if (entry->sql != NULL)
		pfree(entry->sql);
	pfree(entry->relids);
	entry->key = NULL;
	entry->sql = NULL;
}

/* A relation changed (InvalidOid: any may have). */
static void
relation_changed(Datum argument, Oid relid)
{
	int			i;

	for (i = 0; i < MATVIEW_SQL_CACHE_SIZE; i++)
	{
		KeptDeltaSql *entry = &kept_texts[i];
		int			j;

		if (entry->key == NULL)
			continue;
		for (j = 0; j < entry->nrelids; j++)
			if (!OidIsValid(relid) || entry->relids[j] == relid)
			{
				forget_text(entry);
				break;
			}
	}
}

/* A function, operator, ... changed: every text is built again. */
static void
catalog_changed(Datum argument, int cache_id, uint32 hash_value)
{
	int			i;

	for (i = 0; i < MATVIEW_SQL_CACHE_SIZE; i++)
		forget_text(&kept_texts[i]);
}

static void
register_callbacks(void)
{
	static const int catalogs[] = {PROCOID, OPEROID, CASTSOURCETARGET, COLLOID,
	NAMESPACEOID, AMOPOPID};
	int			i;

	if (callbacks_registered)
		return;
	CacheRegisterRelcacheCallback(relation_changed, (Datum) 0);
	for (i = 0; i < lengthof(catalogs); i++)
		CacheRegisterSyscacheCallback(catalogs[i], catalog_changed, (Datum) 0);
	callbacks_registered = true;
}

static KeptDeltaSql *
find_text(const char *key)
{
	int			i;

	for (i = 0; i < MATVIEW_SQL_CACHE_SIZE; i++)
		if (kept_texts[i].key != NULL && strcmp(kept_texts[i].key, key) == 0)
			return &kept_texts[i];
	return NULL;
}

/* MatviewSqlCacheTake: see matview_internal.h. */
char *
MatviewSqlCacheTake(const char *key, int *eager_term_count)
{
	KeptDeltaSql *entry;
	char	   *sql;

	if (!StatementCacheEnabled())
		return NULL;
	register_callbacks();
	takes++;
	entry = find_text(key);
	if (entry == NULL || entry->sql == NULL)
		return NULL;			/* none, or taken by an update that failed */
	entry->last_use = takes;
	sql = pstrdup(entry->sql);
	*eager_term_count = entry->eager_term_count;
	pfree(entry->sql);
	entry->sql = NULL;
	return sql;
}

/* MatviewSqlCacheReserve: see matview_internal.h. */
void
MatviewSqlCacheReserve(const char *key, List *relids)
{
	KeptDeltaSql *entry = find_text(key);
	ListCell   *cell;
	int			i;

	if (!StatementCacheEnabled())
		return;
	if (entry == NULL)
	{
		/* a free place, else the least recently used */
		entry = &kept_texts[0];
		for (i = 0; i < MATVIEW_SQL_CACHE_SIZE; i++)
		{
			if (kept_texts[i].key == NULL)
			{
				entry = &kept_texts[i];
				break;
			}
			if (kept_texts[i].last_use < entry->last_use)
				entry = &kept_texts[i];
		}
	}
	forget_text(entry);
	entry->relids = MemoryContextAlloc(TopMemoryContext,
									   sizeof(Oid) * Max(list_length(relids), 1));
	entry->nrelids = 0;
	foreach(cell, relids)
		entry->relids[entry->nrelids++] = lfirst_oid(cell);
	entry->last_use = takes;
	entry->key = MemoryContextStrdup(TopMemoryContext, key);
}

/* MatviewSqlCacheGiveBack: see matview_internal.h. */
void
MatviewSqlCacheGiveBack(const char *key, const char *sql, int eager_term_count)
{
	KeptDeltaSql *entry;

	if (!StatementCacheEnabled())
		return;
	entry = find_text(key);
	if (entry == NULL || entry->sql != NULL)
		return;					/* invalidated since it was taken */
	entry->sql = MemoryContextStrdup(TopMemoryContext, sql);
	entry->eager_term_count = eager_term_count;
}
