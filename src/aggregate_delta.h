/*-------------------------------------------------------------------------
 *
 * aggregate_delta.h
 *	  Aggregates an aggregate flow can maintain by deltas: which they are,
 *	  the per-group state they keep, and the SQL that adds changes to it and
 *	  turns it into the aggregate's value.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/aggregate_delta.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef MEDALLION_AGGREGATE_DELTA_H
#define MEDALLION_AGGREGATE_DELTA_H

#include "postgres.h"

#include "lib/stringinfo.h"
#include "nodes/parsenodes.h"

#include "flow_definition.h"

/* How an aggregates item is kept; see aggregate_delta.c. */
typedef enum AggregateDeltaKind
{
	AGG_DELTA_COUNT_STAR,		/* count(*) */
	AGG_DELTA_COUNT,			/* count(x) */
	AGG_DELTA_SUM_INT,			/* sum(int2 or int4): bigint */
	AGG_DELTA_SUM_INT8,			/* sum(int8): numeric */
	AGG_DELTA_SUM_NUMERIC,		/* sum(numeric): numeric, NaN and infinities */
	AGG_DELTA_AVG_INT,			/* avg(int2 or int4) */
	AGG_DELTA_AVG_INT8,			/* avg(int8) */
	AGG_DELTA_AVG_NUMERIC,		/* avg(numeric) */
	AGG_DELTA_COUNT_DISTINCT,	/* count(DISTINCT x): values counted apart */
	AGG_DELTA_MIN,				/* min(x), over rows only ever inserted */
	AGG_DELTA_MAX,				/* max(x), likewise */
	AGG_DELTA_MIN_VALUES,		/* min(x) from the values table */
	AGG_DELTA_MAX_VALUES		/* max(x) from the values table */
} AggregateDeltaKind;

typedef struct AggregateDeltaItem
{
	AggregateDeltaKind kind;
	int			argument;		/* index into arguments; -1 for count(*) */
	/* count(DISTINCT x), min, max: x's type; set by AggregateDeltaAnalyze */
	Oid			value_type;
	int32		value_typmod;
	Oid			value_collation;
} AggregateDeltaItem;

/*
 * The delta plan of a flow: one entry per aggregates item, and the
 * distinct argument expressions they read (SQL over the source).
 */
typedef struct AggregateDelta
{
	int			nitems;
	AggregateDeltaItem *items;
	int			narguments;
	char	  **arguments;
	char	  **argument_sql;	/* the same, placed (user_sql.h) */
} AggregateDelta;

/*
 * The delta plan of an analysed aggregate query (group columns first), or
 * NULL with *reason saying why its items must be recomputed instead.
 * key_attnum is the source column of a single-column auto CDC key, or
 * InvalidAttrNumber; key_rows_unique says that the filter leaves at most
 * one row per key; rows_only_added that the source's rows are only ever
 * inserted (min and max can then be kept).
 */
extern AggregateDelta *AggregateDeltaAnalyze(Query *query, int ngroups,
											 Oid source_relid,
											 AttrNumber key_attnum,
											 bool key_rows_unique,
											 bool rows_only_added,
											 char **reason);

/*
 * Definition: members "delta_kinds" and "delta_arguments", the kind names
 * and argument texts, one per item.  Reading them back checks the argument
 * texts again, like every stored expression (the caller has set
 * standard_conforming_strings); a plan that is not what medallion wrote
 * raises FlowDefinitionCorrupted.
 */
extern void AggregateDeltaPutDefinition(FlowDefinitionBuilder *builder,
										AggregateDelta *delta);
extern AggregateDelta *AggregateDeltaFromDefinition(const FlowDesc *flow);

/* The state columns of the groups table, after its group columns. */
extern void AggregateDeltaAppendStateColumnDefs(StringInfo sql,
												AggregateDelta *delta);
extern char *AggregateDeltaStateColumns(AggregateDelta *delta,
										const char *qualifier);

/*
 * Per-group state deltas over change rows (alias c: argument_<n>,
 * __medallion_sign), and per-group state over the source's rows (alias c:
 * argument_<n>, each row counting once); both in the order of
 * AggregateDeltaStateColumns.
 */
extern char *AggregateDeltaChangeSums(AggregateDelta *delta);
extern char *AggregateDeltaSourceSums(AggregateDelta *delta);

/*
 * Values: per count(DISTINCT x) item, and min(x) or max(x) item over a
 * source whose rows also go, a table of (group, value, refs, last_delta),
 * refs being the number of rows with the value.  The per-group change of
 * the number of values, from the rows an upsert of the values' changes
 * returns (alias), is 1 for a value that appeared, -1 for one that went;
 * and a delta row of the groups table carrying only it.  A min or max is
 * then the least or greatest value with refs > 0 (AggregateDeltaFinalValue
 * returns NULL for them: the caller reads the values table).
 */
extern bool AggregateDeltaNeedsValues(AggregateDelta *delta, int item);
extern void AggregateDeltaAppendDistinctColumnDefs(StringInfo sql,
												   AggregateDelta *delta,
												   int item);
extern char *AggregateDeltaDistinctChange(const char *alias);
extern char *AggregateDeltaDistinctSums(AggregateDelta *delta, int item,
										const char *change);

/* "sum(x.col)::type AS col, ...": adds up delta rows of the same group. */
extern char *AggregateDeltaResum(AggregateDelta *delta, const char *alias);

/* "col = s.col + excluded.col, ...", for ON CONFLICT DO UPDATE. */
extern char *AggregateDeltaUpsertSet(AggregateDelta *delta,
									 const char *alias);

/* "(d.rows <> 0 OR ...)": does a group's delta change its state? */
extern char *AggregateDeltaChangesState(AggregateDelta *delta,
										const char *alias);

/* The aggregate values from a groups table row (alias), one per item. */
extern char *AggregateDeltaFinalValue(AggregateDelta *delta, int item,
									  const char *alias);

#endif							/* MEDALLION_AGGREGATE_DELTA_H */
