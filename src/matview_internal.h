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
 *	  matview_apply.c    an update of the flow: full recompute or deltas
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

#include "nodes/parsenodes.h"

#include "catalog.h"
#include "flow.h"

/* The flow's "refresh_policy". */
#define MATVIEW_POLICY_AUTO			"auto"
#define MATVIEW_POLICY_INCREMENTAL	"incremental"
#define MATVIEW_POLICY_STRICT		"incremental_strict"
#define MATVIEW_POLICY_FULL			"full"

/* The flow's "maintenance". */
#define MATVIEW_MAINTENANCE_INCREMENTAL	"incremental"
#define MATVIEW_MAINTENANCE_FULL		"full"

/* Most table references a view maintained by deltas may have (2^n terms). */
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
	const char *delta_id_column;
	const char *delta_sign_column;	/* NULL: append-only */
	int64		position;		/* consumed so far */
	int64		ceiling;		/* safe to consume now */
	bool		has_position;
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
} MatviewAnalysis;

/* matview_analyze.c */
extern void MatviewAnalyze(const PipelineDesc *pipeline, const char *query_text,
						   MatviewAnalysis *analysis);
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
extern char *MatviewDeltaTermsSql(MatviewAnalysis *analysis, bool group_keys);
extern char *MatviewTouchedGroupsQuerySql(MatviewAnalysis *analysis,
										  const char *groups_name);

#endif							/* MEDALLION_MATVIEW_INTERNAL_H */
