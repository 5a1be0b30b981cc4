/*-------------------------------------------------------------------------
 *
 * pipeline_workers.c
 *	  medallion.pipeline_workers: the background workers of the pipelines
 *	  the current role may see, with what pg_stat_activity shows of them.
 *
 * A worker whose pipeline owner cannot log in runs as the bootstrap
 * superuser, and pg_stat_activity hides its state and query from the
 * owner.  This function shows them to the roles that may manage the
 * pipeline (members of its owner), and only for medallion's own workers:
 * backends of this database whose background worker type is medallion's
 * update or pipeline worker, which name their pipeline in their
 * application_name ("medallion worker: orders").  Only medallion's library
 * starts workers of those types, so the name is not a role's claim.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/pipeline_workers.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "utils/acl.h"
#include "utils/backend_status.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "medallion.h"
#include "spi_util.h"
#include "version.h"

PG_FUNCTION_INFO_V1(medallion_pipeline_worker_activity);

#define PIPELINE_WORKER_COLUMNS 9

/* as pgstatfuncs.c reads another process's wait event */
#define UINT32_ACCESS_ONCE(var)	((uint32) (*((volatile uint32 *) &(var))))

/* A pipeline the caller may see, by name. */
typedef struct VisiblePipeline
{
	char	   *pipeline_name;
	Oid			owner;
} VisiblePipeline;

/* The pipelines of roles the caller has the privileges of. */
static List *
visible_pipelines(void)
{
	List	   *visible = NIL;
	uint64		row;
	MemoryContext caller_context = CurrentMemoryContext;

	SPI_connect();
	SpiExecuteAsExtensionOwner("SELECT pipeline_name, owner::pg_catalog.oid"
							   "  FROM medallion.pipeline",
							   0, NULL, NULL, NULL, SPI_OK_SELECT);
	for (row = 0; row < SPI_processed; row++)
	{
		bool		isnull;
		Oid			owner = DatumGetObjectId(SpiGetDatum(row, 2, &isnull));

		if (has_privs_of_role(GetUserId(), owner))
		{
			MemoryContext old = MemoryContextSwitchTo(caller_context);
			VisiblePipeline *pipeline = palloc(sizeof(VisiblePipeline));

			pipeline->pipeline_name = SpiGetText(row, 1);
			pipeline->owner = owner;
			visible = lappend(visible, pipeline);
			MemoryContextSwitchTo(old);
		}
	}
	SPI_finish();
	return visible;
}

/*
 * The pipeline a medallion worker's application_name names ("<type>: <pipeline>"),
 * if the caller may see it.
 */
static VisiblePipeline *
worker_pipeline(const char *type, const char *application_name,
				List *visible)
{
	size_t		prefix = strlen(type);
	ListCell   *cell;

	if (strncmp(application_name, type, prefix) != 0 ||
		strncmp(application_name + prefix, ": ", 2) != 0)
		return NULL;
	foreach(cell, visible)
	{
		VisiblePipeline *pipeline = lfirst(cell);

		if (strcmp(pipeline->pipeline_name, application_name + prefix + 2) == 0)
			return pipeline;
	}
	return NULL;
}

static const char *
backend_state_name(BackendState state)
{
	switch (state)
	{
		case STATE_IDLE:
			return "idle";
		case STATE_RUNNING:
			return "active";
		case STATE_IDLEINTRANSACTION:
			return "idle in transaction";
		case STATE_FASTPATH:
			return "fastpath function call";
		case STATE_IDLEINTRANSACTION_ABORTED:
			return "idle in transaction (aborted)";
		case STATE_DISABLED:
			return "disabled";
		case STATE_UNDEFINED:
			break;
	}
	return NULL;
}

/*
 * medallion.pipeline_worker_activity(): one row per update or pipeline
 * worker of a visible pipeline in this database.
 */
Datum
medallion_pipeline_worker_activity(PG_FUNCTION_ARGS)
{
	VERSION_CHECK_CATALOG();
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	List	   *visible;
	int			count;
	int			index;

	InitMaterializedSRF(fcinfo, 0);
	visible = visible_pipelines();
	count = pgstat_fetch_stat_numbackends();
	for (index = 1; index <= count; index++)
	{
		LocalPgBackendStatus *local = pgstat_fetch_stat_local_beentry(index);
		PgBackendStatus *status;
		const char *type;
		VisiblePipeline *pipeline;
		PGPROC	   *proc;
		Datum		values[PIPELINE_WORKER_COLUMNS];
		bool		nulls[PIPELINE_WORKER_COLUMNS];
		const char *state;

		if (local == NULL)
			continue;
		status = &local->backendStatus;
		if (status->st_backendType != B_BG_WORKER ||
			status->st_databaseid != MyDatabaseId)
			continue;
		type = GetBackgroundWorkerTypeByPid(status->st_procpid);
		if (type == NULL ||
			(strcmp(type, "medallion worker") != 0 &&
			 strcmp(type, "medallion update") != 0))
			continue;
		pipeline = worker_pipeline(type, status->st_appname, visible);
		if (pipeline == NULL)
			continue;

		memset(nulls, false, sizeof(nulls));
		values[0] = CStringGetTextDatum(pipeline->pipeline_name);
		values[1] = Int32GetDatum(status->st_procpid);
		values[2] = CStringGetTextDatum(type);
		values[3] = ObjectIdGetDatum(status->st_userid);
		values[4] = TimestampTzGetDatum(status->st_proc_start_timestamp);
		state = backend_state_name(status->st_state);
		values[5] = state ? CStringGetTextDatum(state) : (Datum) 0;
		nulls[5] = state == NULL;
		nulls[6] = true;
		proc = BackendPidGetProc(status->st_procpid);
		if (proc != NULL)
		{
			const char *wait_event =
				pgstat_get_wait_event(UINT32_ACCESS_ONCE(proc->wait_event_info));

			if (wait_event != NULL)
			{
				values[6] = CStringGetTextDatum(wait_event);
				nulls[6] = false;
			}
		}
		values[7] = TimestampTzGetDatum(status->st_activity_start_timestamp);
		nulls[7] = status->st_activity_start_timestamp == 0;
		values[8] = CStringGetTextDatum(pgstat_clip_activity(status->st_activity_raw));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
