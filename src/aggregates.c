/*-------------------------------------------------------------------------
 *
 * aggregates.c
 *	  Gold aggregate flows, maintained incrementally: applying a flow, and
 *	  capturing the changes of a source written by another aggregate flow.
 *
 * An aggregate flow keeps its target equal, after every update, to
 *
 *	 SELECT <group_by>, <aggregates> FROM <source> WHERE <filter>
 *	 GROUP BY <group_by>
 *
 * by rewriting only the groups whose input rows changed in the update: the
 * target's rows of those groups are deleted and the groups' rows computed
 * again (from the source, or from per-group state kept by deltas), so any
 * aggregate works (count(DISTINCT), min, max, percentiles ...), groups that
 * became empty disappear, and a row that moved from one group to another
 * touches both.  Recomputing a group is idempotent, so change capture may
 * over-approximate the touched groups; it must never miss one.
 *
 * Change capture depends on how the source is written (source_kind):
 *
 * - "append_only": bronze and silver targets, and any table with a
 *   "_row_id" identity column.  Rows are only inserted, so the changes are
 *   the rows in (watermark, ceiling], read by the safe ceiling protocol of
 *   flow.h; the flow's watermark is the source's last _row_id aggregated.
 *
 * - "auto_cdc": the target of an AUTO CDC flow, whose rows are inserted,
 *   updated (an SCD2 version closing) and deleted.  The CDC flow appends
 *   every row it removes or adds to the target's change feed while an
 *   aggregate flow reads it (change_feed.c), so the changes are the feed's
 *   rows in (watermark, ceiling], with their sign, and the watermark is a
 *   _row_id of the feed.  A reset marker in the range (the CDC flow derived
 *   its target again: an SCD1 truncate) makes the update a full recompute.
 *
 * - "aggregate": the target of another aggregate flow, which medallion
 *   writes with plain DELETE and INSERT.  Statement-level triggers with
 *   transition tables on the source (one per event) record the groups of
 *   the old and new rows in <target>__changes; an update consumes them.
 *
 * Two ways to apply the changes (the flow's "maintenance", chosen at
 * creation): "delta" adds them to per-group running state when every item
 * allows it (aggregate_delta.c; append_only and auto_cdc sources), else
 * "recompute" recomputes, from the source, the groups of the changed rows
 * (a removed row's group and an added row's group).  A full recompute
 * (delete everything, aggregate the whole source) is chosen when the flow
 * has no previous state (its first update, after a full refresh), when the
 * changes are a large share of the source (a fifth to recompute; as many
 * as the source's rows for delta maintenance), or, to recompute, when the
 * touched groups are at least a fifth of the target's groups: then one
 * pass over the source costs less than an index probe per group.
 *
 * The other files of the family are listed in aggregates_internal.h.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/aggregates.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/rel.h"

#include "aggregates_internal.h"
#include "cdc.h"
#include "catalog.h"
#include "change_feed.h"
#include "flow.h"
#include "spi_util.h"
#include "user_sql.h"
#include "version.h"

PG_FUNCTION_INFO_V1(medallion_aggregate_capture);

/*
 * A number in flow_state, which every apply rewrites: *found says whether
 * it was there (a flow_state without it means no previous state).
 */
static int64
agg_state_int(Jsonb *state, const char *key, bool *found)
{
	JsonbValue *value;

	*found = false;
	if (state == NULL || !JB_ROOT_IS_OBJECT(state))
		return 0;
	value = getKeyJsonValueFromContainer(&state->root, key, strlen(key), NULL);
	if (value == NULL || value->type != jbvNumeric)
		return 0;
	*found = true;
	return DatumGetInt64(DirectFunctionCall1(numeric_int8,
											 NumericGetDatum(value->val.numeric)));
}

/* The progress an apply starts from, read from flow_state. */
static void
agg_state_read(Jsonb *flow_state, AggProgress *state)
{
	bool		found;

	memset(state, 0, sizeof(AggProgress));
	state->groups = agg_state_int(flow_state, "groups", &found);
	state->valid = found;
	state->rows = agg_state_int(flow_state, "rows", &found);
}

/*
 * flow_state: the target's groups, and, when a full recompute is chosen by
 * comparing the changes with the source (auto_cdc sources, delta
 * maintenance), the source's rows that pass the filter.
 */
static Jsonb *
agg_state_build(AggProgress *state, AggSpec *spec)
{
	char	   *json;

	if (spec->delta != NULL || spec->kind == AGG_SOURCE_CDC)
		json = psprintf("{\"groups\": " INT64_FORMAT ", \"rows\": " INT64_FORMAT "}",
						state->groups, state->rows);
	else
		json = psprintf("{\"groups\": " INT64_FORMAT "}", state->groups);
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(json)));
}

/*
 * Append-only source: the groups of the rows in (low, high] that pass the
 * filter, with the number of such rows.
 */
static uint64
agg_touched_append(AggSpec *spec, int64 low, int64 high, int64 *rows)
{
	StringInfoData sql;
	Oid			types[2] = {INT8OID, INT8OID};
	Datum		values[2] = {Int64GetDatum(low), Int64GetDatum(high)};
	uint64		n;
	uint64		row;

	initStringInfo(&sql);
	appendStringInfo(&sql,
					 "SELECT %s, pg_catalog.count(*)\n"
					 "  FROM %s\n"
					 " WHERE _row_id OPERATOR(pg_catalog.>) $1\n"
					 "   AND _row_id OPERATOR(pg_catalog.<=) $2\n"
					 "   AND %s\n"
					 " GROUP BY %s",
					 AggGroupExprsSql(spec), spec->source_name,
					 AggWhereSql(spec), AggPositions(spec->ngroups));
	n = SpiExecute(sql.data, 2, types, values, NULL, SPI_OK_SELECT);
	*rows = 0;
	for (row = 0; row < n; row++)
		*rows += SpiGetInt64(row, spec->ngroups + 1, NULL);
	return n;
}

/*
 * auto_cdc source, recomputed: the groups of the change feed's rows in
 * (low, high] that pass the filter (a removed row's group, an added row's
 * group), with the number of such rows in *rows and their sum of signs in
 * *net_rows.  The feed is read under the source's name, so that the user's
 * expressions resolve as over the source.
 */
static uint64
agg_touched_feed(AggSpec *spec, int64 low, int64 high, int64 *rows,
				 int64 *net_rows)
{
	Oid			types[2] = {INT8OID, INT8OID};
	Datum		values[2] = {Int64GetDatum(low), Int64GetDatum(high)};
	uint64		n;
	uint64		row;

	n = SpiExecute(psprintf("SELECT %s, pg_catalog.count(*),"
							" pg_catalog.sum(" CHANGE_FEED_SIGN_COLUMN ")::pg_catalog.int8\n"
							"  FROM %s AS %s\n"
							" WHERE _row_id OPERATOR(pg_catalog.>) $1\n"
							"   AND _row_id OPERATOR(pg_catalog.<=) $2\n"
							"   AND " CHANGE_FEED_SIGN_COLUMN " OPERATOR(pg_catalog.<>) 0\n"
							"   AND %s\n"
							" GROUP BY %s",
							AggGroupExprsSql(spec), spec->feed_table,
							spec->source_ref, AggWhereSql(spec),
							AggPositions(spec->ngroups)),
				   2, types, values, NULL, SPI_OK_SELECT);
	*rows = 0;
	*net_rows = 0;
	for (row = 0; row < n; row++)
	{
		*rows += SpiGetInt64(row, spec->ngroups + 1, NULL);
		*net_rows += SpiGetInt64(row, spec->ngroups + 2, NULL);
	}
	return n;
}

/*
 * Is there a reset marker (sign 0) in (low, high] of a change feed?  Its
 * CDC flow derived the target again from scratch (a full refresh, an SCD1
 * truncate): the changes are not in the feed.
 */
static bool
agg_feed_has_reset(AggSpec *spec, int64 low, int64 high)
{
	Oid			types[2] = {INT8OID, INT8OID};
	Datum		values[2] = {Int64GetDatum(low), Int64GetDatum(high)};
	bool		isnull;

	SpiExecute(psprintf("SELECT EXISTS (SELECT FROM %s"
						" WHERE _row_id OPERATOR(pg_catalog.>) $1"
						"   AND _row_id OPERATOR(pg_catalog.<=) $2"
						"   AND " CHANGE_FEED_SIGN_COLUMN " OPERATOR(pg_catalog.=) 0)",
						spec->feed_table),
			   2, types, values, NULL, SPI_OK_SELECT);
	return DatumGetBool(SpiGetDatum(0, 1, &isnull));
}

/* Error context of an apply. */
static void
agg_apply_error_callback(void *arg)
{
	errcontext("applying aggregate flow \"%s\"", (const char *) arg);
}

/*
 * One apply of an aggregate flow, phase by phase: the flow's spec and
 * progress, the changes read since the last apply, and whether a full
 * recompute replaces them.
 */
typedef struct AggApply
{
	FlowDesc   *flow;
	AggSpec    *spec;
	AggProgress progress;		/* as of the last apply, then updated */
	AggRun		run;
	int64		watermark;		/* as of the last apply */
	int64		new_watermark;
	int64		changes;		/* change rows that pass the filter */
	int64		net_rows;		/* their sum of signs */
	SPITupleTable *touched;		/* the touched groups (group columns first) */
	uint64		ntouched;
	bool		full;			/* recompute everything instead */
	const char *full_reason;
} AggApply;

/* Decide a full recompute, for the reason the event log will show. */
static void
agg_apply_go_full(AggApply *apply, const char *reason)
{
	apply->full = true;
	apply->full_reason = reason;
}

/*
 * The flow's progress as of now, locked against a concurrent apply, and
 * its spec; a flow without previous state recomputes everything.
 */
static void
agg_apply_begin(AggApply *apply, FlowDesc *flow)
{
	Jsonb	   *flow_state;

	memset(apply, 0, sizeof(AggApply));
	apply->flow = flow;
	CatalogLockFlow(flow, &apply->watermark, &flow_state);
	agg_state_read(flow_state, &apply->progress);
	apply->new_watermark = apply->watermark;
	apply->spec = AggSpecLoad(flow, true);
	if (!apply->progress.valid)
		agg_apply_go_full(apply, "no previous state");
}

/* Append-only source: the rows in (watermark, ceiling]. */
static void
agg_read_changes_append(AggApply *apply)
{
	AggSpec    *spec = apply->spec;
	int64		watermark = apply->watermark;
	int64		ceiling = FlowSourceCeiling(spec->source_relid);

	apply->new_watermark = Max(ceiling, watermark);
	if (apply->full || ceiling <= watermark)
		return;
	if ((ceiling - watermark) * AGG_FULL_SHARE >= ceiling)
	{
		agg_apply_go_full(apply, "new source rows are a large share of the source");
		return;
	}
	if (spec->delta != NULL)
		apply->ntouched = AggDeltaChanges(spec, watermark, ceiling,
										  &apply->changes, &apply->net_rows);
	else
		apply->ntouched = agg_touched_append(spec, watermark, ceiling,
											 &apply->changes);
	apply->touched = SPI_tuptable;
}

/*
 * auto_cdc source: the rows of the CDC flow's change feed in (watermark,
 * ceiling].  No apply of the CDC flow is in progress once its row is
 * locked, so the feed and the target agree.
 */
static void
agg_read_changes_cdc(AggApply *apply)
{
	AggSpec    *spec = apply->spec;
	int64		watermark = apply->watermark;
	FlowDesc   *cdc_flow = CatalogGetFlowByTarget(spec->source_relid, true);
	int64		ceiling;

	if (cdc_flow == NULL || !CdcFlowTypeKeepsTarget(cdc_flow->type))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("source %s of flow \"%s\" is no longer the target of an auto CDC flow",
						spec->source_name, apply->flow->flow_name),
				 errhint("Drop the pipeline and create its flows again.")));
	CatalogShareLockFlow(cdc_flow);
	ceiling = FlowSourceCeiling(spec->feed_relid);

	/* a feed created again numbers its rows from 1 */
	if (!apply->full && ceiling < watermark)
		agg_apply_go_full(apply, "the change feed started over");
	apply->new_watermark = apply->full ? ceiling : Max(ceiling, watermark);
	if (apply->full || ceiling <= watermark)
		return;
	if (agg_feed_has_reset(spec, watermark, ceiling))
	{
		agg_apply_go_full(apply, "the auto CDC flow derived its target again");
		return;
	}

	/* Recomputing reads each touched group; delta maintenance each change. */
	if ((ceiling - watermark) * (spec->delta != NULL ? 1 : AGG_FULL_SHARE) >=
		apply->progress.rows)
	{
		agg_apply_go_full(apply, "changes are a large share of the source");
		return;
	}
	if (spec->delta != NULL)
		apply->ntouched = AggDeltaChanges(spec, watermark, ceiling,
										  &apply->changes, &apply->net_rows);
	else
		apply->ntouched = agg_touched_feed(spec, watermark, ceiling,
										   &apply->changes, &apply->net_rows);
	apply->touched = SPI_tuptable;
}

/*
 * Aggregate source: the groups its capture triggers recorded.  DELETE ...
 * RETURNING reads and consumes exactly the same rows, even if a writer adds
 * some meanwhile.
 */
static void
agg_read_changes_aggregate(AggApply *apply)
{
	AggSpec    *spec = apply->spec;
	uint64		row;

	if (apply->full)
		return;
	apply->ntouched =
		SpiExecute(psprintf("WITH __medallion_c AS (DELETE FROM %s RETURNING *)\n"
							"SELECT %s, pg_catalog.count(*) FROM __medallion_c GROUP BY %s",
							spec->state_table,
							AggStateGroupColumnsSql(spec->ngroups, NULL),
							AggPositions(spec->ngroups)),
				   0, NULL, NULL, NULL, SPI_OK_SELECT);
	apply->touched = SPI_tuptable;
	for (row = 0; row < apply->ntouched; row++)
		apply->changes += SpiGetInt64(row, spec->ngroups + 1, NULL);
}

/*
 * Write the target: everything again, or the touched groups.  Recomputing
 * touched groups costs what reading their rows costs, so a large share of
 * the groups is best recomputed in one pass; delta maintenance has already
 * applied the changes and only writes groups.
 */
static void
agg_apply_write(AggApply *apply, FlowResult *result)
{
	AggSpec    *spec = apply->spec;

	if (!apply->full && apply->ntouched > 0 && spec->delta == NULL &&
		(int64) apply->ntouched * AGG_FULL_SHARE >= apply->progress.groups)
		agg_apply_go_full(apply, "touched groups are a large share of the groups");

	if (apply->full)
	{
		AggRecomputeFull(spec, &apply->progress, &apply->run);
		result->rows_read += apply->run.source_rows;
		return;
	}
	if (apply->ntouched > 0)
		AggRecomputeGroups(spec, apply->touched, apply->ntouched,
						   &apply->progress, &apply->run);
	if (spec->delta != NULL && apply->changes > 0)
		AggDeltaForgetValues(spec);
	result->rows_read += apply->changes;
	apply->progress.rows += apply->net_rows;
}

/* Progress: the watermark and flow_state, in this transaction. */
static void
agg_apply_save_progress(AggApply *apply)
{
	FlowDesc   *flow = apply->flow;

	if (apply->new_watermark != apply->watermark)
		CatalogSetWatermark(flow->flow_id, apply->new_watermark);
	flow->watermark = apply->new_watermark;
	if (apply->full || apply->run.groups_recomputed > 0 ||
		!apply->progress.valid)
	{
		apply->progress.valid = true;
		CatalogSetFlowState(flow->flow_id,
							agg_state_build(&apply->progress, apply->spec));
	}
}

/* The counters, and the flow_progress event's details. */
static void
agg_apply_report(AggApply *apply, FlowResult *result)
{
	AggRun	   *run = &apply->run;

	result->rows_written += run->groups_inserted;
	if (run->changed)
		result->changed = true;
	FlowResultDetail(result);
	appendStringInfo(&result->details,
					 "\"groups_recomputed\": " INT64_FORMAT
					 ", \"full_recompute\": %s",
					 run->groups_recomputed, apply->full ? "true" : "false");
	if (apply->full)
	{
		appendStringInfoString(&result->details, ", \"full_recompute_reason\": ");
		escape_json(&result->details, apply->full_reason);
	}
	appendStringInfo(&result->details,
					 ", \"groups_deleted\": " INT64_FORMAT
					 ", \"groups_written\": " INT64_FORMAT
					 ", \"source_rows_aggregated\": " INT64_FORMAT
					 ", \"source_kind\": \"%s\""
					 ", \"maintenance\": \"%s\"",
					 run->groups_deleted, run->groups_inserted, run->source_rows,
					 AggSourceKindName(apply->spec->kind),
					 apply->spec->delta != NULL ? "delta" : "recompute");
}

/*
 * AggregateApply: see aggregates.h and the file header.  Read the changes
 * the way the source is written, write the groups they touched (or all of
 * them), then save the progress and report.
 */
void
AggregateApply(FlowContext *context, FlowDesc *flow, FlowResult *result)
{
	AggApply	apply;
	int			nest_level;
	ErrorContextCallback errcallback;

	errcallback.callback = agg_apply_error_callback;
	errcallback.arg = flow->flow_name;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;

	/* search_path is the pipeline's already (owner context) */
	nest_level = UserSqlSettingsEnter(NULL);
	SPI_connect();
	agg_apply_begin(&apply, flow);
	switch (apply.spec->kind)
	{
		case AGG_SOURCE_APPEND:
			agg_read_changes_append(&apply);
			break;
		case AGG_SOURCE_CDC:
			agg_read_changes_cdc(&apply);
			break;
		case AGG_SOURCE_AGGREGATE:
			agg_read_changes_aggregate(&apply);
			break;
	}
	agg_apply_write(&apply, result);
	agg_apply_save_progress(&apply);
	agg_apply_report(&apply, result);

	/* the spec and the rest live in SPI's memory until here */
	SPI_finish();
	UserSqlSettingsLeave(nest_level);
	error_context_stack = errcallback.previous;
}

/*
 * AggregateReset: full refresh empties the state table (the update then
 * finds no previous state and recomputes everything).  Runs in the
 * pipeline owner's context.
 */
void
AggregateReset(FlowDesc *flow)
{
	AggSpec    *spec;
	int			nest_level;
	int			i;

	nest_level = UserSqlSettingsEnter(NULL);
	spec = AggSpecLoad(flow, false);
	SPI_connect();
	if (spec->state_table != NULL)
		SpiExecute(psprintf("TRUNCATE %s", spec->state_table), 0, NULL, NULL,
				   NULL, SPI_OK_UTILITY);
	if (spec->groups_table != NULL)
		SpiExecute(psprintf("TRUNCATE %s", spec->groups_table), 0, NULL, NULL,
				   NULL, SPI_OK_UTILITY);
	for (i = 0; i < spec->naggs; i++)
	{
		if (spec->values_tables[i] != NULL)
			SpiExecute(psprintf("TRUNCATE %s", spec->values_tables[i]), 0,
					   NULL, NULL, NULL, SPI_OK_UTILITY);
	}
	SPI_finish();
	UserSqlSettingsLeave(nest_level);
}

/*
 * The id of the flow a capture trigger records changes for (its argument),
 * once the trigger is checked to be one medallion makes.
 */
static int32
capture_flow_id(FunctionCallInfo fcinfo)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("medallion.aggregate_capture() must be called as a trigger")));
	if (!TRIGGER_FIRED_AFTER(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_STATEMENT(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("medallion.aggregate_capture() must be an AFTER ... FOR EACH STATEMENT trigger")));
	if (trigdata->tg_trigger->tgnargs != 1)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("medallion.aggregate_capture() takes the id of an aggregate flow")));
	return pg_strtoint32(trigdata->tg_trigger->tgargs[0]);
}

/*
 * Is the flow still there?  It is gone when its pipeline was dropped, and
 * there is then nothing to record.  The catalog is read as medallion.
 */
static bool
capture_flow_exists(int32 flow_id)
{
	Oid			types[2] = {INT4OID, TEXTOID};
	Datum		values[2];
	bool		exists;

	values[0] = Int32GetDatum(flow_id);
	values[1] = CStringGetTextDatum(CatalogFlowTypeName(FLOW_TYPE_AGGREGATE));
	SPI_connect();
	SpiExecuteAsExtensionOwner("SELECT 1 FROM medallion.flow"
							   " WHERE flow_id OPERATOR(pg_catalog.=) $1"
							   " AND flow_type OPERATOR(pg_catalog.=) $2",
							   2, types, values, NULL, SPI_OK_SELECT);
	exists = SPI_processed > 0;
	SPI_finish();
	return exists;
}

/*
 * Record the groups (of the reading flow) of the statement's old and new
 * rows, read from the transition tables, in the flow's changes table.
 */
static void
capture_record(TriggerData *trigdata, AggSpec *spec)
{
	int			pass;

	SPI_connect();
	if (SPI_register_trigger_data(trigdata) != SPI_OK_TD_REGISTER)
		elog(ERROR, "could not register the transition tables");
	for (pass = 0; pass < 2; pass++)
	{
		const char *table = pass == 0 ? AGG_OLD_TABLE : AGG_NEW_TABLE;

		if ((pass == 0 ? trigdata->tg_oldtable : trigdata->tg_newtable) == NULL)
			continue;
		SpiExecute(psprintf("INSERT INTO %s (%s)\n"
							"SELECT DISTINCT %s FROM %s AS %s WHERE %s",
							spec->state_table,
							AggStateGroupColumnsSql(spec->ngroups, NULL),
							AggGroupExprsSql(spec), table,
							spec->source_ref, AggWhereSql(spec)),
				   0, NULL, NULL, NULL, SPI_OK_INSERT);
	}
	SPI_finish();
}

/*
 * medallion.aggregate_capture(): AFTER ... FOR EACH STATEMENT trigger on
 * the target of an aggregate flow that another aggregate flow reads.  Its
 * argument is the reading flow's id; it records the groups (of the
 * reading flow) of the old and new rows of the statement in the flow's
 * changes table.  Runs as the pipeline owner (whoever the writer is), with
 * the pipeline's search_path.
 */
Datum
medallion_aggregate_capture(PG_FUNCTION_ARGS)
{
	VERSION_CHECK_CATALOG();
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	int32		flow_id = capture_flow_id(fcinfo);
	Oid			relid = RelationGetRelid(trigdata->tg_relation);
	FlowDesc   *flow;
	PipelineDesc *pipeline;
	AggSpec    *spec;
	OwnerContext owner;
	int			nest_level;

	if (!capture_flow_exists(flow_id))
		return PointerGetDatum(NULL);
	flow = CatalogGetFlowById(flow_id, false);
	pipeline = CatalogGetPipelineById(flow->pipeline_id, false);

	/*
	 * The group expressions are the pipeline owner's SQL: they run as the
	 * owner, whoever wrote to the table (a superuser's manual fix must not
	 * run them with its rights).
	 */
	FlowEnterOwnerContext(pipeline, &owner);
	nest_level = UserSqlSettingsEnter(pipeline->search_path);
	spec = AggSpecLoad(flow, false);
	if (spec->kind != AGG_SOURCE_AGGREGATE || spec->source_relid != relid)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("medallion.aggregate_capture() fired on %s, which flow \"%s\" does not read",
						CatalogQualifiedRelationName(relid), flow->flow_name)));
	capture_record(trigdata, spec);
	UserSqlSettingsLeave(nest_level);
	FlowLeaveOwnerContext(&owner);
	return PointerGetDatum(NULL);
}
