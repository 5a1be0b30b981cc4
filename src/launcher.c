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
 *	  which databases have the extension, so a database whose scheduler
 *	  left is probed again only every few naptimes, or at once when a
 *	  medallion function there asks for it (LauncherWakeUp);
 *	- a scheduler per database leaves at once when the extension is not
 *	  there or no continuous pipeline is running (so that it holds no
 *	  connection that would delay CREATE DATABASE or DROP DATABASE);
 *	  otherwise it claims a slot of medallion.max_workers (worker_slots.c)
 *	  for each running continuous pipeline that is due, and starts its
 *	  worker;
 *	- a pipeline worker (worker.c) runs the updates of its pipeline, and
 *	  gives its slot up when other pipelines wait.
 *
 * Who runs is recorded in shared memory, not only in the handles of the
 * process that started it: a scheduler registers itself in its database's
 * slot and leaves when another live one is there, and the workers hold
 * worker slots by PID and generation.  So whatever ends the launcher or a
 * scheduler, their successors find the live processes and start no
 * duplicates.  An object-access hook makes the processes of a database
 * leave when DROP DATABASE begins, before it waits for other sessions.
 *
 * Every worker uses the stock signal handlers and WaitLatch with
 * WL_EXIT_ON_PM_DEATH, and reports what it does through application_name
 * and pg_stat_activity.
 *
 * Copyright (c) 2025-2026, medallion contributors
 *
 * IDENTIFICATION
 *	  src/launcher.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/objectaccess.h"
#include "catalog/pg_database.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "catalog.h"
#include "dynamic_worker.h"
#include "guc.h"
#include "launcher.h"
#include "lingering_update.h"
#include "medallion.h"
#include "shmem.h"
#include "spi_util.h"
#include "worker.h"
#include "worker_slots.h"
#include "version.h"

/* a database whose scheduler left is probed again after this many naptimes */
#define PROBE_NAPTIMES 5

/* no scheduler is started in a database this long after DROP DATABASE began */
#define DROP_GRACE_MS 10000

/* a pipeline waiting this long for a slot is reported (event, log line) */
#define WAIT_REPORT_MS 1000

/* and reported again at most this often */
#define WAIT_REPORT_INTERVAL_MS 60000

/* One database the launcher knows about. */
typedef struct SchedulerEntry
{
	Oid			database_id;
	BackgroundWorkerHandle *handle;
	TimestampTz last_stop;
} SchedulerEntry;

/* One pipeline worker this scheduler started, until it stops. */
typedef struct StartedWorker
{
	WorkerSlotClaim claim;
	BackgroundWorkerHandle *handle;
} StartedWorker;

/* A running continuous pipeline, as the scheduler reads it. */
typedef struct RunningPipeline
{
	int32		pipeline_id;
	Oid			owner;
	Oid			session_role;	/* its worker's, DynamicWorkerSessionRole */
	char	   *pipeline_name;
	int64		due_in_ms;		/* <= 0: due now */
} RunningPipeline;

/* When the scheduler last reported a pipeline waiting. */
typedef struct WaitReport
{
	int32		pipeline_id;
	TimestampTz episode;		/* the start of the wait it reported */
	TimestampTz reported_at;
} WaitReport;

static bool wake_at_commit = false;
static bool wake_callback_registered = false;
static object_access_hook_type previous_object_access_hook = NULL;

static void medallion_object_access(ObjectAccessType access, Oid classId,
									Oid objectId, int subId, void *arg);

void
LauncherRegister(void)
{
	BackgroundWorker worker;

	ShmemInstallHooks();
	previous_object_access_hook = object_access_hook;
	object_access_hook = medallion_object_access;

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

/*
 * DROP DATABASE calls the hook before it waits for the other sessions of
 * the database to end: the scheduler and the workers there are told to
 * leave (SIGTERM, as pg_terminate_backend), and no scheduler is started
 * there for a while.  The flag is set before the PIDs are read, and a
 * scheduler or worker checks it after registering its PID, so each one
 * either is signalled here or sees the flag.  When the DROP fails, the
 * pipelines resume after DROP_GRACE_MS.
 */
static void
make_database_workers_leave(Oid database_id)
{
	int			pids[WORKER_SLOTS_MAX + 1];
	int			count = 0;
	int			index;
	DatabaseSlot *slot = ShmemDatabaseSlot(database_id);

	if (slot != NULL)
	{
		SpinLockAcquire(&medallion_shared->mutex);
		slot->drop_started = GetCurrentTimestamp();
		if (slot->scheduler_pid != 0)
			pids[count++] = slot->scheduler_pid;
		SpinLockRelease(&medallion_shared->mutex);
	}
	count += WorkerSlotsDatabasePids(database_id, pids + count,
									 lengthof(pids) - count);
	(void) LingeringUpdateEvictIdle(database_id, 0);
	for (index = 0; index < count; index++)
	{
		if (DynamicWorkerAlive(pids[index], database_id, "medallion scheduler") ||
			DynamicWorkerAlive(pids[index], database_id, "medallion worker"))
			(void) kill(pids[index], SIGTERM);
	}
}

static void
medallion_object_access(ObjectAccessType access, Oid classId, Oid objectId,
						int subId, void *arg)
{
	if (previous_object_access_hook)
		(*previous_object_access_hook) (access, classId, objectId, subId, arg);
	if (access == OAT_DROP && classId == DatabaseRelationId &&
		medallion_shared != NULL)
		make_database_workers_leave(objectId);
}

/* Has DROP DATABASE of this database begun lately? */
bool
LauncherDatabaseDropping(Oid database_id)
{
	DatabaseSlot *slot = ShmemFindDatabaseSlot(database_id);
	TimestampTz drop_started = 0;

	if (slot == NULL)
		return false;
	SpinLockAcquire(&medallion_shared->mutex);
	if (slot->database_id == database_id)
		drop_started = slot->drop_started;
	SpinLockRelease(&medallion_shared->mutex);
	return drop_started != 0 &&
		!TimestampDifferenceExceeds(drop_started, GetCurrentTimestamp(),
									DROP_GRACE_MS);
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
			 Datum main_arg, const void *extra, Size extra_size)
{
	BackgroundWorkerHandle *handle;

	handle = DynamicWorkerStart(function_name, type, name, main_arg,
								extra, extra_size);
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

/*
 * Should the launcher start a scheduler in this database now?  Not while a
 * live one is registered there (whoever started it), nor while the
 * database is being dropped; otherwise when asked to, when the previous
 * scheduler had pipelines to run (it was terminated), the first time the
 * database is seen, and every PROBE_NAPTIMES naptimes.
 */
static bool
scheduler_needed(SchedulerEntry *entry, TimestampTz now)
{
	DatabaseSlot *slot = ShmemFindDatabaseSlot(entry->database_id);
	int			scheduler_pid = 0;
	bool		wanted = false;
	bool		wake = false;

	if (slot != NULL)
	{
		SpinLockAcquire(&medallion_shared->mutex);
		if (slot->database_id == entry->database_id)
		{
			scheduler_pid = slot->scheduler_pid;
			wanted = slot->scheduler_wanted;
			wake = slot->wake_requested;
		}
		SpinLockRelease(&medallion_shared->mutex);
	}
	if (scheduler_pid != 0 &&
		DynamicWorkerAlive(scheduler_pid, entry->database_id, "medallion scheduler"))
		return false;
	if (LauncherDatabaseDropping(entry->database_id))
		return false;
	if (wake)
	{
		SpinLockAcquire(&medallion_shared->mutex);
		if (slot->database_id == entry->database_id)
			slot->wake_requested = false;
		SpinLockRelease(&medallion_shared->mutex);
	}
	return wake || wanted || entry->last_stop == 0 ||
		TimestampDifferenceExceeds(entry->last_stop, now,
								   PROBE_NAPTIMES * medallion_launcher_naptime_ms);
}

/* Forget the entries of databases that are gone. */
static List *
forget_dropped_databases(List *entries, List *databases)
{
	List	   *kept = NIL;
	ListCell   *cell;
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

	foreach(cell, entries)
	{
		SchedulerEntry *entry = lfirst(cell);

		if (list_member_oid(databases, entry->database_id))
			kept = lappend(kept, entry);
		else
		{
			if (entry->handle != NULL)
				pfree(entry->handle);
			pfree(entry);
		}
	}
	list_free(entries);
	MemoryContextSwitchTo(old);
	return kept;
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
			ShmemForgetDatabases(databases);
			WorkerSlotsReclaimDead();
			entries = forget_dropped_databases(entries, databases);
			now = GetCurrentTimestamp();
			foreach(cell, databases)
			{
				Oid			database_id = lfirst_oid(cell);
				SchedulerEntry *entry = NULL;
				ListCell   *entry_cell;

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
				if (entry->handle != NULL || !scheduler_needed(entry, now))
					continue;

				{
					MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

					entry->handle = start_worker("MedallionSchedulerMain",
												 "medallion scheduler",
												 psprintf("medallion scheduler of database %u",
														  database_id),
												 ObjectIdGetDatum(database_id),
												 &database_id, sizeof(Oid));
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

/* At exit, the scheduler unregisters and its waiting pipelines stop waiting. */
static void
scheduler_detach(int code, Datum arg)
{
	DatabaseSlot *slot = ShmemFindDatabaseSlot(MyDatabaseId);
	bool		registered = false;

	if (slot == NULL)
		return;
	SpinLockAcquire(&medallion_shared->mutex);
	if (slot->database_id == MyDatabaseId && slot->scheduler_pid == MyProcPid)
	{
		slot->scheduler_latch = NULL;
		slot->scheduler_pid = 0;
		registered = true;
	}
	SpinLockRelease(&medallion_shared->mutex);
	if (registered)
		WorkerSlotsSetWaiting(MyDatabaseId, NULL, 0);
}

/*
 * Register as the one scheduler of this database; false when another live
 * one is registered, when the database is being dropped, or when all
 * database slots are taken.
 */
static bool
scheduler_register(Oid database_id)
{
	for (;;)
	{
		DatabaseSlot *slot = ShmemDatabaseSlot(database_id);
		int			other;
		bool		registered = false;
		bool		dropping;

		if (slot == NULL)
		{
			ereport(LOG,
					(errmsg("medallion cannot run the pipelines of database %u: too many databases", database_id),
					 errdetail("At most %d databases run continuous pipelines at once.",
							   MEDALLION_MAX_DATABASES)));
			return false;
		}
		SpinLockAcquire(&medallion_shared->mutex);
		other = slot->scheduler_pid;
		SpinLockRelease(&medallion_shared->mutex);
		if (other != 0 && other != MyProcPid &&
			DynamicWorkerAlive(other, database_id, "medallion scheduler"))
		{
			ereport(LOG,
					(errmsg("medallion scheduler of database %u leaves: another scheduler (PID %d) runs there",
							database_id, other)));
			return false;
		}
		SpinLockAcquire(&medallion_shared->mutex);
		if (slot->database_id == database_id && slot->scheduler_pid == other)
		{
			slot->scheduler_pid = MyProcPid;
			slot->scheduler_latch = MyLatch;
			slot->wake_requested = false;
			registered = true;
		}
		SpinLockRelease(&medallion_shared->mutex);
		if (!registered)
			continue;
		before_shmem_exit(scheduler_detach, (Datum) 0);
		dropping = LauncherDatabaseDropping(database_id);
		return !dropping;
	}
}

/* Record whether this database has pipelines to run (see scheduler_needed). */
static void
scheduler_set_wanted(Oid database_id, bool wanted)
{
	DatabaseSlot *slot = ShmemFindDatabaseSlot(database_id);

	if (slot == NULL)
		return;
	SpinLockAcquire(&medallion_shared->mutex);
	if (slot->database_id == database_id)
		slot->scheduler_wanted = wanted;
	SpinLockRelease(&medallion_shared->mutex);
}

/*
 * The continuous pipelines of this database that should be running, with
 * when each is due: at once with a backlog or never run, otherwise
 * trigger_interval after its last update started, and not before the end
 * of a retry backoff.  *catalog_stale: the extension is there, but its
 * catalog is of another version than the library (VersionCatalogUsable
 * logged why), so no pipeline can run until ALTER EXTENSION ... UPDATE.
 */
static List *
running_pipelines(bool *extension_exists, bool *catalog_stale)
{
	List	   *pipelines = NIL;
	MemoryContext caller_context = CurrentMemoryContext;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	*extension_exists = OidIsValid(get_extension_oid(MEDALLION_EXTENSION_NAME, true));
	*catalog_stale = *extension_exists && !VersionCatalogUsable();
	if (*extension_exists && !*catalog_stale)
	{
		uint64		row;

		pgstat_report_activity(STATE_RUNNING, "medallion: looking for continuous pipelines");
		SPI_connect();
		SpiExecute("SELECT p.pipeline_id, p.owner::pg_catalog.oid::bigint, p.pipeline_name,"
				   " (pg_catalog.date_part('epoch',"
				   "   GREATEST(CASE WHEN EXISTS (SELECT FROM medallion.flow f"
				   "      WHERE f.pipeline_id OPERATOR(pg_catalog.=) p.pipeline_id"
				   "        AND (f.flow_state OPERATOR(pg_catalog.->>) 'backlog_objects')::bigint"
				   "            OPERATOR(pg_catalog.>) 0)"
				   "     THEN NULL"
				   "     ELSE p.last_update_start OPERATOR(pg_catalog.+) p.trigger_interval END,"
				   "   p.next_attempt_at)"
				   "   OPERATOR(pg_catalog.-) pg_catalog.clock_timestamp())"
				   "  OPERATOR(pg_catalog.*) 1000)::bigint"
				   " FROM medallion.pipeline p"
				   " WHERE p.mode OPERATOR(pg_catalog.=) 'continuous'"
				   " AND p.state OPERATOR(pg_catalog.=) 'running'"
				   " ORDER BY p.pipeline_id",
				   0, NULL, NULL, NULL, SPI_OK_SELECT);
		for (row = 0; row < SPI_processed; row++)
		{
			MemoryContext old = MemoryContextSwitchTo(caller_context);
			RunningPipeline *pipeline = palloc0(sizeof(RunningPipeline));
			bool		isnull;

			pipeline->pipeline_id = (int32) SpiGetInt64(row, 1, NULL);
			pipeline->owner = (Oid) SpiGetInt64(row, 2, NULL);
			pipeline->pipeline_name = SPI_getvalue(SPI_tuptable->vals[row],
												   SPI_tuptable->tupdesc, 3);
			pipeline->due_in_ms = SpiGetInt64(row, 4, &isnull);
			if (isnull)
				pipeline->due_in_ms = 0;
			pipeline->session_role = DynamicWorkerSessionRole(pipeline->owner);
			pipelines = lappend(pipelines, pipeline);
			MemoryContextSwitchTo(old);
		}
		SPI_finish();
	}
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
	return pipelines;
}

/*
 * Forget the workers this scheduler started that stopped, freeing a slot
 * whose worker never attached or did not release it.
 */
static List *
forget_stopped_workers(List *started)
{
	List	   *still_running = NIL;
	ListCell   *cell;

	foreach(cell, started)
	{
		StartedWorker *worker = lfirst(cell);

		if (worker_is_running(worker->handle))
			still_running = lappend(still_running, worker);
		else
		{
			WorkerSlotsRelease(&worker->claim);
			pfree(worker->handle);
			pfree(worker);
		}
	}
	list_free(started);
	return still_running;
}

/* Start the worker of a pipeline that has claimed a slot. */
static StartedWorker *
start_pipeline_worker(Oid database_id, const RunningPipeline *pipeline,
					  const WorkerSlotClaim *claim)
{
	PipelineWorkerArgs args;
	StartedWorker *worker;
	BackgroundWorkerHandle *handle;

	memset(&args, 0, sizeof(args));
	args.database_id = database_id;
	args.claim = *claim;
	args.session_role = pipeline->session_role;
	strlcpy(args.pipeline_name, pipeline->pipeline_name,
			sizeof(args.pipeline_name));
	handle = start_worker("MedallionPipelineWorkerMain", "medallion worker",
						  psprintf("medallion worker: %s", pipeline->pipeline_name),
						  Int32GetDatum(pipeline->pipeline_id), &args, sizeof(args));
	if (handle == NULL)
	{
		WorkerSlotsRelease(claim);
		return NULL;
	}
	worker = palloc0(sizeof(StartedWorker));
	worker->claim = *claim;
	worker->handle = handle;
	return worker;
}

/*
 * A pipeline that has waited WAIT_REPORT_MS for a slot says so: an event
 * of type waiting and a log line naming the setting to raise, once per
 * wait and at most every WAIT_REPORT_INTERVAL_MS.
 */
static List *
report_waiting(List *reports, const RunningPipeline *waiting, TimestampTz since)
{
	TimestampTz now = GetCurrentTimestamp();
	WaitReport *report = NULL;
	ListCell   *cell;
	long		waited_ms;
	PipelineDesc *pipeline;

	if (!TimestampDifferenceExceeds(since, now, WAIT_REPORT_MS))
		return reports;
	foreach(cell, reports)
	{
		if (((WaitReport *) lfirst(cell))->pipeline_id == waiting->pipeline_id)
			report = lfirst(cell);
	}
	if (report != NULL &&
		(report->episode == since ||
		 !TimestampDifferenceExceeds(report->reported_at, now, WAIT_REPORT_INTERVAL_MS)))
		return reports;
	if (report == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		report = palloc0(sizeof(WaitReport));
		report->pipeline_id = waiting->pipeline_id;
		reports = lappend(reports, report);
		MemoryContextSwitchTo(old);
	}
	report->episode = since;
	report->reported_at = now;
	waited_ms = (long) ((now - since) / 1000);

	ereport(LOG,
			(errmsg("continuous pipeline \"%s\" is waiting for a worker slot",
					waiting->pipeline_name),
			 errdetail("It has waited %ld ms; other pipelines hold the %d slots of medallion.max_workers (medallion.max_workers_per_role is %d).",
					   waited_ms, medallion_max_workers,
					   medallion_max_workers_per_role),
			 errhint("Raise medallion.max_workers, or stop continuous pipelines that are not needed.")));

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	pipeline = CatalogGetPipelineById(waiting->pipeline_id, true);
	if (pipeline != NULL)
		EventLogWrite(pipeline, 0, NULL, "waiting", "WARNING",
					  psprintf("waiting for a worker slot: all %d slots of medallion.max_workers are taken",
							   medallion_max_workers),
					  psprintf("{\"waited_ms\": %ld, \"max_workers\": %d, \"max_workers_per_role\": %d}",
							   waited_ms, medallion_max_workers,
							   medallion_max_workers_per_role));
	PopActiveSnapshot();
	CommitTransactionCommand();
	return reports;
}

/* The scheduler leaves: it has nothing to run, or must not run. */
static void
scheduler_leave(Oid database_id)
{
	scheduler_set_wanted(database_id, false);
	proc_exit(0);
}

void
MedallionSchedulerMain(Datum main_arg)
{
	Oid			database_id = DatumGetObjectId(main_arg);
	List	   *started = NIL;
	List	   *reports = NIL;
	MemoryContext loop_context;
	bool		registered = false;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	DynamicWorkerConnect(database_id, InvalidOid);
	pgstat_report_appname("medallion scheduler");

	loop_context = AllocSetContextCreate(TopMemoryContext,
										 "medallion scheduler loop",
										 ALLOCSET_DEFAULT_SIZES);
	for (;;)
	{
		bool		extension_exists;
		bool		catalog_stale;
		List	   *pipelines;
		ListCell   *cell;
		DuePipeline *due;
		int			due_count = 0;
		long		timeout_ms = medallion_launcher_naptime_ms;
		int			index;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		if (!medallion_enable_workers)
			proc_exit(0);

		MemoryContextSwitchTo(loop_context);
		pipelines = running_pipelines(&extension_exists, &catalog_stale);

		/*
		 * With no work it leaves; but while the catalog waits for ALTER
		 * EXTENSION ... UPDATE it stays, so that the refusal is logged once
		 * and the pipelines start within a naptime of the update.
		 */
		if (!extension_exists || (pipelines == NIL && !catalog_stale))
			scheduler_leave(database_id);
		if (!registered)
		{
			if (!scheduler_register(database_id))
				proc_exit(0);
			registered = true;
		}
		scheduler_set_wanted(database_id, true);

		MemoryContextSwitchTo(TopMemoryContext);
		started = forget_stopped_workers(started);
		MemoryContextSwitchTo(loop_context);
		WorkerSlotsReclaimDead();

		/* the pipelines that are due and have no worker wait for a slot */
		due = palloc(sizeof(DuePipeline) * list_length(pipelines));
		foreach(cell, pipelines)
		{
			RunningPipeline *pipeline = lfirst(cell);

			if (WorkerSlotsHasWorker(database_id, pipeline->pipeline_id))
				continue;
			if (pipeline->due_in_ms > 0)
			{
				timeout_ms = Min(timeout_ms, (long) pipeline->due_in_ms);
				continue;
			}
			due[due_count].pipeline_id = pipeline->pipeline_id;
			due[due_count].owner = pipeline->owner;
			due_count++;
		}
		WorkerSlotsSetWaiting(database_id, due, due_count);

		for (index = 0; index < due_count; index++)
		{
			WorkerSlotClaim claim;
			RunningPipeline *pipeline = NULL;
			TimestampTz since;

			foreach(cell, pipelines)
			{
				if (((RunningPipeline *) lfirst(cell))->pipeline_id == due[index].pipeline_id)
					pipeline = lfirst(cell);
			}
			if (WorkerSlotsClaim(database_id, due[index].pipeline_id,
								 due[index].owner, &claim))
			{
				StartedWorker *worker;
				MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

				worker = start_pipeline_worker(database_id, pipeline, &claim);
				if (worker != NULL)
					started = lappend(started, worker);
				MemoryContextSwitchTo(old);
				continue;
			}
			since = WorkerSlotsWaitingSince(database_id, due[index].pipeline_id);
			if (since == 0)
				continue;
			reports = report_waiting(reports, pipeline, since);
			MemoryContextSwitchTo(loop_context);
		}
		MemoryContextSwitchTo(TopMemoryContext);
		MemoryContextReset(loop_context);

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 Max(timeout_ms, 10), PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
