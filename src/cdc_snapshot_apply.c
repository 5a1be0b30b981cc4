/*-------------------------------------------------------------------------
 *
 * cdc_snapshot_apply.c
 *	  The apply of an AUTO CDC FROM SNAPSHOT flow: diff each new snapshot
 *	  of the source with the target on the keys, and apply the difference
 *	  as change events of the snapshot's version.
 *
 * Semantics (the README documents these)
 * --------------------------------------
 * - A snapshot is the set of source rows of one version.  Without
 *   snapshot_version the whole source is one snapshot per update, of
 *   version the update's start time.  With it, the expression splits the
 *   source rows into snapshots; rows whose version is NULL belong to none
 *   (they are skipped with a warning event).
 * - Snapshots are applied in ascending version order, each once: the
 *   highest version applied is kept in flow_state (as an auto CDC flow keeps
 *   its highest sequence).  A version at or below it is not applied again.
 *   When the source is a pipeline table (an append-only log with a _row_id
 *   identity), an update reads only its rows beyond the flow's watermark,
 *   so a version is complete when its rows are first seen: rows of an
 *   applied version that arrive later, like a whole version that arrives
 *   after a higher one, are skipped with a warning event.  Any other source
 *   is read whole at every update, and its versions not above the last one
 *   applied are the ones applied before.
 * - The diff of a snapshot with the target's current rows (SCD1: every
 *   row; SCD2: the versions with __end_at NULL), null-safe on the kept
 *   columns (IS DISTINCT FROM), gives the changes: a key of the snapshot
 *   that the target lacks is inserted; a key whose kept columns differ is
 *   updated; a current key absent from the snapshot is deleted.  They
 *   take effect at sequence = the version, as an auto CDC flow's events
 *   would (cdc.c): SCD1 updates in place and deletes, and SCD2 opens a new
 *   version only when a tracked column changed (else the current version
 *   takes the new values in place) and closes the version of a key gone;
 *   the change feed of aggregates sees exactly what an auto CDC flow shows
 *   it.  Since the target holds the previous snapshot's kept columns, this
 *   is the diff of consecutive snapshots.
 * - Keys must be unique within a snapshot: where a key repeats, which of
 *   its rows wins is not defined (checking would cost a sort of every
 *   snapshot).  A NULL key fails the apply.
 * - The first apply, and the one after a full refresh or a replace,
 *   derives the target again from the first snapshot (the target is
 *   emptied and the change feed's readers start over), then applies the
 *   following ones: a full refresh recomputes the target from every
 *   snapshot the source still holds.
 *
 * Cost: one hash (or merge) full join of the snapshot with the target's
 * current rows per version (without the target's ctid:
 * snapshot_append_diff), then work proportional to the keys that changed:
 * one set-based statement deletes or closes, updates in place and inserts
 * (snapshot_in_place_sql).  The first snapshot of a target, a full refresh
 * and a replace derive it through the auto CDC runner (cdc.c), which
 * splits a key's history by version.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/cdc_snapshot_apply.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "catalog/dependency.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"

#include "catalog.h"
#include "change_feed.h"
#include "cdc_internal.h"
#include "cdc_snapshot.h"
#include "flow.h"
#include "spi_util.h"
#include "user_sql.h"

/*
 * One version found in the source, with its number of rows and, in a log
 * source, the range of _row_id its rows are in (low < _row_id <= high).
 */
typedef struct SnapshotVersion
{
	bool		isnull;
	Datum		value;
	int64		rows;
	int64		low;
	int64		high;
} SnapshotVersion;

/* An apply of a snapshot flow, version by version. */
typedef struct SnapshotRun
{
	FlowContext *context;
	FlowDesc   *flow;
	CdcApplyState apply;		/* its spec and flow_state; one batch per
								 * version */
	bool		versioned;		/* snapshot_version given */
	bool		log_source;		/* the source is an append-only log */
	bool		has_row_id;		/* the source has an int8 _row_id */
	int64		watermark;
	int64		ceiling;
	List	   *versions;		/* SnapshotVersion *, ascending */
	MemoryContext version_context;

	/* counters */
	int64		rows_read;
	int64		versions_applied;
	int64		versions_skipped;
	int64		rows_skipped;
	int64		rows_null_version;
	int64		inserted;
	int64		updated;
	int64		deleted;
	int64		closed;
	bool		full;
	StringInfoData skipped;		/* the versions skipped, as JSON text */
} SnapshotRun;

/*
 * Is the source an append-only log of the pipeline kind, read by _row_id:
 * a table whose _row_id is an int8 identity column?
 */
static bool
snapshot_source_is_log(Oid relid, bool *has_row_id)
{
	AttrNumber	attnum = get_attnum(relid, "_row_id");

	*has_row_id = attnum != InvalidAttrNumber &&
		get_atttype(relid, attnum) == INT8OID;
	return *has_row_id && get_rel_relkind(relid) == RELKIND_RELATION &&
		OidIsValid(getIdentitySequence(relid, attnum, true));
}

/* A version as text, for events and details. */
static char *
snapshot_version_text(SnapshotRun *run, Datum value)
{
	Oid			output;
	bool		isvarlena;

	getTypeOutputInfo(run->apply.spec->seq_basetype, &output, &isvarlena);
	return OidOutputFunctionCall(output, value);
}

/* ---- the events query ------------------------------------------------- */

/* The rows of the snapshot: "FROM source WHERE ..." ($1, $2, $3). */
static void
snapshot_append_from(StringInfo sql, SnapshotRun *run)
{
	CdcSpec    *spec = run->apply.spec;

	appendStringInfo(sql, " FROM %s", spec->source_name);
	if (run->versioned && run->log_source)
		appendStringInfo(sql, " WHERE _row_id > $1 AND _row_id <= $2"
						 " AND (%s) = $3", spec->seq_sql);
	else if (run->versioned)
		appendStringInfo(sql, " WHERE (%s) = $3", spec->seq_sql);
}

/* "<rid> AS __rid": the source's _row_id, else one arrival after $1. */
static const char *
snapshot_rid(SnapshotRun *run)
{
	return run->has_row_id ? "_row_id AS __rid" :
		"$1 + 1 AS __rid";
}

/* "__k1 IS NULL OR __k2 IS NULL ...", with a prefix. */
static void
snapshot_append_null_key(StringInfo sql, CdcSpec *spec, const char *prefix)
{
	int			i;

	for (i = 1; i <= list_length(spec->keys); i++)
		appendStringInfo(sql, "%s%s%d IS NULL", i > 1 ? " OR " : "",
						 prefix, i);
}

/*
 * The events of the first snapshot (CDC_MODE_FULL): every row is an
 * upsert; a row with a NULL key is an invalid event.
 */
static char *
snapshot_full_events_sql(SnapshotRun *run, const char *seq_type)
{
	CdcSpec    *spec = run->apply.spec;
	StringInfoData sql;

	initStringInfo(&sql);
	appendStringInfo(&sql, "SELECT CASE WHEN ");
	snapshot_append_null_key(&sql, spec, "__k");
	appendStringInfo(&sql, " THEN %d ELSE %d END AS __kind,"
					 " NULL::pg_catalog.tid AS __ctid, __s.* FROM (SELECT %s",
					 CDC_KIND_INVALID, CDC_KIND_EVENT, snapshot_rid(run));
	CdcAppendNamesAsNumbered(&sql, spec->keys, "__k");
	CdcAppendNamesAsNumbered(&sql, spec->columns, "__c");
	appendStringInfo(&sql, ", $3::%s AS __seq, false AS __del,"
					 " NULL::%s AS __from", seq_type, seq_type);
	snapshot_append_from(&sql, run);
	appendStringInfoString(&sql, ") __s ORDER BY ");
	CdcAppendNumbered(&sql, "__k", list_length(spec->keys));
	appendStringInfoString(&sql, ", __rid DESC");
	return sql.data;
}

/*
 * __d: the full join of the snapshot (__s) with the target's current rows
 * (__t) on the keys, keeping the keys that differ: in one side only, or
 * with kept columns distinct.  Both sides carry only what the events need
 * (the join spills to disk when the target is large, in proportion to the
 * width of its rows): no constants, __st only for SCD2, __rid only when the
 * source has a _row_id.  A matched snapshot row has a non-NULL __sk1, and
 * a target row a non-NULL __tk1 (its keys are its primary key), so a key
 * gone is a row with __sk1 NULL and a new key one with __tk1 NULL.
 *
 * The target's ctid, which the writes find its rows by, is not carried
 * through the join: scanning it costs a projection of every target row,
 * and carrying it widens the hash (together 15% of the diff at 1M rows).
 * It is looked up afterwards through the primary key for the few rows
 * that differ.
 */
static void
snapshot_append_diff(StringInfo sql, SnapshotRun *run)
{
	CdcSpec    *spec = run->apply.spec;
	int			nkeys = list_length(spec->keys);
	int			ncols = list_length(spec->columns);
	StringInfoData columns;
	int			i;

	appendStringInfoString(sql, "WITH __d AS MATERIALIZED (SELECT CASE WHEN"
						   " __j.__tk1 IS NOT NULL THEN (SELECT __x.ctid FROM ");
	appendStringInfo(sql, "%s __x WHERE ", spec->target_name);
	for (i = 1; i <= nkeys; i++)
		appendStringInfo(sql, "%s__x.%s = __j.__tk%d", i > 1 ? " AND " : "",
						 UserSqlColumnName(list_nth(spec->keys, i - 1)), i);
	if (spec->scd_type == 2)
		appendStringInfoString(sql, " AND __x.__start_at = __j.__st");
	appendStringInfo(sql, ") END AS __ctid, __j.* FROM (SELECT %s%s",
					 spec->scd_type == 2 ? "__t.__st, " : "",
					 run->has_row_id ? "__s.__rid, " : "");
	for (i = 1; i <= nkeys; i++)
		appendStringInfo(sql, "%s__s.__k%d AS __sk%d, __t.__k%d AS __tk%d",
						 i > 1 ? ", " : "", i, i, i, i);
	for (i = 1; i <= ncols; i++)
		appendStringInfo(sql, ", __s.__c%d AS __sc%d, __t.__c%d AS __tc%d",
						 i, i, i, i);
	initStringInfo(&columns);
	if (run->has_row_id)
		appendStringInfoString(&columns, ", _row_id AS __rid");
	CdcAppendNamesAsNumbered(&columns, spec->keys, "__k");
	CdcAppendNamesAsNumbered(&columns, spec->columns, "__c");
	/* columns starts with ", " */
	appendStringInfo(sql, " FROM (SELECT %s", columns.data + 2);
	snapshot_append_from(sql, run);
	appendStringInfoString(sql, ") __s FULL JOIN (SELECT ");
	if (spec->scd_type == 2)
		appendStringInfoString(sql, "__start_at AS __st, ");
	/* the keys' list starts with ", " too */
	resetStringInfo(&columns);
	CdcAppendNamesAsNumbered(&columns, spec->keys, "__k");
	CdcAppendNamesAsNumbered(&columns, spec->columns, "__c");
	appendStringInfo(sql, "%s FROM %s%s) __t ON ", columns.data + 2,
					 spec->target_name,
					 spec->scd_type == 2 ? " WHERE __end_at IS NULL" : "");
	for (i = 1; i <= nkeys; i++)
		appendStringInfo(sql, "%s__s.__k%d = __t.__k%d", i > 1 ? " AND " : "",
						 i, i);
	appendStringInfoString(sql, " WHERE __s.__k1 IS NULL OR __t.__k1 IS NULL");
	if (ncols > 0)
	{
		appendStringInfoString(sql, " OR ROW(");
		for (i = 1; i <= ncols; i++)
			appendStringInfo(sql, "%s__s.__c%d", i > 1 ? ", " : "", i);
		appendStringInfoString(sql, ") IS DISTINCT FROM ROW(");
		for (i = 1; i <= ncols; i++)
			appendStringInfo(sql, "%s__t.__c%d", i > 1 ? ", " : "", i);
		appendStringInfoChar(sql, ')');
	}
	appendStringInfoString(sql, ") __j) ");
}

/*
 * The target's columns by name: the keys, then the kept columns, then for
 * SCD2 the version's bounds.
 */
static void
snapshot_append_target_columns(StringInfo sql, CdcSpec *spec)
{
	CdcAppendNames(sql, spec->keys, NULL);
	if (spec->columns != NIL)
		appendStringInfoString(sql, ", ");
	CdcAppendNames(sql, spec->columns, NULL);
	if (spec->scd_type == 2)
		appendStringInfoString(sql, ", __start_at, __end_at");
}

/*
 * One side of a diff row in that order: "<keys>1, ..., <columns>1, ...",
 * then for SCD2 the version's bounds (start, end: SQL expressions).
 */
static void
snapshot_append_diff_row(StringInfo sql, CdcSpec *spec, const char *keys,
						 const char *columns, const char *start,
						 const char *end)
{
	int			i;

	CdcAppendNumbered(sql, keys, list_length(spec->keys));
	for (i = 1; i <= list_length(spec->columns); i++)
		appendStringInfo(sql, ", %s%d", columns, i);
	if (spec->scd_type == 2)
		appendStringInfo(sql, ", %s, %s", start, end);
}

/*
 * The final SELECT of snapshot_in_place_sql: the counts, and a snapshot
 * row with a null key (valid: "all its keys are non-NULL").
 */
static void
snapshot_append_in_place_counts(StringInfo sql, SnapshotRun *run,
								const char *valid)
{
	CdcSpec    *spec = run->apply.spec;
	int			i;

	appendStringInfo(sql, " SELECT (SELECT count(*) FROM __del), %s,"
					 " (SELECT count(*) FROM __ins), (SELECT count(*) FROM __e),"
					 " (SELECT min(CASE",
					 spec->columns != NIL ? "(SELECT count(*) FROM __upd)" :
					 "0::pg_catalog.int8");
	for (i = 1; i <= list_length(spec->keys); i++)
		appendStringInfo(sql, " WHEN __sk%d IS NULL THEN %d", i, i);
	appendStringInfo(sql, " END) FROM __e WHERE __ctid IS NULL AND NOT (%s)),"
					 " (SELECT max(%s) FROM __e WHERE __ctid IS NULL AND NOT (%s))",
					 valid, run->has_row_id ? "__rid" : "0::pg_catalog.int8",
					 valid);
}

/*
 * SCD2: does a changed key's tracked column differ (null-safely), so that
 * its current version is closed and a new one opened?  Otherwise its
 * current version takes the new values in place.
 */
static char *
snapshot_tracked_changed(CdcSpec *spec)
{
	StringInfoData snapshot_side;
	StringInfoData target_side;
	int			i;

	initStringInfo(&snapshot_side);
	initStringInfo(&target_side);
	for (i = 0; i < list_length(spec->columns); i++)
	{
		if (!spec->tracked[i])
			continue;
		appendStringInfo(&snapshot_side, "%s__sc%d",
						 snapshot_side.len > 0 ? ", " : "", i + 1);
		appendStringInfo(&target_side, "%s__tc%d",
						 target_side.len > 0 ? ", " : "", i + 1);
	}
	if (snapshot_side.len == 0)
		return "false";
	return psprintf("ROW(%s) IS DISTINCT FROM ROW(%s)", snapshot_side.data,
					target_side.data);
}

/*
 * The statement that applies a later snapshot to the target in place,
 * set-based (no runner), to the effect the runner's events would have.  Of
 * the keys that differ (__d, one row per key, the latest source row where a
 * key repeats):
 *
 * - SCD1: the rows gone are deleted (__del), the changed rows updated in
 *   place (__upd), the new ones inserted (__ins);
 * - SCD2: the current versions of the keys gone, and of the keys whose
 *   tracked columns changed, are closed at the version (__del sets their
 *   __end_at); keys whose other columns only changed take them in place
 *   (__upd); new keys and the keys whose versions were closed get a
 *   version starting at the snapshot's (__ins).
 *
 * The change feed, when there is one, gets each changed row as it was (-1)
 * and as it is now (+1).  Target rows are found by ctid through
 * "= ANY (ARRAY(...))", a TID scan whatever the planner estimates of the
 * diff.  Returns one row: rows deleted (SCD2: versions closed), updated,
 * inserted, the keys that differ, and for a snapshot row with a null key
 * (nothing else applies then: the caller raises) its first null key column
 * (1-based) and _row_id.
 */
static char *
snapshot_in_place_sql(SnapshotRun *run, ChangeFeed *feed, const char *seq_type)
{
	CdcSpec    *spec = run->apply.spec;
	int			nkeys = list_length(spec->keys);
	int			ncols = list_length(spec->columns);
	bool		scd2 = spec->scd_type == 2;
	char	   *version = psprintf("$3::%s", seq_type);
	char	   *no_end = psprintf("NULL::%s", seq_type);
	char	   *moved = scd2 ? snapshot_tracked_changed(spec) : "false";
	StringInfoData sql;
	StringInfoData valid;
	char	   *removed;		/* target rows deleted, or versions closed */
	char	   *in_place;		/* target rows updated in place */
	char	   *opened;			/* snapshot rows inserted */
	int			i;

	initStringInfo(&valid);
	for (i = 1; i <= nkeys; i++)
		appendStringInfo(&valid, "%s__sk%d IS NOT NULL", i > 1 ? " AND " : "", i);
	removed = psprintf("__ctid IS NOT NULL AND (__sk1 IS NULL OR %s)", moved);
	in_place = psprintf("__ctid IS NOT NULL AND __sk1 IS NOT NULL AND NOT (%s)", moved);
	opened = psprintf("(__ctid IS NULL OR %s) AND %s", moved, valid.data);

	initStringInfo(&sql);
	snapshot_append_diff(&sql, run);
	appendStringInfoString(&sql, ", __e AS MATERIALIZED (SELECT DISTINCT ON (");
	CdcAppendNumbered(&sql, "__ek", nkeys);
	appendStringInfoString(&sql, ") * FROM (SELECT ");
	for (i = 1; i <= nkeys; i++)
		appendStringInfo(&sql, "COALESCE(__sk%d, __tk%d) AS __ek%d, ", i, i, i);
	appendStringInfoString(&sql, "__d.* FROM __d) __x ORDER BY ");
	CdcAppendNumbered(&sql, "__ek", nkeys);
	appendStringInfo(&sql, "%s)", run->has_row_id ? ", __rid DESC" : "");

	if (scd2)
		appendStringInfo(&sql, ", __del AS (UPDATE %s SET __end_at = %s",
						 spec->target_name, version);
	else
		appendStringInfo(&sql, ", __del AS (DELETE FROM %s", spec->target_name);
	appendStringInfo(&sql, " WHERE ctid = ANY (ARRAY(SELECT __ctid FROM __e WHERE %s))"
					 " RETURNING 1)", removed);
	if (ncols > 0)
	{
		appendStringInfo(&sql, ", __upd AS (UPDATE %s AS __medallion_t SET ",
						 spec->target_name);
		for (i = 1; i <= ncols; i++)
			appendStringInfo(&sql, "%s%s = __e.__sc%d", i > 1 ? ", " : "",
							 UserSqlColumnName(list_nth(spec->columns, i - 1)), i);
		appendStringInfo(&sql, " FROM __e WHERE __medallion_t.ctid = ANY (ARRAY("
						 "SELECT __ctid FROM __e WHERE %s))"
						 " AND __medallion_t.ctid = __e.__ctid RETURNING 1)", in_place);
	}
	appendStringInfo(&sql, ", __ins AS (INSERT INTO %s (", spec->target_name);
	snapshot_append_target_columns(&sql, spec);
	appendStringInfoString(&sql, ") SELECT ");
	snapshot_append_diff_row(&sql, spec, "__sk", "__sc", version, no_end);
	appendStringInfo(&sql, " FROM __e WHERE %s RETURNING 1)", opened);
	if (feed != NULL)
	{
		appendStringInfo(&sql, ", __feed AS (INSERT INTO %s (" CHANGE_FEED_SIGN_COLUMN ", ",
						 ChangeFeedName(feed));
		snapshot_append_target_columns(&sql, spec);
		appendStringInfoString(&sql, ") SELECT -1, ");
		snapshot_append_diff_row(&sql, spec, "__tk", "__tc", "__st", no_end);
		appendStringInfoString(&sql, " FROM __e WHERE __ctid IS NOT NULL UNION ALL SELECT 1, ");
		if (scd2)
		{
			/* closed as they are now, changed in place, opened */
			snapshot_append_diff_row(&sql, spec, "__tk", "__tc", "__st", version);
			appendStringInfo(&sql, " FROM __e WHERE %s UNION ALL SELECT 1, ", removed);
			snapshot_append_diff_row(&sql, spec, "__sk", "__sc", "__st", no_end);
			appendStringInfo(&sql, " FROM __e WHERE %s UNION ALL SELECT 1, ", in_place);
			snapshot_append_diff_row(&sql, spec, "__sk", "__sc", version, no_end);
			appendStringInfo(&sql, " FROM __e WHERE %s)", opened);
		}
		else
		{
			/* the changed and the new rows as they are now */
			snapshot_append_diff_row(&sql, spec, "__sk", "__sc", version, no_end);
			appendStringInfo(&sql, " FROM __e WHERE %s)", valid.data);
		}
	}
	snapshot_append_in_place_counts(&sql, run, valid.data);
	return sql.data;
}

/*
 * Apply a later snapshot in place (snapshot_in_place_sql): what the runner
 * would derive, without its per-key walk, and changed rows updated rather
 * than deleted and inserted again (half the dead tuples).
 */
static void
snapshot_apply_in_place(SnapshotRun *run, const char *seq_type)
{
	CdcApplyState *apply = &run->apply;
	SPIExecuteOptions options;
	bool		isnull;
	int64		invalid_key;
	int64		removed;

	apply->feed = ChangeFeedBegin(apply->flow, apply->spec->target_relid, false);
	memset(&options, 0, sizeof(options));
	options.params = CdcApplyParams(apply);
	if (SPI_execute_extended(snapshot_in_place_sql(run, apply->feed, seq_type),
							 &options) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "the snapshot apply of flow \"%s\" returned no counts",
			 apply->spec->flow_name);
	invalid_key = SpiGetInt64(0, 5, &isnull);
	if (!isnull)
		CdcReportNullKey(apply->spec, (int) invalid_key - 1,
						 SpiGetInt64(0, 6, &isnull));
	removed = SpiGetInt64(0, 1, &isnull);
	if (apply->spec->scd_type == 2)
		apply->closed = removed;
	else
		apply->deleted = removed;
	apply->updated = SpiGetInt64(0, 2, &isnull);
	apply->inserted = SpiGetInt64(0, 3, &isnull);
	apply->runner.rows_read = SpiGetInt64(0, 4, &isnull);
	if (apply->feed != NULL)
		ChangeFeedEnd(apply->feed);
	CommandCounterIncrement();
}

/* ---- the phases ------------------------------------------------------- */

/*
 * Lock the flow's row (applies of one flow are serialised), set up the
 * apply, and read the source's kind; a log source is read up to its safe
 * ceiling only (flow.h).
 */
static void
snapshot_begin(SnapshotRun *run, FlowContext *context, FlowDesc *flow)
{
	memset(run, 0, sizeof(SnapshotRun));
	run->context = context;
	run->flow = flow;
	initStringInfo(&run->skipped);
	CatalogLockFlow(flow, &run->watermark, NULL);
	FlowCheckSourceExists(flow, flow->source_relid);
	run->versioned = FlowDefinitionHas(flow, "snapshot_version");
	run->log_source = snapshot_source_is_log(flow->source_relid,
											 &run->has_row_id) &&
		run->versioned;
	run->ceiling = run->log_source ?
		FlowSourceCeiling(flow->source_relid) : 0;
	CdcApplyBegin(&run->apply, flow, run->log_source ? run->watermark : 0,
				  run->log_source ? run->ceiling : 0);

	/*
	 * The diff is one hash full join of a whole snapshot with the target,
	 * then a sort of what differs: they get maintenance_work_mem, as an
	 * index build does, rather than spill to disk at work_mem (about 5%
	 * faster at 1M rows here).  Restored with the apply's other settings
	 * (CdcApplyEnd).
	 */
	if (maintenance_work_mem > work_mem)
		SetSettingInNestLevel("work_mem",
							  GetConfigOption("maintenance_work_mem", false, false));
	run->version_context = AllocSetContextCreate(CurrentMemoryContext,
												 "snapshot version",
												 ALLOCSET_DEFAULT_SIZES);
}

/* A version, copied into the current memory context. */
static SnapshotVersion *
snapshot_make_version(SnapshotRun *run, bool isnull, Datum value, int64 rows)
{
	SnapshotVersion *version = palloc0(sizeof(SnapshotVersion));
	int16		typlen;
	bool		typbyval;

	get_typlenbyval(run->apply.spec->seq_basetype, &typlen, &typbyval);
	version->isnull = isnull;
	version->value = isnull ? (Datum) 0 : datumCopy(value, typbyval, typlen);
	version->rows = rows;
	return version;
}

/*
 * The versions to consider, ascending: the update's start time, or the
 * versions of the source's rows (those beyond the watermark, for a log).
 */
static void
snapshot_list_versions(SnapshotRun *run)
{
	CdcSpec    *spec = run->apply.spec;
	Oid			types[2] = {INT8OID, INT8OID};
	Datum		values[2] = {Int64GetDatum(run->watermark),
	Int64GetDatum(run->ceiling)};
	uint64		count;
	uint64		row;

	if (!run->versioned)
	{
		TimestampTz start = run->context->update_start != 0 ?
			run->context->update_start : GetCurrentTransactionStartTimestamp();

		run->versions = list_make1(snapshot_make_version(run, false,
														 TimestampTzGetDatum(start),
														 -1));
		return;
	}
	if (run->log_source && run->ceiling <= run->watermark)
		return;
	count = SpiExecute(psprintf("SELECT (%s)::%s, pg_catalog.count(*), %s FROM %s%s"
								" GROUP BY 1 ORDER BY 1 NULLS FIRST",
								spec->seq_sql,
								format_type_be_qualified(spec->seq_basetype),
								run->log_source ?
								"pg_catalog.min(_row_id) - 1, pg_catalog.max(_row_id)" :
								"0::pg_catalog.int8, 0::pg_catalog.int8",
								spec->source_name,
								run->log_source ?
								" WHERE _row_id > $1 AND _row_id <= $2" : ""),
					   run->log_source ? 2 : 0, types, values, NULL,
					   SPI_OK_SELECT);
	for (row = 0; row < count; row++)
	{
		bool		isnull;
		Datum		value = SpiGetDatum(row, 1, &isnull);
		SnapshotVersion *version = snapshot_make_version(run, isnull, value,
														 SpiGetInt64(row, 2, NULL));

		version->low = SpiGetInt64(row, 3, NULL);
		version->high = SpiGetInt64(row, 4, NULL);
		run->versions = lappend(run->versions, version);
	}
}

/*
 * Is this version to be skipped: NULL, or not above the last applied?
 * Skipped rows of a log source are noted for the warning event; versions
 * of a source read whole were applied before, and are passed over quietly.
 */
static bool
snapshot_skip_version(SnapshotRun *run, SnapshotVersion *version)
{
	CdcApplyState *apply = &run->apply;
	TypeCacheEntry *typentry;

	if (version->isnull)
	{
		run->rows_null_version += version->rows;
		return true;
	}
	if (!apply->new_state.has_max)
		return false;
	typentry = lookup_type_cache(apply->spec->seq_basetype,
								 TYPECACHE_CMP_PROC_FINFO);
	if (DatumGetInt32(FunctionCall2Coll(&typentry->cmp_proc_finfo,
										apply->spec->seq_collation,
										version->value,
										apply->new_state.max_seq)) > 0)
		return false;
	if (run->log_source || !run->versioned)
	{
		if (run->versions_skipped > 0)
			appendStringInfoString(&run->skipped, ", ");
		escape_json(&run->skipped, snapshot_version_text(run, version->value));
		run->versions_skipped++;
		run->rows_skipped += Max(version->rows, 0);
	}
	return true;
}

/*
 * Apply one snapshot: its events through the runner, the writes, and the
 * version as the highest applied, in a memory context reset afterwards.
 */
static void
snapshot_apply_version(SnapshotRun *run, SnapshotVersion *version)
{
	CdcApplyState *apply = &run->apply;
	CdcSpec    *spec = apply->spec;
	MemoryContext old = MemoryContextSwitchTo(run->version_context);
	char	   *seq_type = format_type_extended(spec->seq_type,
												spec->seq_typmod,
												FORMAT_TYPE_TYPEMOD_GIVEN |
												FORMAT_TYPE_FORCE_QUALIFY);

	apply->values[CDC_PARAM_MAX_SEQ] = version->value;
	apply->nulls[CDC_PARAM_MAX_SEQ] = false;
	/* a version's rows in a log: read its range only, not the batch */
	if (run->log_source)
	{
		apply->values[CDC_PARAM_LOW] = Int64GetDatum(version->low);
		apply->values[CDC_PARAM_HIGH] = Int64GetDatum(version->high);
	}
	apply->mode = apply->new_state.has_max ? CDC_MODE_BY_MAX : CDC_MODE_FULL;
	run->full |= apply->mode == CDC_MODE_FULL;
	apply->deleted = apply->inserted = apply->updated = apply->closed = 0;
	if (apply->mode == CDC_MODE_BY_MAX)
		snapshot_apply_in_place(run, seq_type);
	else
	{
		CdcApplyDerive(apply, snapshot_full_events_sql(run, seq_type));
		CdcApplyWrite(apply);
	}

	/* the version first: the runner's copy goes with its memory */
	apply->state_changed |= CdcStateRaise(spec, &apply->new_state.has_max,
										  &apply->new_state.max_seq,
										  version->value);
	CdcApplySaveState(apply);

	run->versions_applied++;
	run->rows_read += version->rows >= 0 ? version->rows :
		apply->runner.rows_read;
	run->inserted += apply->inserted;
	run->updated += apply->updated;
	run->deleted += apply->deleted;
	run->closed += apply->closed;
	CdcApplyRelease(apply);
	MemoryContextSwitchTo(old);
	MemoryContextReset(run->version_context);
}

/* The warning event of versions or rows skipped, if any. */
static void
snapshot_warn_skipped(SnapshotRun *run)
{
	PipelineDesc *pipeline = run->context->pipeline;
	const char *flow_name = run->flow->flow_name;

	if (run->versions_skipped > 0)
		EventLogWrite(pipeline, run->context->update_id, flow_name,
					  "warning", "WARNING",
					  psprintf("snapshot versions not above the last applied version were skipped (" INT64_FORMAT " versions, " INT64_FORMAT " rows)",
							   run->versions_skipped, run->rows_skipped),
					  psprintf("{\"skipped_versions\": [%s], \"last_applied_version\": \"%s\", \"rows_skipped\": " INT64_FORMAT "}",
							   run->skipped.data,
							   snapshot_version_text(run, run->apply.new_state.max_seq),
							   run->rows_skipped));
	if (run->rows_null_version > 0)
		EventLogWrite(pipeline, run->context->update_id, flow_name,
					  "warning", "WARNING",
					  psprintf("source rows whose snapshot version is null were skipped (" INT64_FORMAT " rows)",
							   run->rows_null_version),
					  psprintf("{\"rows_skipped\": " INT64_FORMAT "}",
							   run->rows_null_version));
}

/* The counters, and the "cdc_snapshot" member of the progress details. */
static void
snapshot_report(SnapshotRun *run, FlowResult *result)
{
	CdcApplyState *apply = &run->apply;

	result->rows_read += run->rows_read;
	result->rows_written += run->inserted + run->updated + run->closed;
	if (run->inserted > 0 || run->updated > 0 || run->deleted > 0 ||
		run->closed > 0)
		result->changed = true;
	FlowResultDetail(result);
	appendStringInfo(&result->details,
					 "\"cdc_snapshot\": {\"scd_type\": %d, \"versions_applied\": " INT64_FORMAT
					 ", \"versions_skipped\": " INT64_FORMAT
					 ", \"rows_inserted\": " INT64_FORMAT
					 ", \"rows_updated\": " INT64_FORMAT
					 ", \"rows_deleted\": " INT64_FORMAT
					 ", \"versions_closed\": " INT64_FORMAT
					 ", \"full_recompute\": %s, \"last_version\": ",
					 apply->spec->scd_type, run->versions_applied,
					 run->versions_skipped, run->inserted, run->updated,
					 run->deleted,
					 run->closed, run->full ? "true" : "false");
	if (apply->new_state.has_max)
		escape_json(&result->details,
					snapshot_version_text(run, apply->new_state.max_seq));
	else
		appendStringInfoString(&result->details, "null");
	appendStringInfoChar(&result->details, '}');
}

/*
 * CdcSnapshotApply: see cdc_snapshot.h and the file header.  Runs in the
 * pipeline owner's context inside the update's transaction for the flow.
 */
void
CdcSnapshotApply(FlowContext *context, FlowDesc *flow, FlowResult *result)
{
	SnapshotRun run;
	ListCell   *cell;

	snapshot_begin(&run, context, flow);
	snapshot_list_versions(&run);
	foreach(cell, run.versions)
	{
		SnapshotVersion *version = lfirst(cell);

		if (!snapshot_skip_version(&run, version))
			snapshot_apply_version(&run, version);
	}
	snapshot_warn_skipped(&run);
	snapshot_report(&run, result);
	CdcApplyEnd(&run.apply);
	if (run.log_source && run.ceiling > run.watermark)
	{
		CatalogSetWatermark(flow->flow_id, run.ceiling);
		flow->watermark = run.ceiling;
	}
}
