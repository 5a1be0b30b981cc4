/*-------------------------------------------------------------------------
 *
 * matview_sql_cache.c
 *	  What a continuous pipeline's worker keeps of its views between
 *	  updates: each view's analysed query, and the texts of its delta
 *	  statements per update shape.
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
 * A view's analysis (MatviewAnalyze, with the check of its source columns
 * before it) is kept the same way, under its view, owner, search_path,
 * query and target, watched for changes to its sources and to functions,
 * operators, ... and to roles (whether the owner may capture a plain
 * table's changes): 0.3 ms of the region view's update, which analysed
 * the same query at every update.  (Not for changes to its target, whose
 * columns each update checks against the analysis: a VACUUM of the small
 * table of a grouped view, every few updates, would drop it.)  While an update
 * uses it, the memory holding it belongs to the update (a failed update
 * frees it); an invalidation then only marks it stale, and it is not kept
 * again.  Taking it locks its sources first, as the analysis would have:
 * a change committed before is seen then and drops it; none can change
 * after that until the update ends.
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
#include "storage/lmgr.h"
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

typedef struct KeptAnalysis
{
	char	   *key;			/* NULL: a free entry */
	MemoryContext context;		/* holds the analysis */
	MatviewAnalysis analysis;	/* as analysed, never changed by an update */
	bool		taken;			/* context belongs to the update using it */
	bool		stale;			/* invalidated while taken */
	Oid		   *relids;			/* its sources */
	int			nrelids;
	uint64		last_use;
} KeptAnalysis;

static KeptAnalysis kept_analyses[MATVIEW_SQL_CACHE_SIZE];

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

static void
free_analysis_entry(KeptAnalysis *entry)
{
	pfree(entry->key);
	pfree(entry->relids);
	entry->key = NULL;
	entry->context = NULL;
	entry->taken = false;
}

static void
forget_analysis(KeptAnalysis *entry)
{
	MemoryContext context = entry->context;

	if (entry->key == NULL)
		return;
	if (entry->taken)
	{
		/* its memory belongs to the update using it */
		entry->stale = true;
		return;
	}
	free_analysis_entry(entry);
	MemoryContextDelete(context);
}

/*
 * The memory of an analysis was freed: by the update that took it (failed,
 * or had it marked stale), or by forget_analysis.
 */
static void
analysis_context_freed(void *arg)
{
	int			i;

	for (i = 0; i < MATVIEW_SQL_CACHE_SIZE; i++)
		if (kept_analyses[i].key != NULL && kept_analyses[i].context == arg)
			free_analysis_entry(&kept_analyses[i]);
}

static bool
relids_include(const Oid *relids, int nrelids, Oid relid)
{
	int			i;

	for (i = 0; i < nrelids; i++)
		if (!OidIsValid(relid) || relids[i] == relid)
			return true;
	return false;
}

/* A relation changed (InvalidOid: any may have). */
static void
relation_changed(Datum argument, Oid relid)
{
	int			i;

	for (i = 0; i < MATVIEW_SQL_CACHE_SIZE; i++)
	{
		KeptDeltaSql *text = &kept_texts[i];
		KeptAnalysis *analysis = &kept_analyses[i];

		if (text->key != NULL && relids_include(text->relids, text->nrelids, relid))
			forget_text(text);
		if (analysis->key != NULL &&
			relids_include(analysis->relids, analysis->nrelids, relid))
			forget_analysis(analysis);
	}
}

/* A function, operator, ... changed: every text is built again. */
static void
catalog_changed(Datum argument, int cache_id, uint32 hash_value)
{
	int			i;

	for (i = 0; i < MATVIEW_SQL_CACHE_SIZE; i++)
	{
		forget_text(&kept_texts[i]);
		forget_analysis(&kept_analyses[i]);
	}
}

/* A role or a membership changed: every query is analysed again. */
static void
role_changed(Datum argument, int cache_id, uint32 hash_value)
{
	int			i;

	for (i = 0; i < MATVIEW_SQL_CACHE_SIZE; i++)
		forget_analysis(&kept_analyses[i]);
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
	CacheRegisterSyscacheCallback(AUTHOID, role_changed, (Datum) 0);
	CacheRegisterSyscacheCallback(AUTHMEMROLEMEM, role_changed, (Datum) 0);
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

/*
 * The update's own copy of a kept analysis: the structure and its sources,
 * whose fields an update sets (where each delta is read, its range); the
 * rest (the query, its columns, joins and groups) is only read.
 */
static void
copy_for_update(const MatviewAnalysis *kept, MatviewAnalysis *analysis)
{
	ListCell   *cell;

	*analysis = *kept;
	analysis->sources = NIL;
	foreach(cell, kept->sources)
	{
		MatviewSource *source = palloc(sizeof(MatviewSource));

		memcpy(source, lfirst(cell), sizeof(MatviewSource));
		analysis->sources = lappend(analysis->sources, source);
	}
}

static KeptAnalysis *
find_analysis(const char *key)
{
	int			i;

	for (i = 0; i < MATVIEW_SQL_CACHE_SIZE; i++)
		if (kept_analyses[i].key != NULL && strcmp(kept_analyses[i].key, key) == 0)
			return &kept_analyses[i];
	return NULL;
}

/* MatviewAnalysisCacheTake: see matview_internal.h. */
bool
MatviewAnalysisCacheTake(const char *key, MatviewAnalysis *analysis)
{
	KeptAnalysis *entry;
	int			i;

	if (!StatementCacheEnabled())
		return false;
	register_callbacks();
	takes++;
	entry = find_analysis(key);
	if (entry == NULL || entry->taken)
		return false;

	/*
	 * Lock the sources as analysing the query would: a change to one
	 * committed since this transaction began is seen now, and drops the
	 * analysis (the update then analyses the query again, after checking
	 * its columns); none can change after that until the update ends.
	 */
	for (i = 0; i < entry->nrelids; i++)
		LockRelationOid(entry->relids[i], AccessShareLock);
	entry = find_analysis(key);
	if (entry == NULL)
		return false;
	entry->last_use = takes;
	entry->taken = true;
	entry->stale = false;
	MemoryContextSetParent(entry->context, CurrentMemoryContext);
	copy_for_update(&entry->analysis, analysis);
	return true;
}

/*
 * A place for a new analysis: a free one, else the least recently used
 * one no update is using; NULL when every one is in use.
 */
static KeptAnalysis *
free_analysis_place(void)
{
	KeptAnalysis *entry = NULL;
	int			i;

	for (i = 0; i < MATVIEW_SQL_CACHE_SIZE; i++)
	{
		KeptAnalysis *candidate = &kept_analyses[i];

		if (candidate->key == NULL)
			return candidate;
		if (!candidate->taken &&
			(entry == NULL || candidate->last_use < entry->last_use))
			entry = candidate;
	}
	if (entry != NULL)
		forget_analysis(entry);
	return entry;
}

/* MatviewAnalysisCacheMake: see matview_internal.h. */
void
MatviewAnalysisCacheMake(const char *key, const PipelineDesc *pipeline,
						 const char *query_text, MatviewAnalysis *analysis)
{
	MemoryContext context;
	MemoryContext caller_context;
	MemoryContextCallback *freed;
	KeptAnalysis *entry;
	MatviewAnalysis kept;
	ListCell   *cell;

	if (!StatementCacheEnabled())
	{
		MatviewAnalyze(pipeline, query_text, true, analysis);
		return;
	}
	register_callbacks();
	context = AllocSetContextCreate(CurrentMemoryContext,
									"medallion kept analysis",
									ALLOCSET_SMALL_SIZES);
	caller_context = MemoryContextSwitchTo(context);
	MatviewAnalyze(pipeline, query_text, true, &kept);
	MemoryContextSwitchTo(caller_context);
	copy_for_update(&kept, analysis);

	entry = find_analysis(key);
	if (entry != NULL && entry->taken)
		return;					/* another one is in use: not kept */
	if (entry != NULL)
		forget_analysis(entry);
	else
		entry = free_analysis_place();
	if (entry == NULL)
		return;
	entry->key = MemoryContextStrdup(TopMemoryContext, key);
	entry->relids = MemoryContextAlloc(TopMemoryContext,
									   sizeof(Oid) * Max(list_length(kept.sources), 1));
	entry->nrelids = 0;
	foreach(cell, kept.sources)
		entry->relids[entry->nrelids++] = ((MatviewSource *) lfirst(cell))->relid;
	entry->analysis = kept;
	entry->context = context;
	entry->taken = true;
	entry->stale = false;
	entry->last_use = takes;
	freed = MemoryContextAlloc(context, sizeof(MemoryContextCallback));
	freed->func = analysis_context_freed;
	freed->arg = context;
	MemoryContextRegisterResetCallback(context, freed);
}

/* MatviewAnalysisCacheGiveBack: see matview_internal.h. */
void
MatviewAnalysisCacheGiveBack(const char *key)
{
	KeptAnalysis *entry;

	if (!StatementCacheEnabled())
		return;
	entry = find_analysis(key);
	if (entry == NULL || !entry->taken)
		return;
	if (entry->stale)
	{
		/* its memory goes with the update's */
		free_analysis_entry(entry);
		return;
	}
	MemoryContextSetParent(entry->context, TopMemoryContext);
	entry->taken = false;
}
