/*-------------------------------------------------------------------------
 *
 * pipeline.c
 *	  The SQL functions that manage pipelines: create_pipeline,
 *	  drop_pipeline, run_pipeline, start_pipeline and stop_pipeline.
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
#include "storage/lock.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "catalog.h"
#include "launcher.h"
#include "medallion.h"
#include "spi_util.h"
#include "update.h"
#include "update_worker.h"
#include "version.h"

PG_FUNCTION_INFO_V1(medallion_create_pipeline);
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

Datum
medallion_create_pipeline(PG_FUNCTION_ARGS)
{
	VERSION_CHECK_CATALOG();
	char	   *pipeline_name = pipeline_name_argument(fcinfo);
	char	   *mode = PG_ARGISNULL(1) ? "triggered" :
		text_to_cstring(PG_GETARG_TEXT_PP(1));
	Interval   *trigger_interval;
	int64		interval_us;
	Oid			types[6] = {TEXTOID, OIDOID, TEXTOID, INTERVALOID, TEXTOID, TEXTOID};
	Datum		values[6];

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
	if (strcmp(mode, "triggered") != 0 && strcmp(mode, "continuous") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid pipeline mode \"%s\"", mode),
				 errhint("Use 'triggered' or 'continuous'.")));

	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("trigger_interval must not be null")));
	trigger_interval = PG_GETARG_INTERVAL_P(2);
	interval_us = trigger_interval->time +
		(int64) trigger_interval->day * USECS_PER_DAY +
		(int64) trigger_interval->month * 30 * USECS_PER_DAY;
	if (interval_us < 10 * 1000 || interval_us > (int64) 7 * USECS_PER_DAY)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("trigger_interval must be between 10 milliseconds and 7 days")));

	if (CatalogGetPipeline(pipeline_name, true) != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("pipeline \"%s\" already exists", pipeline_name)));

	values[0] = CStringGetTextDatum(pipeline_name);
	values[1] = ObjectIdGetDatum(GetUserId());
	values[2] = CStringGetTextDatum(mode);
	values[3] = IntervalPGetDatum(trigger_interval);
	values[4] = CStringGetTextDatum(GetConfigOption("search_path", false, false));
	/* a continuous pipeline runs as soon as it exists */
	values[5] = CStringGetTextDatum(strcmp(mode, "continuous") == 0 ? "running" : "idle");

	SPI_connect();
	SpiExecuteAsExtensionOwner("INSERT INTO medallion.pipeline"
							   " (pipeline_name, owner, mode, trigger_interval,"
							   " search_path, state)"
							   " VALUES ($1, $2::pg_catalog.regrole, $3, $4, $5, $6)",
							   6, types, values, NULL, SPI_OK_INSERT);
	SPI_finish();

	EventLogWrite(CatalogGetPipeline(pipeline_name, false), 0, NULL,
				  "create_pipeline", "INFO", "pipeline created", NULL);
	LauncherWakeUp();
	PG_RETURN_VOID();
}

/*
 * Wait for a running update of the pipeline to end, and keep others from
 * starting until this transaction ends.
 */
static void
lock_pipeline_updates(int32 pipeline_id)
{
	LOCKTAG		tag;

	UpdateLockTag(&tag, pipeline_id);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);
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
	lock_pipeline_updates(pipeline->pipeline_id);

	if (drop_tables)
	{
		List	   *flows = CatalogGetFlows(pipeline->pipeline_id);
		int			index;

		/* downstream first, so that nothing depends on what is dropped */
		for (index = list_length(flows) - 1; index >= 0; index--)
		{
			FlowDesc   *flow = list_nth(flows, index);

			/* an attached materialized view is the DBA's own: kept */
			if (strcmp(flow->flow_type, "matview") != 0 &&
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
	int			index;

	CatalogCheckPipelineOwner(pipeline);
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
	UpdateWorkerRunAndWait(pipeline->pipeline_id, full_refresh, result);

	if (result->failed)
	{
		char	   *context = result->context[0] ?
			psprintf("%s\nupdate of pipeline \"%s\"", result->context,
					 pipeline_name) :
			psprintf("update of pipeline \"%s\"", pipeline_name);

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

static void
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
}

Datum
medallion_start_pipeline(PG_FUNCTION_ARGS)
{
	VERSION_CHECK_CATALOG();
	set_state_by_user(fcinfo, "running", "pipeline started");
	PG_RETURN_VOID();
}

Datum
medallion_stop_pipeline(PG_FUNCTION_ARGS)
{
	VERSION_CHECK_CATALOG();
	set_state_by_user(fcinfo, "stopped", "pipeline stopped");
	PG_RETURN_VOID();
}
