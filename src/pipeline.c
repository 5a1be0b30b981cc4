/*-------------------------------------------------------------------------
 *
 * pipeline.c
 *	  The SQL functions that manage pipelines: create_pipeline,
 *	  alter_pipeline, drop_pipeline, run_pipeline, start_pipeline and
 *	  stop_pipeline.
 *
 * stop_pipeline, drop_pipeline and alter_pipeline (leaving continuous
 * mode) end the pipeline's running update through the update control
 * registry, on the owner's behalf: the update runs in a superuser process
 * that the owner may not signal.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/pipeline.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "storage/lock.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "catalog.h"
#include "flow_lifecycle.h"
#include "launcher.h"
#include "lingering_update.h"
#include "medallion.h"
#include "pipeline_owner.h"
#include "spi_util.h"
#include "update.h"
#include "update_control.h"
#include "update_worker.h"
#include "version.h"

PG_FUNCTION_INFO_V1(medallion_create_pipeline);
PG_FUNCTION_INFO_V1(medallion_alter_pipeline);
PG_FUNCTION_INFO_V1(medallion_drop_pipeline);
PG_FUNCTION_INFO_V1(medallion_run_pipeline);
PG_FUNCTION_INFO_V1(medallion_start_pipeline);
PG_FUNCTION_INFO_V1(medallion_stop_pipeline);

/* NOTIFY channels are medallion_<pipeline_name> and must fit NAMEDATALEN */
#define MAX_PIPELINE_NAME_LENGTH (NAMEDATALEN - 1 - (int) strlen("medallion_"))

static char *
pipeline_name_argument(FunctionCallInfo fcinfo)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("pipeline_name must not be null")));
	return text_to_cstring(PG_GETARG_TEXT_PP(0));
}

/*
 * Pipeline names are global (they name NOTIFY channels), so a name can be
 * taken by another role.  Say so without confirming whose it is or what it
 * is: the caller learns only that the name cannot be used.
 */
static void
refuse_taken_pipeline_name(const char *pipeline_name)
{
	PipelineDesc *existing = CatalogGetPipeline(pipeline_name, true);

	if (existing == NULL)
		return;
	if (existing->owner == GetUserId())
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("pipeline \"%s\" already exists", pipeline_name)));
	ereport(ERROR,
			(errcode(ERRCODE_DUPLICATE_OBJECT),
			 errmsg("pipeline name \"%s\" is not available", pipeline_name),
			 errhint("Pipeline names are shared by all roles of the database, as their notification channels are; choose another name.")));
}

/*
 * The schemas of the caller's effective search_path (those that exist, in
 * order, without the implicit pg_catalog and pg_temp), as a name[] Datum
 * allocated in the SPI procedure context.  Must be called inside SPI and
 * before the search_path is pinned.
 */
static Datum
current_search_path_schemas(void)
{
	bool		isnull;

	SpiExecute("SELECT pg_catalog.current_schemas(false)", 0, NULL, NULL,
			   NULL, SPI_OK_SELECT);
	return SPI_datumTransfer(SpiGetDatum(0, 1, &isnull), false, -1);
}

/*
 * warn_if_search_path_unsafe warns (a NOTICE and a WARNING event) when the
 * search_path stored with a new pipeline holds a schema in which a role
 * other than the owner (superusers aside) can create objects.  Every flow
 * of the pipeline resolves its SQL through that path as the owner, so such
 * a role could plant a function or operator that the owner's flows then
 * call with the owner's rights.  The pipeline is still created: the owner
 * may trust those roles.
 */
static void
warn_if_search_path_unsafe(const PipelineDesc *pipeline, Datum schemas)
{
	Oid			types[2] = {NAMEARRAYOID, OIDOID};
	Datum		values[2];
	bool		isnull;
	char	   *unsafe = NULL;
	int			guc_nest_level;

	values[0] = schemas;
	values[1] = ObjectIdGetDatum(pipeline->owner);
	SPI_connect();
	guc_nest_level = PinSafeSearchPath();
	SpiExecute("SELECT pg_catalog.string_agg(pg_catalog.quote_ident(n.nspname),"
			   " ', ' ORDER BY s.position)"
			   "  FROM pg_catalog.unnest($1) WITH ORDINALITY AS s(name, position)"
			   "  JOIN pg_catalog.pg_namespace n"
			   "    ON n.nspname OPERATOR(pg_catalog.=) s.name"
			   " WHERE EXISTS ("
			   "   SELECT FROM (SELECT n.nspowner AS grantee"
			   "                 UNION ALL"
			   "                SELECT a.grantee FROM pg_catalog.aclexplode("
			   "                  COALESCE(n.nspacl,"
			   "                    pg_catalog.acldefault('n', n.nspowner))) a"
			   "                 WHERE a.privilege_type OPERATOR(pg_catalog.=) 'CREATE'"
			   "               ) AS c"
			   "   LEFT JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=)"
			   "     CASE WHEN c.grantee OPERATOR(pg_catalog.=)"
			   "               'pg_database_owner'::pg_catalog.regrole"
			   "          THEN (SELECT d.datdba FROM pg_catalog.pg_database d"
			   "                 WHERE d.datname OPERATOR(pg_catalog.=)"
			   "                       pg_catalog.current_database())"
			   "          ELSE c.grantee END"
			   "   WHERE c.grantee OPERATOR(pg_catalog.=) 0"
			   "      OR (r.oid OPERATOR(pg_catalog.<>) $2 AND NOT r.rolsuper))",
			   2, types, values, NULL, SPI_OK_SELECT);
	if (SPI_processed == 1)
	{
		Datum		value = SpiGetDatum(0, 1, &isnull);

		if (!isnull)
			unsafe = MemoryContextStrdup(TopTransactionContext,
										 TextDatumGetCString(value));
	}
	AtEOXact_GUC(false, guc_nest_level);
	SPI_finish();

	if (unsafe == NULL)
		return;
	ereport(NOTICE,
			(errmsg("search_path of pipeline \"%s\" includes schemas in which other roles can create objects: %s",
					pipeline->pipeline_name, unsafe),
			 errdetail("The pipeline's flows resolve names through this search_path with the rights of its owner, so those roles could plant functions or operators that the flows call."),
			 errhint("Create the pipeline with a search_path of schemas only its owner can create objects in, for example SET search_path = pg_catalog, my_schema.")));
	EventLogWrite(pipeline, 0, NULL, "search_path_warning", "WARNING",
				  psprintf("search_path includes schemas in which other roles can create objects: %s",
						   unsafe),
				  NULL);
}

static int64
interval_to_us(const Interval *interval)
{
	return interval->time + (int64) interval->day * USECS_PER_DAY +
		(int64) interval->month * 30 * USECS_PER_DAY;
}

static void
check_mode(const char *mode)
{
	if (strcmp(mode, "triggered") != 0 && strcmp(mode, "continuous") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid pipeline mode \"%s\"", mode),
				 errhint("Use 'triggered' or 'continuous'.")));
}

static void
check_trigger_interval(const Interval *trigger_interval)
{
	int64		interval_us = interval_to_us(trigger_interval);

	if (interval_us < 10 * 1000 || interval_us > (int64) 7 * USECS_PER_DAY)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("trigger_interval must be between 10 milliseconds and 7 days")));
}

/* One flow step may run from 1 second to 7 days (a timer's range). */
static void
check_max_step_duration(const Interval *max_step_duration)
{
	int64		duration_us = interval_to_us(max_step_duration);

	if (duration_us < USECS_PER_SEC || duration_us > (int64) 7 * USECS_PER_DAY)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_step_duration must be between 1 second and 7 days")));
}

/* An interval argument that must not be null. */
static Interval *
interval_argument(FunctionCallInfo fcinfo, int argno, const char *name)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", name)));
	return PG_GETARG_INTERVAL_P(argno);
}

/*
 * create_pipeline.  The SQL function of a database still at 0.1.0 has no
 * max_step_duration argument, and its catalog no such column: the column's
 * default then applies once the database is updated.
 */
Datum
medallion_create_pipeline(PG_FUNCTION_ARGS)
{
	VERSION_CHECK_CATALOG();
	char	   *pipeline_name = pipeline_name_argument(fcinfo);
	char	   *mode = PG_ARGISNULL(1) ? "triggered" :
		text_to_cstring(PG_GETARG_TEXT_PP(1));
	Interval   *trigger_interval;
	Datum		search_path_schemas;
	PipelineDesc *pipeline;
	Interval   *max_step_duration;
	Oid			types[7] = {TEXTOID, OIDOID, TEXTOID, INTERVALOID, TEXTOID,
		TEXTOID, INTERVALOID};
	Datum		values[7];

	if (pipeline_name[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("pipeline name must not be empty")));
	if (strlen(pipeline_name) > MAX_PIPELINE_NAME_LENGTH)
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("pipeline name \"%s\" is too long", pipeline_name),
				 errdetail("Pipeline names are at most %d bytes, so that the notification channel medallion_<pipeline_name> is a valid name.",
						   MAX_PIPELINE_NAME_LENGTH)));
	check_mode(mode);
	trigger_interval = interval_argument(fcinfo, 2, "trigger_interval");
	check_trigger_interval(trigger_interval);
	/* the 0.1.0 signature, without it, never gets here: VERSION_CHECK_CATALOG */
	max_step_duration = interval_argument(fcinfo, 3, "max_step_duration");
	check_max_step_duration(max_step_duration);

	refuse_taken_pipeline_name(pipeline_name);

	values[0] = CStringGetTextDatum(pipeline_name);
	values[1] = ObjectIdGetDatum(GetUserId());
	values[2] = CStringGetTextDatum(mode);
	values[3] = IntervalPGetDatum(trigger_interval);
	values[4] = CStringGetTextDatum(GetConfigOption("search_path", false, false));
	/* a continuous pipeline runs as soon as it exists */
	values[5] = CStringGetTextDatum(strcmp(mode, "continuous") == 0 ? "running" : "idle");
	values[6] = IntervalPGetDatum(max_step_duration);

	SPI_connect();
	search_path_schemas = current_search_path_schemas();
	SpiExecuteAsExtensionOwner("INSERT INTO medallion.pipeline"
							   " (pipeline_name, owner, mode, trigger_interval,"
							   " search_path, state, max_step_duration)"
							   " VALUES ($1, $2::pg_catalog.regrole, $3, $4, $5, $6, $7)",
							   7, types, values, NULL, SPI_OK_INSERT);
	SPI_finish();

	pipeline = CatalogGetPipeline(pipeline_name, false);
	EventLogWrite(pipeline, 0, NULL,
				  "create_pipeline", "INFO", "pipeline created", NULL);
	warn_if_search_path_unsafe(pipeline, search_path_schemas);
	LauncherWakeUp();
	PG_RETURN_VOID();
}

Datum
medallion_drop_pipeline(PG_FUNCTION_ARGS)
{
	VERSION_CHECK_CATALOG();
	char	   *pipeline_name = pipeline_name_argument(fcinfo);
	bool		drop_tables = PG_ARGISNULL(1) ? false : PG_GETARG_BOOL(1);
	PipelineDesc *pipeline = CatalogGetPipeline(pipeline_name, false);
	Oid			types[1] = {INT4OID};
	Datum		values[1] = {Int32GetDatum(pipeline->pipeline_id)};

	CatalogCheckPipelineOwner(pipeline);
	UpdateControlLockPipeline(pipeline->pipeline_id, UPDATE_STOP_DROP_PIPELINE);

	/*
	 * Downstream first, so that nothing depends on what is dropped.  The
	 * flows' state tables, and the triggers and indexes they put on their
	 * sources, go in any case: they are of no use without the flows.
	 */
	{
		List	   *flows = CatalogGetFlows(pipeline->pipeline_id);
		int			index;

		for (index = list_length(flows) - 1; index >= 0; index--)
		{
			FlowDesc   *flow = list_nth(flows, index);

			FlowDropInternalObjects(flow);
			/* an attached materialized view is the DBA's own: kept */
			if (drop_tables && flow->type != FLOW_TYPE_MATVIEW &&
				SearchSysCacheExists1(RELOID, ObjectIdGetDatum(flow->target_relid)))
			{
				char	   *sql = psprintf("DROP TABLE %s CASCADE",
										   CatalogQualifiedRelationName(flow->target_relid));

				SPI_connect();
				SpiExecute(sql, 0, NULL, NULL, NULL, SPI_OK_UTILITY);
				SPI_finish();
			}
		}
	}

	SPI_connect();
	SpiExecuteAsExtensionOwner("DELETE FROM medallion.pipeline"
							   " WHERE pipeline_id OPERATOR(pg_catalog.=) $1",
							   1, types, values, NULL, SPI_OK_DELETE);
	SPI_finish();
	EventLogWrite(pipeline, 0, NULL, "drop_pipeline", "INFO",
				  drop_tables ? "pipeline and its tables dropped" :
				  "pipeline dropped", NULL);
	LauncherWakeUp();
	(void) LingeringUpdateEvictIdle(MyDatabaseId, pipeline->pipeline_id);
	PG_RETURN_VOID();
}

Datum
medallion_run_pipeline(PG_FUNCTION_ARGS)
{
	VERSION_CHECK_CATALOG();
	char	   *pipeline_name = pipeline_name_argument(fcinfo);
	bool		full_refresh = PG_ARGISNULL(1) ? false : PG_GETARG_BOOL(1);
	PipelineDesc *pipeline = CatalogGetPipeline(pipeline_name, false);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	UpdateShared *result;
	List	   *refresh_flow_ids = NIL;
	int			index;

	CatalogCheckPipelineOwner(pipeline);
	/* refresh_tables: a full refresh of those flows and what reads them */
	if (PG_NARGS() > 2 && !PG_ARGISNULL(2))
		refresh_flow_ids = FlowRefreshTableIds(pipeline,
											   PG_GETARG_ARRAYTYPE_P(2));
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot run a pipeline during recovery"),
				 errhint("Run pipelines on the primary server.")));

	/*
	 * The update runs in another process, which cannot see what this
	 * transaction has written and might wait for its locks forever.
	 */
	if (TransactionIdIsValid(GetTopTransactionIdIfAny()))
		ereport(ERROR,
				(errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
				 errmsg("run_pipeline cannot run in a transaction that has written data"),
				 errhint("Commit first: the update runs in a background worker that sees only committed data.")));

	InitMaterializedSRF(fcinfo, 0);

	result = palloc0(sizeof(UpdateShared));
	UpdateWorkerRunAndWait(pipeline, full_refresh, refresh_flow_ids, result);

	if (result->failed)
	{
		char	   *where = result->failed_flow[0] ?
			psprintf("flow \"%s\" of pipeline \"%s\"", result->failed_flow,
					 pipeline_name) :
			psprintf("update of pipeline \"%s\"", pipeline_name);
		char	   *context = result->context[0] ?
			psprintf("%s\n%s", result->context, where) : where;

		ereport(ERROR,
				(errcode(result->sqlerrcode),
				 errmsg("%s", result->message),
				 result->detail[0] ? errdetail("%s", result->detail) : 0,
				 result->hint[0] ? errhint("%s", result->hint) : 0,
				 errcontext("%s", context)));
	}

	for (index = 0; index < result->flow_count; index++)
	{
		UpdateFlowRow *row = &result->flows[index];
		Datum		values[6];
		bool		nulls[6] = {false, false, false, false, false, false};
		Interval   *duration = palloc0(sizeof(Interval));

		duration->time = row->duration_us;
		values[0] = CStringGetTextDatum(row->flow_name);
		values[1] = CStringGetTextDatum(row->flow_type);
		values[2] = Int64GetDatum(row->rows_read);
		values[3] = Int64GetDatum(row->rows_written);
		values[4] = Int64GetDatum(row->rows_dropped);
		values[5] = IntervalPGetDatum(duration);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * Pipelines whose running update stop_pipeline stops when its transaction
 * commits: only then is the state "stopped" visible to the update, which
 * records it; a rolled back stop_pipeline stops nothing.
 */
static List *stops_at_commit = NIL;
static bool stop_callback_registered = false;

static void
stop_at_commit(XactEvent event, void *arg)
{
	ListCell   *cell;

	if (event == XACT_EVENT_COMMIT)
	{
		foreach(cell, stops_at_commit)
			(void) UpdateControlRequestStop(lfirst_int(cell),
											UPDATE_STOP_STOP_PIPELINE, false);
	}
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PREPARE || event == XACT_EVENT_PARALLEL_COMMIT ||
		event == XACT_EVENT_PARALLEL_ABORT)
		stops_at_commit = NIL;
}

static void
stop_update_at_commit(int32 pipeline_id)
{
	MemoryContext old;

	/* attach now: the commit callback must not fail */
	UpdateControlAttach();
	if (!stop_callback_registered)
	{
		RegisterXactCallback(stop_at_commit, NULL);
		stop_callback_registered = true;
	}
	old = MemoryContextSwitchTo(TopTransactionContext);
	stops_at_commit = list_append_unique_int(stops_at_commit, pipeline_id);
	MemoryContextSwitchTo(old);
}

static PipelineDesc *
set_state_by_user(FunctionCallInfo fcinfo, const char *state,
				  const char *event_message)
{
	char	   *pipeline_name = pipeline_name_argument(fcinfo);
	PipelineDesc *pipeline = CatalogGetPipeline(pipeline_name, false);

	CatalogCheckPipelineOwner(pipeline);
	if (strcmp(pipeline->mode, "continuous") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pipeline \"%s\" is not continuous", pipeline_name),
				 errhint("Run a triggered pipeline with medallion.run_pipeline().")));
	CatalogSetPipelineState(pipeline->pipeline_id, state, NULL);
	EventLogWrite(pipeline, 0, NULL, "user_action", "INFO", event_message,
				  NULL);
	LauncherWakeUp();
	return pipeline;
}

Datum
medallion_start_pipeline(PG_FUNCTION_ARGS)
{
	VERSION_CHECK_CATALOG();
	PipelineDesc *pipeline = set_state_by_user(fcinfo, "running",
											   "pipeline started");

	/* a stop earlier in this transaction is undone */
	stops_at_commit = list_delete_int(stops_at_commit, pipeline->pipeline_id);
	PG_RETURN_VOID();
}

/*
 * stop_pipeline: no new update starts, and the running one, if any, ends
 * within seconds of the commit (see stop_at_commit).
 */
Datum
medallion_stop_pipeline(PG_FUNCTION_ARGS)
{
	VERSION_CHECK_CATALOG();
	PipelineDesc *pipeline = set_state_by_user(fcinfo, "stopped",
											   "pipeline stopped");

	stop_update_at_commit(pipeline->pipeline_id);
	PG_RETURN_VOID();
}

/*
 * An interval argument of alter_pipeline: NULL leaves the setting as it
 * is; otherwise checked, passed as the UPDATE's parameter argno + 1, and
 * named in the event's list of changes.
 */
static void
alter_interval_argument(FunctionCallInfo fcinfo, int argno, const char *name,
						void (*check) (const Interval *), Datum *values,
						char *nulls, StringInfo changes)
{
	if (PG_ARGISNULL(argno))
		return;
	(*check) (PG_GETARG_INTERVAL_P(argno));
	values[argno] = PG_GETARG_DATUM(argno);
	nulls[argno] = ' ';
	appendStringInfo(changes, "%s%s %s", changes->len > 0 ? ", " : "", name,
					 DatumGetCString(DirectFunctionCall1(interval_out,
														 values[argno])));
}

/*
 * alter_pipeline changes the mode, trigger_interval, max_step_duration or
 * owner of a pipeline (NULL: unchanged); see pipeline_owner.c for owner.  A change of mode waits for the running
 * update to end, so that the update does not record the state of the old
 * mode afterwards; leaving continuous mode stops the worker's running
 * update, as stop_pipeline does.  The new mode's state: a continuous
 * pipeline runs at once (as after create_pipeline), a triggered one is
 * idle, or stays failed.
 */
Datum
medallion_alter_pipeline(PG_FUNCTION_ARGS)
{
	VERSION_CHECK_CATALOG();
	char	   *pipeline_name = pipeline_name_argument(fcinfo);
	PipelineDesc *pipeline = CatalogGetPipeline(pipeline_name, false);
	char	   *mode = PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1));
	Oid			types[5] = {INT4OID, TEXTOID, INTERVALOID, INTERVALOID, TEXTOID};
	Datum		values[5];
	char		nulls[5] = {' ', 'n', 'n', 'n', 'n'};
	StringInfoData changes;
	Oid			new_owner = InvalidOid;

	CatalogCheckPipelineOwner(pipeline);
	initStringInfo(&changes);
	values[0] = Int32GetDatum(pipeline->pipeline_id);
	if (mode != NULL)
	{
		check_mode(mode);
		values[1] = CStringGetTextDatum(mode);
		nulls[1] = ' ';
		appendStringInfo(&changes, "mode %s", mode);
	}
	alter_interval_argument(fcinfo, 2, "trigger_interval",
							check_trigger_interval, values, nulls, &changes);
	alter_interval_argument(fcinfo, 3, "max_step_duration",
							check_max_step_duration, values, nulls, &changes);
	if (PG_NARGS() > 4 && !PG_ARGISNULL(4))
	{
		new_owner = get_role_oid(NameStr(*PG_GETARG_NAME(4)), false);
		appendStringInfo(&changes, "%sowner %s", changes.len > 0 ? ", " : "",
						 NameStr(*PG_GETARG_NAME(4)));
	}
	if (changes.len == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("alter_pipeline needs mode, trigger_interval, max_step_duration or owner")));

	/* the running update ends as the old owner; the next runs as the new */
	if (OidIsValid(new_owner))
	{
		UpdateControlLockPipeline(pipeline->pipeline_id, UPDATE_STOP_NONE);
		PipelineChangeOwner(pipeline, new_owner);
	}

	if (mode != NULL && strcmp(mode, pipeline->mode) != 0)
	{
		bool		to_continuous = strcmp(mode, "continuous") == 0;

		UpdateControlLockPipeline(pipeline->pipeline_id,
							  to_continuous ? UPDATE_STOP_NONE :
							  UPDATE_STOP_ALTER_PIPELINE);
		/* the state as the update left it */
		pipeline = CatalogGetPipelineById(pipeline->pipeline_id, false);
		values[4] = CStringGetTextDatum(to_continuous ? "running" :
										strcmp(pipeline->state, "failed") == 0 ?
										"failed" : "idle");
		nulls[4] = ' ';
	}

	SPI_connect();
	SpiExecuteAsExtensionOwner("UPDATE medallion.pipeline"
							   " SET mode = COALESCE($2, mode),"
							   " trigger_interval = COALESCE($3, trigger_interval),"
							   " max_step_duration = COALESCE($4, max_step_duration),"
							   " state = COALESCE($5, state),"
							   " next_attempt_at = CASE WHEN $5 IS NULL"
							   " THEN next_attempt_at END"
							   " WHERE pipeline_id OPERATOR(pg_catalog.=) $1",
							   5, types, values, nulls, SPI_OK_UPDATE);
	SPI_finish();
	EventLogWrite(pipeline, 0, NULL, "user_action", "INFO",
				  psprintf("pipeline altered: %s", changes.data), NULL);
	LauncherWakeUp();
	PG_RETURN_VOID();
}
