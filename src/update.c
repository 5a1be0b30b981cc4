/*-------------------------------------------------------------------------
 *
 * update.c
 *	  One update of a pipeline: every flow, upstream first, once per bronze
 *	  batch (a triggered update runs batches until everything listed at its
 *	  start is ingested; a continuous one runs one).
 *
 * An update runs in a process of its own (the dynamic worker started by
 * run_pipeline, or a continuous-mode worker) and outside any transaction:
 * it starts and commits one transaction per flow step, so that what one
 * flow did is durable before the next starts, and so that the failure of a
 * flow can be recorded durably after its transaction rolled back.
 *
 * Two updates of one pipeline never overlap: an update holds a session
 * advisory lock on the pipeline from start to end.
 *
 * Memory: everything an update allocates lives in a child of the caller's
 * memory context, including the error it returns; the caller frees it by
 * resetting its own context.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/update.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/async.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/lock.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"

#include "aggregates.h"
#include "append_flow.h"
#include "bronze.h"
#include "cdc.h"
#include "cdc_snapshot.h"
#include "flow_order.h"
#include "matview.h"
#include "silver.h"
#include "spi_util.h"
#include "update.h"

/*
 * The limit on one flow step (the pipeline's max_step_duration), enforced
 * like statement_timeout: a timer whose handler cancels the step.  The
 * timer restarts at every commit inside the step, so that a bronze step,
 * which commits object by object, is limited per object, and an update of
 * many batches is never limited as a whole.
 */
static int	step_timeout_id = -1;
static volatile sig_atomic_t step_timed_out = false;
static bool step_timer_armed = false;
static int	step_limit_ms = 0;

/* The timer's handler: cancel the step, as StatementTimeoutHandler does. */
static void
step_timeout_handler(void)
{
	step_timed_out = true;
#ifdef HAVE_SETSID
	kill(-MyProcPid, SIGINT);
#endif
	kill(MyProcPid, SIGINT);
}

/* A commit inside a step restarts the step's timer. */
static void
step_timer_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT && step_timer_armed && !step_timed_out)
		enable_timeout_after(step_timeout_id, step_limit_ms);
}

/* Arm the step timer for limit_ms, registering it on first use. */
static void
step_timer_start(int64 limit_ms)
{
	if (step_timeout_id < 0)
	{
		step_timeout_id = RegisterTimeout(USER_TIMEOUT, step_timeout_handler);
		RegisterXactCallback(step_timer_xact_callback, NULL);
	}
	step_timed_out = false;
	step_limit_ms = (int) Min(Max(limit_ms, 1), INT_MAX);
	step_timer_armed = true;
	enable_timeout_after(step_timeout_id, step_limit_ms);
}

/*
 * Stop the step's timer; returns whether it fired.  A cancel that the
 * timer raised after the step's work was done is consumed here.
 */
static bool
step_timer_stop(void)
{
	bool		fired = step_timed_out;

	if (step_timer_armed)
		disable_timeout(step_timeout_id, false);
	step_timer_armed = false;
	step_timed_out = false;
	if (fired)
		QueryCancelPending = false;
	return fired;
}

/* A duration in milliseconds, as a GUC shows it: 1h, 90s, 1500ms. */
static char *
format_duration_ms(int64 milliseconds)
{
	if (milliseconds % (3600 * 1000) == 0)
		return psprintf(INT64_FORMAT "h", milliseconds / (3600 * 1000));
	if (milliseconds % (60 * 1000) == 0)
		return psprintf(INT64_FORMAT "min", milliseconds / (60 * 1000));
	if (milliseconds % 1000 == 0)
		return psprintf(INT64_FORMAT "s", milliseconds / 1000);
	return psprintf(INT64_FORMAT "ms", milliseconds);
}

/* The error a flow step that exceeded max_step_duration fails with. */
static ErrorData *
step_timeout_error(const FlowDesc *flow, int64 limit_ms)
{
	ErrorData  *error = palloc0(sizeof(ErrorData));
	char	   *limit = format_duration_ms(limit_ms);

	error->elevel = ERROR;
	error->sqlerrcode = ERRCODE_QUERY_CANCELED;
	error->message = psprintf("flow step of \"%s\" exceeded max_step_duration (%s)",
							  flow->flow_name, limit);
	error->detail = psprintf("The step ran for more than %s without committing and was cancelled; what earlier steps committed stays committed.",
							 limit);
	error->hint = pstrdup("Make the flow cheaper, or raise the limit with medallion.alter_pipeline(pipeline_name, max_step_duration => ...).");
	return error;
}

/*
 * The pipeline's max_step_duration in milliseconds, inside a transaction.
 * A database not yet updated to 0.2.0 has no such column: the default
 * applies.
 */
static int64
read_max_step_duration(int32 pipeline_id)
{
	Oid			namespace_id = get_namespace_oid("medallion", true);
	Oid			relid = OidIsValid(namespace_id) ?
		get_relname_relid("pipeline", namespace_id) : InvalidOid;
	Oid			types[1] = {INT4OID};
	Datum		values[1] = {Int32GetDatum(pipeline_id)};
	int64		limit_ms = MEDALLION_DEFAULT_MAX_STEP_DURATION_MS;
	bool		isnull;

	if (!OidIsValid(relid) ||
		get_attnum(relid, "max_step_duration") == InvalidAttrNumber)
		return limit_ms;
	SPI_connect();
	SpiExecute("SELECT (pg_catalog.date_part('epoch', max_step_duration)"
			   " OPERATOR(pg_catalog.*) 1000)::pg_catalog.int8"
			   " FROM medallion.pipeline"
			   " WHERE pipeline_id OPERATOR(pg_catalog.=) $1",
			   1, types, values, NULL, SPI_OK_SELECT);
	if (SPI_processed == 1)
	{
		int64		value = SpiGetInt64(0, 1, &isnull);

		if (!isnull && value > 0)
			limit_ms = value;
	}
	SPI_finish();
	return limit_ms;
}

/*
 * Is an error one that may go away by itself (network, S3 throttling,
 * deadlocks), as opposed to a data or configuration error?
 */
static bool
error_is_transient(ErrorData *error)
{
	int			sqlclass = ERRCODE_TO_CATEGORY(error->sqlerrcode);

	return sqlclass == ERRCODE_CONNECTION_EXCEPTION ||
		error->sqlerrcode == ERRCODE_T_R_DEADLOCK_DETECTED ||
		error->sqlerrcode == ERRCODE_T_R_SERIALIZATION_FAILURE ||
		error->sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE;
}

/*
 * The flow-type table: how an update runs each type of flow.  This file is
 * the only one that knows every flow type; the update runs a flow through
 * its routine and never asks which type it is.
 */
static const FlowTypeRoutine flow_type_routines[FLOW_TYPE_COUNT] = {
	[FLOW_TYPE_BRONZE] = {
		.type = FLOW_TYPE_BRONZE,
		.run_steps = BronzeRunFlow,
		.truncate_on_reset = true,
		.reset_catalog = BronzeReset,
		.has_input_left = BronzeHasObjectsLeft,
	},
	[FLOW_TYPE_SILVER] = {
		.type = FLOW_TYPE_SILVER,
		.apply_rows = SilverApply,
		.truncate_on_reset = true,
		.reset_as_owner = SilverReset,
		.wait_in_full_refresh = true,
	},
	[FLOW_TYPE_AUTO_CDC] = {
		.type = FLOW_TYPE_AUTO_CDC,
		.apply_rows = CdcApply,
		.truncate_on_reset = true,
		.reset_as_owner = CdcReset,
		.wait_in_full_refresh = true,
	},
	[FLOW_TYPE_AGGREGATE] = {
		.type = FLOW_TYPE_AGGREGATE,
		.apply_whole = AggregateApply,
		.truncate_on_reset = true,
		.reset_as_owner = AggregateReset,
		.wait_in_backlog = true,
	},
	/* snapshots are diffed whole; a full refresh recomputes from them all */
	[FLOW_TYPE_AUTO_CDC_SNAPSHOT] = {
		.type = FLOW_TYPE_AUTO_CDC_SNAPSHOT,
		.apply_whole = CdcSnapshotApply,
		.truncate_on_reset = true,
		.reset_as_owner = CdcReset,
		.wait_in_full_refresh = true,
	},
	/* an attached materialized view is refreshed whole, never emptied */
	[FLOW_TYPE_MATVIEW] = {
		.type = FLOW_TYPE_MATVIEW,
		.apply_whole = MatviewRefresh,
		.truncate_on_reset = false,
	},
	/* its target is emptied only with every flow writing it */
	[FLOW_TYPE_APPEND] = {
		.type = FLOW_TYPE_APPEND,
		.apply_rows = AppendApply,
		.truncate_on_reset = true,
	},
	/* a gold materialized view: recomputed when it has no positions */
	[FLOW_TYPE_MATERIALIZED_VIEW] = {
		.type = FLOW_TYPE_MATERIALIZED_VIEW,
		.apply_whole = MaterializedViewApply,
		.truncate_on_reset = true,
	},
};

static const FlowTypeRoutine *
flow_routine(const FlowDesc *flow)
{
	Assert(flow->type >= 0 && flow->type < FLOW_TYPE_COUNT);
	return &flow_type_routines[flow->type];
}

/* Run one statement-free step in its own transaction. */
#define BEGIN_STEP() \
	do { \
		SetCurrentStatementStartTimestamp(); \
		StartTransactionCommand(); \
		PushActiveSnapshot(GetTransactionSnapshot()); \
	} while (0)
#define END_STEP() \
	do { \
		PopActiveSnapshot(); \
		CommitTransactionCommand(); \
	} while (0)

/*
 * Empty every target, ledger and watermark of the given flows (all of the
 * pipeline's, or for a selective refresh those FlowOrderDownstream chose)
 * in one transaction, so that the update that follows rebuilds them from
 * their sources.  A target is emptied only when all the flows writing it
 * (of all_flows) are reset: an append flow refreshed alone runs again into
 * a target that keeps its rows.  *current names the flow being reset.
 */
static void
full_refresh_reset(FlowContext *context, List *all_flows, List *flows,
				   bool selective, FlowDesc **current)
{
	ListCell   *cell;
	StringInfoData names;

	initStringInfo(&names);

	BEGIN_STEP();
	foreach(cell, flows)
	{
		FlowDesc   *flow = lfirst(cell);
		const FlowTypeRoutine *routine = flow_routine(flow);
		OwnerContext owner;
		StringInfoData sql;

		*current = flow;
		FlowCheckTargetExists(flow);
		FlowEnterOwnerContext(context->pipeline, &owner);
		if (routine->truncate_on_reset &&
			FlowOrderTargetEmptied(all_flows, flows, flow))
		{
			initStringInfo(&sql);
			appendStringInfo(&sql, "TRUNCATE %s",
							 CatalogQualifiedRelationName(flow->target_relid));
			SPI_connect();
			SpiExecute(sql.data, 0, NULL, NULL, NULL, SPI_OK_UTILITY);
			SPI_finish();
		}
		if (routine->reset_as_owner != NULL)
			routine->reset_as_owner(flow);
		FlowLeaveOwnerContext(&owner);

		if (routine->reset_catalog != NULL)
			routine->reset_catalog(flow);
		CatalogSetWatermark(flow->flow_id, 0);
		if (flow->refresh_pending)
			CatalogSetRefreshPending(list_make1_int(flow->flow_id), false);
		CatalogSetFlowStateText(flow->flow_id, "{}");
		flow->watermark = 0;
		if (names.len > 0)
			appendStringInfoString(&names, ", ");
		escape_json(&names, flow->flow_name);
	}
	EventLogWrite(context->pipeline, context->update_id, NULL, "full_refresh",
				  "INFO", selective ?
				  "tables, ledger and watermarks of the selected flows and those downstream emptied" :
				  "tables, ledger and watermarks emptied",
				  psprintf("{\"selective\": %s, \"flows\": [%s]}",
						   selective ? "true" : "false", names.data));
	END_STEP();
}

/*
 * Continuous pipelines update every trigger_interval; an update that finds
 * nothing to do writes no events, so that an idle pipeline does not fill
 * the event log.  The update_start event is therefore written lazily, just
 * before the first event of the update, with the update's start time.
 */
typedef struct UpdateLog
{
	bool		quiet;			/* skip the events of an idle update */
	bool		start_written;
	TimestampTz start_time;
	int			flow_count;
	bool		full_refresh;
} UpdateLog;

/* Write the update_start event, once, with the update's start time. */
static void
write_update_start(FlowContext *context, UpdateLog *log)
{
	if (log->start_written)
		return;
	log->start_written = true;
	EventLogWriteAt(log->start_time, context->pipeline, context->update_id,
					NULL, "update_start", "INFO",
					log->full_refresh ? "full refresh started" : "update started",
					psprintf("{\"full_refresh\": %s, \"flows\": %d}",
							 log->full_refresh ? "true" : "false",
							 log->flow_count));
}

/* The message of an error, with its detail when it has one. */
static char *
error_summary(ErrorData *error)
{
	if (error->detail != NULL)
		return psprintf("%s: %s", error->message, error->detail);
	return error->message;
}

/* Does the progress of this flow deserve an event? */
static bool
flow_progress_worth_logging(const UpdateLog *log, const FlowResult *result)
{
	return !log->quiet || result->rows_read > 0 || result->changed ||
		result->rows_dropped > 0 || result->retries != NIL;
}

/* Write the S3 retries a flow collected as retry events. */
static void
write_retry_events(FlowContext *context, const FlowDesc *flow,
				   const FlowResult *result)
{
	ListCell   *cell;

	foreach(cell, result->retries)
		EventLogWrite(context->pipeline, context->update_id, flow->flow_name,
					  "retry", "WARNING", (const char *) lfirst(cell), NULL);
}

/*
 * The flow_progress event of a flow that completed (with its retries), in
 * the current transaction; nothing for an idle flow of a quiet update.
 */
static void
write_flow_progress(FlowContext *context, UpdateLog *log, const FlowDesc *flow,
					const FlowResult *result, int64 duration_us)
{
	if (!flow_progress_worth_logging(log, result))
		return;
	write_update_start(context, log);
	write_retry_events(context, flow, result);
	EventLogWrite(context->pipeline, context->update_id, flow->flow_name,
				  "flow_progress", "INFO", "flow completed",
				  FlowProgressDetails(flow, result, duration_us, "COMPLETED"));
}

/*
 * Record a flow's failure durably, after its transaction rolled back.
 */
static void
record_flow_failure(FlowContext *context, UpdateLog *log,
					const FlowDesc *flow, const FlowResult *result,
					ErrorData *error, bool transient, int64 duration_us)
{
	StringInfoData details;

	initStringInfo(&details);
	appendStringInfo(&details, "{\"sqlstate\": \"%s\", \"transient\": %s, "
					 "\"duration_ms\": %.3f",
					 unpack_sql_state(error->sqlerrcode),
					 transient ? "true" : "false", duration_us / 1000.0);
	if (error->detail != NULL)
	{
		appendStringInfoString(&details, ", \"detail\": ");
		escape_json(&details, error->detail);
	}
	if (error->hint != NULL)
	{
		appendStringInfoString(&details, ", \"hint\": ");
		escape_json(&details, error->hint);
	}
	appendStringInfoChar(&details, '}');

	BEGIN_STEP();
	write_update_start(context, log);
	write_retry_events(context, flow, result);
	EventLogWrite(context->pipeline, context->update_id, flow->flow_name,
				  "error", "ERROR", error->message, details.data);
	END_STEP();
}

/*
 * The update_end event of an update that a stop request ended (always
 * written, even for a quiet update): who stopped it, and which flow step it
 * interrupted, if any.
 */
static void
write_update_stopped(FlowContext *context, UpdateLog *log,
					 UpdateStopReason reason, const char *interrupted_flow,
					 bool failed, int64 duration_us)
{
	const char *requester = UpdateStopReasonName(reason);
	StringInfoData details;

	write_update_start(context, log);
	initStringInfo(&details);
	appendStringInfo(&details, "{\"stopped\": true, \"stopped_by\": \"%s\", "
					 "\"failed\": %s, \"duration_ms\": %.3f, "
					 "\"interrupted_flow\": ",
					 requester, failed ? "true" : "false",
					 duration_us / 1000.0);
	if (interrupted_flow != NULL)
		escape_json(&details, interrupted_flow);
	else
		appendStringInfoString(&details, "null");
	appendStringInfoChar(&details, '}');
	EventLogWrite(context->pipeline, context->update_id, interrupted_flow,
				  "update_end", "WARNING",
				  interrupted_flow != NULL ?
				  psprintf("update stopped by the pipeline's owner (%s) during flow \"%s\"",
						   requester, interrupted_flow) :
				  psprintf("update stopped by the pipeline's owner (%s)",
						   requester),
				  details.data);
}

/*
 * Record a failed flow step durably and in the outcome: the first error is
 * the update's error; the update is transient only when all are.
 */
static void
record_step_failure(FlowContext *context, UpdateLog *log,
					const FlowDesc *flow, const FlowResult *result,
					ErrorData *error, int64 duration_us,
					UpdateOutcome *outcome)
{
	bool		transient = error_is_transient(error);

	record_flow_failure(context, log, flow, result, error, transient,
						duration_us);
	if (!outcome->failed)
	{
		outcome->failed = true;
		outcome->transient = transient;
		outcome->error = error;
		outcome->failed_flow = flow->flow_name;
	}
	else if (!transient)
		outcome->transient = false;
}

/*
 * Does a triggered update need another pass over its flows: did no flow
 * fail, and does a bronze flow still have objects of its first listing?
 */
static bool
another_pass(FlowContext *context, List *flows, UpdateOutcome *outcome)
{
	ListCell   *cell;

	if (outcome->failed || strcmp(context->pipeline->mode, "continuous") == 0)
		return false;
	foreach(cell, flows)
	{
		FlowDesc   *flow = lfirst(cell);

		const FlowTypeRoutine *routine = flow_routine(flow);

		if (routine->has_input_left != NULL && routine->has_input_left(flow))
			return true;
	}
	return false;
}

/* Everything one update owns, from its start to its end. */
typedef struct UpdateState
{
	int32		pipeline_id;
	bool		full_refresh;
	List	   *refresh_flow_ids;	/* selective refresh: the flows named */
	List	   *reset_flows;	/* the flows a full refresh empties */
	FlowDesc   *resetting_flow; /* the flow a full refresh is emptying */
	UpdateFlowReport report;
	void	   *report_arg;
	UpdateOutcome *outcome;

	MemoryContext update_context;	/* lives as long as the update */
	FlowContext context;
	List	   *flows;
	List	   *failed_targets; /* targets of failed flows, and below */
	LOCKTAG		lock_tag;
	bool		locked;
	TimestampTz update_start;
	UpdateLog	log;
	int64		max_step_ms;

	int64		rows_written;
	StringInfoData changed_tables;	/* JSON strings, comma-separated */
	UpdateStopReason stopped;	/* a stop request seen between steps */
	char	   *interrupted_flow;	/* the flow a stop request cancelled */
} UpdateState;

/*
 * Flows replaced since the last update (refresh_pending, see
 * CatalogSetRefreshPending) are refreshed like flows refresh_tables names:
 * the update starts with a full refresh of them and those downstream.  A
 * full refresh of every flow covers them already.
 */
static void
add_pending_refresh(UpdateState *state)
{
	ListCell   *cell;

	if (state->full_refresh && state->refresh_flow_ids == NIL)
		return;
	foreach(cell, state->flows)
	{
		FlowDesc   *flow = lfirst(cell);

		if (!flow->refresh_pending)
			continue;
		state->refresh_flow_ids = list_append_unique_int(state->refresh_flow_ids,
														 flow->flow_id);
		state->full_refresh = true;
	}
}

/*
 * Take the pipeline's update lock (waiting for another update of it), read
 * the pipeline and its flows, and record the update's start.
 */
static void
update_begin(UpdateState *state)
{
	FlowContext *context = &state->context;
	UpdateLog  *log = &state->log;

	UpdateLockTag(&state->lock_tag, state->pipeline_id);
	pgstat_report_activity(STATE_RUNNING, "waiting for the pipeline lock");
	BEGIN_STEP();
	(void) LockAcquire(&state->lock_tag, ExclusiveLock, true, false);
	state->locked = true;
	END_STEP();

	state->update_start = GetCurrentTimestamp();
	BEGIN_STEP();
	MemoryContextSwitchTo(state->update_context);
	context->pipeline = CatalogGetPipelineById(state->pipeline_id, false);
	context->update_id = CatalogNextUpdateId();
	context->update_start = state->update_start;
	state->flows = FlowOrderSort(CatalogGetFlows(state->pipeline_id));
	add_pending_refresh(state);
	context->full_refresh = state->full_refresh;
	state->reset_flows = state->refresh_flow_ids == NIL ? state->flows :
		FlowOrderDownstream(state->flows, state->refresh_flow_ids);
	CatalogMarkUpdateStart(state->pipeline_id);
	log->quiet = strcmp(context->pipeline->mode, "continuous") == 0 &&
		!state->full_refresh && state->report == NULL;
	log->start_time = state->update_start;
	log->flow_count = list_length(state->flows);
	log->full_refresh = state->full_refresh;
	if (!log->quiet)
		write_update_start(context, log);
	state->max_step_ms = read_max_step_duration(state->pipeline_id);
	END_STEP();
	MemoryContextSwitchTo(state->update_context);
	state->outcome->update_id = context->update_id;
}

/*
 * Run one step of a flow through its type's routine, the flow_progress
 * event included in the step's transaction (bronze commits its own
 * transactions and gets its event in one of its own).
 */
static void
run_flow_step(UpdateState *state, FlowDesc *flow, FlowResult *result,
			  TimestampTz flow_start)
{
	const FlowTypeRoutine *routine = flow_routine(flow);
	FlowContext *context = &state->context;

	if (routine->run_steps != NULL)
	{
		routine->run_steps(context, flow, result);
		if (!flow_progress_worth_logging(&state->log, result))
			return;
		BEGIN_STEP();
	}
	else
	{
		BEGIN_STEP();
		if (routine->apply_rows != NULL)
			FlowApplyIncremental(context, flow, routine->apply_rows, result);
		else
		{
			OwnerContext owner;

			FlowCheckTargetExists(flow);
			FlowEnterOwnerContext(context->pipeline, &owner);
			routine->apply_whole(context, flow, result);
			FlowLeaveOwnerContext(&owner);
		}
	}
	write_flow_progress(context, &state->log, flow, result,
						GetCurrentTimestamp() - flow_start);
	END_STEP();
}

/*
 * A flow step failed and its transaction rolled back.  A cancel that a stop
 * request or the step's timer caused is turned into what it means; any
 * other cancel or a shutdown ends the update at once.
 */
static void
handle_step_error(UpdateState *state, FlowDesc *flow, FlowResult *result,
				  ErrorData *error, bool timed_out, int64 duration_us)
{
	if (error->sqlerrcode == ERRCODE_QUERY_CANCELED &&
		state->stopped != UPDATE_STOP_NONE)
	{
		/* stopped on request: recorded at the end, not a failure */
		state->interrupted_flow = pstrdup(flow->flow_name);
		return;
	}
	if (error->sqlerrcode == ERRCODE_QUERY_CANCELED && timed_out)
		error = step_timeout_error(flow, state->max_step_ms);
	else if (error->sqlerrcode == ERRCODE_QUERY_CANCELED ||
			 error->sqlerrcode == ERRCODE_ADMIN_SHUTDOWN)
		ReThrowError(error);

	record_step_failure(&state->context, &state->log, flow, result, error,
						duration_us, state->outcome);
	state->failed_targets = lappend_oid(state->failed_targets,
										flow->target_relid);
}

/* Add what a flow step did to the update's totals and report it. */
static void
account_flow_step(UpdateState *state, FlowDesc *flow, FlowResult *result,
				  int64 duration_us)
{
	FlowContext *context = &state->context;

	if (result->changed &&
		!list_member_oid(context->changed_relids, flow->target_relid))
	{
		context->changed_relids = lappend_oid(context->changed_relids,
											  flow->target_relid);
		state->outcome->changed = true;
		if (state->changed_tables.len > 0)
			appendStringInfoString(&state->changed_tables, ", ");
		escape_json(&state->changed_tables, flow->flow_name);
	}
	if (result->backlog)
		state->outcome->backlog = true;
	state->rows_written += result->rows_written;
	if (state->report != NULL)
		(*state->report) (flow, result, duration_us, state->report_arg);
}

/*
 * Run one step of one flow, limited to max_step_duration, in a memory
 * context of its own: a failure is recorded and the update goes on with the
 * flows that do not depend on it.  Returns false when a stop request ends
 * the update.
 */
static bool
update_run_flow(UpdateState *state, FlowDesc *flow)
{
	FlowResult	result;
	TimestampTz flow_start = GetCurrentTimestamp();
	volatile int64 duration_us = 0;
	MemoryContext flow_context;

	if (OidIsValid(flow->source_relid) &&
		list_member_oid(state->failed_targets, flow->source_relid))
	{
		state->failed_targets = lappend_oid(state->failed_targets,
											flow->target_relid);
		return true;
	}

	/* a stop requested between two steps: no more steps */
	state->stopped = UpdateControlEnterStep();
	if (state->stopped != UPDATE_STOP_NONE)
		return false;

	flow_context = AllocSetContextCreate(state->update_context,
										 "medallion flow",
										 ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(flow_context);
	FlowResultInit(&result);
	pgstat_report_activity(STATE_RUNNING,
						   psprintf("medallion: flow %s", flow->flow_name));
	step_timer_start(state->max_step_ms);
	PG_TRY();
	{
		run_flow_step(state, flow, &result, flow_start);
		duration_us = GetCurrentTimestamp() - flow_start;
	}
	PG_CATCH();
	{
		ErrorData  *error;
		bool		timed_out;

		MemoryContextSwitchTo(state->update_context);
		error = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		timed_out = step_timer_stop();
		state->stopped = UpdateControlLeaveStep();
		duration_us = GetCurrentTimestamp() - flow_start;
		handle_step_error(state, flow, &result, error, timed_out,
						  duration_us);
	}
	PG_END_TRY();
	(void) step_timer_stop();
	state->stopped = UpdateControlLeaveStep();

	MemoryContextSwitchTo(state->update_context);
	account_flow_step(state, flow, &result, duration_us);
	MemoryContextDelete(flow_context);
	return state->stopped == UPDATE_STOP_NONE;
}

/*
 * Does the flow skip this pass, to run once after the last batch of the
 * update over everything the batches brought (set-based: an aggregate built
 * with one GROUP BY, silver with one INSERT ... SELECT)?  Only while another
 * pass will follow, so a flow never waits past the update's end (a failed
 * or capped bronze flow, a continuous pipeline: no other pass).  Bronze
 * keeps committing batch by batch: a crash in the middle keeps them, and
 * the next update derives the rest.
 */
static bool
flow_waits_for_last_batch(UpdateState *state, FlowDesc *flow)
{
	const FlowTypeRoutine *routine = flow_routine(flow);

	if (!routine->wait_in_backlog &&
		!(routine->wait_in_full_refresh && state->full_refresh))
		return false;
	return another_pass(&state->context, state->flows, state->outcome);
}

/*
 * One pass over the flows runs one batch of each bronze flow.  A triggered
 * update runs passes until its bronze flows have taken every object listed
 * by their first batch (Trigger.AvailableNow), each batch and what the
 * flows downstream make of it committed on its own; a continuous one runs
 * one pass, and its worker runs the next update at once while there is a
 * backlog.  The flows that wait for the last batch
 * (flow_waits_for_last_batch) run in the last pass only.
 */
static void
update_run_passes(UpdateState *state)
{
	ListCell   *cell;

	do
	{
		foreach(cell, state->flows)
		{
			FlowDesc   *flow = lfirst(cell);

			if (flow_waits_for_last_batch(state, flow))
				continue;
			if (!update_run_flow(state, flow))
				return;
		}
	} while (another_pass(&state->context, state->flows, state->outcome));
}

/*
 * The full refresh's reset (of every flow, or of the flows refresh_tables
 * named and those downstream).  A failure (a target dropped by hand, say)
 * is recorded like a flow's, with the name of the flow being emptied, and
 * the update then runs no flow.  Returns whether the reset succeeded.
 */
static bool
update_reset(UpdateState *state)
{
	TimestampTz start = GetCurrentTimestamp();
	volatile bool succeeded = true;

	state->resetting_flow = NULL;
	PG_TRY();
	{
		full_refresh_reset(&state->context, state->flows, state->reset_flows,
						   state->refresh_flow_ids != NIL,
						   &state->resetting_flow);
		/* errors from here on are not the reset's */
		state->resetting_flow = NULL;
	}
	PG_CATCH();
	{
		ErrorData  *error;
		FlowResult	result;

		MemoryContextSwitchTo(state->update_context);
		error = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		if (state->resetting_flow == NULL ||
			error->sqlerrcode == ERRCODE_QUERY_CANCELED ||
			error->sqlerrcode == ERRCODE_ADMIN_SHUTDOWN)
			ReThrowError(error);
		FlowResultInit(&result);
		record_step_failure(&state->context, &state->log,
							state->resetting_flow, &result, error,
							GetCurrentTimestamp() - start, state->outcome);
		succeeded = false;
	}
	PG_END_TRY();
	return succeeded;
}

/* The pipeline's state at the end of the update. */
static const char *
update_end_state(UpdateState *state)
{
	UpdateOutcome *outcome = state->outcome;
	bool		continuous = strcmp(state->context.pipeline->mode,
									"continuous") == 0;

	/* stop_pipeline committed "stopped" before it stopped the update */
	if (state->stopped == UPDATE_STOP_STOP_PIPELINE)
		return "stopped";
	if (outcome->failed && !(continuous && outcome->transient))
		return "failed";
	return continuous ? "running" : "idle";
}

/*
 * Record the end of the update: the pipeline's state, the update_end event,
 * and the notification of the tables it changed.
 */
static void
update_end(UpdateState *state)
{
	FlowContext *context = &state->context;
	UpdateOutcome *outcome = state->outcome;
	int64		duration_us;

	if (state->stopped != UPDATE_STOP_NONE)
	{
		/* the stop has served: no late cancel interrupts its record */
		outcome->stopped = state->stopped;
		HOLD_CANCEL_INTERRUPTS();
	}
	BEGIN_STEP();
	MemoryContextSwitchTo(state->update_context);
	duration_us = GetCurrentTimestamp() - state->update_start;
	CatalogMarkUpdateEnd(state->pipeline_id, context->update_id,
						 state->update_start, update_end_state(state),
						 outcome->failed ? error_summary(outcome->error) : NULL);
	CatalogMarkTargetsChanged(state->pipeline_id, context->changed_relids);
	if (state->stopped != UPDATE_STOP_NONE)
		write_update_stopped(context, &state->log, state->stopped,
							 state->interrupted_flow, outcome->failed,
							 duration_us);
	else if (state->log.start_written)
		EventLogWrite(context->pipeline, context->update_id, NULL,
					  "update_end", outcome->failed ? "ERROR" : "INFO",
					  outcome->failed ? "update failed" : "update completed",
					  psprintf("{\"failed\": %s, \"duration_ms\": %.3f, "
							   "\"rows_written\": " INT64_FORMAT ", "
							   "\"changed_tables\": [%s]}",
							   outcome->failed ? "true" : "false",
							   duration_us / 1000.0, state->rows_written,
							   state->changed_tables.data));
	if (state->log.start_written)
		EventLogTrim(context->pipeline);
	if (outcome->changed)
		Async_Notify(psprintf("medallion_%s", context->pipeline->pipeline_name),
					 psprintf("{\"update_id\": " INT64_FORMAT
							  ", \"tables\": [%s]}",
							  context->update_id, state->changed_tables.data));
	END_STEP();
	if (state->stopped != UPDATE_STOP_NONE)
	{
		/* no stop request signals this process any more */
		UpdateControlUnregister();
		QueryCancelPending = false;
		RESUME_CANCEL_INTERRUPTS();
	}
}

/*
 * An error outside the flow steps (reading the catalog, a full refresh's
 * reset, the end's records) used to end the process with nothing recorded
 * but the server log.  It is recorded like a flow's failure: the pipeline
 * fails (a transient error keeps a continuous one running), an error event
 * names the flow when there is one, and the outcome carries the error to
 * run_pipeline's caller.  With no pipeline read yet (it was dropped), there
 * is nothing to record it against: the error is raised again.
 */
static void
record_update_failure(UpdateState *state)
{
	FlowContext *context = &state->context;
	UpdateOutcome *outcome = state->outcome;
	ErrorData  *error;
	const char *flow_name = state->resetting_flow != NULL ?
		state->resetting_flow->flow_name : NULL;

	MemoryContextSwitchTo(state->update_context);
	error = CopyErrorData();
	FlushErrorState();
	AbortCurrentTransaction();
	(void) step_timer_stop();
	if (context->pipeline == NULL || context->update_id == 0)
		ReThrowError(error);

	outcome->failed = true;
	outcome->transient = error_is_transient(error);
	outcome->error = error;
	outcome->failed_flow = flow_name != NULL ? pstrdup(flow_name) : NULL;
	BEGIN_STEP();
	MemoryContextSwitchTo(state->update_context);
	write_update_start(context, &state->log);
	EventLogWrite(context->pipeline, context->update_id, flow_name, "error",
				  "ERROR", error->message,
				  psprintf("{\"sqlstate\": \"%s\", \"transient\": %s}",
						   unpack_sql_state(error->sqlerrcode),
						   outcome->transient ? "true" : "false"));
	CatalogMarkUpdateEnd(state->pipeline_id, context->update_id,
						 state->update_start, update_end_state(state),
						 error_summary(error));
	END_STEP();
	MemoryContextSwitchTo(state->update_context);
}

/*
 * UpdateRun: see update.h.  The phases are begin (lock, catalog), the full
 * refresh's reset, the passes over the flows, and the end; whatever
 * happens, the lock and the stop registration are released, and an error
 * of any phase is recorded (record_update_failure).
 */
void
UpdateRun(int32 pipeline_id, bool full_refresh, List *refresh_flow_ids,
		  UpdateFlowReport report, void *report_arg, UpdateOutcome *outcome)
{
	UpdateState *state;
	MemoryContext update_context;
	MemoryContext old_context;

	memset(outcome, 0, sizeof(UpdateOutcome));
	update_context = AllocSetContextCreate(CurrentMemoryContext,
										   "medallion update",
										   ALLOCSET_DEFAULT_SIZES);
	old_context = MemoryContextSwitchTo(update_context);
	state = palloc0(sizeof(UpdateState));
	state->pipeline_id = pipeline_id;
	state->full_refresh = full_refresh || refresh_flow_ids != NIL;
	state->refresh_flow_ids = list_copy(refresh_flow_ids);
	state->report = report;
	state->report_arg = report_arg;
	state->outcome = outcome;
	state->update_context = update_context;
	state->max_step_ms = MEDALLION_DEFAULT_MAX_STEP_DURATION_MS;
	initStringInfo(&state->changed_tables);

	/* from here on, stop_pipeline and drop_pipeline can stop the update */
	UpdateControlRegister(pipeline_id);
	outcome->stopped = UpdateControlStopRequested();
	if (outcome->stopped != UPDATE_STOP_NONE)
	{
		/* a drop or alter_pipeline is waiting for the lock: leave it alone */
		UpdateControlUnregister();
		MemoryContextSwitchTo(old_context);
		return;
	}

	PG_TRY();
	{
		PG_TRY();
		{
			update_begin(state);
			if (!state->full_refresh || update_reset(state))
				update_run_passes(state);
			update_end(state);
		}
		PG_CATCH();
		{
			record_update_failure(state);
		}
		PG_END_TRY();
	}
	PG_FINALLY();
	{
		(void) step_timer_stop();
		UpdateControlUnregister();
		if (state->locked)
			LockRelease(&state->lock_tag, ExclusiveLock, true);
		pgstat_report_activity(STATE_IDLE, NULL);
	}
	PG_END_TRY();

	/*
	 * The outcome's error lives in update_context, a child of the caller's
	 * memory context: it is freed when the caller's context is.
	 */
	MemoryContextSwitchTo(old_context);
}
