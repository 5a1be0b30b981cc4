/*-------------------------------------------------------------------------
 *
 * aggregates_internal.h
 *	  What the files of the aggregate family share: the spec of a flow read
 *	  from its definition, and the statement text built over it.
 *
 * The family: aggregates.c applies a flow and captures the changes of an
 * aggregate source; aggregate_recompute.c rewrites groups (recomputed from
 * the source, or from the per-group state of delta maintenance);
 * aggregate_spec.c reads a flow's definition into an AggSpec and builds
 * the statement text every other file uses; aggregate_create.c makes a
 * flow; aggregate_delta.c plans and writes delta maintenance;
 * aggregate_matview.c attaches materialized views.  Only aggregates.h is
 * seen outside the family.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/aggregates_internal.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef MEDALLION_AGGREGATES_INTERNAL_H
#define MEDALLION_AGGREGATES_INTERNAL_H

#include "postgres.h"

#include "executor/spi.h"

#include "aggregate_delta.h"
#include "aggregates.h"
#include "catalog.h"

/* Names medallion uses in the statements it builds; users may not. */
#define AGG_RESERVED_PREFIX		"__medallion"

/* Suffixes of the state tables, in medallion_state (state_table.h). */
#define AGG_CHANGES_SUFFIX		"__changes"
#define AGG_GROUPS_SUFFIX		"__groups"
#define AGG_VALUES_SUFFIX		"__values"

/* Transition tables of the capture triggers. */
#define AGG_OLD_TABLE			"__medallion_old"
#define AGG_NEW_TABLE			"__medallion_new"

/*
 * A full recompute is chosen when the changes reach 1/AGG_FULL_SHARE of
 * what they are compared with (see the file header).
 */
#define AGG_FULL_SHARE			5

/* Most group_by items (the target's unique index has this many columns). */
#define AGG_MAX_GROUPS			INDEX_MAX_KEYS

typedef enum AggSourceKind
{
	AGG_SOURCE_APPEND,			/* rows only inserted, read by _row_id */
	AGG_SOURCE_CDC,				/* target of an AUTO CDC flow */
	AGG_SOURCE_AGGREGATE		/* target of another aggregate flow */
} AggSourceKind;

/* One group_by or aggregates item. */
typedef struct AggItem
{
	char	   *expr;			/* the expression alone, as written */
	char	   *sql;			/* the same, placed (user_sql.h) */
	char	   *name;			/* the target column */
} AggItem;

/* What an apply (or the capture trigger) needs to know about a flow. */
typedef struct AggSpec
{
	char	   *flow_name;
	Oid			source_relid;
	char	   *source_name;	/* schema-qualified, quoted */
	char	   *source_ref;		/* quoted table name: how user SQL names it */
	Oid			target_relid;
	char	   *target_name;
	int			ngroups;
	AggItem    *groups;
	int			naggs;
	AggItem    *aggs;
	char	   *filter;			/* NULL when none */
	char	   *filter_sql;		/* the same, placed (user_sql.h) */
	AggSourceKind kind;
	char	   *state_table;	/* members or changes table, or NULL */
	AggregateDelta *delta;		/* NULL: touched groups are recomputed */
	char	   *groups_table;	/* per-group state of delta maintenance */
	char	   *feed_table;		/* change feed of an auto_cdc source */
	char	  **values_tables;		/* per item: its values table, or NULL */
	Oid			feed_relid;

	/* group columns of the target (filled at apply) */
	Oid		   *group_types;
	char	  **group_eq;		/* "OPERATOR(schema.=)" */
	char	  **group_collate;	/* " COLLATE ..." or "" */
} AggSpec;

/* What the flow keeps in flow_state between updates. */
typedef struct AggProgress
{
	bool		valid;			/* false: no previous state */
	int64		groups;			/* rows of the target */
	int64		rows;			/* source rows passing the filter (auto_cdc
								 * sources and delta maintenance) */
} AggProgress;

/* Counters of one apply. */
typedef struct AggRun
{
	int64		groups_recomputed;
	int64		groups_deleted;
	int64		groups_inserted;
	int64		source_rows;	/* source rows aggregated */
	bool		changed;		/* did the target's rows change? */
} AggRun;

/* aggregate_spec.c: the spec, from a flow's definition */
extern AggSpec *AggSpecLoad(FlowDesc *flow, bool resolve_target);
extern const char *AggSourceKindName(AggSourceKind kind);
extern bool AggIsReserved(const char *name);
extern char *AggEqOperatorSql(Oid type);

/* aggregate_spec.c: statement text over a spec */
extern char *AggPositions(int n);
extern char *AggWhereSql(AggSpec *spec);
extern char *AggSelectListSql(AggSpec *spec);
extern char *AggGroupExprsSql(AggSpec *spec);
extern char *AggTargetColumnsSql(AggSpec *spec, const char *qualifier);
extern char *AggStateGroupColumnsSql(int ngroups, const char *qualifier);
extern char *AggDeltaArgumentListSql(AggSpec *spec);

/* aggregate_recompute.c: writing groups */
extern void AggRecomputeFull(AggSpec *spec, AggProgress *state, AggRun *run);
extern void AggRecomputeGroups(AggSpec *spec, SPITupleTable *touched,
							   uint64 ntouched, AggProgress *state,
							   AggRun *run);
extern uint64 AggDeltaChanges(AggSpec *spec, int64 low, int64 high,
							  int64 *rows, int64 *net_rows);
extern void AggDeltaForgetValues(AggSpec *spec);

#endif							/* MEDALLION_AGGREGATES_INTERNAL_H */
