/*-------------------------------------------------------------------------
 *
 * cdc_internal.h
 *	  What the files of the auto CDC family share: a flow's spec, the shape
 *	  of the events query, and the runner that walks it.
 *
 * The family (cdc.h is its public side):
 *	  cdc_spec.c	a flow's spec: its definition, its expressions analysed
 *	  cdc_sql.c		the text of the statements CDC generates
 *	  cdc_create.c	create_auto_cdc_flow(), and the arguments, target and
 *					view it shares with create_auto_cdc_from_snapshot_flow()
 *	  cdc_runner.c	the walk over the sorted events, key by key
 *	  cdc.c			the apply: CdcApply, auto_cdc_apply(), flow_state
 *	  cdc_snapshot_create.c, cdc_snapshot_apply.c: AUTO CDC FROM SNAPSHOT,
 *					whose applies turn the diff of two snapshots into
 *					events for the same runner and writes (cdc_snapshot.h)
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/cdc_internal.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef MEDALLION_CDC_INTERNAL_H
#define MEDALLION_CDC_INTERNAL_H

#include "postgres.h"

#include "access/tupdesc.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "nodes/params.h"
#include "nodes/pg_list.h"
#include "storage/itemptr.h"
#include "tcop/dest.h"
#include "utils/relcache.h"
#include "utils/tuplestore.h"

#include "cdc.h"
#include "change_feed.h"
#include "flow_create.h"
#include "flow_definition.h"

/*
 * The sequence of a snapshot flow without snapshot_version: each update's
 * start time, given as a parameter; over the source, a NULL of its type.
 */
#define CDC_SNAPSHOT_TIME_SQL "NULL::pg_catalog.timestamptz"

/* The suffix of the view of current rows beside the target. */
#define CDC_VIEW_SUFFIX "_current"

/* What an apply needs to know about a flow (from its definition). */
typedef struct CdcSpec
{
	char	   *flow_name;
	Oid			source_relid;
	char	   *source_name;	/* schema-qualified and quoted */
	Oid			target_relid;
	char	   *target_name;	/* schema-qualified and quoted */
	int			scd_type;		/* 1 or 2 */
	List	   *keys;			/* char *: key column names */
	List	   *columns;		/* char *: kept non-key column names */
	bool	   *tracked;		/* per column: opens a new version (SCD2) */
	char	   *sequence_by;	/* as the user wrote it; NULL: a snapshot
								 * flow versioned by update time */
	const char *seq_argname;	/* "sequence_by" or "snapshot_version" */
	char	   *deletes;		/* apply_as_deletes, or NULL */
	char	   *truncates;		/* apply_as_truncates, or NULL */
	char	   *seq_sql;		/* the same, placed (user_sql.h) */
	char	   *deletes_sql;
	char	   *truncates_sql;
	bool		ignore_null_updates;
	Oid			seq_type;		/* type of sequence_by */
	int32		seq_typmod;
	Oid			seq_basetype;	/* seq_type without domains */
	Oid			seq_collation;
	bool		seq_storable;	/* can flow_state keep sequence values? */
	bool		seq_has_min;	/* is there a min() aggregate for it? */
	char	   *keys_alias;		/* an alias no source/target name equals */
} CdcSpec;

/* How the keys of a batch are applied (see cdc.c's file header). */
typedef enum CdcMode
{
	CDC_MODE_BY_MAX,			/* fast iff all new events > max_seq */
	CDC_MODE_ALL_SLOW,			/* max_seq unknown: re-derive every key */
	CDC_MODE_FULL				/* derive the whole target from the source:
								 * nothing applied yet, or an SCD1 batch with
								 * a truncate */
} CdcMode;

/* cdc_spec.c */

/* The spec of a flow, from its definition, as the pipeline owner. */
extern CdcSpec *CdcLoadSpec(FlowDesc *flow);

/* Place sequence_by and the conditions into generated SQL (user_sql.h). */
extern void CdcPlaceExpressions(CdcSpec *spec);

/* Analyse the placed sequence_by and fill in its type. */
extern void CdcResolveSequence(CdcSpec *spec);

/* Analyse a placed condition: a deterministic boolean row expression. */
extern void CdcCheckCondition(const char *argname, const char *placed,
							  const char *source_name);

/* Is name in the list of column names? */
extern bool CdcListHas(List *names, const char *name);

/* The attribute of a live column with exactly this name, or 0. */
extern AttrNumber CdcFindAttribute(TupleDesc desc, const char *name);

/* cdc_create.c: what both create functions share */

/* A text[] argument naming columns of the source. */
typedef struct CdcColumnArgument
{
	List	   *names;			/* resolved column names */
	bool		given;			/* not NULL (an empty array is given) */
} CdcColumnArgument;

/*
 * Where a create function has the arguments both share: pipeline_name,
 * target_table and source_table come first; column_list is followed by
 * except_column_list, track_history_column_list and
 * track_history_except_column_list.
 */
typedef struct CdcArgumentPositions
{
	int			keys;
	int			scd_type;
	int			default_scd_type;	/* when stored_as_scd_type is NULL */
	int			column_list;
} CdcArgumentPositions;

/* The arguments, checked, and what they resolve to on the source. */
typedef struct CdcArguments
{
	const CdcArgumentPositions *at;
	char	   *pipeline_name;
	char	   *target_table;
	char	   *source_table;
	bool		ignore_null_updates;
	CdcColumnArgument keys;
	CdcColumnArgument column_list;
	CdcColumnArgument except_list;
	CdcColumnArgument track_list;
	CdcColumnArgument track_except_list;

	/* the source, keys, SCD type, sequence_by and conditions */
	CdcSpec		spec;
	List	   *key_attnums;	/* the keys' attribute numbers */
	List	   *target_columns; /* keys and kept columns, in source order */
	List	   *columns;		/* kept non-key columns */
	List	   *tracked;		/* tracked columns (SCD2) */
	bool		has_key_index;	/* the source has an index on the keys */
} CdcArguments;

extern char *CdcTextArgument(FunctionCallInfo fcinfo, int argno,
							 const char *argname, bool required);
extern void CdcReadArguments(FunctionCallInfo fcinfo,
							 const CdcArgumentPositions *at,
							 CdcArguments *args);
extern void CdcReadColumnArguments(FunctionCallInfo fcinfo, CdcArguments *args,
								   Relation rel);
extern void CdcChooseColumns(CdcArguments *args, TupleDesc desc);
extern void CdcCheckKeys(CdcArguments *args, Relation rel);
extern void CdcDefinitionPutColumns(FlowDefinitionBuilder *builder,
									const CdcArguments *args);
extern void CdcDefinitionPutResolved(FlowDefinitionBuilder *builder,
									 const CdcArguments *args);
extern void CdcCreateTarget(FlowCreate *create, const CdcArguments *args,
							const char *view_name, FlowType type);
extern void CdcCreateRegister(FlowCreate *create, FlowType type,
							  const CdcArguments *args, Jsonb *definition);

/* cdc_sql.c: statements run when a flow is created */
extern void CdcAppendNames(StringInfo buf, List *names, const char *qual);
extern void CdcAppendNumbered(StringInfo buf, const char *prefix, int count);
extern void CdcAppendNamesAsNumbered(StringInfo buf, List *names,
									 const char *prefix);
extern char *CdcTargetTableSql(const CdcSpec *spec, const char *target_name,
							   List *target_columns);
extern char *CdcPrimaryKeySql(const CdcSpec *spec, const char *target_name);
extern char *CdcCurrentViewSql(const CdcSpec *spec, const char *view_name,
							   const char *target_name,
							   List *target_columns);
extern char *CdcSourceIndexSql(const CdcSpec *spec);

/* cdc_sql.c: statements run by an apply */
extern char *CdcTruncateCheckSql(CdcSpec *spec);
extern char *CdcEventsSql(CdcSpec *spec, CdcMode mode, bool truncate_known);
extern char *CdcDeleteReplacedSql(CdcSpec *spec);
extern char *CdcCloseVersionsSql(CdcSpec *spec);

/* Columns of the events query: __kind, __ctid, __rid, then the keys. */
#define CDC_EV_KIND 0
#define CDC_EV_CTID 1
#define CDC_EV_RID 2
#define CDC_EV_KEYS 3

/* Kinds of rows of the events query. */
#define CDC_KIND_CURRENT 0		/* a fast key's current row: its history */
#define CDC_KIND_REPLACED 1		/* a slow key's row: replaced, not an event */
#define CDC_KIND_EVENT 2		/* a change event of the source */
#define CDC_KIND_INVALID 3		/* a new event with a NULL key or sequence */

/*
 * The state of an apply while it walks the sorted events (see
 * CdcEventsSql): the key being derived, its last event, the version open
 * (SCD2), and where the derived rows and the rows they replace go.
 */
typedef struct CdcRunner
{
	CdcSpec    *spec;
	int			nkeys;
	int			ncols;
	int64		low;

	/* comparison support, per key / column / the sequence */
	FmgrInfo  **key_cmp;
	Oid		   *key_collation;
	FmgrInfo  **col_eq;			/* NULL: compare the text forms */
	Oid		   *col_output;
	Oid		   *col_collation;
	FmgrInfo   *seq_cmp;
	Oid			seq_collation;
	int16	   *key_len;
	bool	   *key_byval;
	int16	   *col_len;
	bool	   *col_byval;
	int16		seq_len;
	bool		seq_byval;

	/* the key being derived (copied into key_context) */
	MemoryContext key_context;
	bool		has_key;
	Datum	   *key;
	bool		key_has_history;	/* read its events applied before */
	bool		has_from;		/* SCD2 slow key: versions ending before */
	Datum		from;			/* from are kept, not derived again */

	/* its last event, kept in one of two contexts used in turn */
	MemoryContext event_context[2];
	int			event_slot;
	bool		has_last;
	bool		last_del;
	bool		last_seq_null;
	Datum		last_seq;
	Datum	   *last_values;
	bool	   *last_nulls;

	/* SCD2: the open version starts at open_start (in open_context) */
	MemoryContext open_context;
	bool		open;
	Datum		open_start;

	/*
	 * SCD2, fast key: its current version (at current_ctid) opens the key's
	 * history.  While its run has no later event, closing it only sets
	 * __end_at, which is done in place (a HOT update) rather than by
	 * deleting and inserting the row.
	 */
	bool		has_current;
	bool		current_untouched;
	ItemPointerData current_ctid;

	/* output: rows for the target, and the ctids of the rows they replace */
	Tuplestorestate *output;
	TupleDesc	target_desc;
	int		   *target_map;		/* per target column, see CDC_MAP_* */
	Datum	   *out_values;
	bool	   *out_nulls;
	ItemPointerData *replaced;
	int			nreplaced;
	int			replaced_size;
	ItemPointerData *closed;	/* current versions to close in place */
	Datum	   *closed_at;		/* ... with this __end_at */
	int			nclosed;
	int			closed_size;
	MemoryContext closed_context;

	/*
	 * An invalid event stops the walk; the error is raised once the query
	 * is over, so that it does not come with the query's text as context.
	 */
	bool		invalid;
	int64		invalid_rid;
	int			invalid_key;	/* the NULL key column, or -1: NULL sequence */
	char	   *mismatch;		/* a target column of another type */
	Oid			mismatch_type;
	Oid			mismatch_derived;

	/* counters */
	int64		rows_read;
	int64		keys;
	int64		keys_recomputed;
	bool		has_batch_max;
	Datum		batch_max;		/* highest sequence of the batch */
	MemoryContext max_context;
} CdcRunner;

/* cdc_runner.c */

/*
 * A receiver for the events query that feeds its rows to the runner, which
 * it sets up from the query's result descriptor (at the receiver's startup)
 * for the target.  Rows of the batch are those with _row_id above low.
 */
extern DestReceiver *CdcRunnerReceiver(CdcRunner *runner, CdcSpec *spec,
									   Relation target, int64 low);

/* The query is over: emit what the last key left open. */
extern void CdcRunnerFinish(CdcRunner *runner);

/* Release the runner's memory and its output. */
extern void CdcRunnerFree(CdcRunner *runner);

/* cdc.c: the phases of an apply, which snapshot applies share */

/*
 * Sequence values kept in flow_state between applies: the highest
 * sequence applied (any event) and the highest truncate applied.
 */
typedef struct CdcState
{
	bool		has_max;
	Datum		max_seq;
	bool		has_truncate;
	Datum		truncate_seq;
} CdcState;

/* The parameters of the events query (see CdcEventsSql). */
#define CDC_PARAM_LOW 0
#define CDC_PARAM_HIGH 1
#define CDC_PARAM_MAX_SEQ 2
#define CDC_PARAM_TRUNCATE_SEQ 3
#define CDC_NPARAMS 4

/*
 * One apply of a batch, phase by phase (CdcApply): what it read, what it
 * decided, and what it wrote.  CdcApplyBegin sets it up inside SPI with
 * the apply's settings; CdcApplyEnd undoes both.
 */
typedef struct CdcApplyState
{
	FlowDesc   *flow;			/* the flow's catalog row, as of now */
	CdcSpec    *spec;
	int64		low;			/* the batch: low < _row_id <= high */
	int			guc_nest_level;

	/* flow_state before and after the batch */
	CdcState	state;
	CdcState	new_state;
	bool		state_changed;

	/* the batch: its size when counted here, its highest truncate */
	int64		batch_rows;		/* -1: the runner counts it */
	bool		batch_has_truncate;
	Datum		batch_truncate;

	/* how its keys are applied, and the events query's parameters */
	CdcMode		mode;
	Oid			types[CDC_NPARAMS];
	Datum		values[CDC_NPARAMS];
	bool		nulls[CDC_NPARAMS];

	CdcRunner	runner;
	Relation	target;			/* open while the apply writes it */
	ChangeFeed *feed;			/* NULL unless an aggregate reads it */

	int64		deleted;
	int64		inserted;
	int64		updated;		/* in place (a snapshot's SCD1 changes) */
	int64		closed;
} CdcApplyState;

extern void CdcApplyBegin(CdcApplyState *apply, FlowDesc *flow, int64 low,
						  int64 high);
extern ParamListInfo CdcApplyParams(CdcApplyState *apply);
extern void CdcApplyDerive(CdcApplyState *apply, const char *events_sql);
extern void CdcApplyWrite(CdcApplyState *apply);
extern void CdcApplySaveState(CdcApplyState *apply);
extern void CdcApplyRelease(CdcApplyState *apply);
extern void CdcApplyEnd(CdcApplyState *apply);
extern bool CdcStateRaise(CdcSpec *spec, bool *has, Datum *current,
						  Datum value);
extern void CdcReportNullKey(CdcSpec *spec, int key_index, int64 rid);

#endif							/* MEDALLION_CDC_INTERNAL_H */
