/*-------------------------------------------------------------------------
 *
 * matview_internal.h
 *	  What the files of the materialized view family share:
 *
 *	  matview_create.c   medallion.create_materialized_view()
 *	  matview_analyze.c  what a query reads and whether it can be kept by
 *	                     deltas (else the reason, with its position)
 *	  matview_delta.c    the SQL of signed deltas and of bounded states,
 *	                     made by rewriting the analysed query tree
 *	  matview_outer.c    left outer joins: their analysis; the delta terms
 *	                     of any view (MatviewDeltaTermsSql)
 *	  matview_apply.c    an update of the flow: full recompute or deltas
 *	  matview_groups.c   grouped views kept by running values (count, sum,
 *	                     avg per group in a state table)
 *	  matview_indexes.c  the indexes deltas need: join keys, change feeds'
 *	                     _row_id, the target's row hash
 *	  matview_eager.c    eager aggregation of a grouped view's delta term
 *
 * A view's query reads "sources": tables of its pipeline and plain tables.
 * Each source is a signed delta source: append_only (bronze and silver
 * targets: new rows by _row_id, sign +1), change_feed (auto CDC targets:
 * the target's change feed, signs -1 and +1) or plain (a table of the
 * database: its captured changes, see MatviewPlainSourceDelta).
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/matview_internal.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef MEDALLION_MATVIEW_INTERNAL_H
#define MEDALLION_MATVIEW_INTERNAL_H

#include "postgres.h"

#include "lib/stringinfo.h"
#include "nodes/parsenodes.h"

#include "catalog.h"
#include "flow.h"
#include "statement_cache.h"

/* The flow's "refresh_policy". */
#define MATVIEW_POLICY_AUTO			"auto"
#define MATVIEW_POLICY_INCREMENTAL	"incremental"
#define MATVIEW_POLICY_STRICT		"incremental_strict"
#define MATVIEW_POLICY_FULL			"full"

/* The flow's "maintenance". */
#define MATVIEW_MAINTENANCE_INCREMENTAL	"incremental"
#define MATVIEW_MAINTENANCE_FULL		"full"

/*
 * Most table references a view maintained by deltas may have (with left
 * joins, 2^n terms per choice of modes, matview_outer.c).
 */
#define MATVIEW_MAX_REFERENCES	6

typedef enum MatviewSourceKind
{
	MATVIEW_SOURCE_APPEND_ONLY,
	MATVIEW_SOURCE_CHANGE_FEED,
	MATVIEW_SOURCE_PLAIN
} MatviewSourceKind;

/* One table a view reads (once however often the query names it). */
typedef struct MatviewSource
{
	Oid			relid;
	char	   *name;			/* qualified, quoted */
	MatviewSourceKind kind;
	FlowDesc   *cdc_flow;		/* change_feed: the flow writing the feed */
	Oid			feed_relid;		/* change_feed: the feed, once it exists */
	char	   *feed_name;
	char	   *reason;			/* why its changes cannot be read, or NULL */

	/*
	 * During an apply: where the delta is read, a relation with the
	 * source's columns (by name), an id column and, unless every row is an
	 * insertion, a sign column (-1 removed, 1 added, 0 reset marker).
	 */
	char	   *delta_relation; /* what positions count (table, feed, log) */
	Oid			delta_relid;
	const char *delta_id_column;
	const char *delta_sign_column;	/* NULL: append-only */
	int64		position;		/* consumed so far */
	int64		ceiling;		/* safe to consume now */
	bool		has_position;
	int			first_parameter;	/* 0: the delta's SQL names position
									 * and ceiling as numbers; else as
									 * parameters $n and $n+1
									 * (MatviewParameterizeRanges) */
} MatviewSource;

/* What analysing a view's query found. */
typedef struct MatviewAnalysis
{
	Query	   *query;			/* analysed and rewritten */
	List	   *sources;		/* MatviewSource * */
	int		   *rte_source;		/* per range table index (1-based): source
								 * index, or -1 */
	int			nreferences;	/* range table entries reading a source */
	int			ncolumns;		/* output columns */
	char	  **column_names;
	bool		incremental;	/* can be kept by deltas */
	char	   *reason;			/* why not, else NULL */
	bool		grouped;		/* GROUP BY: touched groups recomputed */
	int		   *group_columns;	/* grouped: output column of each key */
	int			ngroup_columns;
	List	   *outer_joins;	/* left outer joins kept by deltas
								 * (matview_outer.c) */

	/*
	 * Grouped and kept by running values (matview_groups.c), else NULL;
	 * then each term gives, after the group keys, the aggregates' arguments
	 * (running_args, Exprs of the query).
	 */
	struct MatviewRunning *running;
	List	   *running_args;

	/* The sources' positions and ceilings as parameters of the delta */
	int			nparameters;
	Datum	   *parameter_values;	/* int8 */
	StatementUse statement_use; /* how the delta's statement ran */
} MatviewAnalysis;

/* matview_analyze.c */
extern void MatviewAnalyze(const PipelineDesc *pipeline, const char *query_text,
						   bool validated, MatviewAnalysis *analysis);
extern const char *MatviewSourceKindName(MatviewSourceKind kind);

/*
 * Can the changes of a plain table be read as a signed delta?  When its
 * changes can be captured (capture.h) for the pipeline's owner; else
 * *reason says why (see matview_analyze.c).
 */
extern bool MatviewPlainSourceDelta(const PipelineDesc *pipeline,
									MatviewSource *source, char **reason);

/*
 * The columns the query uses of each source, as a JSON object whose keys
 * are the sources' names and values arrays of {"attnum", "name", "type",
 * "typmod"} ("type" schema-qualified, without typmod), recorded in
 * the flow's state ("source_columns") so that an update detects a column
 * dropped, renamed or retyped since (matview_apply.c).
 */
extern char *MatviewSourceColumnsJson(MatviewAnalysis *analysis);

/* matview_create.c: does the view's table have the query's columns? */
extern bool MatviewTargetMatches(MatviewAnalysis *analysis, Oid relid);

/* matview_delta.c */
extern char *MatviewBoundedQuerySql(MatviewAnalysis *analysis);
extern char *MatviewInnerDeltaTermsSql(MatviewAnalysis *analysis,
									   bool group_keys,
									   StringInfo eager_terms, int *neager);
extern char *MatviewTouchedGroupsQuerySql(MatviewAnalysis *analysis,
										  const char *groups_name);
extern char *MatviewSignProductSql(int sign, int nsigns);
extern void MatviewAppendDeltaTerm(StringInfo sql, MatviewAnalysis *analysis,
								   Query *term, List *sign_vars, int sign,
								   bool group_keys);
extern Query *MatviewSourceSubquery(MatviewSource *source, bool delta,
									int *natts);
extern void MatviewReplaceReference(Query *query, int rtindex,
									Query *subquery);
extern Query *MatviewAnalyzeInternal(const char *sql);

/* The rows of a source's delta in this update: (position, ceiling]. */
extern int64 MatviewDeltaRows(const MatviewSource *source);

/*
 * From now on, the delta's SQL names each source's position and ceiling as
 * parameters (int8) instead of numbers, so that its text is the same at
 * every update of the same shape and a long-lived worker keeps it parsed
 * (statement_cache.c); MatviewRunDelta passes their values.
 */
extern void MatviewParameterizeRanges(MatviewAnalysis *analysis);

/*
 * Run a delta statement returning the target rows deleted and inserted;
 * count them as written.
 */
extern void MatviewRunDelta(MatviewAnalysis *analysis, const char *sql,
							FlowResult *result);

/*
 * Append to a GROUP BY list (comma-separated) a value (SQL text) and, when
 * equal values of its type may look different (numeric 1.0 and 1.00, float
 * 0 and -0, 'a' and 'A' in a case-insensitive collation), beside it an
 * expression that tells them apart: rows grouped so are equal as shown.
 */
extern void MatviewAppendGroupColumn(StringInfo list, const char *value,
									 Oid type, int32 typmod, Oid collation);
extern char *MatviewNullColumns(Oid relid, int *natts);

/* matview_outer.c */
extern char *MatviewOuterJoinReason(Query *query, JoinExpr *join,
									const char *where,
									MatviewAnalysis *analysis);
extern char *MatviewOuterTermsReason(MatviewAnalysis *analysis);
extern char *MatviewDeltaTermsSql(MatviewAnalysis *analysis, bool group_keys);
extern char *MatviewStateTermSql(MatviewAnalysis *analysis);

/* matview_groups.c */
typedef struct MatviewRunning MatviewRunning;

/* Can the grouped view be kept by running values?  Sets analysis->running. */
extern void MatviewRunningAnalyze(MatviewAnalysis *analysis);

/*
 * The view's state table (qualified, quoted); when it has none, made (owned
 * by owner) and recorded if create, else NULL.
 */
extern char *MatviewRunningStateTable(FlowDesc *flow, MatviewAnalysis *analysis,
									  Oid owner, bool create);

/*
 * Fill the state from the sources' bounded states, and the target, which
 * the caller has emptied, from it.
 */
extern void MatviewRunningRecompute(MatviewAnalysis *analysis, const char *target,
									const char *target_columns,
									const char *state_table, FlowResult *result);

/*
 * One row of the state's values (n_rows, count_1, sum_1, [nan_1, pinf_1,
 * ninf_1], ...) over rows, a FROM item whose columns a1..am are the
 * aggregates' arguments, as
 *	 SELECT values FROM (SELECT *, finite flags FROM rows OFFSET 0) y HAVING
 * (no row for no rows); for a view without count(DISTINCT).
 */
extern char *MatviewRunningPartialSql(MatviewAnalysis *analysis,
									  const char *rows);

/*
 * The delta statement that applies the delta terms to the state and the
 * touched groups' rows; *eager_term_count says how many terms were
 * aggregated eagerly (matview_eager.c).
 */
extern char *MatviewRunningDeltaSql(MatviewAnalysis *analysis,
									const char *target,
									const char *target_columns,
									const char *state_table,
									int *eager_term_count);

/* The value tables of its count(DISTINCT)s (qualified names), or NIL. */
extern List *MatviewRunningValueTables(MatviewAnalysis *analysis);

/* Run that statement, then drop the groups it emptied from the state. */
extern void MatviewRunningApply(MatviewAnalysis *analysis, const char *sql,
								const char *state_table, FlowResult *result);

/*
 * matview_sql_cache.c: in a backend that keeps statements (statement_cache.h),
 * the text of a delta statement built before under key, with its count of
 * eagerly aggregated terms, as a copy, taken out of the cache until
 * MatviewSqlCacheGiveBack gives it back; NULL when there is none (also in
 * any other backend).
 */
extern char *MatviewSqlCacheTake(const char *key, int *eager_term_count);

/*
 * After a miss of MatviewSqlCacheTake: hold a place for the text the
 * update builds for key, watched from now on for changes to a relation of
 * relids (Oids: the ones it is built from) or to a function, operator, ...
 */
extern void MatviewSqlCacheReserve(const char *key, List *relids);

/* Once the update's statement ran: the text taken for key is kept again. */
extern void MatviewSqlCacheGiveBack(const char *key, const char *sql,
									int eager_term_count);

/*
 * matview_sql_cache.c: in a backend that keeps statements, the analysis of
 * a view's query made before under key (view, owner, search_path, query,
 * target), as the update's own copy, taken until
 * MatviewAnalysisCacheGiveBack; false when there is none (also in any
 * other backend).
 */
extern bool MatviewAnalysisCacheTake(const char *key, MatviewAnalysis *analysis);

/*
 * After a miss: analyse the query (MatviewAnalyze, validated) into
 * analysis, and in a backend that keeps statements, keep it under key,
 * taken by this update, watched for changes to its sources.
 */
extern void MatviewAnalysisCacheMake(const char *key, const PipelineDesc *pipeline,
									 const char *query_text,
									 MatviewAnalysis *analysis);

/* Once the update succeeded: the analysis taken for key is kept again. */
extern void MatviewAnalysisCacheGiveBack(const char *key);

/*
 * matview_eager.c: a delta term (query_for_term's, with the Vars of its
 * signed references' signs) of a grouped view kept by running values
 * without count(DISTINCT), aggregated eagerly: rows (c1..ck group keys,
 * then the state's values as MatviewRunningPartialSql names them, weighted
 * by the signs), or NULL when the term does not lend itself to it.
 */
extern char *MatviewEagerTermSql(MatviewAnalysis *analysis, Query *term,
								 List *sign_vars);

/* matview_indexes.c */

/* Does a btree or hash index without a predicate lead with attnum? */
extern bool MatviewIndexLeadsWith(Oid relid, AttrNumber attnum);

/* Does a unique index without a predicate hold attnum alone? */
extern bool MatviewKeyIsUnique(Oid relid, AttrNumber attnum);

/*
 * Index each join key column of a pipeline table the owner owns that no
 * index starts with (the index depends on the view's target).
 */
extern void MatviewEnsureJoinIndexes(MatviewAnalysis *analysis, Oid owner,
									 Oid target_relid);

/* Index the _row_id of the change feeds the view reads, if not yet. */
extern void MatviewEnsureFeedIndexes(MatviewAnalysis *analysis);

/* pg_catalog.hash_record(ROW(the view's columns)), qualified or not. */
extern char *MatviewRowHashSql(MatviewAnalysis *analysis, const char *qualifier);

/*
 * Give the target an index on the hash of its rows, if it has none and
 * every column type can be hashed; whether it has one.
 */
extern bool MatviewEnsureRowHashIndex(MatviewAnalysis *analysis, Oid target_relid);

/* Drop the target's row hash index, if any (before a recompute). */
extern void MatviewDropRowHashIndex(Oid target_relid);

#endif							/* MEDALLION_MATVIEW_INTERNAL_H */
