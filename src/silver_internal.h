/*-------------------------------------------------------------------------
 *
 * silver_internal.h
 *	  What the files of the silver family share: the names medallion adds
 *	  to a silver flow's tables, and finding and splicing the source
 *	  reference of a flow's query (silver_query.c).  Not for other modules.
 *
 * The includes go one way: silver_create.c (create_silver) and silver.c
 * (applying a batch) both use silver_query.c, which uses neither; the
 * append flows (append_flow.c) use silver_create.c to check their query
 * and silver.c to apply it, with the target's expectations and dedup.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/silver_internal.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef MEDALLION_SILVER_INTERNAL_H
#define MEDALLION_SILVER_INTERNAL_H

#include "postgres.h"

#include "access/tupdesc.h"
#include "catalog.h"
#include "flow.h"
#include "nodes/params.h"
#include "nodes/parsenodes.h"
#include "nodes/pg_list.h"

/* Names of columns medallion adds; a query may not produce them. */
#define SILVER_ROW_ID_COLUMN		"_row_id"
#define SILVER_VIOLATED_COLUMN		"_violated_expectations"
#define SILVER_QUARANTINE_SUFFIX	"_quarantine"

/* What a walk over the raw parse tree of a query collects. */
typedef struct SilverRefWalk
{
	List	   *range_vars;		/* every RangeVar */
	List	   *sampled;		/* RangeVars under TABLESAMPLE */
	List	   *cte_names;		/* every CTE name */
} SilverRefWalk;

/*
 * Parse a silver query: it must be exactly one SELECT without INTO, FOR
 * UPDATE, data-modifying statements or parameters (UserSqlQuery).  Returns
 * the statement; fills walk.
 */
extern RawStmt *SilverParseQuery(const char *query, SilverRefWalk *walk);

/*
 * The references of a query to relid.  A reference whose name is also the
 * name of a CTE is ambiguous to us (we do not model CTE scopes), so it is
 * refused rather than guessed.
 */
extern List *SilverRefsTo(SilverRefWalk *walk, Oid relid);

/*
 * Choose the source of a new flow among the tables a query reads: a table
 * of the pipeline (the target or the source of one of its flows); or, when
 * the query reads none, a table with a "_row_id bigint" identity column (a
 * table filled by other means, read the same way).  Exactly one such table,
 * read exactly once; other tables are static lookups.
 */
extern Oid	SilverChooseSource(SilverRefWalk *walk, PipelineDesc *pipeline,
							   List *pipeline_tables);

/*
 * The statement stmt of query with the text of the table reference rv
 * replaced by a subquery that reads only the source rows with
 * $1 < _row_id <= $2, in _row_id order (see silver.c's file header).
 */
extern char *SilverSplice(const char *query, RawStmt *stmt, RangeVar *rv,
						  const char *source_name);

/* The parameters $1 and $2 (bigint) of a spliced query: the row range. */
extern ParamListInfo SilverRowRangeParams(int64 low, int64 high);

/*
 * silver_columns.c: the comment of each column of a new flow's target, from
 * the expression of its query that gives it: sql is the text that was
 * analyzed into wrapper (the spliced query wrapped as "SELECT * FROM (...)
 * AS target"), desc the columns.  NULL when the query's items cannot be
 * matched to the columns.
 */
extern char **SilverColumnComments(const char *sql, Query *wrapper,
								   TupleDesc desc);

/*
 * Comment the columns of a silver target or quarantine table: _row_id,
 * the query's columns (comments from SilverColumnComments, may be NULL),
 * and for a quarantine table _violated_expectations.
 */
extern void SilverCommentColumns(const char *table, TupleDesc desc,
								 char **comments, bool quarantine);

/* The name of the quarantine table of a target, in the target's schema. */
extern char *SilverQuarantineName(const char *target_name);

/* silver_create.c */

/* What checking a new flow's query found. */
typedef struct SilverQueryCheck
{
	Oid			source;
	char	   *source_name;	/* qualified and quoted */
	TupleDesc	desc;			/* the query's output columns */
	char	  **column_comments;	/* SilverColumnComments */
} SilverQueryCheck;

/*
 * Check a new flow's query as the caller, the way it will run (the
 * pipeline's search_path): one source among the pipeline's tables, read
 * once, not sampled, row by row.  flow_label names the flow in the error
 * context ("silver flow \"x\""); alias is the name the query's rows take.
 */
extern void SilverCheckQuery(PipelineDesc *pipeline, const char *flow_label,
							 const char *alias, const char *query,
							 SilverQueryCheck *check);

/* silver.c */

/*
 * Apply the source rows low < _row_id <= high of a flow that writes to a
 * silver or bronze target with its own query (an append flow): the query's
 * columns are the target's, in order; the target's silver flow, when it
 * has one, gives the dedup keys, quarantine and expectations.  In the
 * current transaction, in the owner's context (FlowApplyIncremental).
 */
extern void SilverApplyInto(FlowDesc *flow, const char *query, int64 low,
							int64 high, FlowResult *result);

#endif							/* MEDALLION_SILVER_INTERNAL_H */
