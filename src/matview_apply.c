/*-------------------------------------------------------------------------
 *
 * matview_apply.c
 *	  An update of a materialized view flow: its target made equal to its
 *	  query again, by signed deltas or by a full recompute.
 *
 * A view whose maintenance is "full" (its refresh_policy, or a reason found
 * at creation) is recomputed whole: DELETE and INSERT of the query, as the
 * owner (its readers are never made to wait, mv_empty_target); it is
 * skipped when it reads only pipeline tables and none of them changed in
 * this update (a direct auto_cdc_apply between updates removes the mark
 * that lets it be skipped, CatalogMarkInputChanged).
 *
 * A view maintained incrementally remembers, per source, how far it has
 * consumed the source's changes (flow_state "positions": the last _row_id
 * of an append-only source or of an auto CDC target's change feed).  An
 * update reads each source's safe ceiling (flow.h), then applies the
 * signed delta of (position, ceiling] (matview_delta.c): for a join, the
 * net change of each row, applied to the target as a bag (so many equal
 * rows deleted, through the target's row hash index when it has one, so
 * many inserted); for a grouped view of count, sum and avg, the running
 * values of the touched groups (matview_groups.c); for another grouped
 * view, the groups touched by a changed row are deleted and computed
 * again.  The delta is one statement, the sources' ranges its parameters;
 * a continuous pipeline's worker keeps it parsed and planned
 * (statement_cache.c) and keeps its text (matview_sql_cache.c).  The
 * indexes that keep this cheap are made on the way (matview_indexes.c).
 * With no positions yet (first update, full refresh), a change feed that
 * started over or holds a reset marker, or a query that can no longer be
 * kept by deltas, the view is recomputed from the sources' bounded states
 * and the positions start from the ceilings.  Everything happens in the
 * update's transaction for the flow, so positions and target move
 * together.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/matview_apply.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "capture.h"
#include "change_feed.h"
#include "flow_definition.h"
#include "matview.h"
#include "matview_internal.h"
#include "spi_util.h"
#include "sql_names.h"
#include "user_sql.h"

/* One update of one view. */
typedef struct MvApply
{
	FlowContext *context;
	FlowDesc   *flow;
	char	   *target;			/* qualified, quoted */
	char	   *query_text;
	char	   *policy;
	bool		incremental;	/* the definition says so */
	Jsonb	   *flow_state;
	MatviewAnalysis analysis;
	char	   *analysis_key;	/* what the analysis is made from */
	bool		recompute;		/* incremental, but recompute this time */
	char	   *recompute_why;
	bool		any_change;
	char	   *state_table;	/* kept by running values: the group state */
	bool		row_hash;		/* the target has its row hash index */
} MvApply;

static void
mv_apply_error_callback(void *arg)
{
	errcontext("updating materialized view flow \"%s\"", (const char *) arg);
}

/* The view's column list, for INSERT. */
static char *
mv_column_list(MatviewAnalysis *analysis)
{
	StringInfoData list;
	int			i;

	initStringInfo(&list);
	for (i = 0; i < analysis->ncolumns; i++)
		appendStringInfo(&list, "%s%s", i > 0 ? ", " : "",
						 quote_identifier(analysis->column_names[i]));
	return list.data;
}

/*
 * Empty the view's table for a recompute without waiting for its readers
 * (BI queries) or making them queue behind the update.  TRUNCATE takes
 * ACCESS EXCLUSIVE until the update commits: requested while a long query
 * reads the table, it would wait for that query, and every query arriving
 * meanwhile would wait behind it.  So TRUNCATE (with the row hash index
 * dropped, to be built again after the INSERT) only for a bulk recompute
 * when nobody holds a lock on the table at this moment; readers arriving
 * then wait for the update's end, as for PostgreSQL's REFRESH MATERIALIZED
 * VIEW.  Otherwise, and always for a view recomputed in full at every
 * update, DELETE: readers keep reading the previous rows until the update
 * commits, and autovacuum reclaims them.
 */
static void
mv_empty_target(MvApply *apply, bool bulk)
{
	if (!bulk)
		SpiExecute(psprintf("DELETE FROM %s", apply->target), 0, NULL, NULL, NULL,
				   SPI_OK_DELETE);
	else if (SpiEmptyTable(apply->flow->target_relid))
		MatviewDropRowHashIndex(apply->flow->target_relid);
}

/* Empty the table (mv_empty_target) and INSERT; rows written into result. */
static void
mv_recompute(MvApply *apply, const char *query_sql, bool bulk,
			 FlowResult *result)
{
	uint64		inserted;

	mv_empty_target(apply, bulk);
	inserted = SpiExecute(psprintf("INSERT INTO %s (%s) %s", apply->target,
								   mv_column_list(&apply->analysis), query_sql),
						  0, NULL, NULL, NULL, SPI_OK_INSERT);
	result->rows_written += inserted;
	result->rows_read += inserted;
	result->changed = true;
}

/*
 * A full-maintenance view that reads only pipeline tables, none of which
 * this update changed, and that was computed before, is left alone.
 */
static bool
mv_full_is_current(MvApply *apply)
{
	ListCell   *cell;

	if (apply->flow_state == NULL ||
		!FlowDefinitionHas(apply->flow, "inputs") ||
		FlowDefinitionBool(apply->flow, "reads_plain_tables", true))
		return false;
	if (!DatumGetBool(DirectFunctionCall2(jsonb_exists,
										  JsonbPGetDatum(apply->flow_state),
										  CStringGetTextDatum("computed"))))
		return false;
	foreach(cell, FlowDefinitionStringList(apply->flow, "inputs", false))
	{
		Oid			relid = RelidFromQualifiedName(lfirst(cell), true);

		if (!OidIsValid(relid) ||
			list_member_oid(apply->context->changed_relids, relid))
			return false;
	}
	return true;
}

/* The warning event of an 'incremental' view that falls back. */
static void
mv_warn_fallback(MvApply *apply, const char *reason)
{
	EventLogWrite(apply->context->pipeline, apply->context->update_id,
				  apply->flow->flow_name, "materialized_view_fallback", "WARNING",
				  psprintf("materialized view %s was recomputed in full: %s",
						   apply->target, reason),
				  NULL);
}

static void mv_source_position(MvApply *apply, MatviewSource *source);

/*
 * The error of a view whose sources' columns are no longer those it was
 * created over: its query, analysed again at each update, would mean
 * something else or nothing, and its deltas would not fit its table.
 */
static void mv_columns_changed(MvApply *apply, const char *what,
							   const char *detail) pg_attribute_noreturn();

static void
mv_columns_changed(MvApply *apply, const char *what, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("materialized view %s cannot be updated: %s",
					apply->target, what),
			 errdetail("%s", detail),
			 errhint("Create the materialized view again with replace => true.")));
}

/*
 * Every column of a source must be in the relation its delta is read from
 * (a change feed, a capture log), by name and type: the delta is read by
 * the source's column names.  A capture log keeps the columns its table
 * had when capture began; a column added, renamed or retyped since is not
 * in it.
 */
static void
mv_check_delta_columns(MvApply *apply, MatviewSource *source)
{
	Oid			delta_relid = RelidFromQualifiedName(source->delta_relation, false);
	Relation	rel = relation_open(source->relid, AccessShareLock);
	TupleDesc	desc = RelationGetDescr(rel);
	int			i;

	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute attr = TupleDescAttr(desc, i);
		AttrNumber	attnum;

		if (attr->attisdropped)
			continue;
		attnum = get_attnum(delta_relid, NameStr(attr->attname));
		if (attnum != InvalidAttrNumber &&
			get_atttype(delta_relid, attnum) == attr->atttypid)
			continue;
		mv_columns_changed(apply,
						   psprintf("column \"%s\" of %s is not in %s",
									NameStr(attr->attname), source->name,
									source->delta_relation),
						   psprintf("%s keeps the columns %s had when it was made; a column was added, renamed or retyped since.",
									source->delta_relation, source->name));
	}
	relation_close(rel, AccessShareLock);
}

/*
 * A plain table's delta: its captured changes (capture.h), read like a
 * change feed.
 *
 * The ceiling protocol.  The delta terms join a source's delta with the
 * current state of the other references, and a plain table's state is
 * the table itself, so the table the view's statements see must be
 * exactly the table after the changes up to the range's to_id: a change
 * committed after to_id would be counted in the state but not in the
 * delta (lost at the next update, which would add it again: counted
 * twice).  So before CaptureBegin the table is locked in SHARE mode
 * (CaptureHoldWriters, which waits for the writers in flight, ROW EXCLUSIVE
 * or ACCESS EXCLUSIVE for TRUNCATE, without making new ones queue behind
 * it) and new writers are kept off until the view's transaction ends:
 * every change logged is then committed, to_id is the last of them, and
 * each later statement of the transaction (READ COMMITTED, a new snapshot
 * per statement) sees the table as of to_id.  The lock is taken in C, not
 * with LOCK TABLE, which would want UPDATE rights the pipeline owner need
 * not have (it may capture the table: it owns it or may create triggers
 * on it).  Writers of the table wait while a view reading it updates.
 *
 * The position is the view's own (flow_state, saved with its output) and
 * must be the one capture keeps for the flow (CaptureEnd in the same
 * transaction).  Capture's is ahead when a writer emptied the log past the
 * view's position (CaptureLimitLog); should they differ otherwise, the view
 * is recomputed as well rather than trusting either.
 */
static void
mv_plain_source_begin(MvApply *apply, MatviewSource *source)
{
	CaptureRange range;

	CaptureHoldWriters(source->relid);
	range = CaptureBegin(source->relid, apply->flow->flow_id,
						 apply->context->pipeline->owner);
	source->delta_relation = range.log_table;
	source->delta_relid = range.log_relid;
	source->delta_id_column = CAPTURE_CHANGE_ID_COLUMN;
	source->delta_sign_column = CAPTURE_SIGN_COLUMN;
	source->ceiling = range.to_id;
	mv_source_position(apply, source);
	if (source->has_position && source->position != range.from_id)
	{
		apply->recompute = true;
		apply->recompute_why = source->position < range.from_id ?
			psprintf("%s was emptied past its position (more unread changes than medallion.change_log_max_rows)",
					 range.log_table) :
			psprintf("its position in %s differs from the change capture's",
					 range.log_table);
	}
}

/* Where each source's delta is read, and how far it was consumed. */
static void
mv_source_begin(MvApply *apply, MatviewSource *source)
{
	if (source->kind == MATVIEW_SOURCE_APPEND_ONLY)
	{
		source->delta_relation = source->name;
		source->delta_relid = source->relid;
		source->delta_id_column = "_row_id";
		source->ceiling = FlowSourceCeiling(source->relid);
	}
	else if (source->kind == MATVIEW_SOURCE_CHANGE_FEED)
	{
		char	   *feed = FlowDefinitionString(source->cdc_flow, "change_feed", false);

		source->feed_relid = feed ? RelidFromQualifiedName(feed, true) : InvalidOid;
		if (!OidIsValid(source->feed_relid))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("the change feed of %s is missing", source->name),
					 errhint("Create the materialized view again with replace => true.")));
		source->delta_relation = CatalogQualifiedRelationName(source->feed_relid);
		source->delta_relid = source->feed_relid;
		source->delta_id_column = "_row_id";
		source->delta_sign_column = CHANGE_FEED_SIGN_COLUMN;
		CatalogShareLockFlow(source->cdc_flow);
		source->ceiling = FlowSourceCeiling(source->feed_relid);
	}
	else
		mv_plain_source_begin(apply, source);
	if (source->kind != MATVIEW_SOURCE_APPEND_ONLY)
		mv_check_delta_columns(apply, source);
}

/*
 * The consumed position of a source: flow_state's positions, by the
 * relation its delta is read from (written by mv_save_positions).
 */
static void
mv_source_position(MvApply *apply, MatviewSource *source)
{
	JsonbValue *positions;
	JsonbValue *position;

	source->has_position = false;
	if (apply->flow_state == NULL || !JB_ROOT_IS_OBJECT(apply->flow_state))
		return;
	positions = getKeyJsonValueFromContainer(&apply->flow_state->root,
											 "positions", strlen("positions"),
											 NULL);
	if (positions == NULL || positions->type != jbvBinary ||
		!JsonContainerIsObject(positions->val.binary.data))
		return;
	position = getKeyJsonValueFromContainer(positions->val.binary.data,
											source->delta_relation,
											strlen(source->delta_relation),
											NULL);
	if (position == NULL || position->type == jbvNull)
		return;
	if (position->type != jbvNumeric)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("the state of materialized view flow \"%s\" holds no number as its position in %s",
						apply->flow->flow_name, source->delta_relation),
				 errhint("Flow states are written by medallion only; run the pipeline with full_refresh => true to compute the view again.")));
	source->position = DatumGetInt64(DirectFunctionCall1(numeric_int8,
														 NumericGetDatum(position->val.numeric)));
	source->has_position = true;
}

/* Does a change feed hold a reset marker in (position, ceiling]? */
static bool
mv_feed_reset(MatviewSource *source)
{
	Oid			types[2] = {INT8OID, INT8OID};
	Datum		values[2] = {Int64GetDatum(source->position),
	Int64GetDatum(source->ceiling)};
	bool		isnull;

	SpiExecuteKept(psprintf("SELECT EXISTS (SELECT FROM %s WHERE _row_id OPERATOR(pg_catalog.>) $1"
							" AND _row_id OPERATOR(pg_catalog.<=) $2"
							" AND " CHANGE_FEED_SIGN_COLUMN " OPERATOR(pg_catalog.=) 0)::pg_catalog.int4::pg_catalog.int8",
							source->delta_relation),
				   2, types, values, NULL, SPI_OK_SELECT);
	return SpiGetInt64(0, 1, &isnull) != 0;
}

/* Ceilings and positions of every source; whether to recompute. */
static void
mv_read_sources(MvApply *apply)
{
	ListCell   *cell;

	foreach(cell, apply->analysis.sources)
	{
		MatviewSource *source = lfirst(cell);

		mv_source_begin(apply, source);
		mv_source_position(apply, source);
		if (!source->has_position)
		{
			apply->recompute = true;
			apply->recompute_why = "no previous state";
		}
		else if (source->ceiling < source->position)
		{
			apply->recompute = true;
			apply->recompute_why = psprintf("%s started over", source->delta_relation);
		}
		else if (source->ceiling > source->position)
		{
			apply->any_change = true;
			if (source->kind == MATVIEW_SOURCE_CHANGE_FEED && mv_feed_reset(source))
			{
				apply->recompute = true;
				apply->recompute_why = psprintf("the auto CDC flow of %s derived its target again",
												source->name);
			}
			else if (source->kind == MATVIEW_SOURCE_CHANGE_FEED)
				ChangeFeedEnsureStatistics(source->feed_relid,
										   source->ceiling - source->position);
		}
	}
}

/* Save the ceilings as the positions (flow_state), in this transaction. */
static void
mv_save_positions(MvApply *apply)
{
	StringInfoData state;
	ListCell   *cell;

	initStringInfo(&state);
	appendStringInfoString(&state, "{\"computed\": true, \"positions\": {");
	foreach(cell, apply->analysis.sources)
	{
		MatviewSource *source = lfirst(cell);

		if (foreach_current_index(cell) > 0)
			appendStringInfoString(&state, ", ");
		escape_json(&state, source->delta_relation);
		appendStringInfo(&state, ": " INT64_FORMAT, source->ceiling);
		if (source->kind == MATVIEW_SOURCE_PLAIN)
			CaptureEnd(source->relid, apply->flow->flow_id, source->ceiling);
	}
	appendStringInfo(&state, "}, \"source_columns\": %s}",
					 MatviewSourceColumnsJson(&apply->analysis));
	CatalogSetFlowStateText(apply->flow->flow_id, state.data);
}

/*
 * The CTE deleting the removed rows through the target's row hash index:
 * for each row of the net change with weight w < 0, at most -w target rows
 * equal to it (whole rows, NULLs equal), each found by an index probe.
 */
static void
mv_append_delete_by_hash(MvApply *apply, StringInfo sql, const char *row)
{
	appendStringInfo(sql,
					 "__medallion_del AS (DELETE FROM %s WHERE ctid OPERATOR(pg_catalog.=) ANY (ARRAY(\n"
					 "  SELECT __medallion_x.ctid FROM __medallion_d, LATERAL (\n"
					 "    SELECT __medallion_t.ctid FROM %s __medallion_t\n"
					 "     WHERE %s OPERATOR(pg_catalog.=) pg_catalog.hash_record(ROW(%s)::%s)\n"
					 "       AND __medallion_t OPERATOR(pg_catalog.*=) ROW(%s)::%s\n"
					 "     LIMIT pg_catalog.abs(__medallion_d.w)) __medallion_x\n"
					 "   WHERE __medallion_d.w OPERATOR(pg_catalog.<) 0))\n"
					 "  RETURNING 1),\n",
					 apply->target, apply->target,
					 MatviewRowHashSql(&apply->analysis, "__medallion_t"),
					 row, apply->target, row, apply->target);
}

/*
 * The GROUP BY list of a view's rows (c1..cn): each column, and beside it
 * what tells its equal values apart when they may look different, so that
 * a row removed and an equal row added that looks otherwise (1.0 replaced
 * by 1.00) are not taken for no change.
 */
static char *
mv_row_group_list(MatviewAnalysis *analysis)
{
	StringInfoData list;
	ListCell   *cell;
	int			column = 0;

	initStringInfo(&list);
	foreach(cell, analysis->query->targetList)
	{
		TargetEntry *tle = lfirst(cell);

		if (tle->resjunk)
			continue;
		MatviewAppendGroupColumn(&list, psprintf("c%d", ++column),
								 exprType((Node *) tle->expr),
								 exprTypmod((Node *) tle->expr),
								 exprCollation((Node *) tle->expr));
	}
	return list.data;
}

/*
 * A join's net change, applied to the target as a bag.  A removed row is
 * matched by image equality (OPERATOR(pg_catalog.*=)): of two rows equal
 * but shown differently, the one removed is the one the change names.
 */
static char *
mv_rows_delta_sql(MvApply *apply)
{
	MatviewAnalysis *analysis = &apply->analysis;
	StringInfoData sql;
	StringInfoData columns;
	StringInfoData row;
	int			i;

	initStringInfo(&columns);
	initStringInfo(&row);
	for (i = 1; i <= analysis->ncolumns; i++)
	{
		appendStringInfo(&columns, "%sc%d", i > 1 ? ", " : "", i);
		appendStringInfo(&row, "%s__medallion_d.c%d", i > 1 ? ", " : "", i);
	}
	initStringInfo(&sql);
	appendStringInfo(&sql,
					 "WITH __medallion_d AS MATERIALIZED (\n"
					 "  SELECT %s, pg_catalog.sum(w)::pg_catalog.int8 AS w FROM (\n%s\n) __medallion_u\n"
					 "  GROUP BY %s HAVING pg_catalog.sum(w) OPERATOR(pg_catalog.<>) 0),\n",
					 columns.data, MatviewDeltaTermsSql(analysis, false),
					 mv_row_group_list(analysis));
	if (apply->row_hash)
		mv_append_delete_by_hash(apply, &sql, row.data);
	else
		appendStringInfo(&sql,
						 "__medallion_del AS (DELETE FROM %s WHERE ctid OPERATOR(pg_catalog.=) ANY (ARRAY(\n"
						 "  SELECT __medallion_x.ctid FROM (\n"
						 "    SELECT __medallion_t.ctid, __medallion_t AS r,\n"
						 "           pg_catalog.row_number() OVER (PARTITION BY __medallion_t,\n"
						 "             __medallion_t::pg_catalog.text COLLATE pg_catalog.\"C\") AS n\n"
						 "      FROM %s __medallion_t\n"
						 "     WHERE __medallion_t IN (SELECT ROW(%s)::%s FROM __medallion_d\n"
						 "                              WHERE w OPERATOR(pg_catalog.<) 0)) __medallion_x\n"
						 "  JOIN __medallion_d ON ROW(%s)::%s OPERATOR(pg_catalog.*=) __medallion_x.r\n"
						 "   AND __medallion_x.n OPERATOR(pg_catalog.<=) OPERATOR(pg_catalog.-) __medallion_d.w))\n"
						 "  RETURNING 1),\n",
						 apply->target, apply->target, row.data, apply->target,
						 row.data, apply->target);
	appendStringInfo(&sql,
					 "__medallion_ins AS (INSERT INTO %s (%s)\n"
					 "  SELECT %s FROM __medallion_d, pg_catalog.generate_series(1, __medallion_d.w)\n"
					 "   WHERE __medallion_d.w OPERATOR(pg_catalog.>) 0 RETURNING 1)\n"
					 "SELECT (SELECT pg_catalog.count(*) FROM __medallion_del),\n"
					 "       (SELECT pg_catalog.count(*) FROM __medallion_ins)",
					 apply->target, mv_column_list(analysis), row.data);
	return sql.data;
}

/* A grouped view: the groups of changed rows deleted and recomputed. */
static char *
mv_groups_delta_sql(MvApply *apply)
{
	MatviewAnalysis *analysis = &apply->analysis;
	StringInfoData sql;
	StringInfoData keys;
	StringInfoData target_keys;
	int			i;

	initStringInfo(&keys);
	initStringInfo(&target_keys);
	for (i = 0; i < analysis->ngroup_columns; i++)
	{
		appendStringInfo(&keys, "%sc%d", i > 0 ? ", " : "", i + 1);
		appendStringInfo(&target_keys, "%s__medallion_t.%s", i > 0 ? ", " : "",
						 quote_identifier(analysis->column_names[analysis->group_columns[i]]));
	}
	initStringInfo(&sql);
	appendStringInfo(&sql,
					 "WITH __medallion_a AS MATERIALIZED (\n"
					 "  SELECT DISTINCT %s FROM (\n%s\n) __medallion_u),\n"
					 "__medallion_del AS (DELETE FROM %s __medallion_t USING __medallion_a\n"
					 "  WHERE ROW(%s) OPERATOR(pg_catalog.=) __medallion_a.* RETURNING 1),\n"
					 "__medallion_ins AS (INSERT INTO %s (%s)\n%s\n RETURNING 1)\n"
					 "SELECT (SELECT pg_catalog.count(*) FROM __medallion_del),\n"
					 "       (SELECT pg_catalog.count(*) FROM __medallion_ins)",
					 keys.data, MatviewDeltaTermsSql(analysis, true),
					 apply->target, target_keys.data,
					 apply->target, mv_column_list(analysis),
					 MatviewTouchedGroupsQuerySql(analysis, "__medallion_a"));
	return sql.data;
}

/*
 * The dense rank of each source's delta by size among the view's sources
 * (1: the largest), 0 for an empty one.
 */
static int *
mv_delta_size_ranks(MvApply *apply)
{
	int			nsources = list_length(apply->analysis.sources);
	int64	   *sizes = palloc(sizeof(int64) * nsources);
	int		   *ranks = palloc(sizeof(int) * nsources);
	int			i;

	for (i = 0; i < nsources; i++)
		sizes[i] = MatviewDeltaRows(list_nth(apply->analysis.sources, i));
	for (i = 0; i < nsources; i++)
	{
		int			j;

		ranks[i] = sizes[i] > 0 ? 1 : 0;
		for (j = 0; j < nsources && sizes[i] > 0; j++)
		{
			bool		seen = false;
			int			k;

			/* each larger size counted once */
			for (k = 0; k < j; k++)
				seen |= sizes[k] == sizes[j];
			if (sizes[j] > sizes[i] && !seen)
				ranks[i]++;
		}
	}
	return ranks;
}

/*
 * What the text of the view's delta statement is built from, apart from
 * the catalogs (see matview_sql_cache.c): the view, its query, owner and
 * search_path, its target and state, where each source's delta is read
 * from, and the order of the sources' deltas by size, which orders the
 * terms and leaves out those of empty deltas (matview_delta.c).
 */
static char *
mv_delta_shape_key(MvApply *apply)
{
	StringInfoData key;
	int		   *ranks = mv_delta_size_ranks(apply);
	ListCell   *cell;

	initStringInfo(&key);
	appendStringInfo(&key, "%s%s\n%d\n", apply->analysis_key,
					 apply->state_table ? apply->state_table : "",
					 apply->row_hash);
	foreach(cell, apply->analysis.sources)
	{
		MatviewSource *source = lfirst(cell);

		appendStringInfo(&key, "%s %d\n", source->delta_relation,
						 ranks[foreach_current_index(cell)]);
	}
	return key.data;
}

/*
 * The relations the delta statement is built from: the sources, where
 * their deltas are read, the target, the group state and its value tables.
 */
static List *
mv_relations_read(MvApply *apply)
{
	List	   *relids = list_make1_oid(apply->flow->target_relid);
	ListCell   *cell;

	foreach(cell, apply->analysis.sources)
	{
		MatviewSource *source = lfirst(cell);

		relids = lappend_oid(relids, source->relid);
		relids = lappend_oid(relids, RelidFromQualifiedName(source->delta_relation, true));
	}
	if (apply->state_table != NULL)
		relids = lappend_oid(relids, RelidFromQualifiedName(apply->state_table, true));
	foreach(cell, MatviewRunningValueTables(&apply->analysis))
		relids = lappend_oid(relids, RelidFromQualifiedName(lfirst(cell), true));
	return relids;
}

/*
 * The text of the view's delta statement: the one a continuous worker
 * kept for its shape (*text_kept), else built.  *key is the shape's key
 * when the worker keeps texts (give the text back once it ran), else NULL.
 */
static char *
mv_delta_sql(MvApply *apply, char **key, int *eager_term_count,
			 bool *text_kept)
{
	char	   *sql = NULL;

	*key = StatementCacheEnabled() ? mv_delta_shape_key(apply) : NULL;
	if (*key != NULL)
		sql = MatviewSqlCacheTake(*key, eager_term_count);
	*text_kept = sql != NULL;
	if (sql != NULL)
		return sql;
	if (*key != NULL)
		MatviewSqlCacheReserve(*key, mv_relations_read(apply));
	*eager_term_count = 0;
	if (apply->state_table != NULL)
		return MatviewRunningDeltaSql(&apply->analysis, apply->target,
									  mv_column_list(&apply->analysis),
									  apply->state_table, eager_term_count);
	if (apply->analysis.grouped)
		return mv_groups_delta_sql(apply);
	return mv_rows_delta_sql(apply);
}

/* Details of the flow_progress event: how the view was maintained. */
static void
mv_report(MvApply *apply, FlowResult *result, const char *how,
		  const char *why)
{
	FlowResultDetail(result);
	appendStringInfoString(&result->details, "\"maintenance\": ");
	escape_json(&result->details, how);
	if (why != NULL)
	{
		appendStringInfoString(&result->details, ", \"maintenance_reason\": ");
		escape_json(&result->details, why);
	}
}

/*
 * A grouped view kept by running values: its state table, made at a
 * recompute; without one, recompute.
 */
static void
mv_running_state(MvApply *apply)
{
	MatviewRunningAnalyze(&apply->analysis);
	if (apply->analysis.running == NULL)
		return;
	apply->state_table = MatviewRunningStateTable(apply->flow, &apply->analysis,
												  apply->context->pipeline->owner,
												  apply->recompute);
	if (apply->state_table != NULL)
		return;
	apply->recompute = true;
	apply->recompute_why = "no group state";
	apply->state_table = MatviewRunningStateTable(apply->flow, &apply->analysis,
												  apply->context->pipeline->owner,
												  true);
}

/*
 * The indexes that keep the deltas' cost that of the change
 * (matview_indexes.c): on the join keys, the change feeds' row ids, and for
 * a view of rows on the hash of its rows.
 */
static void
mv_ensure_indexes(MvApply *apply)
{
	MatviewEnsureJoinIndexes(&apply->analysis, apply->context->pipeline->owner,
							 apply->flow->target_relid);
	MatviewEnsureFeedIndexes(&apply->analysis);
	if (!apply->analysis.grouped)
		apply->row_hash = MatviewEnsureRowHashIndex(&apply->analysis,
													apply->flow->target_relid);
}

/*
 * Plan the delta statements without merge joins, until AtEOXact_GUC of the
 * returned nest level.  A delta term joins a few changed rows to a table's
 * whole state; once the planner knows the delta's size (row_range.c) it
 * may walk the state's index in join-key order up to the delta's largest
 * key (a merge join), which it costs below a nested loop of index lookups
 * because it counts each lookup's heap pages as random reads.  The state
 * of a view being maintained is read at every update and cached: the walk
 * read 121,000 orders for 20 moved customers (66 ms), the lookups read
 * their 2,000 orders (5 ms).  Hash joins remain for large deltas.
 */
static int
mv_delta_planning_begin(void)
{
	int			nest_level = NewGUCNestLevel();

	SetSettingInNestLevel("enable_mergejoin", "off");
	return nest_level;
}

/* An incremental view's update: deltas, or a bounded recompute. */
static void
mv_apply_incremental(MvApply *apply, FlowResult *result)
{
	mv_read_sources(apply);
	mv_running_state(apply);
	if (!apply->recompute && apply->any_change)
		mv_ensure_indexes(apply);
	if (apply->recompute && apply->state_table != NULL)
	{
		mv_empty_target(apply, true);
		MatviewRunningRecompute(&apply->analysis, apply->target,
								mv_column_list(&apply->analysis),
								apply->state_table, result);
		mv_report(apply, result, "recomputed", apply->recompute_why);
	}
	else if (apply->recompute)
	{
		mv_recompute(apply, MatviewBoundedQuerySql(&apply->analysis), true,
					 result);
		mv_report(apply, result, "recomputed", apply->recompute_why);
	}
	else if (apply->any_change)
	{
		int			nest_level = mv_delta_planning_begin();
		int			eager_terms;
		bool		text_kept;
		char	   *key;
		char	   *sql;

		MatviewParameterizeRanges(&apply->analysis);
		sql = mv_delta_sql(apply, &key, &eager_terms, &text_kept);
		if (apply->state_table != NULL)
			MatviewRunningApply(&apply->analysis, sql, apply->state_table,
								result);
		else
			MatviewRunDelta(&apply->analysis, sql, result);
		if (key != NULL)
			MatviewSqlCacheGiveBack(key, sql, eager_terms);
		AtEOXact_GUC(true, nest_level);
		mv_report(apply, result, "deltas", NULL);
		if (eager_terms > 0)
			appendStringInfo(&result->details, ", \"eagerly_aggregated_terms\": %d",
							 eager_terms);
		if (apply->analysis.statement_use != STATEMENT_RUN_ONCE)
			appendStringInfo(&result->details, ", \"statement\": \"kept\", \"plan\": \"%s\"",
							 apply->analysis.statement_use == STATEMENT_KEPT_PLAN_REUSED ?
							 "reused" : "made");
		if (text_kept)
			appendStringInfoString(&result->details, ", \"statement_text\": \"kept\"");
	}
	if (apply->state_table != NULL && (apply->recompute || apply->any_change))
		appendStringInfoString(&result->details, ", \"groups\": \"running values\"");
	if (apply->recompute)
		mv_ensure_indexes(apply);
	if (apply->recompute || apply->any_change)
		mv_save_positions(apply);
}

/* A full-maintenance view's update (or an incremental one that cannot be). */
static void
mv_apply_full(MvApply *apply, FlowResult *result, const char *reason)
{
	if (apply->incremental ? false : mv_full_is_current(apply))
		return;
	mv_recompute(apply, UserSqlPlaceQuery(apply->query_text), false, result);
	mv_report(apply, result, "recomputed", reason);
	if (strcmp(apply->policy, MATVIEW_POLICY_INCREMENTAL) == 0 ||
		apply->incremental)
		mv_warn_fallback(apply, reason);
	CatalogSetFlowStateText(apply->flow->flow_id, "{\"computed\": true}");
}

/*
 * One column a view's query used, as its definition recorded it, against
 * the source as it is now (the source locked, so that it cannot change
 * before the query is analysed).
 */
static void
mv_check_source_column(MvApply *apply, const char *table, AttrNumber attnum,
					   const char *name, Oid type, int32 typmod)
{
	Oid			relid = RelidFromQualifiedName(table, true);
	HeapTuple	tuple;
	Form_pg_attribute attr;

	if (!OidIsValid(relid))
		mv_columns_changed(apply, psprintf("table %s, which it reads, no longer exists", table),
						   "A source renamed or dropped since the view was last updated cannot be read by its query.");
	LockRelationOid(relid, AccessShareLock);
	tuple = SearchSysCacheAttNum(relid, attnum);
	attr = HeapTupleIsValid(tuple) ? (Form_pg_attribute) GETSTRUCT(tuple) : NULL;
	if (attr == NULL || attr->attisdropped)
		mv_columns_changed(apply, psprintf("column \"%s\" of %s was dropped", name, table),
						   "The view's query uses that column.");
	if (strcmp(NameStr(attr->attname), name) != 0)
		mv_columns_changed(apply, psprintf("column \"%s\" of %s was renamed to \"%s\"",
										   name, table, NameStr(attr->attname)),
						   "The view's query uses that column.");
	if (attr->atttypid != type || attr->atttypmod != typmod)
		mv_columns_changed(apply, psprintf("column \"%s\" of %s changed type from %s to %s",
										   name, table, format_type_with_typemod(type, typmod),
										   format_type_with_typemod(attr->atttypid, attr->atttypmod)),
						   "The view's query uses that column.");
	ReleaseSysCache(tuple);
}

/*
 * The columns the view's query used when the view's rows were computed
 * (recorded in its state, "source_columns", at each update by deltas or
 * bounded recompute) must still be there, with the same names and types:
 * the query is analysed again at each update, and a column dropped,
 * renamed (or another renamed to its name) or retyped would make it fail
 * obscurely or mean something else than the rows the view holds.  Checked
 * before the query is analysed, so that the error says what changed.  A
 * view without that state (new, refreshed, replaced, or recomputed in full
 * at every update) is computed from scratch: nothing to check.
 */
static void
mv_check_source_columns(MvApply *apply)
{
	Oid			types[1] = {JSONBOID};
	Datum		values[1];
	uint64		count;
	uint64		row;

	if (apply->flow_state == NULL || !apply->incremental)
		return;
	values[0] = JsonbPGetDatum(apply->flow_state);
	SPI_connect();
	count = SpiExecuteKept("SELECT s.key, (c.value OPERATOR(pg_catalog.->>) 'attnum')::pg_catalog.int2,"
						   "       c.value OPERATOR(pg_catalog.->>) 'name',"
						   "       pg_catalog.to_regtype(c.value OPERATOR(pg_catalog.->>) 'type')::pg_catalog.oid,"
						   "       (c.value OPERATOR(pg_catalog.->>) 'typmod')::pg_catalog.int4"
						   "  FROM pg_catalog.jsonb_each(COALESCE($1 OPERATOR(pg_catalog.->) 'source_columns',"
						   "                                       '{}'::pg_catalog.jsonb)) s,"
						   "       pg_catalog.jsonb_array_elements(s.value) c",
						   1, types, values, NULL, SPI_OK_SELECT);
	for (row = 0; row < count; row++)
	{
		bool		isnull;

		mv_check_source_column(apply, SpiGetText(row, 1),
							   DatumGetInt16(SpiGetDatum(row, 2, &isnull)),
							   SpiGetText(row, 3),
							   DatumGetObjectId(SpiGetDatum(row, 4, &isnull)),
							   DatumGetInt32(SpiGetDatum(row, 5, &isnull)));
	}
	SPI_finish();
}

/*
 * The query analysed now must give the columns of the view's table (a
 * "SELECT *" gains the columns added to its sources).
 */
static void
mv_check_target(MvApply *apply)
{
	if (!MatviewTargetMatches(&apply->analysis, apply->flow->target_relid))
		mv_columns_changed(apply, "its query now gives other columns than its table",
						   "The columns of a table the query reads changed since the view was created (a column added to a table it reads with *, for instance).");
}

/*
 * What a view's analysis is made from, apart from the catalogs
 * (matview_sql_cache.c): the view, the user and search_path its query is
 * analysed under, the query, and the table the analysis is checked
 * against; the first part of its delta statement's text's key as well.
 */
static char *
mv_analysis_key(MvApply *apply)
{
	return psprintf("%d\n%u\n%s\n%s\n%s\n", apply->flow->flow_id, GetUserId(),
					GetConfigOption("search_path", false, false),
					apply->query_text, apply->target);
}

/*
 * MaterializedViewApply: see matview.h.  Runs as the pipeline owner with
 * the pipeline's search_path (the update's owner context), so that the
 * query is analysed and the generated SQL deparsed and run under the same
 * names.
 */
void
MaterializedViewApply(FlowContext *context, FlowDesc *flow, FlowResult *result)
{
	MvApply		apply;
	int64		watermark;
	int			nest_level;
	bool		analysis_kept;
	ErrorContextCallback errcallback;

	errcallback.callback = mv_apply_error_callback;
	errcallback.arg = flow->flow_name;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;

	memset(&apply, 0, sizeof(MvApply));
	apply.context = context;
	apply.flow = flow;
	CatalogLockFlow(flow, &watermark, &apply.flow_state);
	apply.target = CatalogQualifiedRelationName(flow->target_relid);
	apply.query_text = FlowDefinitionString(flow, "query", true);
	apply.policy = FlowDefinitionString(flow, "refresh_policy", true);
	apply.incremental = strcmp(FlowDefinitionString(flow, "maintenance", true),
							   MATVIEW_MAINTENANCE_INCREMENTAL) == 0;

	nest_level = UserSqlSettingsEnter(NULL);
	apply.analysis_key = mv_analysis_key(&apply);
	analysis_kept = MatviewAnalysisCacheTake(apply.analysis_key, &apply.analysis);
	if (!analysis_kept)
	{
		mv_check_source_columns(&apply);
		MatviewAnalysisCacheMake(apply.analysis_key, context->pipeline,
								 apply.query_text, &apply.analysis);
	}
	mv_check_target(&apply);
	SPI_connect();
	if (!apply.incremental)
		mv_apply_full(&apply, result,
					  FlowDefinitionString(flow, "maintenance_reason", false));
	else if (!apply.analysis.incremental)
		mv_apply_full(&apply, result, apply.analysis.reason);
	else
		mv_apply_incremental(&apply, result);
	SPI_finish();
	if (analysis_kept)
	{
		FlowResultDetail(result);
		appendStringInfoString(&result->details, "\"analysis\": \"kept\"");
	}
	MatviewAnalysisCacheGiveBack(apply.analysis_key);
	UserSqlSettingsLeave(nest_level);
	error_context_stack = errcallback.previous;
}
