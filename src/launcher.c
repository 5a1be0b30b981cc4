/*-------------------------------------------------------------------------
 *
 * launcher.c
 *	  The launcher of continuous mode, and the scheduler it starts in each
 *	  database.
 *
 * Three levels of background workers run continuous pipelines:
 *
 *	- the launcher (static, registered in _PG_init when medallion is in
 *	  shared_preload_libraries, started after recovery) is connected to no
 *	  database; every medallion.launcher_naptime it lists the databases
 *	  and starts a scheduler in each one that has none.  It cannot see
 *	  which databases have the extension, so a database without it is
 *	  probed again only every few naptimes, or at once when a medallion
 *	  function there asks for it (LauncherWakeUp);
 *	- a scheduler per database exits when the extension is not there;
 *	  otherwise it starts one pipeline worker per continuous pipeline in
 *	  state running, within medallion.max_workers over all databases;
 *	- a pipeline worker (worker.c) runs the updates of its pipeline.
 *
 * Every worker uses the stock signal handlers and WaitLatch with
 * WL_EXIT_ON_PM_DEATH, and reports what it does through application_name
 * and pg_stat_activity.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "dynamic_worker.h"
#include "guc.h"
#include "launcher.h"
#include "medallion.h"
#include "shmem.h"
#include "spi_util.h"
#include "version.h"

/* a database without medallion is probed again after this many naptimes */
#define PROBE_NAPTIMES 5

/* One database the launcher knows about. */
typedef struct SchedulerEntry
{
	Oid			database_id;
	BackgroundWorkerHandle *handle;
	TimestampTz last_stop;
} SchedulerEntry;

/* One pipeline worker a scheduler started. */
typedef struct PipelineWorkerEntry
{
	int32		pipeline_id;
	BackgroundWorkerHandle *handle;
} PipelineWorkerEntry;

static bool wake_at_commit = false;
static bool wake_callback_registered = false;

void
LauncherRegister(void)
{
	BackgroundWorker worker;

	ShmemInstallHooks();

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS |
		BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 5;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, MEDALLION_LIBRARY_NAME);
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "MedallionLauncherMain");
	snprintf(worker.bgw_name, BGW_MAXLEN, "medallion launcher");
	snprintf(worker.bgw_type, BGW_MAXLEN, "medallion launcher");
	RegisterBackgroundWorker(&worker);
}

/* At commit, set the latches of the launcher and this database's scheduler. */
static void
wake_xact_callback(XactEvent event, void *arg)
{
	DatabaseSlot *slot;
	Latch	   *scheduler_latch = NULL;
	Latch	   *launcher_latch = NULL;

	if (!wake_at_commit)
		return;
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
	{
		wake_at_commit = false;
		return;
	}
	if (event != XACT_EVENT_COMMIT)
		return;
	wake_at_commit = false;

	slot = ShmemDatabaseSlot(MyDatabaseId);
	if (slot == NULL)
		return;
	SpinLockAcquire(&medallion_shared->mutex);
	slot->wake_requested = true;
	scheduler_latch = slot->scheduler_latch;
	launcher_latch = medallion_shared->launcher_latch;
	SpinLockRelease(&medallion_shared->mutex);
	if (scheduler_latch != NULL)
		SetLatch(scheduler_latch);
	if (launcher_latch != NULL)
		SetLatch(launcher_latch);
}

void
LauncherWakeUp(void)
{
	if (medallion_shared == NULL)
		return;
	if (!wake_callback_registered)
	{
		RegisterXactCallback(wake_xact_callback, NULL);
		wake_callback_registered = true;
	}
	wake_at_commit = true;
}

/* The databases a scheduler may run in. */
static List *
list_databases(void)
{
	List	   *databases = NIL;
	Relation	relation;
	TableScanDesc scan;
	HeapTuple	tuple;
	MemoryContext caller_context = CurrentMemoryContext;

	StartTransactionCommand();
	(void) GetTransactionSnapshot();
	relation = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(relation, 0, NULL);
	while (HeapTupleIsValid(tuple = heap_getnext(scan, ForwardScanDirection)))
	{
		Form_pg_database database = (Form_pg_database) GETSTRUCT(tuple);
		MemoryContext old;

		if (!database->datallowconn || database->datistemplate)
			continue;
		old = MemoryContextSwitchTo(caller_context);
		databases = lappend_oid(databases, database->oid);
		MemoryContextSwitchTo(old);
	}
	table_endscan(scan);
	table_close(relation, AccessShareLock);
	CommitTransactionCommand();
	return databases;
}

static BackgroundWorkerHandle *
start_worker(const char *function_name, const char *type, const char *name,
			 Datum main_arg, Oid database_id)
{
	BackgroundWorkerHandle *handle;

	handle = DynamicWorkerStart(function_name, type, name, main_arg,
								&database_id, sizeof(Oid));
	if (handle == NULL)
		ereport(LOG,
				(errmsg("could not start background worker \"%s\"", name),
				 errhint("Raise max_worker_processes.")));
	return handle;
}

static bool
worker_is_running(BackgroundWorkerHandle *handle)
{
	pid_t		pid;

	return GetBackgroundWorkerPid(handle, &pid) != BGWH_STOPPED;
}

void
MedallionLauncherMain(Datum main_arg)
{
	MemoryContext loop_context;
	List	   *entries = NIL;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	pgstat_report_appname("medallion launcher");

	SpinLockAcquire(&medallion_shared->mutex);
	medallion_shared->launcher_latch = MyLatch;
	SpinLockRelease(&medallion_shared->mutex);

	loop_context = AllocSetContextCreate(TopMemoryContext,
										 "medallion launcher loop",
										 ALLOCSET_DEFAULT_SIZES);
	for (;;)
	{
		List	   *databases;
		ListCell   *cell;
		TimestampTz now;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		if (medallion_enable_workers)
		{
			MemoryContextSwitchTo(loop_context);
			databases = list_databases();
			now = GetCurrentTimestamp();
			foreach(cell, databases)
			{
				Oid			database_id = lfirst_oid(cell);
				SchedulerEntry *entry = NULL;
				ListCell   *entry_cell;
				DatabaseSlot *slot;
				bool		wake = false;

				foreach(entry_cell, entries)
				{
					if (((SchedulerEntry *) lfirst(entry_cell))->database_id == database_id)
						entry = lfirst(entry_cell);
				}
				if (entry == NULL)
				{
					MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

					entry = palloc0(sizeof(SchedulerEntry));
					entry->database_id = database_id;
					entries = lappend(entries, entry);
					MemoryContextSwitchTo(old);
				}
				if (entry->handle != NULL && !worker_is_running(entry->handle))
				{
					pfree(entry->handle);
					entry->handle = NULL;
					entry->last_stop = now;
				}
				if (entry->handle != NULL)
					continue;

				slot = ShmemDatabaseSlot(database_id);
				if (slot != NULL)
				{
					SpinLockAcquire(&medallion_shared->mutex);
					wake = slot->wake_requested;
					slot->wake_requested = false;
					SpinLockRelease(&medallion_shared->mutex);
				}
				if (wake || entry->last_stop == 0 ||
					TimestampDifferenceExceeds(entry->last_stop, now,
											   PROBE_NAPTIMES * medallion_launcher_naptime_ms))
				{
					MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

					entry->handle = start_worker("MedallionSchedulerMain",
												 "medallion scheduler",
												 psprintf("medallion scheduler of database %u",
														  database_id),
												 ObjectIdGetDatum(database_id),
												 database_id);
					MemoryContextSwitchTo(old);
					if (entry->handle == NULL)
						entry->last_stop = now;
				}
			}
			MemoryContextSwitchTo(TopMemoryContext);
			MemoryContextReset(loop_context);
		}

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 medallion_launcher_naptime_ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

static void
scheduler_detach(int code, Datum arg)
{
	DatabaseSlot *slot = ShmemDatabaseSlot(MyDatabaseId);

	if (slot == NULL)
		return;
	SpinLockAcquire(&medallion_shared->mutex);
	slot->scheduler_latch = NULL;
	SpinLockRelease(&medallion_shared->mutex);
}

/* The continuous pipelines of this database that should be running. */
static List *
running_pipeline_ids(bool *extension_exists)
{
	List	   *ids = NIL;
	MemoryContext caller_context = CurrentMemoryContext;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	*extension_exists = OidIsValid(get_extension_oid(MEDALLION_EXTENSION_NAME, true));
	if (*extension_exists && VersionCatalogUsable())
	{
		uint64		row;

		pgstat_report_activity(STATE_RUNNING, "medallion: looking for continuous pipelines");
		SPI_connect();
		SpiExecute("SELECT pipeline_id FROM medallion.pipeline"
				   " WHERE mode OPERATOR(pg_catalog.=) 'continuous'"
				   " AND state OPERATOR(pg_catalog.=) 'running'"
				   " ORDER BY pipeline_id",
				   0, NULL, NULL, NULL, SPI_OK_SELECT);
		for (row = 0; row < SPI_processed; row++)
		{
			MemoryContext old = MemoryContextSwitchTo(caller_context);

			ids = lappend_int(ids, (int) SpiGetInt64(row, 1, NULL));
			MemoryContextSwitchTo(old);
		}
		SPI_finish();
	}
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
	return ids;
}

/*
 * Claim a slot of medallion.max_workers; false when all are taken.  The
 * pipeline worker gives it back when it exits.
 */
static bool
claim_worker_slot(void)
{
	bool		claimed = false;

	SpinLockAcquire(&medallion_shared->mutex);
	if (medallion_shared->pipeline_workers < medallion_max_workers)
	{
		medallion_shared->pipeline_workers++;
		claimed = true;
	}
	SpinLockRelease(&medallion_shared->mutex);
	return claimed;
}

void
MedallionSchedulerMain(Datum main_arg)
{
	Oid			database_id = DatumGetObjectId(main_arg);
	DatabaseSlot *slot;
	List	   *workers = NIL;
	MemoryContext loop_context;
	int			missing_extension = 0;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(database_id, InvalidOid, 0);
	pgstat_report_appname("medallion scheduler");

	slot = ShmemDatabaseSlot(database_id);
	if (slot != NULL)
	{
		SpinLockAcquire(&medallion_shared->mutex);
		slot->scheduler_latch = MyLatch;
		slot->wake_requested = false;
		SpinLockRelease(&medallion_shared->mutex);
		before_shmem_exit(scheduler_detach, (Datum) 0);
	}

	loop_context = AllocSetContextCreate(TopMemoryContext,
										 "medallion scheduler loop",
										 ALLOCSET_DEFAULT_SIZES);
	for (;;)
	{
		bool		extension_exists;
		List	   *ids;
		ListCell   *cell;
		List	   *still_running = NIL;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		if (!medallion_enable_workers)
			proc_exit(0);

		MemoryContextSwitchTo(loop_context);
		ids = running_pipeline_ids(&extension_exists);
		if (!extension_exists)
		{
			/* give a CREATE EXTENSION in progress a moment to commit */
			if (++missing_extension >= 3)
				proc_exit(0);
		}
		else
			missing_extension = 0;

		/* forget workers that exited */
		MemoryContextSwitchTo(TopMemoryContext);
		foreach(cell, workers)
		{
			PipelineWorkerEntry *entry = lfirst(cell);

			if (worker_is_running(entry->handle))
				still_running = lappend(still_running, entry);
			else
			{
				pfree(entry->handle);
				pfree(entry);
			}
		}
		list_free(workers);
		workers = still_running;

		foreach(cell, ids)
		{
			int32		pipeline_id = lfirst_int(cell);
			bool		running = false;
			ListCell   *worker_cell;
			PipelineWorkerEntry *entry;

			foreach(worker_cell, workers)
			{
				if (((PipelineWorkerEntry *) lfirst(worker_cell))->pipeline_id == pipeline_id)
					running = true;
			}
			if (running || !claim_worker_slot())
				continue;
			entry = palloc0(sizeof(PipelineWorkerEntry));
			entry->pipeline_id = pipeline_id;
			entry->handle = start_worker("MedallionPipelineWorkerMain",
										 "medallion worker",
										 psprintf("medallion worker of pipeline %d",
												  pipeline_id),
										 Int32GetDatum(pipeline_id),
										 database_id);
			if (entry->handle == NULL)
			{
				SpinLockAcquire(&medallion_shared->mutex);
				medallion_shared->pipeline_workers--;
				SpinLockRelease(&medallion_shared->mutex);
				pfree(entry);
				continue;
			}
			workers = lappend(workers, entry);
		}
		MemoryContextReset(loop_context);

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 medallion_launcher_naptime_ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
